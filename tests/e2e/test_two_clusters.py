"""Many clusters, one Prometheus, one Alertmanager, end to end.

Two real 3-master clusters, "alpha" and "beta", each with its own slotguard-exporter and
slotguard-agent daemon (its own `webhook.cluster`, guards off so only Alertmanager can roll
back); prometheus-redis-exporter scraping beside them (job `redis_exporter`, one of its targets
a dead address, so its `redis_up` is 0); one Prometheus with the shipped rules (every `for:`
shortened to 2 s, so anything a rule matches fires within the test) attaching the `cluster`
label per target as config/prometheus.yml does; one Alertmanager with the shipped routing,
whose agent receiver posts to both agents.

Both agents run a slow batch. A guard-worthy fault in beta (a slot outside the batch loses its
owner on every node) fires SlotguardSlotsUncovered{cluster="beta"}; Alertmanager sends it to
both agents; beta's agent rolls its batch back, alpha's ignores it and finishes its batch. No
alert carries job="redis_exporter".
"""
import os
import shutil
import sys
import tempfile
import urllib.request

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))

from agent_daemon import (alertmanager_only_agent, masters_by_first_slot,  # noqa: E402
                          slot_owner)
from prometheus_stack import (PrometheusApi, alertmanager_config,  # noqa: E402
                              rules_with_short_for)
from harness import (Cluster, Process, bin_path, built_binary,  # noqa: E402
                     free_port, require_binary, wait_for)

BATCH = list(range(0, 200))
ROLLBACK_ALERT = "SlotguardSlotsUncovered"
VICTIM = 16000  # a slot outside BATCH, owned by the third master





