"""slotguard-exporter against real loopback Redis clusters (3 masters + 3 replicas)."""
import os
import subprocess
import sys
import tempfile
import threading
import urllib.error

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness import Cluster, require_binary, wait_for  # noqa: E402
from exporter_support import EXPORTER, Exporter, Scrape, promtool_check  # noqa: E402
from agent_helpers import open_slots  # noqa: E402


@pytest.fixture(autouse=True)
def binaries():
    if not os.path.exists(EXPORTER):
        pytest.fail(f"{EXPORTER} is not built")
    require_binary("redis-server")
    require_binary("redis-cli")


@pytest.fixture
def exporter_for():
    started = []

    def start(cluster, *args, env=None, wait=True):
        e = Exporter(["--redis.addr", cluster.seed, *args], env=env, wait=wait)
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop()


@pytest.mark.core
def test_all_nodes_up_covered_consistent_and_promtool_clean(cluster, exporter_for):
    require_binary("promtool")
    exp = exporter_for(cluster)
    s = exp.scrape()
    for port in cluster.ports:
        assert s.value("redis_up", node=cluster.addr(port)) == 1, port
        assert s.value("redis_cluster_state", node=cluster.addr(port)) == 1
    assert len(s.values("redis_up")) == 6
    assert s.value("slotguard_exporter_discovery_ok") == 1
    assert s.value("slotguard_exporter_nodes") == 6
    assert s.value("redis_cluster_slots_covered") == 16384
    assert s.value("redis_cluster_slots_uncovered") == 0
    assert s.value("redis_cluster_slots_disputed") == 0
    assert s.value("redis_cluster_config_consistent") == 1
    assert s.value("redis_cluster_config_epoch_collisions") == 0
    assert s.value("redis_cluster_nodes_failing") == 0
    masters = set(cluster.masters_ports())
    roles = {ls["node"]: ls["role"] for ls in s.labelsets("redis_cluster_node_info")}
    assert roles == {cluster.addr(p): ("master" if p in masters else "replica")
                     for p in cluster.ports}
    assert sum(s.values("redis_cluster_node_slots")) == 16384
    # What redis-cli itself says of the same cluster.
    rc, out = cluster.cluster_check()
    assert rc == 0 and "[OK] All 16384 slots covered" in out, out

    code, out = promtool_check(s.text)
    assert code == 0, out
    assert len(s.series) > 200  # promtool accepts an empty text too: make sure it was not


def keys_in_slot_of(cluster, port, count):
    """Writes `count` keys that hash to one slot owned by the master on `port`; returns slot."""
    client = cluster.client(port)
    first, last = None, None
    for line in cluster.cli("-p", str(port), "CLUSTER", "NODES").stdout.splitlines():
        if "myself" in line:
            first, last = (int(x) for x in line.split()[8].split("-"))
    for tag in range(1000):
        slot = client.execute_command("CLUSTER KEYSLOT", f"{{t{tag}}}")
        if first <= slot <= last:
            break
    # A node of a loaded machine may briefly say CLUSTERDOWN (a peer it missed pings from):
    # write once it takes writes again.
    wait_for(lambda: client.set(f"{{t{tag}}}:k0", "v"), timeout=30,
             what=f"node {port} taking writes")
    for i in range(count):
        client.set(f"{{t{tag}}}:k{i}", "v")
    assert client.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == count
    return slot


@pytest.mark.core
def test_open_slot_shows_nodes_and_keys_and_agrees_with_cluster_check(cluster, exporter_for):
    source, target = cluster.masters_ports()[:2]
    slot = keys_in_slot_of(cluster, source, 37)
    source_id, target_id = cluster.node_id(source), cluster.node_id(target)
    # redis-cli's order: IMPORTING on the target first, then MIGRATING on the source.
    cluster.client(target).execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
    cluster.client(source).execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)

    exp = exporter_for(cluster)
    s = exp.scrape()
    assert s.value("redis_cluster_slots_open", state="migrating") == 1
    assert s.value("redis_cluster_slots_open", state="importing") == 1
    assert s.value("redis_cluster_open_slot_keys", slot=slot, state="migrating",
                   node=cluster.addr(source)) == 37
    assert s.value("redis_cluster_open_slot_keys", slot=slot, state="importing",
                   node=cluster.addr(target)) == 0
    # One series per node whose own line shows the slot open: the two masters, and on Valkey 8
    # their replicas too (SETSLOT is replicated there).
    showing = [p for p in cluster.ports if any(slot in side for side in open_slots(cluster, p))]
    expected = 4 if cluster.replicates_setslot() else 2
    assert len(showing) == expected, showing
    assert len(s.values("redis_cluster_open_slot_keys")) == expected

    rc, out = cluster.cluster_check()
    assert rc != 0 and "[WARNING]" in out and str(slot) in out, out
    agree = "[OK] All nodes agree about slots configuration" in out
    covered = "[OK] All 16384 slots covered" in out
    assert s.value("redis_cluster_config_consistent") == (1 if agree else 0), out
    assert (s.value("redis_cluster_slots_covered") == 16384) == covered, out

    # Move five keys by hand: both counts follow.
    keys = cluster.client(source).execute_command("CLUSTER GETKEYSINSLOT", slot, 5)
    cluster.client(source).execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000,
                                           "KEYS", *keys)
    s = exp.scrape()
    assert s.value("redis_cluster_open_slot_keys", slot=slot, state="migrating",
                   node=cluster.addr(source)) == 32
    assert s.value("redis_cluster_open_slot_keys", slot=slot, state="importing",
                   node=cluster.addr(target)) == 5

    # Closed again, keys back on the owner: nothing open, and redis-cli agrees. (The source
    # first: while it is MIGRATING it would answer ASK for keys it does not hold.)
    cluster.client(source).execute_command("CLUSTER SETSLOT", slot, "STABLE")
    cluster.client(target).execute_command("MIGRATE", "127.0.0.1", source, "", 0, 5000,
                                           "KEYS", *keys)
    cluster.client(target).execute_command("CLUSTER SETSLOT", slot, "STABLE")
    assert cluster.client(source).execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 37
    s = exp.scrape()
    assert s.value("redis_cluster_slots_open", state="migrating") == 0
    assert s.value("redis_cluster_slots_open", state="importing") == 0
    assert s.values("redis_cluster_open_slot_keys") == []
    rc, out = cluster.cluster_check()
    assert rc == 0, out
    assert s.value("redis_cluster_config_consistent") == 1


