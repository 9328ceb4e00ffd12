"""Every dashboard panel query against a real Prometheus that scrapes the real exporter
watching a real 3+3 cluster.

Prometheus (1 s scrape and rule evaluation, the shipped rules) scrapes the exporter and the
agent daemon. While it watches, the cluster is given something to show: keys and reads
(commands, keys, latency percentiles), a batch of slots with keys moved by the agent, a MOVED
redirect, a PUBLISH (cluster bus publish messages), and a slot left open between two masters
with keys on both sides, an ASK redirect, a TRYAGAIN and a MIGRATE that fails with IOERR.
Then the test loads each dashboard, resolves its variables the way Grafana does (label_values
queries against Prometheus, regex-escaped multi values), and runs every target and annotation
query. It fails on any query error, and on a target that returns nothing unless that target
is listed below with the reason its data cannot exist in this scenario.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))

from prometheus_stack import start_prometheus  # noqa: E402
from harness import (SOURCE_DIR, Cluster, Process, built_binary, free_port,  # noqa: E402
                     require_binary, wait_for)

DASHBOARD_DIR = os.path.join(SOURCE_DIR, "dashboards")
RULES_FILE = os.path.join(SOURCE_DIR, "rules", "slotguard.rules.yml")

# Targets that may return nothing here, as (dashboard uid, panel title, legend format): data
# that exists only after events this test does not cause, a failover (fail messages) and a
# stale-config correction between nodes (update messages). Their queries still must not error,
# and must return data whenever their series exist (see the last test).
CONDITIONAL_TARGETS = {
    ("slotguard-cluster", "Cluster bus messages by type", "fail sent"),
    ("slotguard-cluster", "Cluster bus messages by type", "update sent"),
    # Only while a batch runs.
    ("slotguard-migrations", "Running batches", "{{batch}} slots done"),
    ("slotguard-migrations", "Running batches", "{{batch}} slots"),
}

BATCH_SLOTS = range(0, 10)
CLUSTER_LABEL = "e2e-dash"  # the `cluster` target label Prometheus attaches
HASH_TAG = "{slotguard-e2e}"




# --- Grafana's variable handling --------------------------------------------------------------

def regex_escape(value):
    """What Grafana's Prometheus datasource does to multi-value variables."""
    return re.sub(r"([\\^$*+?.()|\[\]{}/])", r"\\\\\1", value)


def format_variable(var, values):
    if not var.get("multi") and not var.get("includeAll"):
        return values[0].replace("\\", "\\\\").replace('"', '\\"')
    escaped = [regex_escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


BUILTINS = {"$__rate_interval": "1m", "$__interval": "1s", "$__range": "5m",
            "${__range}": "5m", "${__rate_interval}": "1m"}


def substitute(text, values):
    """Replaces $name and ${name} (longest names first, so $node never eats $nodes)."""
    for k in sorted(BUILTINS, key=len, reverse=True):
        text = text.replace(k, BUILTINS[k])
    for name in sorted(values, key=len, reverse=True):
        text = text.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return text


def resolve_variables(prom, dash):
    """Values for the dashboard's variables, resolved in order like Grafana does; also
    returns the variables whose query found nothing."""
    values, empty = {}, []
    for var in dash["templating"]["list"]:
        if var["type"] == "datasource":
            values[var["name"]] = "prometheus"
            continue
        assert var["type"] == "query", var
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["definition"])
        assert m, f"variable {var['name']}: {var['definition']}"
        found = sorted(prom.label_values(m.group(2), substitute(m.group(1), values)))
        if not found:
            empty.append(var["name"])
            values[var["name"]] = var.get("allValue") or ".+"
        else:
            values[var["name"]] = format_variable(var, found)
    return values, empty


# --- the stack --------------------------------------------------------------------------------