def prometheus_config(tmp, rules, targets, am_port):
    """targets: [(job, port, cluster)], one static_config each, labelled with its cluster."""
    scrape = {}
    for job, port, cluster in targets:
        scrape.setdefault(job, []).append({"targets": [f"127.0.0.1:{port}"],
                                           "labels": {"cluster": cluster}})
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [rules],
        "scrape_configs": [{"job_name": job, "static_configs": sc} for job, sc in scrape.items()],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
    }
    path = os.path.join(tmp, "prometheus.yml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


@pytest.fixture
def stack():
    for tool in ("redis-server", "redis-cli", "prometheus", "prometheus-alertmanager",
                 "prometheus-redis-exporter"):
        require_binary(tool)
    for binary in ("slotguard-exporter", "slotguard-agent"):
        built_binary(binary)
    tmp = tempfile.mkdtemp(prefix="slotguard-e2e-two-")
    clusters, agents, procs = {}, {}, []
    try:
        targets = []
        for name in ("alpha", "beta"):
            cluster = Cluster(masters=3, replicas=0)
            clusters[name] = cluster
            for port in cluster.ports:
                cluster.client(port).config_set("cluster-require-full-coverage", "no")
            rc = cluster.cluster_client()
            for i in range(2000):
                rc.set(f"{name}:{i}", str(i))
            exporter_port = free_port()
            procs.append(Process([bin_path("slotguard-exporter"), f"--redis.addr={cluster.seed}",
                                  f"--web.listen-address=127.0.0.1:{exporter_port}",
                                  "--scrape.timeout=800ms"]))
            agent = alertmanager_only_agent(cluster, name, os.path.join(tmp, f"agent-{name}"),
                                            throttle_per_slot="150ms")
            agent.start()
            agents[name] = agent
            # redis_exporter beside slotguard: one node of this cluster.
            rx_port = free_port()
            procs.append(Process(["prometheus-redis-exporter",
                                  f"--redis.addr=redis://127.0.0.1:{cluster.ports[0]}",
                                  f"--web.listen-address=127.0.0.1:{rx_port}"]))
            targets += [("slotguard-exporter", exporter_port, name),
                        ("slotguard-agent", agent.port, name),
                        ("redis_exporter", rx_port, name)]
        # A redis_exporter whose Redis is gone: redis_up 0 under job redis_exporter.
        dead_port = free_port()
        procs.append(Process(["prometheus-redis-exporter",
                              f"--redis.addr=redis://127.0.0.1:{free_port()}",
                              f"--web.listen-address=127.0.0.1:{dead_port}"]))
        targets.append(("redis_exporter", dead_port, "beta"))

        am_port = free_port()
        procs.append(Process([
            "prometheus-alertmanager",
            f"--config.file={alertmanager_config(tmp, agents.values())}",
            f"--storage.path={tmp}/am-data", f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address="]))
        prom_port = free_port()
        prom_config = prometheus_config(tmp, rules_with_short_for(tmp), targets, am_port)
        prometheus = Process(["prometheus", f"--config.file={prom_config}",
                              f"--storage.tsdb.path={tmp}/prom-data",
                              f"--web.listen-address=127.0.0.1:{prom_port}"])
        procs.append(prometheus)
        prom = PrometheusApi(prom_port)

        def ready():
            for p in procs:
                assert p.alive(), f"{p.args[0]} exited:\n{p.output()[-3000:]}"
            up = prom.result("up == 1")
            covered = prom.result('redis_cluster_slots_covered{job="slotguard-exporter"} == 16384')
            rx_down = prom.result('redis_up{job="redis_exporter"} == 0')
            with urllib.request.urlopen(f"http://127.0.0.1:{am_port}/-/ready", timeout=2) as r:
                am_ready = r.status == 200
            return len(up) == len(targets) and len(covered) == 2 and rx_down and am_ready
        wait_for(ready, timeout=120, interval=0.5,
                 what="Prometheus scraping every target, both clusters covered, Alertmanager ready")
        yield {"clusters": clusters, "agents": agents, "prom": prom}
    finally:
        for agent in agents.values():
            agent.stop()
        for p in reversed(procs):
            p.stop()
        for cluster in clusters.values():
            cluster.down()
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_fault_in_one_cluster_rolls_back_only_its_batch(stack):
    clusters, agents, prom = stack["clusters"], stack["agents"], stack["prom"]
    owners = {}
    for name, agent in agents.items():
        (a, _), (b, _), _ = masters_by_first_slot(clusters[name])
        owners[name] = (a, b)
        plan = agent.write_plan(
            f'batches:\n  - {{id: slow, from: "{a}", to: "{b}", '
            f'ranges: ["{BATCH[0]}-{BATCH[-1]}"]}}\n')
        r = agent.cli("enqueue", plan)
        assert r.returncode == 0, r.stderr

    def both_moving():
        for agent in agents.values():
            item = agent.item("slow")
            assert item["state"] not in ("done", "rolled_back", "failed"), item
            if item["display_state"] != "migrating" or \
                    agent.metric("slotguard_agent_slots_migrated_total") < 3:
                return False
        return True
    wait_for(both_moving, timeout=60, what="both slow batches migrating")

    # No rollback alert while both clusters are healthy (SlotguardSlotsOpenTooLong may fire:
    # the batches keep a slot open and its `for:` is 2 s here).
    assert prom.result('redis_up{job="redis_exporter"} == 0')
    assert not prom.result('ALERTS{slotguard_action="rollback"}')

    # The fault: beta's VICTIM slot loses its owner on every node.
    beta = clusters["beta"]
    c = slot_owner(beta, VICTIM)
    c_port = int(c.rsplit(":", 1)[1])
    assert c not in owners["beta"], (c, owners["beta"])  # neither end of the batch
    for port in beta.ports:
        beta.client(port).execute_command("CLUSTER DELSLOTS", VICTIM)

    def beta_rolled_back():
        item = agents["beta"].item("slow")
        assert item["state"] not in ("done", "failed"), item
        return item["state"] == "rolled_back"
    wait_for(beta_rolled_back, timeout=120, interval=0.25,
             what="Alertmanager's notification to roll beta's batch back")

    firing = prom.result('ALERTS{alertstate="firing",slotguard_action="rollback"}')
    names = {(s["metric"]["alertname"], s["metric"].get("cluster")) for s in firing}
    assert (ROLLBACK_ALERT, "beta") in names, names
    assert all(s["metric"].get("cluster") == "beta" for s in firing), names
    assert agents["beta"].metric("slotguard_agent_rollbacks_total", trigger="alertmanager") == 1

    # alpha got the same notification and ignored it (another cluster); its batch goes on.
    alpha = agents["alpha"]
    assert alpha.metric("slotguard_agent_webhook_notifications_total", result="ignored") >= 1
    assert alpha.metric("slotguard_agent_webhook_notifications_total", result="accepted") == 0
    wait_for(lambda: alpha.item("slow")["state"] == "done", timeout=180, interval=0.5,
             what="alpha's batch to finish untouched")
    assert alpha.metric("slotguard_agent_rollbacks_total", trigger="alertmanager") == 0
    assert alpha.status()["paused"] is False
    a_alpha, b_alpha = owners["alpha"]
    for slot in (BATCH[0], BATCH[len(BATCH) // 2], BATCH[-1]):
        assert slot_owner(clusters["alpha"], slot) == b_alpha, slot
    a_beta, _ = owners["beta"]
    for slot in (BATCH[0], BATCH[len(BATCH) // 2], BATCH[-1]):
        assert slot_owner(beta, slot) == a_beta, slot
    assert agents["beta"].status()["paused"] is True

    beta.client(c_port).execute_command("CLUSTER ADDSLOTS", VICTIM)
    # redis_exporter's dead target has had redis_up 0 for the whole test, evaluated every
    # second with 2 s `for:`: no alert, pending or firing, ever carried job="redis_exporter".
    assert prom.result('min_over_time(redis_up{job="redis_exporter"}[30s]) == 0')
    assert not prom.result('count_over_time(ALERTS{job="redis_exporter"}[10m])')
    # Every slotguard alert of the run names its cluster.
    alerts = prom.result("count_over_time(ALERTS[10m])")
    assert alerts and all(s["metric"].get("cluster") in ("alpha", "beta") for s in alerts), alerts
