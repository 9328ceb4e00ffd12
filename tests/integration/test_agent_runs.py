"""Issue 8, hazard 9: what rerunning the same `reshard` does after the run was interrupted.

The rule (README, "Runs"): the same command resumes the latest unfinished run (interrupted,
rolled back, failed, killed) and says so before anything moves; a run that ended done is never
resumed. Before it, a Ctrl-C'd `reshard --slots 1000` rerun planned 1000 new slots on top of
the ones already moved, and a second Ctrl-C killed the agent with the batch's slots left open.

A test hook (SLOTGUARD_TEST_PAUSE_AT) holds the agent at a known step; the signal sent there
ends the hold, so no test depends on timing.
"""
import re
import signal

from agent_helpers import (Dataset, agent_bin, assert_cluster_whole, journal_dir, master_ids,
                           open_slots, run_agent, slots_of, snapshot)
from harness import Process, wait_for

# 1000 slots in 5 batches of 2 groups: the 5th "after_target_node" is the first group of the
# third batch, when 400 slots are moved and that group's keys and ownership are at the target.
THIRD_BATCH = "after_target_node@5"


def reshard_args(cluster, src_id, dst_id, journal):
    return ["reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--slots", "1000",
            "--batch-slots", "200", "--group-slots", "100", "--journal", journal]


def run_until_signalled(args, pause, signals):
    """Starts the agent held at `pause` points; for each (text, sig) waits for `text` in its
    output and sends `sig`. Returns (exit code, output)."""
    agent = Process([agent_bin(), *args], env={"SLOTGUARD_TEST_PAUSE_AT": pause})
    try:
        for text, sig in signals:
            wait_for(lambda: text in agent.output(), timeout=120, what=text)
            agent.proc.send_signal(sig)
        agent.proc.wait(timeout=300)
    finally:
        rc = agent.stop()
    return rc, open(agent.log_path).read()


def moved_to(cluster, dst_port, dst_before):
    return set(slots_of(cluster, dst_port)) - set(dst_before)


def keys_via_cluster_client(cluster, before):
    """Problems reading every key through a cluster client (it follows -ASK and -MOVED)."""
    client = cluster.cluster_client()
    problems = []
    for k in before:
        if client.exists(k) != 1:
            problems.append(f"{k}: not found by a cluster client")
            if len(problems) > 20:
                break
    return problems


def test_ctrl_c_then_the_same_command_resumes_the_run(cluster):
    data = Dataset(small=20000, others=200, big=0, ttl=200).load(cluster)
    before = snapshot(cluster, data.keys)
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    src_before, dst_before = slots_of(cluster, src_port), slots_of(cluster, dst_port)
    args = reshard_args(cluster, src_id, dst_id, journal_dir())

    rc, out = run_until_signalled(args, THIRD_BATCH + ":120000",
                                  [("paused at after_target_node", signal.SIGINT)])
    assert rc == 2, out
    assert "ROLLED BACK (operator)" in out, out
    assert "the same command resumes it" in out, out
    assert moved_to(cluster, dst_port, dst_before) == set(src_before[:400])

    again = run_agent(*args)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    # Said before anything moves: which run, how it ended, what is left.
    m = re.search(r"Resuming run (r\S+) \(it ended interrupted at [0-9: -]+ UTC\): the same "
                  r"command continues an unfinished run", out)
    assert m, out
    assert out.index("Resuming run") < out.index("batch ")
    assert f"Run {m.group(1)}: 3 batch(es), 600 slots left (400 moved before)" in out, out
    assert "Done: 600 slots moved" in out, out
    # 1000 in all, as asked: not 1000 more on top of the 400.
    assert moved_to(cluster, dst_port, dst_before) == set(src_before[:1000])
    assert_cluster_whole(cluster, before)

    # That run is done: the same command now starts a new one, and says so.
    third = run_agent(*args)
    out = third.stdout + third.stderr
    assert third.returncode == 0, out
    assert re.search(rf"Run {m.group(1)} with these arguments finished \(it ended done at "
                     r"[0-9: -]+ UTC\): starting a new run", out), out
    assert moved_to(cluster, dst_port, dst_before) == set(src_before[:2000])
    assert_cluster_whole(cluster, before)


def test_second_ctrl_c_stops_mid_rollback_and_the_rerun_converges(cluster):
    data = Dataset(small=5000, others=100, big=0, ttl=100).load(cluster)
    before = snapshot(cluster, data.keys)
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    src_before, dst_before = slots_of(cluster, src_port), slots_of(cluster, dst_port)
    args = reshard_args(cluster, src_id, dst_id, journal_dir())

    # The first Ctrl-C mid-batch starts the rollback; the second comes once its record is
    # written, before any of its steps.
    rc, out = run_until_signalled(
        args, THIRD_BATCH + ":120000,before_rollback:120000",
        [("paused at after_target_node", signal.SIGINT),
         ("paused at before_rollback", signal.SIGINT)])
    assert rc == 130, out
    assert "second interrupt: stopping at the next step" in out, out
    assert "STOPPED on a second interrupt" in out, out
    assert "Rerun the same command with the same --journal" in out, out
    # Left half done: the third batch's first group is at the target, its second is open there;
    # every key is still where a cluster client finds it.
    assert open_slots(cluster, dst_port)[1], out
    assert keys_via_cluster_client(cluster, before) == []

    again = run_agent(*args)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert re.search(r"Resuming run r\S+ \(it ended interrupted at", out), out
    assert "Recovering unfinished batches" in out, out
    assert "rolled back to the source" in out, out
    assert "3 batch(es), 600 slots left (400 moved before)" in out, out
    assert moved_to(cluster, dst_port, dst_before) == set(src_before[:1000])
    assert_cluster_whole(cluster, before)
