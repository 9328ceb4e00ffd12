"""`slotguard-agent check`: redis-cli style lines, exit 0 only when healthy, keys stranded on a
master that does not own their slot included (`redis-cli --cluster check` misses those). Also
the engine against a password-protected cluster (MIGRATE with AUTH, and AUTH2 for an ACL
user)."""
import os
import tempfile

import pytest

from agent_helpers import (Dataset, assert_cluster_whole, delete_strays, journal_dir,
                           key_in_slot, master_ids, plant_stray, raw, run_agent, slots_of,
                           snapshot, stray_keys)
from harness import Cluster, require_binary, wait_for


@pytest.mark.core
def test_check_healthy_and_open_slot_and_failed_node(cluster):
    ok = run_agent("check", cluster.seed)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "[OK] All nodes agree about slots configuration." in ok.stdout
    assert "[OK] All 16384 slots covered." in ok.stdout

    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    slot = slots_of(cluster, src_port)[0]
    raw(cluster, src_port).execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    raw(cluster, dst_port).execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    bad = run_agent("check", cluster.seed)
    assert bad.returncode == 1
    assert f"[WARNING] Node 127.0.0.1:{src_port} has slots in migrating state (1): {slot}." \
        in bad.stdout, bad.stdout
    assert f"[WARNING] Node 127.0.0.1:{dst_port} has slots in importing state (1): {slot}." \
        in bad.stdout, bad.stdout
    assert "[WARNING] The following slots are open" in bad.stdout
    raw(cluster, src_port).execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
    raw(cluster, dst_port).execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
    assert run_agent("check", cluster.seed).returncode == 0

    # A dead replica: unreachable now, flagged fail once the cluster notices.
    replica = cluster.replica_ports()[0]
    cluster.kill(replica)
    dead = run_agent("check", cluster.seed)
    assert dead.returncode == 1
    assert f"[ERR] Node 127.0.0.1:{replica} is unreachable" in dead.stdout, dead.stdout
    flagged = wait_for(lambda: (lambda r: r if "is flagged fail" in r.stdout else None)(
        run_agent("check", cluster.seed)), timeout=30, what="the replica to be flagged fail")
    assert flagged.returncode == 1


@pytest.mark.core
def test_check_reports_stranded_keys(cluster):
    require_binary("redis-cli")
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    slot = slots_of(cluster, src_port)[0]
    owned = key_in_slot(slot, "owned")
    raw(cluster, src_port).set(owned, "at-the-owner")
    before = snapshot(cluster, [owned])
    # Three keys of the source's slot end up on the target, which does not own it: a client
    # asking for them is sent to the source, which does not have them.
    strays = [key_in_slot(slot, "stray", n) for n in range(3)]
    for k in strays:
        plant_stray(cluster, dst_port, src_id, slot, k, "stranded")
    assert stray_keys(cluster) == [(dst_port, slot, 3)]

    line = f"[ERR] Node 127.0.0.1:{dst_port} holds 3 keys of slot {slot} it does not own"
    r = run_agent("check", cluster.seed)
    assert r.returncode == 1, r.stdout + r.stderr
    assert line in r.stdout.splitlines(), r.stdout
    assert "[OK] All nodes agree about slots configuration." in r.stdout
    assert "[OK] All 16384 slots covered." in r.stdout
    rc, text = cluster.cluster_check()
    assert rc == 0, text  # what check adds: redis-cli sees nothing wrong

    # Mid-move (the target imports the slot) the keys are reported still, saying so.
    raw(cluster, dst_port).execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    r = run_agent("check", cluster.seed)
    assert r.returncode == 1
    assert line + " (slot is importing)" in r.stdout.splitlines(), r.stdout
    raw(cluster, dst_port).execute_command("CLUSTER", "SETSLOT", slot, "STABLE")

    delete_strays(cluster, dst_port, src_id, slot, *strays)
    r = run_agent("check", cluster.seed)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[OK] No master holds keys of a slot it does not own." in r.stdout
    assert_cluster_whole(cluster, before)


@pytest.fixture
def auth_cluster():
    require_binary("redis-server")
    fd, path = tempfile.mkstemp(prefix="slotguard-pw-")
    os.write(fd, b"s3cret-pass\n")
    os.close(fd)
    c = Cluster(masters=3, replicas=1, password_file=path)
    try:
        yield c
    finally:
        c.down()
        os.unlink(path)


@pytest.mark.core
def test_reshard_with_password_and_acl_user(auth_cluster):
    cluster = auth_cluster
    data = Dataset(small=5000, others=50, big=0, ttl=50).load(cluster)
    before = snapshot(cluster, data.keys)
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)

    # Without the password: a clear error, exit 1.
    r = run_agent("check", cluster.seed)
    assert r.returncode == 1
    assert "NOAUTH" in r.stderr or "Authentication" in r.stderr or "AUTH" in r.stderr, r.stderr

    r = run_agent("check", cluster.seed, "--password-file", cluster.password_file)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_agent("reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--slots", "100",
                  "--journal", journal_dir(), env={"REDIS_PASSWORD": cluster.password})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "s3cret-pass" not in r.stdout + r.stderr

    # An ACL user: MIGRATE authenticates with AUTH2.
    fd, pw2 = tempfile.mkstemp(prefix="slotguard-pw2-")
    os.write(fd, b"mover-pass\n")
    os.close(fd)
    for p in cluster.ports:
        raw(cluster, p).execute_command("ACL", "SETUSER", "mover", "on", ">mover-pass", "~*",
                                        "&*", "+@all")
    r = run_agent("reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--slots", "100",
                  "--user", "mover", "--password-file", pw2, "--journal", journal_dir())
    os.unlink(pw2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(set(slots_of(cluster, dst_port)) - set(range(5461, 10923))) == 200
    assert_cluster_whole(cluster, before)
