"""Issue 11: rebalance runs the batches of moves with no master in common at the same time.

Three loaded masters and three empty ones added: `rebalance --use-empty-masters` moves from each
old master to its own new one, three batches at once. The agent is killed (SIGKILL) while all
three are open, halfway through their keys (the SLOTGUARD_TEST_PAUSE_AT hook holds each engine
there); the rerun with the same journal converges all three batches, then finishes the
rebalance. A RedisCluster client reads and writes throughout; every key is intact afterwards
and `check` is clean.
"""
import json
import os
import signal
import subprocess

import pytest

from agent_helpers import (ClientLoad, Dataset, agent_bin, assert_cluster_whole, journal_dir,
                           open_slots, password_env, run_agent, slots_of, snapshot)
from harness import Cluster, require_binary, wait_for


@pytest.fixture
def three_loaded_three_empty():
    require_binary("redis-server")
    c = Cluster(masters=3, replicas=0)
    try:
        yield c
    finally:
        c.down()


def journal_records(journal):
    path = os.path.join(journal, "journal.jsonl")
    if not os.path.exists(path):
        return []
    out = []
    for line in open(path):
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a torn last line
    return out


def open_batches(journal):
    """batch id -> (source id, target id) of every batch started and not ended."""
    started, ended = {}, set()
    for r in journal_records(journal):
        if r["type"] == "batch":
            started[r["batch"]] = (r["source_id"], r["target_id"])
        elif r["type"] == "end":
            ended.add(r["batch"])
    return {b: ends for b, ends in started.items() if b not in ended}


def test_kill_9_with_three_parallel_batches_then_rerun_converges_all(three_loaded_three_empty,
                                                                     tmp_path):
    c = three_loaded_three_empty
    env = password_env(c)
    data = Dataset(small=30000, others=300, big=1, ttl=300).load(c)
    before = snapshot(c, data.keys)
    old = list(c.masters_ports())
    new = [c.add_master() for _ in range(3)]
    for port in new:
        # A new master whose batch the recovery rolls back gives up the slots it had taken, its
        # last ones: Redis would make it a replica (cluster-allow-replica-migration), and the
        # rerun would have no empty master left to fill.
        c.client(port).execute_command("CONFIG", "SET", "cluster-allow-replica-migration", "no")
    client = ClientLoad(c, range(16384), data.keys).start()
    journal = journal_dir()
    args = ["rebalance", c.seed, "--use-empty-masters", "--yes", "--batch-slots", "300",
            "--group-slots", "100", "--journal", journal]
    stderr_path = tmp_path / "agent.stderr"
    try:
        with open(stderr_path, "w") as err:
            proc = subprocess.Popen([agent_bin(), *args], stdout=subprocess.DEVNULL, stderr=err,
                                    env=dict(os.environ, SLOTGUARD_TEST_PAUSE_AT="mid_keys:120000",
                                             **env))
        try:
            wait_for(lambda: stderr_path.read_text().count("paused at mid_keys") >= 3
                     or proc.poll() is not None, timeout=180,
                     what="three batches holding halfway through their keys")
            assert proc.poll() is None, stderr_path.read_text()
            # Three batches open at once, no master in two of them, each with slots open on
            # both of its ends.
            batches = open_batches(journal)
            assert len(batches) == 3, (batches, stderr_path.read_text())
            ends = [n for pair in batches.values() for n in pair]
            assert len(set(ends)) == 6, batches
            for port in old:
                migrating, _ = open_slots(c, port)
                assert migrating, f"{port} has no slot MIGRATING"
            for port in new:
                _, importing = open_slots(c, port)
                assert importing, f"{port} has no slot IMPORTING"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL

        again = run_agent(*args, env=env, timeout=600)
        out = again.stdout + again.stderr
        assert again.returncode == 0, out
        assert "Recovering unfinished batches" in out, out
        for batch in batches:
            assert f"recovery: batch {batch}: " in out, (batch, out)
        assert open_batches(journal) == {}
        assert "Rebalance done." in out, out
        for port in c.masters_ports():
            assert abs(len(slots_of(c, port)) - 16384 / 6) <= 16384 / 6 * 0.02, (port, out)
    finally:
        client.stop()
        client.close()
    assert client.errors == [], client.errors[:5]
    assert client.wrong == [], client.wrong[:5]
    assert_cluster_whole(c, before)


def test_ctrl_c_rolls_back_every_running_batch(three_loaded_three_empty, tmp_path):
    """SIGINT while three batches run: each of them rolls back (the runner asks every running
    engine), no new batch starts, exit 2; every key intact."""
    c = three_loaded_three_empty
    env = password_env(c)
    data = Dataset(small=20000, others=200, big=1, ttl=300).load(c)
    before = snapshot(c, data.keys)
    owned = {port: slots_of(c, port) for port in c.masters_ports()}
    new = [c.add_master() for _ in range(3)]
    for port in new:
        c.client(port).execute_command("CONFIG", "SET", "cluster-allow-replica-migration", "no")
    client = ClientLoad(c, range(16384), data.keys).start()
    journal = journal_dir()
    stderr_path = tmp_path / "agent.stderr"
    try:
        with open(stderr_path, "w") as err:
            proc = subprocess.Popen(
                [agent_bin(), "rebalance", c.seed, "--use-empty-masters", "--yes",
                 "--batch-slots", "300", "--group-slots", "100", "--journal", journal],
                stdout=subprocess.PIPE, stderr=err, text=True,
                env=dict(os.environ, SLOTGUARD_TEST_PAUSE_AT="mid_keys:120000", **env))
        try:
            wait_for(lambda: stderr_path.read_text().count("paused at mid_keys") >= 3
                     or proc.poll() is not None, timeout=180,
                     what="three batches holding halfway through their keys")
            assert proc.poll() is None, stderr_path.read_text()
            batches = open_batches(journal)
            assert len(batches) == 3, batches
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 2, out + stderr_path.read_text()
        for batch in batches:
            assert f"batch {batch}: ROLLED BACK (operator)" in out, (batch, out)
        assert open_batches(journal) == {}
        assert "Rebalance stopped" in out, out
        # Nothing moved: every slot is back at its old master; the new ones own nothing.
        for port, slots in owned.items():
            assert slots_of(c, port) == slots, port
        for port in new:
            assert slots_of(c, port) == [], port
    finally:
        client.stop()
        client.close()
    assert client.errors == [], client.errors[:5]
    assert client.wrong == [], client.wrong[:5]
    assert_cluster_whole(c, before)
