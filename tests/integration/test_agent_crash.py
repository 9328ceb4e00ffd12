"""Issue 3, test 3: the agent is killed (SIGKILL) at distinct points of a batch and recovers.

A hidden test hook (SLOTGUARD_TEST_CRASH_AT) makes the agent SIGKILL itself exactly at the
point: after SETSLOT IMPORTING on the target, halfway through the batch's keys, and after
SETSLOT NODE reached the target only. The test first checks the cluster is in the state that
point leaves, then reruns the same command with the same journal: the agent converges the
batch it was in (every slot one owner, every key present), resumes the run and finishes it.
"""
import json
import signal

import pytest

from agent_helpers import (Dataset, assert_cluster_whole, crash_reshard, journal_dir, master_ids,
                           open_slots, owner_in_view, run_agent, slots_of, snapshot)


@pytest.mark.core
@pytest.mark.parametrize("point", ["after_importing", "mid_keys", "after_target_node"])
def test_sigkill_at_point_then_recover(cluster, point):
    data, before, src_port, src_id, dst_port, dst_id, moving, journal, args = crash_reshard(
        cluster, point, 600, Dataset(small=30000, others=300, big=1, ttl=300))

    # The cluster is left where the point says.
    mig, imp = open_slots(cluster, src_port)
    _, dst_imp = open_slots(cluster, dst_port)
    first_group = moving[:100]
    if point == "after_importing":
        assert set(first_group) <= set(dst_imp)
        assert not mig
    elif point == "mid_keys":
        # Half the batch's keys moved: a group is open on both sides, with keys on both.
        assert mig and set(mig) <= set(moving) and set(mig) <= set(dst_imp)
        at_dst = sum(cluster.client(dst_port).execute_command("CLUSTER COUNTKEYSINSLOT", s)
                     for s in mig)
        at_src = sum(cluster.client(src_port).execute_command("CLUSTER COUNTKEYSINSLOT", s)
                     for s in mig)
        assert at_dst > 0 and at_src > 0, (at_dst, at_src)
    else:
        # The target owns the first group in its own view (the source may already have learned
        # it by gossip: the target bumped its epoch); the second group is only IMPORTING, and
        # the source still MIGRATES the first (its SETSLOT NODE never came); the journal got no
        # further than the records written before that round trip.
        assert owner_in_view(cluster, dst_port, first_group[0]) == dst_id
        assert set(moving[100:200]) <= set(dst_imp)
        if cluster.replicates_setslot():
            # Valkey 8: the source clears MIGRATING by itself once it sees the target's claim.
            assert set(mig) <= set(first_group)
        else:
            assert set(mig) == set(first_group)
        steps = [json.loads(line) for line in open(f"{journal}/journal.jsonl")]
        node_target = [r["slots"] for r in steps if r.get("step") == "node_target"]
        assert node_target == [first_group], node_target

    again = run_agent(*args)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert "Recovering unfinished batches" in out
    assert "Resuming run" in out

    # Every slot one owner (the run finished: all 600 at the target), every key present.
    assert set(slots_of(cluster, dst_port)) >= set(moving)
    assert not (set(slots_of(cluster, src_port)) & set(moving))
    assert_cluster_whole(cluster, before)


@pytest.mark.core
def test_recovery_alone_rolls_back_and_marks_journal(cluster):
    """A crash mid-keys, then `reshard` with other arguments: the open batch is still
    converged (rolled back to the source) before anything else, and the old run abandoned."""
    data = Dataset(small=20000, others=100, big=0, ttl=100).load(cluster)
    before = snapshot(cluster, data.keys)
    (src_port, src_id), (dst_port, dst_id), (other_port, other_id) = master_ids(cluster)
    moving = slots_of(cluster, src_port)[:300]
    journal = journal_dir()
    crashed = run_agent("reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--slots",
                        "300", "--journal", journal, env={"SLOTGUARD_TEST_CRASH_AT": "mid_keys"})
    assert crashed.returncode == -signal.SIGKILL
    # A different move (other source): recovery first, then the new run.
    r = run_agent("reshard", cluster.seed, "--from", other_id, "--to", dst_id, "--slots", "10",
                  "--journal", journal)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "rolled back to the source" in out
    assert "Abandoning unfinished run" in out
    assert set(moving) <= set(slots_of(cluster, src_port))
    assert_cluster_whole(cluster, before)
    text = open(f"{journal}/journal.jsonl").read()
    assert '"trigger":"recovery"' in text
    assert '"state":"rolled_back"' in text
