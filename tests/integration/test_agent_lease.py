"""Issue 8, hazard 8: two agents at once. The migration lease ({slotguard}:lease, in the
cluster itself) lets one mover work and refuses every other one naming the holder; a holder
killed with kill -9 is taken over only after its lease expired, and only once its open slots are
converged (its own journal does that).
"""
import fcntl
import os
import signal
import subprocess

from agent_helpers import (Dataset, agent_bin, assert_cluster_whole, journal_dir, master_ids,
                           open_slots, raw, run_agent, slot_owners, slots_of, snapshot, wait_for)

LEASE = "{slotguard}:lease"
LEASE_SLOT = 3620  # of the hash tag {slotguard}


def lease_node(cluster):
    return raw(cluster, slot_owners(cluster)[LEASE_SLOT])


def test_two_reshards_at_once_one_moves_the_other_is_refused_naming_it(cluster):
    """The issue's repro: 200-1199 from one master, one run to each of the other two, with
    different journals, started together. The winner holds itself for a while after its first
    SETSLOT round (test hook), so the other certainly meets it mid-batch."""
    data = Dataset(small=20000, others=200, big=0, ttl=200).load(cluster)
    before = snapshot(cluster, data.keys)
    (src_port, src_id), (a_port, a_id), (b_port, b_id) = master_ids(cluster)
    journals = {a_id: journal_dir(), b_id: journal_dir()}
    env = dict(os.environ, SLOTGUARD_TEST_PAUSE_AT="after_importing:15000")
    procs = {}
    for to in (a_id, b_id):
        procs[to] = subprocess.Popen(
            [agent_bin(), "reshard", cluster.seed, "--from", src_id, "--to", to, "--ranges",
             "200-1199", "--batch-slots", "500", "--yes", "--journal", journals[to]],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    outs = {to: p.communicate(timeout=300)[0] for to, p in procs.items()}
    codes = {to: p.returncode for to, p in procs.items()}
    winners = [to for to, rc in codes.items() if rc == 0]
    assert len(winners) == 1, (codes, outs)
    winner = winners[0]
    loser = b_id if winner == a_id else a_id
    assert codes[loser] == 1, outs[loser]
    refusal = outs[loser]
    assert "another slotguard agent is moving slots in this cluster" in refusal, refusal
    assert f"pid {procs[winner].pid}, " in refusal, refusal
    assert f"journal {journals[winner]}, since " in refusal, refusal
    assert "run r" in refusal and "Nothing was changed" in refusal, refusal

    # Every slot at the winner's target, none at the loser's; the lease given back.
    winner_port = a_port if winner == a_id else b_port
    loser_port = b_port if winner == a_id else a_port
    assert set(range(200, 1200)) <= set(slots_of(cluster, winner_port))
    assert not set(range(200, 1200)) & set(slots_of(cluster, loser_port))
    assert lease_node(cluster).exists(LEASE) == 0
    assert_cluster_whole(cluster, before)

    # Later runs proceed: the loser's command again (now from the winner's target).
    again = run_agent("reshard", cluster.seed, "--from", winner, "--to", loser, "--ranges",
                      "200-299", "--journal", journals[loser], "--new-run")
    assert again.returncode == 0, again.stdout + again.stderr
    assert_cluster_whole(cluster, before)


def test_killed_holder_is_taken_over_only_after_its_lease_expired_and_its_slots_converged(
        cluster):
    data = Dataset(small=20000, others=200, big=0, ttl=200).load(cluster)
    before = snapshot(cluster, data.keys)
    (src_port, src_id), (dst_port, dst_id), (other_port, other_id) = master_ids(cluster)
    moving = slots_of(cluster, src_port)[:300]
    journal_a = journal_dir()
    args_a = ["reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--slots", "300",
              "--batch-slots", "300", "--group-slots", "100", "--journal", journal_a,
              "--lease-ttl", "8"]
    crashed = run_agent(*args_a, env={"SLOTGUARD_TEST_CRASH_AT": "mid_keys"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    left_open = (open_slots(cluster, src_port), open_slots(cluster, dst_port))
    assert left_open[0][0], "the crash should leave slots migrating on the source"

    # Another agent (own journal) while the dead holder's lease lives: refused, naming it.
    journal_b = journal_dir()
    args_b = ["reshard", cluster.seed, "--from", other_id, "--to", dst_id, "--slots", "10",
              "--journal", journal_b, "--lease-ttl", "8"]
    if lease_node(cluster).exists(LEASE):
        refused = run_agent(*args_b)
        out = refused.stdout + refused.stderr
        assert refused.returncode == 1, out
        assert "the migration lease {slotguard}:lease is held by" in out, out
        assert f"journal {journal_a}, since " in out, out
        assert (open_slots(cluster, src_port), open_slots(cluster, dst_port)) == left_open

    # Expired: the lease is free, but what the dead holder left open still refuses the batch,
    # naming the journal that converges it. Nothing changes.
    wait_for(lambda: lease_node(cluster).exists(LEASE) == 0, timeout=60,
             what="the dead holder's lease to expire")
    refused = run_agent(*args_b)
    out = refused.stdout + refused.stderr
    assert refused.returncode == 1, out
    assert "is open" in out, out
    assert "never released it" in out and f"rerun with --journal {journal_a} on " in out, out
    assert (open_slots(cluster, src_port), open_slots(cluster, dst_port)) == left_open

    # The dead holder's journal converges it and finishes its run; then the other agent runs.
    rerun = run_agent(*args_a)
    out = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, out
    assert "Recovering unfinished batches" in out, out
    assert set(moving) <= set(slots_of(cluster, dst_port))
    later = run_agent(*args_b)
    assert later.returncode == 0, later.stdout + later.stderr
    assert lease_node(cluster).exists(LEASE) == 0
    assert_cluster_whole(cluster, before)


def test_reshard_refuses_a_journal_dir_a_running_daemon_holds(cluster):
    """The daemon flocks DIR/daemon.lock for its whole life (Queue::Open), also while idle and
    its engine's journal is closed; a reshard given that dir must not write into it."""
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    journal = journal_dir()
    with open(os.path.join(journal, "daemon.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = run_agent("reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--slots", "5",
                      "--journal", journal)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "belongs to a running slotguard-agent daemon" in out, out
    assert not os.path.exists(os.path.join(journal, "journal.jsonl"))


def test_moving_the_lease_slot_itself_follows_its_key(cluster):
    """The lease key lives in slot 3620; a run that moves that slot carries the key (MIGRATE
    keeps its TTL) and still renews and releases it through -ASK/-MOVED."""
    data = Dataset(small=5000, others=50, big=0, ttl=50).load(cluster)
    before = snapshot(cluster, data.keys)
    src_port = slot_owners(cluster)[LEASE_SLOT]
    src_id = cluster.node_id(src_port)
    dst_port, dst_id = next((p, i) for p, i in master_ids(cluster) if p != src_port)
    r = run_agent("reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--ranges",
                  f"{LEASE_SLOT - 50}-{LEASE_SLOT + 50}", "--group-slots", "20", "--journal",
                  journal_dir(), "--lease-ttl", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert slot_owners(cluster)[LEASE_SLOT] == dst_port
    node = raw(cluster, dst_port)
    assert node.exists(LEASE) == 0
    assert int(node.get("{slotguard}:lease:token")) >= 1
    assert_cluster_whole(cluster, before)