def slot_owner(cluster, slot):
    """(port, node id) of the master owning `slot`, from CLUSTER SLOTS."""
    for start, end, master, *_ in cluster.client(cluster.base).execute_command("CLUSTER SLOTS"):
        if int(start) <= slot <= int(end):
            return int(master[1]), master[2]
    raise AssertionError(f"slot {slot} has no owner")


def write_keys(cluster):
    """Keys and reads all over the cluster (commands, keys, latency percentiles)."""
    cc = cluster.cluster_client()
    for i in range(300):
        cc.set(f"e2e:key:{i}", "v" * 100)
    for i in range(300):
        assert cc.get(f"e2e:key:{i}") == "v" * 100
    cc.close()


def keys_in_slots(cluster, slots, per_slot):
    """per_slot keys for each of `slots`, found with the server's CLUSTER KEYSLOT."""
    c = cluster.client(cluster.base)
    pipe = c.pipeline(transaction=False)
    candidates = [f"e2e:tag:{i}" for i in range(60000)]
    for k in candidates:
        pipe.execute_command("CLUSTER KEYSLOT", k)
    tags = {}
    for k, slot in zip(candidates, pipe.execute()):
        if slot in slots and slot not in tags:
            tags[slot] = k
    assert set(tags) == set(slots), f"no key found for slots {set(slots) - set(tags)}"
    return {slot: [f"{{{tag}}}:{j}" for j in range(per_slot)] for slot, tag in tags.items()}


