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

from agent_daemon import AgentDaemon
from agent_helpers import (ClientLoad, Dataset, agent_bin, assert_cluster_whole, journal_dir,
                           open_slots, password_env, run_agent, slots_of, snapshot)
from harness import wait_for


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


def three_empty_masters(c):
    """Adds three empty masters that stay masters when a rollback takes their last slots back
    (else Redis makes them replicas, cluster-allow-replica-migration, and a rerun would have no
    empty master left to fill)."""
    new = [c.add_master() for _ in range(3)]
    for port in new:
        c.client(port).execute_command("CONFIG", "SET", "cluster-allow-replica-migration", "no")
    return new


def start_paused(args, env, stderr_path, journal, stdout=subprocess.DEVNULL):
    """Starts the agent with every engine held halfway through its batch's keys; returns it once
    three batches hold there at once, after checking no master is in two of them."""
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen([agent_bin(), *args], stdout=stdout, stderr=err, text=True,
                                env=dict(os.environ, SLOTGUARD_TEST_PAUSE_AT="mid_keys:120000",
                                         **env))
    try:
        wait_for(lambda: stderr_path.read_text().count("paused at mid_keys") >= 3
                 or proc.poll() is not None, timeout=180,
                 what="three batches holding halfway through their keys")
        assert proc.poll() is None, stderr_path.read_text()
        batches = open_batches(journal)
        assert len(batches) == 3, (batches, stderr_path.read_text())
        assert len({n for pair in batches.values() for n in pair}) == 6, batches
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, batches


def test_kill_9_with_three_parallel_batches_then_rerun_converges_all(three_masters_no_replicas,
                                                                     tmp_path):
    c = three_masters_no_replicas
    env = password_env(c)
    data = Dataset(small=30000, others=300, big=1, ttl=300).load(c)
    before = snapshot(c, data.keys)
    old = list(c.masters_ports())
    new = three_empty_masters(c)
    client = ClientLoad(c, range(16384), data.keys).start()
    journal = journal_dir()
    args = ["rebalance", c.seed, "--use-empty-masters", "--yes", "--batch-slots", "300",
            "--group-slots", "100", "--journal", journal]
    try:
        proc, batches = start_paused(args, env, tmp_path / "agent.stderr", journal)
        try:
            # Each of the three has slots open on both of its ends.
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


def test_ctrl_c_rolls_back_every_running_batch(three_masters_no_replicas, tmp_path):
    """SIGINT while three batches run: each of them rolls back (the runner asks every running
    engine), no new batch starts, exit 2; every key intact."""
    c = three_masters_no_replicas
    env = password_env(c)
    data = Dataset(small=20000, others=200, big=1, ttl=300).load(c)
    before = snapshot(c, data.keys)
    owned = {port: slots_of(c, port) for port in c.masters_ports()}
    new = three_empty_masters(c)
    client = ClientLoad(c, range(16384), data.keys).start()
    journal = journal_dir()
    args = ["rebalance", c.seed, "--use-empty-masters", "--yes", "--batch-slots", "300",
            "--group-slots", "100", "--journal", journal]
    stderr_path = tmp_path / "agent.stderr"
    try:
        proc, batches = start_paused(args, env, stderr_path, journal, stdout=subprocess.PIPE)
        try:
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


def overlapping_batches(journal):
    """Pairs of batches whose step records interleave in the journal: both were running."""
    spans = {}
    for i, r in enumerate(journal_records(journal)):
        if r["type"] in ("batch", "step"):
            first, _ = spans.get(r["batch"], (i, i))
            spans[r["batch"]] = (first, i)
    ids = sorted(spans)
    return [(a, b) for a in ids for b in ids
            if a < b and spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]]


