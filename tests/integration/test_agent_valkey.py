"""Valkey 8 only (skipped elsewhere; the version matrix runs it on valkey-8.0.1): a primary
replicates every CLUSTER SETSLOT to its replicas before it runs it and answers -NOREPLICAS,
without running it, when they do not acknowledge within the TIMEOUT the agent sends. A replica
may have applied it meanwhile, so the outcome is unknown: the agent must send it again, never
take it as done or as refused.

The target's replica is frozen (SIGSTOP) while the agent holds with the batch's first group
IMPORTING; it stays frozen past several SETSLOT timeouts (so the agent sees -NOREPLICAS), then
is let go. The batch must end done or rolled back with every key at its slot's owner and no
slot left open on any node: masters and replicas alike (a replica keeps an open slot it was
told about even when its primary never ran the command).
"""
import shutil
import signal
import subprocess

import pytest

from agent_helpers import (Dataset, agent_bin, assert_cluster_whole, journal_dir, master_ids,
                           open_slots, raw, snapshot)
from harness import Process, wait_for


def _server_on_path():
    if shutil.which("redis-server") is None:
        return ""
    return subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout


# Decided before any cluster starts: elsewhere there is nothing to test.
pytestmark = pytest.mark.skipif(not _server_on_path().startswith("Valkey server v=8"),
                                reason="SETSLOT is replicated (-NOREPLICAS possible) on Valkey 8 "
                                       "only")


def replica_of(cluster, master_id):
    for p in cluster.ports:
        for line in raw(cluster, p).execute_command("CLUSTER", "NODES").decode().splitlines():
            f = line.split()
            if "myself" in f[2] and "slave" in f[2] and f[3] == master_id:
                return p
    raise AssertionError(f"no replica of {master_id}")


@pytest.mark.core
def test_noreplicas_from_a_frozen_replica_is_retried_never_assumed(cluster):
    assert cluster.replicates_setslot()
    data = Dataset(small=10000, others=100, big=0, ttl=300).load(cluster)
    before = snapshot(cluster, data.keys)
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    rep_port = replica_of(cluster, dst_id)
    args = ["reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--slots", "200",
            "--batch-slots", "200", "--group-slots", "100", "--timeout", "1000",
            "--journal", journal_dir()]
    agent = Process([agent_bin(), *args],
                    env={"SLOTGUARD_TEST_PAUSE_AT": "after_importing:5000"})
    frozen = False
    try:
        wait_for(lambda: "paused at after_importing" in agent.output(), timeout=60,
                 what="the agent paused with the first group IMPORTING")
        cluster.stop(rep_port)
        frozen = True
        # The hold ends by itself; the agent's next SETSLOTs on the target meet the frozen
        # replica.
        wait_for(lambda: "answered \"NOREPLICAS" in agent.output(), timeout=90,
                 what="the agent saw -NOREPLICAS from the target")
        cluster.cont(rep_port)
        frozen = False
        wait_for(lambda: not agent.alive(), timeout=300, what="the agent finished")
    finally:
        if frozen:
            cluster.cont(rep_port)
        out = agent.output()
        code = agent.stop(signal.SIGKILL)
    assert code in (0, 2), out
    assert_cluster_whole(cluster, before)
    # No slot open anywhere, replicas included (their own lines show what they were told).
    for p in cluster.ports:
        assert open_slots(cluster, p) == ([], []), (p, out)