def agent_moves_a_batch(cluster, agent_bin, agent_url, control_token, tmp):
    """The agent moves BATCH_SLOTS, with keys in them, to another master."""
    src_port, _ = slot_owner(cluster, BATCH_SLOTS[0])
    dst_port = next(p for p in cluster.masters_ports() if p != src_port)
    src = cluster.client(src_port)
    keys = keys_in_slots(cluster, set(BATCH_SLOTS), per_slot=10)
    for slot_keys in keys.values():
        for k in slot_keys:
            src.set(k, "x")
    plan = os.path.join(tmp, "plan.yaml")
    with open(plan, "w") as f:
        yaml.safe_dump({"batches": [{
            "id": "e2e-dashboards", "from": f"127.0.0.1:{src_port}",
            "to": f"127.0.0.1:{dst_port}",
            "ranges": [f"{BATCH_SLOTS[0]}-{BATCH_SLOTS[-1]}"]}]}, f)
    r = subprocess.run([agent_bin, "enqueue", plan, "--agent", agent_url,
                        "--token-file", control_token], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr

    def moved():
        text = urllib.request.urlopen(agent_url + "/metrics", timeout=5).read().decode()
        m = re.search(r"^slotguard_agent_slots_migrated_total (\S+)$", text, re.M)
        return m and float(m.group(1)) == len(BATCH_SLOTS) and \
            'slotguard_agent_state{state="idle"} 1' in text
    wait_for(moved, timeout=60, interval=0.2, what="the agent to move the batch")
    dst = cluster.client(dst_port)
    for slot in BATCH_SLOTS:
        assert dst.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 10


def leave_a_slot_open(cluster):
    """A slot left open with keys on both sides (as a stopped migration leaves it), and the
    redirects and errors clients and MIGRATE meet meanwhile. Returns the slot."""
    import redis
    any_client = cluster.client(cluster.base)
    slot = any_client.execute_command("CLUSTER KEYSLOT", HASH_TAG)
    src_port, src_id = slot_owner(cluster, slot)
    dst_port = next(p for p in cluster.masters_ports() if p != src_port)
    dst_id = cluster.node_id(dst_port)
    src, dst = cluster.client(src_port), cluster.client(dst_port)
    keys = [f"{HASH_TAG}:{i}" for i in range(20)]
    for k in keys:
        src.set(k, "x")

    # MOVED: a key of the slot asked on a node that does not own it.
    with pytest.raises(redis.exceptions.ResponseError, match="MOVED"):
        dst.get(keys[0])
    # Cluster bus publish messages.
    any_client.publish("slotguard-e2e", "hello")

    dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
    assert src.execute_command("MIGRATE", "127.0.0.1", dst_port, "", 0, 5000,
                               "KEYS", *keys[:5]) == "OK"
    # ASK: a moved key asked on the source; TRYAGAIN: a multi-key read split between nodes.
    with pytest.raises(redis.exceptions.ResponseError, match="ASK"):
        src.get(keys[0])
    with pytest.raises(redis.exceptions.ResponseError, match="TRYAGAIN"):
        src.execute_command("MGET", keys[0], keys[10])
    # A MIGRATE towards a closed port fails with IOERR (a failed call of MIGRATE).
    with pytest.raises(redis.exceptions.ResponseError, match="IOERR"):
        src.execute_command("MIGRATE", "127.0.0.1", free_port(), keys[10], 0, 200)
    assert src.exists(keys[10]) == 1
    return slot



def serving(proc, url, needle):
    def check():
        assert proc.alive(), f"{proc.args[0]} exited:\n" + proc.output()
        with urllib.request.urlopen(url, timeout=5) as r:
            return needle in r.read().decode()
    return check


@pytest.fixture(scope="module")
def stack():
    require_binary("redis-server")
    require_binary("prometheus")
    exporter_bin = built_binary("slotguard-exporter")
    agent_bin = built_binary("slotguard-agent")

    cluster = Cluster(masters=3, replicas=1)
    tmp = tempfile.mkdtemp(prefix="slotguard-e2e-dash-")
    procs = []
    try:
        write_keys(cluster)

        exporter_port = free_port()
        exporter = Process([exporter_bin, f"--redis.addr={cluster.seed}",
                            f"--web.listen-address=127.0.0.1:{exporter_port}",
                            "--scrape.timeout=800ms"])
        procs.append(exporter)
        wait_for(serving(exporter, f"http://127.0.0.1:{exporter_port}/metrics", "redis_up{"),
                 timeout=30, what="the exporter's /metrics")

        agent_port = free_port()
        agent_url = f"http://127.0.0.1:{agent_port}"
        control_token = os.path.join(tmp, "control-token")
        webhook_token = os.path.join(tmp, "webhook-token")
        for path in (control_token, webhook_token):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(os.urandom(16).hex() + "\n")
        agent_config = os.path.join(tmp, "agent.yaml")
        with open(agent_config, "w") as f:
            yaml.safe_dump({
                "redis": {"seeds": [cluster.seed]},
                "listen_address": f"127.0.0.1:{agent_port}",
                "journal_dir": os.path.join(tmp, "journal"),
                "control": {"token_file": control_token},
                "webhook": {"token_file": webhook_token},
            }, f)
        agent = Process([agent_bin, "run", "--config", agent_config])
        procs.append(agent)
        wait_for(serving(agent, agent_url + "/metrics", "slotguard_agent_state{"),
                 timeout=30, what="the agent's /metrics")

        shutil.copy(RULES_FILE, os.path.join(tmp, "slotguard.rules.yml"))
        prometheus, prom = start_prometheus(
            tmp, ["slotguard.rules.yml"],
            {"slotguard-exporter": exporter_port, "slotguard-agent": agent_port},
            cluster=CLUSTER_LABEL)
        procs.append(prometheus)

        def scraped():
            assert prometheus.alive(), "prometheus exited:\n" + prometheus.output()
            checks = [prom.query("count(redis_up == 1) == 6"),
                      prom.query("count(count_over_time(up[1m]) >= 3) == 2")]
            return all(r.get("status") == "success" and r["data"]["result"] for r in checks)
        wait_for(scraped, timeout=60, interval=0.5,
                 what="Prometheus to scrape the exporter (6 nodes up) and the agent, 3 times")

        # Activity while Prometheus watches, so rates are not all zero.
        agent_moves_a_batch(cluster, agent_bin, agent_url, control_token, tmp)
        open_slot = leave_a_slot_open(cluster)
        yield {"prom": prom, "cluster": cluster, "open_slot": open_slot,
               "cluster_label": CLUSTER_LABEL, "exporter_port": exporter_port,
               "agent_port": agent_port}
    finally:
        for p in reversed(procs):
            p.stop()
        cluster.down()
        shutil.rmtree(tmp, ignore_errors=True)


def load_dashboards():
    out = []
    for name in sorted(os.listdir(DASHBOARD_DIR)):
        if name.endswith(".json"):
            with open(os.path.join(DASHBOARD_DIR, name)) as f:
                out.append(json.load(f))
    assert out, "no dashboards"
    return out


def panel_targets(dash):
    for p in dash["panels"]:
        for panel in [p, *p.get("panels", [])]:
            for t in panel.get("targets", []):
                yield panel, t


# --- tests ------------------------------------------------------------------------------------

def test_exemption_list_names_real_targets():
    """The list above must not rot: each entry names an existing target."""
    targets = {(d["uid"], p["title"], t.get("legendFormat", ""))
               for d in load_dashboards() for p, t in panel_targets(d)}
    for key in CONDITIONAL_TARGETS:
        assert key in targets, f"exemption {key} names no target"


def test_variables_resolve(stack):
    """Every variable finds values; $job and $cluster come from the scrape job and the
    `cluster` target label, $instance and $agent are this cluster's exporter and agent."""
    prom = stack["prom"]
    for dash in load_dashboards():
        values, empty = resolve_variables(prom, dash)
        assert not empty, f"{dash['uid']}: variables found nothing: {empty}"
        assert values["job"] == "slotguard-exporter", values
        assert values["cluster"] == stack["cluster_label"], values
        assert values["instance"] == f"127.0.0.1:{stack['exporter_port']}", values
        if "agent" in values:
            assert values["agent"] == regex_escape(f"127.0.0.1:{stack['agent_port']}"), values


def test_every_panel_uses_the_datasource_variable():
    """Grafana runs a panel on its datasource: every panel, target, query variable and
    annotation must use $datasource (a Prometheus datasource variable), or a datasource picked
    by the viewer would be ignored."""
    ds = {"type": "prometheus", "uid": "${datasource}"}
    for dash in load_dashboards():
        (var,) = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
        assert var["name"] == "datasource" and var["query"] == "prometheus"
        for p in dash["panels"]:
            for panel in [p, *p.get("panels", [])]:
                if panel["type"] == "row":
                    continue
                assert panel.get("datasource") == ds, (dash["uid"], panel["title"])
                assert panel["targets"], (dash["uid"], panel["title"])
                for t in panel["targets"]:
                    assert t.get("datasource") == ds, (dash["uid"], panel["title"], t["refId"])
        for v in dash["templating"]["list"]:
            if v["type"] == "query":
                assert v["datasource"] == ds, (dash["uid"], v["name"])
        for a in dash["annotations"]["list"]:
            if a.get("expr"):
                assert a["datasource"] == ds, (dash["uid"], a["name"])


def test_every_panel_query_runs_and_shows_its_data(stack):
    prom = stack["prom"]
    exempt = set(CONDITIONAL_TARGETS)

    errors = []
    queries = []  # (where, key, expr)
    for dash in load_dashboards():
        values, _ = resolve_variables(prom, dash)
        for panel, t in panel_targets(dash):
            expr = substitute(t["expr"], values)
            assert "$" not in expr, f"unresolved variable in {expr}"
            where = f"{dash['uid']} / {panel['title']} / {t['refId']} ({t.get('legendFormat')})"
            key = (dash["uid"], panel["title"], t.get("legendFormat", ""))
            queries.append((where, key, expr))
            # A query error is never excused: test both the instant and the range API (a
            # range panel runs query_range in Grafana).
            r = prom.query(expr)
            if r.get("status") != "success":
                errors.append(f"{where}: {r.get('error')}\n    {expr}")
            if t.get("range", True):
                r = prom.query_range(expr)
                if r.get("status") != "success":
                    errors.append(f"{where} (range): {r.get('error')}\n    {expr}")
        for a in dash.get("annotations", {}).get("list", []):
            if a.get("expr"):
                r = prom.query_range(substitute(a["expr"], values))
                if r.get("status") != "success":
                    errors.append(f"{dash['uid']} annotation {a['name']}: {r.get('error')}")
    assert not errors, "queries failed:\n" + "\n".join(errors)

    def empty_targets():
        out = []
        for where, key, expr in queries:
            if key in exempt:
                continue
            r = prom.query(expr)
            if r.get("status") != "success" or not r["data"]["result"]:
                out.append(f"{where}\n    {expr}")
        return out

    # Rates and recording rules need a few scrapes and evaluations: poll, then judge.
    try:
        wait_for(lambda: not empty_targets(), timeout=60, interval=1,
                 what="every panel target to return data")
    except AssertionError:
        pass
    missing = empty_targets()
    assert not missing, ("targets returned nothing although their data exists:\n"
                         + "\n".join(missing))


def test_exempt_targets_are_only_empty_for_their_reason(stack):
    """An exempt target whose selectors all match series must return data too (a broken
    expression cannot hide in the exemption lists)."""
    prom = stack["prom"]
    wrong = []
    for dash in load_dashboards():
        values, _ = resolve_variables(prom, dash)
        for panel, t in panel_targets(dash):
            key = (dash["uid"], panel["title"], t.get("legendFormat", ""))
            if key not in CONDITIONAL_TARGETS:
                continue
            expr = substitute(t["expr"], values)
            selectors = re.findall(r"([a-z_:][a-z0-9_:]*\{[^}]*\})", expr)
            if selectors and all(prom.query(f"count({s})")["data"]["result"] for s in selectors):
                r = prom.query(expr)
                if not r["data"]["result"]:
                    wrong.append(f"{key}: {expr}")
    assert not wrong, "\n".join(wrong)


def test_open_slot_shows_on_the_migration_panels(stack):
    """The slot left open by the fixture is what the migrations dashboard reports."""
    prom = stack["prom"]
    slot = str(stack["open_slot"])

    def open_slot_keys():
        r = prom.query("redis_cluster_open_slot_keys")["data"]["result"]
        return {s["metric"]["state"]: float(s["value"][1]) for s in r
                if s["metric"].get("slot") == slot}
    # 20 keys were written, 5 moved: 15 left on the source, 5 already on the target.
    wait_for(lambda: open_slot_keys() == {"migrating": 15.0, "importing": 5.0}, timeout=30,
             interval=0.5, what=f"open slot {slot} with 15 + 5 keys (last: {open_slot_keys()})")

    def errors_seen():
        r = prom.query("sum by (err) (redis_errors_total)")["data"]["result"]
        return {s["metric"]["err"] for s in r}
    wait_for(lambda: {"MOVED", "ASK", "TRYAGAIN", "IOERR"} <= errors_seen(), timeout=30,
             interval=0.5, what="MOVED, ASK, TRYAGAIN and IOERR error replies")


def test_the_agents_batch_shows_on_the_throughput_panels(stack):
    """The batch the agent moved while Prometheus watched makes the throughput recording
    rules (the migrations dashboard's panels) non-zero."""
    prom = stack["prom"]
    for rule in ("slotguard:agent_slots_migrated:rate1m", "slotguard:agent_keys_migrated:rate1m"):
        def seen(rule=rule):
            r = prom.query(f"max_over_time({rule}[5m]) > 0")
            return r.get("status") == "success" and r["data"]["result"]
        wait_for(seen, timeout=30, interval=0.5, what=f"{rule} to show the batch")
    r = prom.query("slotguard_agent_keys_migrated_total")["data"]["result"]
    assert [float(s["value"][1]) for s in r] == [10.0 * len(BATCH_SLOTS)], r
