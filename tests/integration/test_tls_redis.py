"""TLS to Redis: the exporter and the agent against a real TLS-only loopback cluster.

Every node listens on a tls-port only (port 0), speaks TLS on the cluster bus and to its
replicas (tls-cluster, tls-replication) and requires a client certificate (tls-auth-clients
yes); the CA and the certificates are made with openssl by the harness (Certificates). The
exporter and the agent are given one rediss:// seed and find the other nodes, which they reach
with the seed's TLS settings. The failures an operator meets (wrong CA, expired certificate,
no client certificate, a name the certificate does not hold, plain text on a TLS port and TLS
on a plain one) each end in a message that says what is wrong.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness import Certificates, Cluster, free_port, port_free, require_binary, wait_for  # noqa: E402
from exporter_support import EXPORTER, Exporter  # noqa: E402
from agent_helpers import (ClientLoad, Dataset, assert_cluster_whole, journal_dir,  # noqa: E402
                           master_ids, run_agent, slots_of, snapshot)
from agent_daemon import AgentDaemon, slot_owner  # noqa: E402


@pytest.fixture(scope="module")
def tls_cluster():
    """One mutual-TLS 3+3 cluster for the module: the read-only tests first, the reshard last."""
    require_binary("redis-server")
    require_binary("redis-cli")
    if not os.path.exists(EXPORTER):
        pytest.fail(f"{EXPORTER} is not built")
    c = Cluster(masters=3, replicas=1, tls="mutual")
    try:
        yield c
    finally:
        c.down()


class LoneServer:
    """One redis-server (not a cluster node) in the foreground, for the handshake failures."""

    def __init__(self, *args):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="slotguard-lone-")
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, *[a.replace("PORT", str(self.port)) for a in args]],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: not port_free(self.port), timeout=15, what=f"redis-server on {self.port}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=15)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def other_ca():
    """Certificates from a CA the cluster does not know."""
    other = Certificates(tempfile.mkdtemp(prefix="slotguard-tls-other-"))
    try:
        yield other
    finally:
        shutil.rmtree(other.dir, ignore_errors=True)


def check(*args):
    r = run_agent("check", *args, timeout=60)
    return r.returncode, r.stdout + r.stderr


def key_body(path):
    """A line from inside a PEM key: must never appear in any output."""
    lines = [ln for ln in open(path).read().splitlines() if ln and not ln.startswith("-----")]
    return lines[0]


@pytest.mark.core
def test_exporter_metrics_complete_over_tls(tls_cluster):
    c = tls_cluster
    exp = Exporter(["--redis.addr", c.url, *c.tls_flags()])
    try:
        def all_up():
            s = exp.scrape()
            ups = s.values("redis_up")
            return s if len(ups) == 6 and all(v == 1 for v in ups) else None

        s = wait_for(all_up, timeout=30, interval=0.5, what="all 6 nodes up over TLS")
        for port in c.ports:
            assert s.value("redis_up", node=c.addr(port)) == 1, port
            assert s.value("redis_cluster_state", node=c.addr(port)) == 1
        assert s.value("slotguard_exporter_discovery_ok") == 1
        assert s.value("slotguard_exporter_nodes") == 6
        assert s.value("redis_cluster_slots_covered") == 16384
        assert s.value("redis_cluster_slots_disputed") == 0
        assert s.value("redis_cluster_config_consistent") == 1
        assert sum(s.values("redis_cluster_node_slots")) == 16384
        # Replication runs over TLS too: every replica's link is up.
        assert len(s.labelsets("redis_cluster_node_info")) == 6
        log = exp.output()
        assert "TLS (CA " + c.certs.ca in log, log
        assert "client certificate " + c.certs.client in log, log
        assert key_body(c.certs.client_key) not in log
    finally:
        exp.stop()


def test_exporter_wrong_ca_logs_the_reason_with_redis_up_0(tls_cluster, other_ca):
    c = tls_cluster
    other = other_ca
    exp = Exporter(["--redis.addr", c.url, "--tls.ca-file", other.ca, "--tls.cert-file",
                    c.certs.client, "--tls.key-file", c.certs.client_key])
    try:
        s = exp.scrape()
        assert s.value("redis_up", node=c.seed) == 0
        assert s.value("slotguard_exporter_discovery_ok") == 0
        log = wait_for(lambda: "down:" in exp.output() and exp.output(), timeout=10,
                       interval=0.2, what="the node-down log line")
        line = next(ln for ln in log.splitlines() if f"node {c.seed} down:" in ln)
        assert "certificate verify failed" in line, line
        assert "not signed by a CA in tls.ca-file" in line, line
    finally:
        exp.stop()


def test_exporter_refuses_tls_flags_with_plain_seeds_and_unreadable_files(tls_cluster):
    c = tls_cluster
    r = subprocess.run([EXPORTER, "--redis.addr", c.seed, "--tls.ca-file", c.certs.ca],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "no seed is rediss://" in r.stdout + r.stderr
    r = subprocess.run([EXPORTER, "--redis.addr", c.url, "--tls.ca-file", "/nonexistent/ca.pem"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "TLS CA file /nonexistent/ca.pem: No such file or directory" in r.stdout + r.stderr


@pytest.mark.core
def test_agent_check_over_tls(tls_cluster):
    c = tls_cluster
    code, out = check(c.url, *c.tls_flags())
    assert code == 0, out
    assert "[OK] All 16384 slots covered." in out
    assert key_body(c.certs.client_key) not in out


def test_handshake_failures_say_what_is_wrong(tls_cluster, other_ca):
    c = tls_cluster
    client = ["--tls.cert-file", c.certs.client, "--tls.key-file", c.certs.client_key]

    other = other_ca
    code, out = check(c.url, "--tls.ca-file", other.ca, *client)
    assert code != 0
    assert "certificate verify failed" in out and "not signed by a CA in tls.ca-file" in out, out

    # The node's certificate names 127.0.0.1, not this.
    code, out = check(c.url, *c.tls_flags(), "--tls.server-name", "redis.example")
    assert code != 0
    assert "does not name redis.example" in out, out

    # Without checking certificates the wrong CA passes (the operator asked for it).
    code, out = check(c.url, "--tls.ca-file", other.ca, "--tls.insecure-skip-verify", *client)
    assert code == 0, out

    # tls-auth-clients yes: no client certificate, or an expired one, is refused by the node.
    code, out = check(c.url, "--tls.ca-file", c.certs.ca)
    assert code != 0
    assert "client certificate" in out, out
    old, old_key = c.certs.issue("expired-client", san=None, days=-1)
    code, out = check(c.url, "--tls.ca-file", c.certs.ca, "--tls.cert-file", old,
                      "--tls.key-file", old_key)
    assert code != 0
    assert "expired" in out, out
    assert key_body(old_key) not in out

    # Plain text to a TLS port.
    code, out = check(c.seed)
    assert code != 0
    assert "use rediss://" in out, out

    # A key that is not the certificate's.
    code, out = check(c.url, "--tls.ca-file", c.certs.ca, "--tls.cert-file", c.certs.client,
                      "--tls.key-file", c.certs.server_key)
    assert code != 0
    assert f"TLS key file {c.certs.server_key} does not belong to the certificate" in out, out
    assert key_body(c.certs.server_key) not in out


def test_expired_node_certificate_and_tls_to_a_plain_port(tls_cluster):
    certs = tls_cluster.certs
    crt, key = certs.issue("expired-node", days=-1)
    expired = LoneServer("--port", "0", "--tls-port", "PORT", "--tls-cert-file", crt,
                         "--tls-key-file", key, "--tls-ca-cert-file", certs.ca,
                         "--tls-auth-clients", "no")
    plain = LoneServer("--port", "PORT")
    try:
        code, out = check(f"rediss://127.0.0.1:{expired.port}", "--tls.ca-file", certs.ca)
        assert code != 0
        assert "certificate has expired" in out, out

        code, out = check(f"rediss://127.0.0.1:{plain.port}", "--tls.ca-file", certs.ca)
        assert code != 0
        assert "TLS handshake" in out and "use redis://" in out, out
    finally:
        expired.stop()
        plain.stop()


def test_daemon_moves_a_batch_with_redis_tls_from_agent_yaml(tls_cluster):
    """agent.yaml: rediss:// seeds and redis.tls (ca_file, cert_file, key_file)."""
    c = tls_cluster
    rc = c.cluster_client()
    pipe = rc.pipeline()
    for i in range(2000):
        pipe.set(f"daemon:{i}", f"value-{i}")
    pipe.execute()
    before = snapshot(c, [f"daemon:{i}" for i in range(2000)])
    ranges = sorted(c.client(c.base).execute_command("CLUSTER SLOTS"), key=lambda r: r[0])
    first = ranges[0][0]
    a, b = (f"{r[2][0]}:{r[2][1]}" for r in ranges[:2])
    agent = AgentDaemon(c)
    agent.start()
    try:
        plan = agent.write_plan(
            f'batches:\n  - {{from: "{a}", to: "{b}", ranges: ["{first}-{first + 99}"]}}\n')
        r = agent.cli("enqueue", plan)
        assert r.returncode == 0, r.stdout + r.stderr

        def done():
            item = agent.item("p1-b1")
            assert item["state"] not in ("failed", "rolled_back"), item
            return item["display_state"] == "done"

        wait_for(done, timeout=120, interval=0.2, what="the batch to finish")
        log = agent.output()
        assert "redis TLS (CA " + c.certs.ca in log, log[-2000:]
        assert key_body(c.certs.client_key) not in log
    finally:
        agent.stop()
    assert slot_owner(c, first) == b
    assert slot_owner(c, first + 99) == b
    assert_cluster_whole(c, before)


@pytest.mark.core
def test_reshard_300_slots_under_client_over_tls(tls_cluster):
    """Last: it moves slots. MIGRATE between the TLS nodes is the servers' (tls-cluster yes)."""
    c = tls_cluster
    data = Dataset(small=20000, others=500, big=1, ttl=500).load(c)
    before = snapshot(c, data.keys)
    (src_port, src_id), (dst_port, _), _ = master_ids(c)
    moving = slots_of(c, src_port)[:300]
    client = ClientLoad(c, moving, data.keys).start()
    try:
        r = run_agent("reshard", c.url, *c.tls_flags(), "--from", src_id, "--to",
                      f"127.0.0.1:{dst_port}", "--slots", "300", "--journal", journal_dir())
    finally:
        client.stop()
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Done: 300 slots moved" in out, out
    assert client.ops > 50, f"the client barely ran ({client.ops} ops)"
    assert client.errors == [], client.errors[:5]
    assert client.wrong == [], client.wrong[:5]
    moved = set(moving)
    assert set(slots_of(c, dst_port)) >= moved
    assert not (set(slots_of(c, src_port)) & moved)
    assert_cluster_whole(c, before)
