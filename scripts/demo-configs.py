#!/usr/bin/env python3
"""Writes the configuration scripts/demo.sh runs with, derived from the shipped files.

    demo-configs.py DIR --base PORT --exporter PORT --agent PORT --prometheus PORT
                    --alertmanager PORT --interval SECONDS --throttle DURATION

Into DIR: agent.yaml (config/agent.yaml with the demo's seeds, ports, journal and token files,
webhook.cluster "demo", its own guards off so the rollback you see is Alertmanager's),
prometheus.yml (config/prometheus.yml with the demo's targets, every target labelled
cluster="demo", scrape and evaluation every --interval), slotguard.rules.yml (rules/ with every
`for:` a sixth as long, so alerts fire within seconds), alertmanager.yml (config/alertmanager.yml
with short group timings, the agent receiver pointed at the demo agent and its token file) and
plan.yaml (config/plan.example.yaml with the demo cluster's masters in place of :7000-:7002)
and slow-plan.yaml (500 slots from the third master to the first: a batch to disturb).
"""
import argparse
import copy
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = "demo"


def load(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return yaml.safe_load(f)


def dump(directory, name, data):
    with open(os.path.join(directory, name), "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)


def seconds(duration):
    m = re.fullmatch(r"(\d+)([smh])", str(duration))
    if not m:
        sys.exit(f"demo-configs: cannot read the duration {duration!r} in rules/")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def agent_config(args):
    config = load("config", "agent.yaml")
    config["redis"]["seeds"] = [f"127.0.0.1:{args.base}", f"127.0.0.1:{args.base + 1}"]
    config["listen_address"] = f"127.0.0.1:{args.agent}"
    config["journal_dir"] = os.path.join(args.dir, "journal")
    config["control"]["token_file"] = os.path.join(args.dir, "control-token")
    config["webhook"]["token_file"] = os.path.join(args.dir, "webhook-token")
    config["webhook"]["cluster"] = CLUSTER
    config["engine"]["guards"] = {"enabled": False}
    config["engine"]["throttle_per_slot"] = args.throttle
    config["shutdown_grace"] = "5s"
    return config


def rules():
    data = load("rules", "slotguard.rules.yml")
    for group in data["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{max(1, seconds(rule['for']) // 6)}s"
    return data


def prometheus_config(args):
    config = load("config", "prometheus.yml")
    interval = f"{args.interval}s"
    config["global"] = {"scrape_interval": interval, "scrape_timeout": interval,
                        "evaluation_interval": interval}
    config["rule_files"] = [os.path.join(args.dir, "slotguard.rules.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{args.alertmanager}"]
    ports = {"slotguard-exporter": args.exporter, "slotguard-agent": args.agent}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"],
                                  "labels": {"cluster": CLUSTER}}]
    return config


def alertmanager_config(args):
    config = copy.deepcopy(load("config", "alertmanager.yml"))
    config["route"].update(group_wait="1s", group_interval="5s")
    for route in config["route"]["routes"]:
        if route["receiver"] == "slotguard-agent":
            route.update(group_wait="0s", group_interval="5s")
    receiver = next(r for r in config["receivers"] if r["name"] == "slotguard-agent")
    hook = receiver["webhook_configs"][0]
    hook["url"] = f"http://127.0.0.1:{args.agent}/api/v1/alertmanager"
    hook["http_config"]["authorization"]["credentials_file"] = os.path.join(args.dir,
                                                                            "webhook-token")
    return config


def plan(args):
    with open(os.path.join(ROOT, "config", "plan.example.yaml")) as f:
        text = f.read()
    for i in range(3):
        text = text.replace(f"127.0.0.1:{7000 + i}", f"127.0.0.1:{args.base + i}")
    return text


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir")
    for name in ("base", "exporter", "agent", "prometheus", "alertmanager", "interval"):
        p.add_argument(f"--{name}", type=int, required=True)
    p.add_argument("--throttle", default="0s")
    args = p.parse_args()
    dump(args.dir, "agent.yaml", agent_config(args))
    dump(args.dir, "slotguard.rules.yml", rules())
    dump(args.dir, "prometheus.yml", prometheus_config(args))
    dump(args.dir, "alertmanager.yml", alertmanager_config(args))
    with open(os.path.join(args.dir, "plan.yaml"), "w") as f:
        f.write(plan(args))
    with open(os.path.join(args.dir, "slow-plan.yaml"), "w") as f:
        f.write("# scripts/demo.sh: a batch slow enough to disturb while it runs.\n"
                f"batches:\n  - id: slow\n    from: 127.0.0.1:{args.base + 2}\n"
                f"    to: 127.0.0.1:{args.base}\n    slots: 500\n")


if __name__ == "__main__":
    main()
