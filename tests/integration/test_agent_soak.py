"""Soak (behind a flag): reshard back and forth between the masters for SLOTGUARD_SOAK_SECONDS,
with kill -9 in the middle of every third run, while a RedisCluster client writes and reads.

Skipped unless SLOTGUARD_SOAK_SECONDS is set (CI does not set it; a soak of 10 minutes or more
is what it is for):

    SLOTGUARD_SOAK_SECONDS=900 /usr/bin/python3 -m pytest -q tests/integration/test_agent_soak.py

Every run moves a random number of slots (seeded, the seed is printed) from one master to
another, each pair in turn. A crashed run is rerun with the same journal, which converges it
and finishes the move. After every run the cluster must be whole (assert_cluster_whole: every
key of the data set at its slot's owner with its value and TTL, none stranded, nothing open,
`check` healthy); at the end the client must have seen no error and no wrong value.
"""
import os
import random
import time

import pytest

from agent_helpers import (ClientLoad, Dataset, assert_cluster_whole, journal_dir, master_ids,
                           password_env, raw, run_agent, slots_of, snapshot)

SOAK_SECONDS = float(os.environ.get("SLOTGUARD_SOAK_SECONDS", "0"))


def own_lines(cluster):
    """Every master's own CLUSTER NODES line and epochs, for a failure message."""
    out = []
    for port, _ in master_ids(cluster):
        text = raw(cluster, port).execute_command("CLUSTER", "NODES").decode()
        info = raw(cluster, port).execute_command("CLUSTER", "INFO").decode()
        epoch = [x for x in info.split() if x.startswith(("cluster_current_epoch", "cluster_my_epoch"))]
        out += [f"{port} {epoch}:"] + [f"  {line}" for line in text.splitlines()]
    return "\n".join(out)


@pytest.mark.skipif(SOAK_SECONDS <= 0, reason="soak: set SLOTGUARD_SOAK_SECONDS to run it")
def test_soak_reshard_back_and_forth_with_crashes(cluster):
    seed = int(os.environ.get("SLOTGUARD_SOAK_SEED", str(int(time.time()))))
    print(f"soak seed {seed} (SLOTGUARD_SOAK_SEED={seed} repeats this run)")
    rng = random.Random(seed)
    data = Dataset(small=50000, others=1000, big=2, ttl=500).load(cluster)
    before = snapshot(cluster, data.keys)
    started = time.time()
    masters = master_ids(cluster)  # ((port, id), ...)
    client = ClientLoad(cluster, range(16384), data.keys).start()
    env = password_env(cluster)
    runs = crashes = moved = 0
    deadline = time.time() + SOAK_SECONDS
    try:
        while time.time() < deadline:
            (src_port, src_id), (dst_port, dst_id) = (masters[runs % 3], masters[(runs + 1) % 3])
            owned = len(slots_of(cluster, src_port))
            if owned < 2:
                runs += 1
                continue
            n = rng.randint(1, min(1500, owned - 1))
            journal = journal_dir()
            args = ["reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--slots", str(n),
                    "--yes", "--journal", journal]
            point = None
            if runs % 3 == 2:
                point = rng.choice(["after_importing", "mid_keys", "after_target_node"])
                crashed = run_agent(*args, env={**env, "SLOTGUARD_TEST_CRASH_AT": point})
                # 0 when the run never reached the point (mid_keys in slots without keys).
                assert crashed.returncode in (0, -9), crashed.stdout + crashed.stderr
                crashes += crashed.returncode == -9
            r = run_agent(*args, env=env)
            out = r.stdout + r.stderr
            assert r.returncode == 0, (f"run {runs} ({src_port}->{dst_port}, {n} slots, "
                                       f"crash at {point}): {out}\n{own_lines(cluster)}")
            # TTLs count down while the soak runs: lower by up to that much, never higher.
            elapsed_ms = int((time.time() - started) * 1000)
            assert_cluster_whole(cluster, before, ttl_tolerance_ms=elapsed_ms + 120000)
            assert client.errors == [], client.errors[:5]
            assert client.wrong == [], client.wrong[:5]
            runs += 1
            moved += n
    finally:
        client.stop()
    print(f"soak: {runs} runs, {crashes} with a kill -9, {moved} slots moved, {client.ops} client ops")
    assert runs >= 3, "the soak was too short to move anything"
    assert client.errors == [], client.errors[:5]
    assert client.wrong == [], client.wrong[:5]
    elapsed_ms = int((time.time() - started) * 1000)
    assert_cluster_whole(cluster, before, ttl_tolerance_ms=elapsed_ms + 120000)
