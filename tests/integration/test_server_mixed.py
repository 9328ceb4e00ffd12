"""A cluster in the middle of a rolling upgrade: Debian's Redis 7.0.15 being replaced node by
node with 7.2.6 (the way operators upgrade: replicas first, then each master fails over onto
its upgraded replica and is restarted on the new version itself).

Half way (one shard fully on 7.2, the others still 7.0 masters with 7.2 replicas), under a
RedisCluster client: slots move from a 7.0 master onto the 7.2 one (with a warning that a
rollback could not bring keys back); the other way is refused before anything changes (7.0
cannot read 7.2's RDB format, which MIGRATE carries), naming both versions; once a second shard
is upgraded, slots move between the two 7.2 masters. Zero client errors, every key intact,
`check` healthy; the exporter reports both versions.

Needs the 7.2.6 build of scripts/build-servers.sh (skipped without it outside CI).
"""
import os
import subprocess
import time

import pytest

from agent_helpers import (ClientLoad, Dataset, assert_cluster_whole, journal_dir, master_ids,
                           raw, run_agent, slots_of, snapshot)
from exporter_support import Exporter
from harness import Cluster, require_server, wait_for

NEW = "redis-7.2.6"


def version_of(cluster, port):
    return cluster.client(port).info("server")["redis_version"]


def restart_on(cluster, port, bin_dir):
    """Stops the node and starts it again from its own config on `bin_dir`'s redis-server; it
    keeps its node id (nodes.conf) and resyncs from its master."""
    import redis
    try:
        cluster.client(port).execute_command("SHUTDOWN", "NOSAVE")
    except redis.exceptions.ConnectionError:
        pass  # the reply to SHUTDOWN is the connection closing
    wait_for(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"],
                                    capture_output=True).returncode != 0,
             timeout=30, what=f"node {port} stopped")
    conf = os.path.join(cluster.dir, str(port), "redis.conf")
    subprocess.run([os.path.join(bin_dir, "redis-server"), conf], check=True)
    wait_for(lambda: version_of(cluster, port).startswith("7.2."), timeout=30,
             what=f"node {port} up on 7.2")


def synced(cluster, port):
    info = cluster.client(port).info("replication")
    return info["role"] == "slave" and info.get("master_link_status") == "up"


def fail_over_to(cluster, port):
    """CLUSTER FAILOVER on replica `port` until it is master: a manual failover is abandoned
    when the replica does not catch up within 5 s (CLUSTER_MF_TIMEOUT), as an operator retries."""
    import redis

    def promoted():
        if cluster.client(port).info("replication")["role"] == "master":
            return True
        try:
            cluster.client(port).execute_command("CLUSTER", "FAILOVER")
        except redis.exceptions.ResponseError:
            pass  # its link to the master is not up yet after the restart
        return False

    wait_for(promoted, timeout=90, interval=6, what=f"replica {port} promoted")


def cluster_ok(cluster):
    return all(cluster.client(p).execute_command("CLUSTER", "INFO").find("cluster_state:ok") >= 0
               for p in cluster.ports)


def test_rolling_upgrade_70_to_72(monkeypatch):
    bin_dir = require_server(NEW)
    # Debian's 7.0.15 first on PATH for the start, whatever the matrix put there.
    monkeypatch.setenv("PATH", "/usr/bin" + os.pathsep + os.environ["PATH"])
    monkeypatch.delenv("SLOTGUARD_SERVER", raising=False)
    cluster = Cluster(masters=3, replicas=1)
    try:
        assert {version_of(cluster, p)[:4] for p in cluster.ports} == {"7.0."}
        data = Dataset(small=20000, others=200, big=1, ttl=300).load(cluster)
        masters = master_ids(cluster)
        # Replicas first.
        for p in cluster.replica_ports():
            restart_on(cluster, p, bin_dir)
            wait_for(lambda: synced(cluster, p), timeout=60, what=f"replica {p} in sync")
        # Then the first shard's master: fail over onto its 7.2 replica, upgrade the old one.
        old_port, old_id = masters[0]
        rep = next(p for p in cluster.replica_ports()
                   if cluster.client(p).info("replication").get("master_port") == old_port)
        fail_over_to(cluster, rep)
        restart_on(cluster, old_port, bin_dir)
        wait_for(lambda: synced(cluster, old_port), timeout=60, what="the old master in sync")
        wait_for(lambda: cluster_ok(cluster), timeout=60, what="cluster_state:ok everywhere")

        versions = {p: version_of(cluster, p) for p in cluster.ports}
        assert sorted(v[:4] for v in versions.values()) == ["7.0.", "7.0.", "7.2.", "7.2.",
                                                            "7.2.", "7.2."], versions
        new_master = rep
        new_id = cluster.node_id(new_master)
        old_master, old_master_id = masters[1]  # still 7.0
        assert versions[new_master].startswith("7.2.") and versions[old_master].startswith("7.0.")

        before = snapshot(cluster, data.keys)
        moving = slots_of(cluster, old_master)[:300]
        client = ClientLoad(cluster, moving, data.keys).start()
        try:
            # Onto the upgraded shard: what a rolling upgrade does.
            r = run_agent("reshard", cluster.seed, "--from", old_master_id, "--to", new_id,
                          "--slots", "300", "--journal", journal_dir())
            assert r.returncode == 0, r.stdout + r.stderr
            assert "a rollback cannot move keys back" in r.stdout + r.stderr  # warned
            # Back onto 7.0: MIGRATE would carry 7.2's RDB format, which 7.0 refuses. Refused
            # before anything changes, naming both versions.
            layout = slots_of(cluster, new_master)
            r = run_agent("reshard", cluster.seed, "--from", new_id, "--to", old_master_id,
                          "--slots", "100", "--journal", journal_dir())
            out = r.stdout + r.stderr
            assert r.returncode == 1, out
            assert "RDB format 11" in out and "RDB format 10" in out, out
            assert "upgrade the target first" in out, out
            assert slots_of(cluster, new_master) == layout
            # Finish upgrading the second shard, then move between the two upgraded masters.
            rep2 = next(p for p in cluster.replica_ports()
                        if cluster.client(p).info("replication").get("master_port") == old_master)
            fail_over_to(cluster, rep2)
            restart_on(cluster, old_master, bin_dir)
            wait_for(lambda: synced(cluster, old_master), timeout=60,
                     what="the second shard's old master in sync")
            wait_for(lambda: cluster_ok(cluster), timeout=60, what="cluster_state:ok everywhere")
            r = run_agent("reshard", cluster.seed, "--from", new_id, "--to",
                          cluster.node_id(rep2), "--slots", "300", "--journal", journal_dir())
            assert r.returncode == 0, r.stdout + r.stderr
        finally:
            client.stop()
        assert client.errors == [], client.errors[:5]
        assert client.wrong == [], client.wrong[:5]
        assert_cluster_whole(cluster, before)

        # The exporter tells the versions apart.
        exp = Exporter(["--redis.addr", cluster.seed])
        try:
            s = exp.scrape()
            seen = {ls["redis_version"][:4] for n, ls, _ in s.series
                    if n == "redis_instance_info"}
            assert seen == {"7.0.", "7.2."}, seen
        finally:
            exp.stop()
    finally:
        cluster.down()
