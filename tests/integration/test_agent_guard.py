"""Issue 3, test 2: a guard trips mid-batch and the batch rolls back.

The target is stopped (SIGSTOP) once the agent has opened the batch's first group (a test hook
holds the agent there so the moment is exact) and stays stopped longer than the MIGRATE
timeout. The agent counts the failed MIGRATEs, trips the migrate_failures guard, rolls back
(waiting for the target to come back), and exits 2. Afterwards the slots are at the source
and the cluster is whole (every key present with its value and TTL, nothing stranded or open,
`check` exits 0).
"""
from agent_helpers import (Dataset, agent_bin, assert_cluster_whole, journal_dir, master_ids,
                           slots_of, snapshot)
from harness import Cluster, Process, require_binary, wait_for

import pytest


@pytest.fixture
def slow_failover_cluster():
    require_binary("redis-server")
    # A node timeout well above the stop, so the stopped target is not failed over.
    c = Cluster(masters=3, replicas=1, node_timeout=20000)
    try:
        yield c
    finally:
        c.down()


@pytest.mark.core
def test_sigstop_target_trips_guard_and_rolls_back(slow_failover_cluster):
    cluster = slow_failover_cluster
    data = Dataset(small=30000, others=300, big=1, ttl=300).load(cluster)
    before = snapshot(cluster, data.keys)
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    src_slots_before = slots_of(cluster, src_port)
    dst_slots_before = slots_of(cluster, dst_port)

    agent = Process([agent_bin(), "reshard", cluster.seed, "--from", src_id, "--to", dst_id,
                     "--slots", "400", "--batch-slots", "400", "--timeout", "300",
                     "--guard-migrate-failures", "2", "--journal", journal_dir()],
                    env={"SLOTGUARD_TEST_PAUSE_AT": "after_migrating:1000"})
    stopped = False
    try:
        wait_for(lambda: "paused at after_migrating" in agent.output(), timeout=60,
                 what="the agent to open the first group")
        cluster.stop(dst_port)
        stopped = True
        # The agent resumes, its MIGRATEs time out (300 ms each), the guard trips and the
        # rollback waits for the target.
        wait_for(lambda: "rolling back" in agent.output(), timeout=60,
                 what="the guard to trip")
        cluster.cont(dst_port)
        stopped = False
        agent.proc.wait(timeout=120)
    finally:
        if stopped:
            cluster.cont(dst_port)
        rc = agent.stop()
    out = open(agent.log_path).read()
    assert rc == 2, out
    assert "guard migrate_failures tripped" in out, out
    assert "MIGRATE failures" in out, out
    assert "ROLLED BACK" in out, out

    # The slots are where they were, every key is there.
    assert slots_of(cluster, src_port) == src_slots_before
    assert slots_of(cluster, dst_port) == dst_slots_before
    assert_cluster_whole(cluster, before)