def test_stray_keys_only_when_asked_and_they_follow_stranded_keys(cluster, exporter_for):
    from agent_helpers import delete_strays, key_in_slot, master_ids, plant_stray, slots_of
    require_binary("promtool")
    assert exporter_for(cluster).scrape().values("redis_cluster_stray_keys") == []  # default: off

    exp = exporter_for(cluster, "--scrape.stray-keys")
    masters = [cluster.addr(p) for p in cluster.masters_ports()]
    s = exp.scrape()
    assert {ls["node"] for ls in s.labelsets("redis_cluster_stray_keys")} == set(masters)
    assert s.values("redis_cluster_stray_keys") == [0, 0, 0]  # replicas get no series

    # Five keys of the source's slot land on the target, which does not own it.
    (src_port, src_id), (dst_port, _), _ = master_ids(cluster)
    slot = slots_of(cluster, src_port)[0]
    strays = [key_in_slot(slot, "stray", n) for n in range(5)]
    for k in strays:
        plant_stray(cluster, dst_port, src_id, slot, k, "stranded")
    s = exp.scrape()
    assert s.value("redis_cluster_stray_keys", node=cluster.addr(dst_port)) == 5
    assert sum(s.values("redis_cluster_stray_keys")) == 5
    code, out = promtool_check(s.text)
    assert code == 0, out

    delete_strays(cluster, dst_port, src_id, slot, *strays)
    assert exp.scrape().values("redis_cluster_stray_keys") == [0, 0, 0]


def test_killed_replica_is_down_and_the_rest_intact(cluster, exporter_for):
    exp = exporter_for(cluster, "--scrape.timeout", "2s")
    assert all(v == 1 for v in exp.scrape().values("redis_up"))
    victim = cluster.replica_ports()[0]
    cluster.kill(victim)
    s = exp.scrape()  # the very next scrape, well within its deadline
    assert s.value("redis_up", node=cluster.addr(victim)) == 0
    for port in cluster.ports:
        if port != victim:
            assert s.value("redis_up", node=cluster.addr(port)) == 1, port
    assert s.value("redis_cluster_slots_covered") == 16384
    assert s.value("slotguard_exporter_discovery_ok") == 1
    # The node stays listed (the others still name it) until the cluster forgets it.
    assert s.labelsets("redis_cluster_node_info") and any(
        ls["node"] == cluster.addr(victim) for ls in s.labelsets("redis_cluster_node_info"))
    # Once the others agree it failed, they flag it.
    wait_for(lambda: exp.scrape().value("redis_cluster_node_flag", node=cluster.addr(victim),
                                        flag="fail") == 1,
             timeout=60, interval=0.5, what="the killed replica flagged fail")


def test_stopped_node_does_not_hold_the_scrape(cluster, exporter_for):
    exp = exporter_for(cluster, "--scrape.timeout", "2s")
    assert all(v == 1 for v in exp.scrape().values("redis_up"))
    victim = cluster.replica_ports()[0]
    cluster.stop(victim)
    try:
        # A generous bound, not a timing test: the request gives up after 9 s, the deadline
        # is 2 s. Twice, because the second scrape finds the first one's reader still stuck.
        for _ in range(2):
            s = exp.scrape(timeout=9)
            assert s.value("redis_up", node=cluster.addr(victim)) == 0
            for port in cluster.ports:
                if port != victim:
                    assert s.value("redis_up", node=cluster.addr(port)) == 1, port
            assert s.value("slotguard_exporter_scrape_duration_seconds") < 9
    finally:
        cluster.cont(victim)
    wait_for(lambda: exp.scrape().value("redis_up", node=cluster.addr(victim)) == 1,
             timeout=30, what="the continued node back up")


