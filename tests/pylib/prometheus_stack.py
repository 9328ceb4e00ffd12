"""A real Prometheus for the end-to-end tests: started on a free port with a temp config."""
import copy
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

from harness import SOURCE_DIR, Process, free_port


class PrometheusApi:
    """The HTTP API of a running Prometheus."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path, **params):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:  # 400/422 carry the PromQL error in the body
            body = e.read().decode(errors="replace")
            try:
                return json.loads(body)
            except ValueError:
                return {"status": "error", "error": f"HTTP {e.code}: {body[:300]}"}

    def query(self, expr):
        return self.get("/api/v1/query", query=expr)

    def result(self, expr):
        """The result vector of an instant query; raises on a query error."""
        r = self.query(expr)
        assert r.get("status") == "success", f"query {expr!r} failed: {r}"
        return r["data"]["result"]

    def query_range(self, expr, seconds=60, step="1s"):
        end = time.time()
        return self.get("/api/v1/query_range", query=expr, start=f"{end - seconds:.3f}",
                        end=f"{end:.3f}", step=step)

    def label_values(self, label, match):
        r = self.get(f"/api/v1/label/{label}/values", **{"match[]": match})
        assert r["status"] == "success", f"label values {label} for {match}: {r}"
        return r["data"]


def start_prometheus(tmp, rule_files, targets, alertmanager_port=None, cluster="e2e",
                     scrape_options=None):
    """Prometheus scraping `targets` ({job: port}) every second, evaluating `rule_files`
    every second. Every target gets the target label cluster=`cluster`, as the shipped
    config/prometheus.yml attaches it. `scrape_options` ({job: {key: value}}) adds to a job's
    scrape_config (scheme, tls_config, basic_auth). Returns (Process, PrometheusApi)."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": list(rule_files),
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{p}"],
                                                  "labels": {"cluster": cluster}}],
             **(scrape_options or {}).get(job, {})}
            for job, p in targets.items()
        ],
    }
    if alertmanager_port is not None:
        config["alerting"] = {"alertmanagers": [
            {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]}
    with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
        yaml.safe_dump(config, f)
    proc = Process(["prometheus", f"--config.file={tmp}/prometheus.yml",
                    f"--storage.tsdb.path={tmp}/prom-data",
                    f"--web.listen-address=127.0.0.1:{port}"])
    return proc, PrometheusApi(port)


RULES_FILE = os.path.join(SOURCE_DIR, "rules", "slotguard.rules.yml")
ALERTMANAGER_FILE = os.path.join(SOURCE_DIR, "config", "alertmanager.yml")


def rules_with_short_for(tmp, alerts=None):
    """A copy of the shipped rules where the alerts named in `alerts` (every alert when None)
    fire after 2 s instead of minutes. Returns its path."""
    with open(RULES_FILE) as f:
        rules = yaml.safe_load(f)
    found = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule and "for" in rule and (alerts is None or rule["alert"] in alerts):
                rule["for"] = "2s"
                found.add(rule["alert"])
    assert alerts is None or found == set(alerts), f"{set(alerts) - found} not in {RULES_FILE}"
    path = os.path.join(tmp, "slotguard.rules.yml")
    with open(path, "w") as f:
        yaml.safe_dump(rules, f)
    return path


def alertmanager_config(tmp, agents):
    """The shipped alertmanager.yml with short group timings, its agent receiver posting to
    every agent in `agents` (each with its own webhook token file). The routing (which alerts
    reach the agents) is the shipped one. Returns its path."""
    with open(ALERTMANAGER_FILE) as f:
        config = yaml.safe_load(f)
    config["route"]["group_wait"] = "1s"
    config["route"]["group_interval"] = "1s"
    agent_routes = [r for r in config["route"]["routes"] if r["receiver"] == "slotguard-agent"]
    assert agent_routes, "alertmanager.yml has no route to the slotguard-agent receiver"
    for r in agent_routes:
        r["group_wait"] = "0s"
        r["group_interval"] = "1s"
    receiver = next(r for r in config["receivers"] if r["name"] == "slotguard-agent")
    template = receiver["webhook_configs"][0]
    assert template["url"].endswith("/api/v1/alertmanager"), template
    hooks = []
    for agent in agents:
        hook = copy.deepcopy(template)
        hook["url"] = agent.url + "/api/v1/alertmanager"
        hook["http_config"]["authorization"]["credentials_file"] = agent.webhook_token_file
        hooks.append(hook)
    receiver["webhook_configs"] = hooks
    path = os.path.join(tmp, "alertmanager.yml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path