def test_per_target_three_sources_fill_one_new_master_together(cluster):
    c = cluster
    env = password_env(c)
    data = Dataset(small=20000, others=200, big=1, ttl=300).load(c)
    before = snapshot(c, data.keys)
    new = c.add_master()
    client = ClientLoad(c, range(16384), data.keys).start()
    journal = journal_dir()
    try:
        r = run_agent("rebalance", c.seed, "--use-empty-masters", "--yes", "--per-target", "3",
                      "--journal", journal, env=env, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Rebalance done." in r.stdout, r.stdout
        for port in c.masters_ports():
            assert abs(len(slots_of(c, port)) - 4096) <= 4096 * 0.02, (port, r.stdout)
        assert len(slots_of(c, new)) > 0
    finally:
        client.stop()
        client.close()
    assert client.errors == [], client.errors[:5]
    assert client.wrong == [], client.wrong[:5]
    # The three sources' batches ran at the same time, into the one new master.
    assert overlapping_batches(journal), journal_records(journal)[:20]
    assert_cluster_whole(c, before)


# ---- the daemon (`slotguard-agent run`) runs a plan's batches of disjoint pairs at once ----

def daemon_three_moves(c, pause_ms, tmp_path, overrides=None):
    """Loads the cluster, adds three empty masters and starts a daemon (every engine held
    halfway through its batch's keys for `pause_ms`) with a plan of three batches, old master i
    -> new master i, enqueued. Returns (agent, data, before, moves {batch: (from, to, slots)},
    client load) once the three batches hold there at once."""
    data = Dataset(small=30000, others=300, big=1, ttl=300).load(c)
    before = snapshot(c, data.keys)
    old = list(c.masters_ports())
    new = three_empty_masters(c)
    moves, lines = {}, ["batches:"]
    for i, (src, dst) in enumerate(zip(old, new)):
        slots = slots_of(c, src)[:300]
        batch = f"m{i + 1}"
        moves[batch] = (src, dst, slots)
        lines.append(f'  - {{id: {batch}, from: "{c.addr(src)}", to: "{c.addr(dst)}", '
                     f'ranges: ["{slots[0]}-{slots[-1]}"]}}')
    agent = AgentDaemon(c, overrides={"engine.group_slots": 100, **(overrides or {})},
                        workdir=str(tmp_path / "agent"))
    agent.start(env={"SLOTGUARD_TEST_PAUSE_AT": f"mid_keys:{pause_ms}"})
    client = ClientLoad(c, range(16384), data.keys).start()
    try:
        r = agent.cli("enqueue", agent.write_plan("\n".join(lines) + "\n"))
        assert r.returncode == 0, r.stdout + r.stderr
        wait_for(lambda: agent.output().count("paused at mid_keys") >= 3, timeout=180,
                 what="three batches holding halfway through their keys")
    except BaseException:
        client.stop()
        client.close()
        agent.kill()
        raise
    return agent, data, before, moves, client


def stop_daemon_and_load(agent, client):
    client.stop()
    client.close()
    agent.stop()


def assert_load_and_keys_intact(c, client, before):
    assert client.errors == [], client.errors[:5]
    assert client.wrong == [], client.wrong[:5]
    assert_cluster_whole(c, before)


def assert_three_running(agent, moves):
    """status and /metrics show the three batches running at once, no master in two of them."""
    running = agent.status()["running"]
    assert sorted(r["id"] for r in running) == sorted(moves), running
    assert all(r["state"] == "migrating" for r in running), running
    assert agent.metric("slotguard_agent_running_batches") == 3
    for batch in moves:
        assert agent.metric("slotguard_agent_running_batch", batch=batch, state="migrating") == 1
    batches = open_batches(os.path.join(agent.dir, "journal"))
    assert sorted(batches) == sorted(moves), batches
    assert len({n for pair in batches.values() for n in pair}) == 6, batches
    r = agent.cli("status")
    assert r.returncode == 0 and "running: 3 batch(es)" in r.stdout, r.stdout + r.stderr


def test_daemon_runs_three_batches_at_once_and_recovers_all_after_kill_9(
        three_masters_no_replicas, tmp_path):
    """Issue 11 in the daemon: a plan of three batches of disjoint pairs runs at once; kill -9
    while all three are open; the restarted daemon converges every one of them (not only the
    latest) and finishes the plan; every key intact under a client load."""
    c = three_masters_no_replicas
    agent, data, before, moves, client = daemon_three_moves(c, 120000, tmp_path)
    try:
        try:
            assert_three_running(agent, moves)
        finally:
            agent.kill()
        agent.start()  # without the hook
        wait_for(lambda: all(agent.item(b)["state"] == "done" for b in moves), timeout=300,
                 what="the three interrupted batches recovered and finished")
        out = agent.output()
        for batch in moves:
            assert f"recovery: batch {batch} converged" in out, (batch, out[-3000:])
        assert open_batches(os.path.join(agent.dir, "journal")) == {}
        for batch, (src, dst, slots) in moves.items():
            assert set(slots) <= set(slots_of(c, dst)), batch
        status = agent.status()
        assert status["running"] == [] and status["paused"] is False, status
    finally:
        stop_daemon_and_load(agent, client)
    assert_load_and_keys_intact(c, client, before)


def test_daemon_rollback_of_one_named_batch_leaves_the_other_two_running(
        three_masters_no_replicas, tmp_path):
    """`slotguard-agent rollback BATCH` while three run: that batch rolls back (its slots back
    at its source), the other two finish; the queue pauses for the operator."""
    c = three_masters_no_replicas
    agent, data, before, moves, client = daemon_three_moves(c, 15000, tmp_path)
    try:
        assert_three_running(agent, moves)
        victim = sorted(moves)[0]
        r = agent.cli("rollback", victim)
        assert r.returncode == 0 and f"rolling back batch {victim} " in r.stdout, \
            r.stdout + r.stderr
        wait_for(lambda: all(agent.item(b)["state"] in ("done", "rolled_back", "failed")
                             for b in moves), timeout=300, what="the three batches to end")
        states = {b: agent.item(b)["state"] for b in moves}
        assert states == {b: "rolled_back" if b == victim else "done" for b in moves}, states
        for batch, (src, dst, slots) in moves.items():
            owner = src if batch == victim else dst
            assert set(slots) <= set(slots_of(c, owner)), batch
        assert agent.metric("slotguard_agent_rollbacks_total", trigger="operator") == 1
        assert agent.status()["paused"] is True
    finally:
        stop_daemon_and_load(agent, client)
    assert_load_and_keys_intact(c, client, before)


def rollback_alert(cluster_label):
    return {"version": "4", "status": "firing", "receiver": "slotguard", "alerts": [{
        "status": "firing", "startsAt": "2026-01-01T00:00:00Z", "fingerprint": cluster_label,
        "labels": {"alertname": "RedisClusterSlotsNotOk", "slotguard_action": "rollback",
                   "cluster": cluster_label}}]}


def test_daemon_webhook_rollback_rolls_back_every_running_batch(three_masters_no_replicas,
                                                                 tmp_path):
    """An Alertmanager rollback alert for this cluster (`webhook.cluster`) while three batches
    run: all three roll back (trigger alertmanager) and the queue pauses; an alert for another
    cluster before it changed nothing."""
    c = three_masters_no_replicas
    agent, data, before, moves, client = daemon_three_moves(
        c, 120000, tmp_path, overrides={"webhook.cluster": "here"})
    try:
        assert_three_running(agent, moves)
        status, answer = agent.http("POST", "/api/v1/alertmanager", rollback_alert("elsewhere"),
                                    token=agent.webhook_token)
        assert status == 200 and answer["result"] == "ignored", answer
        assert len(agent.status()["running"]) == 3
        status, answer = agent.http("POST", "/api/v1/alertmanager", rollback_alert("here"),
                                    token=agent.webhook_token)
        assert status == 200 and answer["result"] == "accepted", answer
        wait_for(lambda: all(agent.item(b)["state"] in ("done", "rolled_back", "failed")
                             for b in moves), timeout=300, what="the three batches to end")
        assert {b: agent.item(b)["state"] for b in moves} == {b: "rolled_back" for b in moves}
        for batch, (src, dst, slots) in moves.items():
            assert set(slots) <= set(slots_of(c, src)), batch
        assert agent.metric("slotguard_agent_rollbacks_total", trigger="alertmanager") == 3
        status = agent.status()
        assert status["paused"] is True and status["running"] == [], status
    finally:
        stop_daemon_and_load(agent, client)
    assert_load_and_keys_intact(c, client, before)
