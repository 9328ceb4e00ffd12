"""Alertmanager rolls a running batch back, end to end.

A real 3+3 cluster with data, the real exporter, a real Prometheus (1 s scrape and evaluation,
the shipped rules with a short `for:`), a real Alertmanager (the shipped alertmanager.yml with
short group timings, no gossip) and the agent daemon with its own guards switched off, so the
only thing that can roll the batch back is Alertmanager's webhook.

A slow batch runs (the agent's test throttle: pipeline 1, one slot per step, a pause before
each slot). The test drops coverage of one slot outside the batch (CLUSTER DELSLOTS on every
node, so every view sees it unassigned); SlotguardSlotsUncovered fires, Alertmanager posts to
the agent, the agent rolls the batch back and pauses its queue. The test then gives the slot
back (ADDSLOTS on its owner) and checks every key and `slotguard-agent check`. A notification
with a wrong token is refused and changes nothing.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))

from agent_daemon import (alertmanager_only_agent, masters_by_first_slot,  # noqa: E402
                          slot_owner)
from prometheus_stack import (alertmanager_config, rules_with_short_for,  # noqa: E402
                              start_prometheus)
from harness import (Cluster, Process, bin_path, built_binary,  # noqa: E402
                     free_port, require_binary, wait_for)

BATCH = list(range(0, 300))  # moved from the master owning slot 0
ROLLBACK_ALERT = "SlotguardSlotsUncovered"



def load_data(cluster, n=20000):
    """Strings, hashes, lists, sets, sorted sets and keys with TTLs, spread over all slots."""
    rc = cluster.cluster_client()
    expected = {}
    pipe = rc.pipeline()
    for i in range(n):
        kind = i % 6
        key = f"e2e:{kind}:{i}"
        if kind == 0:
            pipe.set(key, f"v{i}")
        elif kind == 1:
            pipe.hset(key, mapping={"a": str(i), "b": "x"})
        elif kind == 2:
            pipe.rpush(key, "1", "2", str(i))
        elif kind == 3:
            pipe.sadd(key, "m1", str(i))
        elif kind == 4:
            pipe.zadd(key, {"m": i})
        else:
            pipe.set(key, f"t{i}", ex=3600)
        expected[key] = kind
    pipe.execute()
    return expected


def check_data(cluster, expected):
    rc = cluster.cluster_client()
    bad = []
    for key, kind in expected.items():
        i = key.rsplit(":", 1)[1]
        if kind == 0:
            ok = rc.get(key) == f"v{i}"
        elif kind == 1:
            ok = rc.hgetall(key) == {"a": i, "b": "x"}
        elif kind == 2:
            ok = rc.lrange(key, 0, -1) == ["1", "2", i]
        elif kind == 3:
            ok = rc.smembers(key) == {"m1", i}
        elif kind == 4:
            ok = rc.zscore(key, "m") == float(i)
        else:
            ok = rc.get(key) == f"t{i}" and 0 < rc.ttl(key) <= 3600
        if not ok:
            bad.append(key)
    assert not bad, f"{len(bad)} keys missing or changed, e.g. {bad[:5]}"





@pytest.fixture
def stack():
    for tool in ("redis-server", "redis-cli", "prometheus", "prometheus-alertmanager"):
        require_binary(tool)
    for binary in ("slotguard-exporter", "slotguard-agent"):
        built_binary(binary)
    cluster = Cluster(masters=3, replicas=1)
    tmp = tempfile.mkdtemp(prefix="slotguard-e2e-rollback-")
    procs = []
    agent = None
    try:
        # A lost slot must not stop the cluster: keys have to move back during the rollback.
        for port in cluster.ports:
            cluster.client(port).config_set("cluster-require-full-coverage", "no")
        data = load_data(cluster)

        exporter_port = free_port()
        exporter = Process([bin_path("slotguard-exporter"), f"--redis.addr={cluster.seed}",
                            f"--web.listen-address=127.0.0.1:{exporter_port}",
                            "--scrape.timeout=800ms"])
        procs.append(exporter)

        # Prometheus labels every target cluster="e2e" (start_prometheus): the rollback alert
        # must carry it through the rules for this agent to act on it.
        agent = alertmanager_only_agent(cluster, "e2e", os.path.join(tmp, "agent"))
        agent.start()

        am_port = free_port()
        alertmanager = Process([
            "prometheus-alertmanager", f"--config.file={alertmanager_config(tmp, [agent])}",
            f"--storage.path={tmp}/am-data", f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address="])
        procs.append(alertmanager)

        prometheus, prom = start_prometheus(
            tmp, [rules_with_short_for(tmp, [ROLLBACK_ALERT])],
            {"slotguard-exporter": exporter_port, "slotguard-agent": agent.port},
            alertmanager_port=am_port)
        procs.append(prometheus)

        def ready():
            for p, name in ((exporter, "exporter"), (alertmanager, "alertmanager"),
                            (prometheus, "prometheus")):
                assert p.alive(), f"{name} exited:\n{p.output()}"
            up = prom.result('up{job=~"slotguard-exporter|slotguard-agent"} == 1')
            covered = prom.result("redis_cluster_slots_covered == 16384")
            with urllib.request.urlopen(f"http://127.0.0.1:{am_port}/-/ready", timeout=2) as r:
                am_ready = r.status == 200
            return len(up) == 2 and covered and am_ready
        wait_for(ready, timeout=90, interval=0.5,
                 what="Prometheus scraping exporter and agent, full coverage, Alertmanager ready")
        yield {"cluster": cluster, "agent": agent, "prom": prom, "data": data,
               "procs": {"exporter": exporter, "alertmanager": alertmanager,
                         "prometheus": prometheus}}
    finally:
        if agent is not None:
            agent.stop()
        for p in reversed(procs):
            p.stop()
        cluster.down()
        shutil.rmtree(tmp, ignore_errors=True)


def firing_payload(alertname, fingerprint):
    return {
        "version": "4", "status": "firing", "receiver": "slotguard-agent",
        "groupKey": "{}:{alertname=\"%s\"}" % alertname, "truncatedAlerts": 0,
        "groupLabels": {"alertname": alertname}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [{"status": "firing",
                    "labels": {"alertname": alertname, "slotguard_action": "rollback"},
                    "annotations": {}, "startsAt": "2026-01-01T00:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                    "fingerprint": fingerprint}],
    }


def test_alertmanager_rolls_back_the_running_batch(stack):
    cluster, agent, prom, data = stack["cluster"], stack["agent"], stack["prom"], stack["data"]
    (a, a_port), (b, _), (c, c_port) = masters_by_first_slot(cluster)
    plan = agent.write_plan(
        f'batches:\n  - {{id: slow, from: "{a}", to: "{b}", ranges: ["{BATCH[0]}-{BATCH[-1]}"]}}\n')
    r = agent.cli("enqueue", plan)
    assert r.returncode == 0, r.stderr

    def moving():
        item = agent.item("slow")
        assert item["state"] not in ("done", "rolled_back", "failed"), item
        return item["display_state"] == "migrating" and \
            agent.metric("slotguard_agent_slots_migrated_total") >= 3
    wait_for(moving, timeout=60, what="the slow batch to be migrating with a few slots moved")

    # A notification with a wrong token is refused and changes nothing.
    status, answer = agent.http("POST", "/api/v1/alertmanager",
                                firing_payload(ROLLBACK_ALERT, "0123456789abcdef"),
                                token="not-the-webhook-token")
    assert status == 401, answer
    status, answer = agent.http("POST", "/api/v1/alertmanager",
                                firing_payload(ROLLBACK_ALERT, "0123456789abcdef"),
                                token=agent.control_token)
    assert status == 401, answer
    assert agent.metric("slotguard_agent_webhook_notifications_total", result="rejected") == 2
    assert agent.metric("slotguard_agent_rollbacks_total", trigger="alertmanager") == 0
    status_now = agent.status()
    assert status_now["paused"] is False
    assert agent.item("slow")["display_state"] == "migrating"
    assert not agent.item("slow")["rollback_requested"]

    # Coverage drops on a slot outside the batch: every node forgets its owner.
    victim = 16000
    assert victim not in BATCH and slot_owner(cluster, victim) == c
    for port in cluster.ports:
        cluster.client(port).execute_command("CLUSTER DELSLOTS", victim)
    wait_for(lambda: prom.result("redis_cluster_slots_covered < 16384"), timeout=30,
             what="the exporter to report 16383 covered slots")

    # Prometheus fires, Alertmanager posts, the agent rolls back.
    def rolled_back():
        item = agent.item("slow")
        assert item["state"] not in ("done", "failed"), (item, agent.output()[-4000:])
        return item["state"] == "rolled_back"
    wait_for(rolled_back, timeout=120, interval=0.25,
             what="Alertmanager's notification to roll the batch back")

    item = agent.item("slow")
    assert item["rollback_requested"], item
    assert "alertmanager" in item["message"], item
    assert agent.metric("slotguard_agent_rollbacks_total", trigger="alertmanager") == 1
    assert agent.metric("slotguard_agent_rollbacks_total", trigger="guard") == 0
    assert agent.metric("slotguard_agent_webhook_notifications_total", result="accepted") >= 1
    status_now = agent.status()
    assert status_now["paused"] is True
    assert ROLLBACK_ALERT in status_now["pause_reason"], status_now
    assert status_now["state"] == "rolled_back"
    for slot in (BATCH[0], BATCH[len(BATCH) // 2], BATCH[-1]):
        assert slot_owner(cluster, slot) == a, slot
    assert agent.metric("slotguard_agent_slots_migrated_total") < len(BATCH)
    assert prom.result('ALERTS{alertname="%s",alertstate="firing"}' % ROLLBACK_ALERT)
    assert "webhook: accepted a notification" in agent.output()

    # The slot comes back to its owner; the alert resolves; repeats and the resolved
    # notification do not act twice.
    cluster.client(c_port).execute_command("CLUSTER ADDSLOTS", victim)

    def healthy():
        check = subprocess.run([bin_path("slotguard-agent"), "check", cluster.seed],
                               capture_output=True, text=True, timeout=60)
        return check.returncode == 0
    wait_for(healthy, timeout=60, interval=0.5,
             what="every node to see the slot's owner again and `slotguard-agent check` to pass")
    assert slot_owner(cluster, victim) == c
    code, out = cluster.cluster_check()
    assert code == 0, out
    check_data(cluster, data)
    wait_for(lambda: agent.metric("slotguard_agent_webhook_notifications_total",
                                  result="ignored") >= 1, timeout=60,
             what="the resolved notification to arrive (and be ignored)")
    assert agent.metric("slotguard_agent_rollbacks_total", trigger="alertmanager") == 1
    assert agent.status()["paused"] is True
