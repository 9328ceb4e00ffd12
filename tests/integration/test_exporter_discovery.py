"""The exporter's node list follows CLUSTER NODES: a node joins, a replica fails over, a node
leaves, and the seed itself dies — all on a real loopback cluster, from one seed address."""
import os
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness import free_port, port_free, require_binary, wait_for  # noqa: E402
from exporter_support import EXPORTER, Exporter  # noqa: E402


def start_lone_node(tmpdir):
    """A fresh cluster-enabled redis-server that belongs to no cluster yet."""
    for _ in range(20):
        port = free_port()
        if port + 10000 < 65536 and port_free(port + 10000):
            break
    subprocess.run(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                    "--cluster-enabled", "yes", "--cluster-config-file",
                    os.path.join(tmpdir, "nodes.conf"), "--dir", tmpdir, "--save", "",
                    "--appendonly", "no", "--daemonize", "yes",
                    "--pidfile", os.path.join(tmpdir, "redis.pid"),
                    "--logfile", os.path.join(tmpdir, "redis.log")], check=True)
    return port


def role_of(scrape, node):
    roles = [ls["role"] for ls in scrape.labelsets("redis_cluster_node_info")
             if ls["node"] == node]
    return roles[0] if roles else None


def test_node_list_follows_join_failover_leave_and_seed_loss(cluster):
    require_binary("redis-server")
    if not os.path.exists(EXPORTER):
        pytest.fail(f"{EXPORTER} is not built")
    replica = cluster.replica_ports()[0]
    # Seed with a replica only: everything else must come from discovery.
    exporter = Exporter(["--redis.addr", cluster.addr(replica), "--scrape.timeout", "3s"])
    try:
        s = wait_for(lambda: (lambda sc: sc if len(sc.values("redis_up")) == 6 else None)(
            exporter.scrape()), timeout=20, what="all six nodes from one seed")
        assert all(v == 1 for v in s.values("redis_up"))

        # Join: a new node meets the cluster and shows up without restarting the exporter.
        tmp = tempfile.mkdtemp(prefix="slotguard-join-")
        new_port = start_lone_node(tmp)
        new_node = cluster.addr(new_port)
        try:
            wait_for(lambda: cluster.client(new_port).ping(), timeout=10, what="new node up")
            cluster.client(cluster.base).execute_command("CLUSTER MEET", "127.0.0.1", new_port)
            wait_for(lambda: exporter.scrape().values("redis_up", node=new_node) == [1.0],
                     timeout=30, what="joined node reported up")

            # Failover: the replica takes over its master; the exporter's roles follow.
            assert role_of(exporter.scrape(), cluster.addr(replica)) == "replica"
            cluster.client(replica).execute_command("CLUSTER FAILOVER")
            wait_for(lambda: role_of(exporter.scrape(), cluster.addr(replica)) == "master",
                     timeout=30, what="failed-over replica reported as master")

            # Leave: every node forgets the new one and it stops; its series disappear.
            new_id = cluster.node_id(new_port)
            wait_for(lambda: all(new_node in cluster.nodes_text(p) for p in cluster.ports),
                     timeout=30, what="every node knows the joined node")
            subprocess.run(["redis-cli", "-p", str(new_port), "shutdown", "nosave"],
                           capture_output=True, timeout=30)
        except Exception:
            subprocess.run(["redis-cli", "-p", str(new_port), "shutdown", "nosave"],
                           capture_output=True)
            raise
        for p in cluster.ports:
            cluster.client(p).execute_command("CLUSTER FORGET", new_id)
        wait_for(lambda: exporter.scrape().values("redis_up", node=new_node) == [],
                 timeout=30, what="departed node gone from the metrics")

        # Seed loss: the only seed dies; the nodes discovered earlier keep being scraped.
        cluster.kill(replica)
        def others_up():
            sc = exporter.scrape()
            others = [sc.values("redis_up", node=cluster.addr(p)) for p in cluster.ports
                      if p != replica]
            return (sc.value("slotguard_exporter_discovery_ok") == 1
                    and all(v == [1.0] for v in others)
                    and sc.values("redis_up", node=cluster.addr(replica)) == [0.0])
        wait_for(others_up, timeout=30, what="scrapes go on without the seed")
    finally:
        exporter.stop()