def test_concurrent_scrapes_all_succeed(cluster, exporter_for):
    exp = exporter_for(cluster)
    results, errors = [], []

    def worker():
        try:
            for _ in range(3):
                s = exp.scrape()
                results.append(sorted(s.values("redis_up")))
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert results == [[1.0] * 6] * 24


def test_password_from_file_never_shows(exporter_for):
    secret = "s3cr3t-Pa55-" + os.urandom(6).hex()
    with tempfile.NamedTemporaryFile("w", prefix="slotguard-pw-", delete=False) as f:
        f.write(secret + "\n")
        pw_file = f.name
    os.chmod(pw_file, 0o600)
    cluster = Cluster(masters=3, replicas=1, password_file=pw_file)
    try:
        exp = exporter_for(cluster, "--redis.password-file", pw_file, "--log.level", "debug")
        s = exp.scrape()
        assert sorted(s.values("redis_up")) == [1.0] * 6
        assert s.value("redis_cluster_slots_covered") == 16384

        # From the environment instead of a file.
        env_exp = exporter_for(cluster, "--log.format", "json",
                               env={"REDIS_PASSWORD": secret})
        assert sorted(env_exp.scrape().values("redis_up")) == [1.0] * 6

        # A wrong password: nodes down, and neither password in the log.
        with tempfile.NamedTemporaryFile("w", prefix="slotguard-pw-", delete=False) as f:
            f.write("wrong-" + secret[::-1] + "\n")
            wrong_file = f.name
        bad = exporter_for(cluster, "--redis.password-file", wrong_file, "--log.level", "debug")
        b = bad.scrape()
        assert sorted(b.values("redis_up")) == [0.0]  # only the seed was tried
        assert "WRONGPASS" in bad.output() or "invalid" in bad.output(), bad.output()

        # Without any password: NOAUTH, reported down, not a crash.
        none = exporter_for(cluster, env={"REDIS_PASSWORD": ""})
        assert none.scrape().value("redis_up", node=cluster.seed) == 0

        for e in (exp, env_exp, bad):
            cmdline = open(f"/proc/{e.proc.proc.pid}/cmdline", "rb").read().decode()
            assert secret not in cmdline
            text = e.scrape().text + e.get("/") + e.output()
            assert secret not in text
            assert secret[::-1] not in text
        os.unlink(wrong_file)
    finally:
        cluster.down()
        os.unlink(pw_file)


def test_bad_config_file_exits_1_naming_key_and_line(tmp_path):
    cfg = tmp_path / "exporter.yaml"
    cfg.write_text("redis:\n  addr: [127.0.0.1:7000]\n\nscrape:\n  timeout: 8s\n  retries: 3\n")
    e = Exporter(["--config", str(cfg)], wait=False)
    assert e.proc.proc.wait(timeout=10) == 1
    out = e.output()
    e.stop()
    assert f"{cfg}:6: scrape.retries: unknown key" in out, out

    cfg.write_text("redis:\n  addr: [127.0.0.1:7000]\nscrape:\n  timeout: 15s\n")
    e = Exporter(["--config", str(cfg)], wait=False)
    assert e.proc.proc.wait(timeout=10) == 1
    out = e.output()
    e.stop()
    assert f"{cfg}:4: scrape.timeout" in out and "below 10s" in out, out


def test_config_file_runs_and_flags_override_it(cluster, tmp_path):
    cfg = tmp_path / "exporter.yaml"
    cfg.write_text(f"redis:\n  addr: [{cluster.seed}]\nweb:\n  telemetry_path: /redis\n"
                   f"scrape:\n  timeout: 3s\nlog:\n  format: json\n")
    e = Exporter(["--config", str(cfg), "--log.format", "text"])
    try:
        s = Scrape(e.get("/redis"))
        assert sorted(s.values("redis_up")) == [1.0] * 6
        assert '"level"' not in e.output()  # the flag's text format won over the file's json
    finally:
        e.stop()


def test_landing_page_health_and_help(cluster, exporter_for):
    exp = exporter_for(cluster)
    page = exp.get("/")
    assert 'href="/metrics"' in page
    assert exp.get("/healthz") == "ok\n"
    with pytest.raises(urllib.error.HTTPError) as err:
        exp.get("/nope")
    assert err.value.code == 404

    h = subprocess.run([EXPORTER, "--help"], capture_output=True, text=True, timeout=10)
    assert h.returncode == 0
    for flag in ("--redis.addr", "--redis.password-file", "--web.listen-address",
                 "--web.telemetry-path", "--scrape.timeout", "--log.format", "--config"):
        assert flag in h.stdout
    v = subprocess.run([EXPORTER, "--version"], capture_output=True, text=True, timeout=10)
    assert v.returncode == 0 and v.stdout.startswith("slotguard-exporter ")

    # SIGTERM is a clean stop.
    assert exp.stop() == 0
    assert "stopping" in open(exp.proc.log_path).read()
