"""`slotguard-agent run` and its control CLI against a real 3+3 loopback cluster.

Approval of big plans (surviving SIGKILL), pause/resume, the token on the control API, and bad
plans refused with a clear message and the cluster unchanged. Every test that moves slots ends
with the cluster whole (assert_cluster_whole).
"""
import json
import os
import subprocess
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))

from agent_daemon import AgentDaemon, slot_owner, topology  # noqa: E402
from agent_helpers import assert_cluster_whole, snapshot  # noqa: E402
from harness import Cluster, bin_path, free_port, require_binary, wait_for  # noqa: E402


def masters_by_first_slot(cluster):
    """Master addresses ordered by the first slot they own: A has 0.., B the middle, C the end."""
    ranges = cluster.client(cluster.base).execute_command("CLUSTER SLOTS")
    ranges = sorted(ranges, key=lambda r: r[0])
    return [f"{r[2][0]}:{r[2][1]}" for r in ranges]


def load_keys(cluster, n=3000):
    """Writes n keys and returns their snapshot() for assert_cluster_whole."""
    rc = cluster.cluster_client()
    pipe = rc.pipeline()
    for i in range(n):
        pipe.set(f"key:{i}", f"value-{i}")
    pipe.execute()
    return snapshot(cluster, [f"key:{i}" for i in range(n)])


def check_passes(cluster):
    r = subprocess.run([bin_path("slotguard-agent"), "check", cluster.seed],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    code, out = cluster.cluster_check()
    assert code == 0, out


@pytest.fixture
def agent(cluster):
    a = AgentDaemon(cluster)
    a.start()
    try:
        yield a
    finally:
        a.stop()


def all_done(agent, ids):
    items = {i["id"]: i for i in agent.status()["items"]}
    states = {i: items[i]["display_state"] for i in ids}
    bad = {i: items[i]["message"] for i in ids if items[i]["state"] in ("failed", "rolled_back")}
    if bad:
        raise AssertionError(f"batches did not finish: {bad}\n{agent.output()[-3000:]}")
    return all(s == "done" for s in states.values())


def test_big_plan_waits_for_approval_survives_sigkill_then_runs(cluster, agent):
    require_binary("redis-cli")
    keys = load_keys(cluster)
    a, b, _ = masters_by_first_slot(cluster)
    before = topology(cluster)
    plan = agent.write_plan(f"""
batches:
  - {{from: "{a}", to: "{b}", ranges: ["0-499"]}}
  - {{from: "{a}", to: "{b}", ranges: ["500-999"]}}
  - {{from: "{a}", to: "{b}", ranges: ["1000-1099"]}}
""")
    r = agent.cli("enqueue", plan)
    assert r.returncode == 0, r.stderr
    assert "waits for" in r.stdout and "approve p1" in r.stdout, r.stdout

    status = agent.status()
    assert [i["display_state"] for i in status["items"]] == ["awaiting_approval"] * 3
    assert status["state"] == "awaiting_approval"
    assert agent.metric("slotguard_agent_queue_batches") == 3
    assert agent.metric("slotguard_agent_queue_slots") == 1100
    assert agent.metric("slotguard_agent_state", state="awaiting_approval") == 1
    wait_for(lambda: agent.metric("slotguard_agent_approval_wait_seconds") >= 1, timeout=30,
             what="approval wait to grow")
    assert topology(cluster) == before, "a plan waiting for approval must not touch the cluster"

    # A crash while the plan waits: the queue and the pending approval survive.
    agent.kill()
    agent.start()
    status = agent.status()
    assert [(i["id"], i["display_state"]) for i in status["items"]] == [
        ("p1-b1", "awaiting_approval"), ("p1-b2", "awaiting_approval"),
        ("p1-b3", "awaiting_approval")]
    assert agent.metric("slotguard_agent_approval_wait_seconds") >= 1
    assert topology(cluster) == before

    r = agent.cli("approve", "p1-b2")  # any batch id approves its plan
    assert r.returncode == 0, r.stderr
    assert "p1-b1" in r.stdout and "p1-b3" in r.stdout
    wait_for(lambda: all_done(agent, ["p1-b1", "p1-b2", "p1-b3"]), timeout=180,
             what="the approved plan to run to done")
    assert slot_owner(cluster, 0) == b
    assert slot_owner(cluster, 1099) == b
    assert slot_owner(cluster, 1100) == a
    assert_cluster_whole(cluster, keys)
    assert agent.metric("slotguard_agent_slots_migrated_total") >= 1100
    assert agent.metric("slotguard_agent_queue_batches") == 0
    wait_for(lambda: agent.state() == "idle", timeout=10, what="agent idle")

    r = agent.cli("status")
    assert r.returncode == 0, r.stderr
    assert "state:  idle" in r.stdout
    for batch_id in ("p1-b1", "p1-b2", "p1-b3"):
        line = next(l for l in r.stdout.splitlines() if l.startswith(batch_id))
        assert " done " in line, line
    # Approving again is refused with a reason.
    r = agent.cli("approve", "p1")
    assert r.returncode == 1 and "no batch waiting for approval" in r.stderr, r.stderr


def test_pause_and_resume(cluster, agent):
    keys = load_keys(cluster, 500)
    a, b, _ = masters_by_first_slot(cluster)
    r = agent.cli("pause", "--reason", "maintenance window")
    assert r.returncode == 0, r.stderr
    before = topology(cluster)
    plan = agent.write_plan(f'batches:\n  - {{id: small, from: "{a}", to: "{b}", ranges: ["0-9"]}}\n')
    r = agent.cli("enqueue", plan)
    assert r.returncode == 0, r.stderr
    assert "needs" not in r.stdout and "approve" not in r.stdout
    status = agent.status()
    assert status["paused"] is True
    assert status["pause_reason"] == "maintenance window"
    assert status["state"] == "paused"
    assert agent.item("small")["state"] == "queued"
    assert agent.metric("slotguard_agent_state", state="paused") == 1
    assert topology(cluster) == before

    r = agent.cli("resume")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: all_done(agent, ["small"]), timeout=60, what="batch to run after resume")
    assert slot_owner(cluster, 9) == b
    assert_cluster_whole(cluster, keys)


def test_control_api_needs_the_token(cluster, agent):
    a, b, _ = masters_by_first_slot(cluster)
    before = topology(cluster)
    status_before = agent.status()
    plan_text = f'batches:\n  - {{from: "{a}", to: "{b}", ranges: ["0-9"]}}\n'
    requests = [
        ("GET", "/api/v1/status", None),
        ("POST", "/api/v1/plans", {"file": "p.yaml", "yaml": plan_text}),
        ("POST", "/api/v1/pause", {"reason": "x"}),
        ("POST", "/api/v1/resume", {}),
        ("POST", "/api/v1/approve", {"id": "p1"}),
        ("POST", "/api/v1/rollback", {}),
    ]
    for method, path, body in requests:
        for token in (None, "wrong", agent.control_token + "x", agent.webhook_token):
            status, answer = agent.http(method, path, body, token=token)
            assert status == 401, (method, path, token, status, answer)
            assert "token" in answer["error"]
    # The webhook has its own token: the control token does not open it.
    status, _ = agent.http("POST", "/api/v1/alertmanager",
                           {"version": "4", "alerts": []}, token=agent.control_token)
    assert status == 401

    wrong = os.path.join(agent.dir, "wrong-token")
    with open(wrong, "w") as f:
        f.write("not-the-token\n")
    plan = agent.write_plan(plan_text)
    for args in (("status",), ("pause",), ("enqueue", plan), ("rollback",)):
        r = agent.cli(*args, token_file=wrong)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "refused the control token (401)" in r.stderr, r.stderr
    r = subprocess.run([bin_path("slotguard-agent"), "status", "--agent", agent.url],
                       capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k != "SLOTGUARD_TOKEN"})
    assert r.returncode == 1 and "no control token" in r.stderr, r.stderr
    # SLOTGUARD_TOKEN works in place of a token file.
    r = subprocess.run([bin_path("slotguard-agent"), "status", "--json", "--agent", agent.url],
                       capture_output=True, text=True,
                       env=dict(os.environ, SLOTGUARD_TOKEN=agent.control_token))
    assert r.returncode == 0, r.stderr

    # The webhook with its own token: size limit, JSON validation, and nothing to act on.
    hook = agent.webhook_token
    status, answer = agent.http("POST", "/api/v1/alertmanager", raw=b"x" * (2 << 20), token=hook)
    assert status == 413, answer
    status, answer = agent.http("POST", "/api/v1/alertmanager", raw=b"{\"version\": ", token=hook)
    assert status == 400 and "not valid JSON" in answer["error"], answer
    status, answer = agent.http("POST", "/api/v1/alertmanager",
                                {"version": "4", "status": "resolved", "alerts": []}, token=hook)
    assert status == 200 and answer["result"] == "ignored", answer
    assert agent.metric("slotguard_agent_webhook_notifications_total", result="rejected") == 3
    assert agent.metric("slotguard_agent_webhook_notifications_total", result="ignored") == 1

    status_after = agent.status()
    assert status_after["paused"] == status_before["paused"] is False
    assert status_after["items"] == status_before["items"] == []
    assert topology(cluster) == before


def test_cli_errors_when_the_daemon_is_down(tmp_path):
    token = tmp_path / "t"
    token.write_text("abc\n")
    url = f"http://127.0.0.1:{free_port()}"
    r = subprocess.run([bin_path("slotguard-agent"), "status", "--agent", url,
                        "--token-file", str(token)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"cannot reach the agent at {url}" in r.stderr, r.stderr


def test_bad_config_exits_1_naming_key_and_line(tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text("redis:\n  seeds: ['127.0.0.1:7000']\njournal_dir: j\n"
                      "control: {token_file: t}\nengine:\n  pipeline: 0\n")
    r = subprocess.run([bin_path("slotguard-agent"), "run", "--config", str(config)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"{config}:6: engine.pipeline: must be between 1 and 100000" in r.stderr, r.stderr
    config.write_text("redis:\n  seeds: ['127.0.0.1:7000']\njournal_dir: j\n"
                      "control: {token_file: t}\nqueue: {auto_continu: true}\n")
    r = subprocess.run([bin_path("slotguard-agent"), "run", "--config", str(config)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"{config}:5: queue.auto_continu: unknown key" in r.stderr, r.stderr


def test_bad_plans_are_refused_and_change_nothing(cluster, agent):
    a, b, c = masters_by_first_slot(cluster)
    replica = next(f"127.0.0.1:{p}" for p in cluster.replica_ports())
    cases = [
        ("garbage.yaml", "batches:\n  - {from: a, to: b\n    ranges: [1\n",
         ["garbage.yaml:", "not valid YAML"]),
        ("overlap.yaml",
         f'batches:\n  - {{from: "{a}", to: "{b}", ranges: ["0-10"]}}\n'
         f'  - {{from: "{a}", to: "{c}", ranges: ["5-20"]}}\n',
         ["overlap.yaml:3: batches[1].ranges[0]: slot 5 is also in batches[0] (line 2)",
          "batches overlap"]),
        ("range.yaml", f'batches:\n  - {{from: "{c}", to: "{a}", ranges: ["16380-16390"]}}\n',
         ["range.yaml:2: batches[0].ranges[0]: slot 16390 is out of range (0..16383)"]),
        ("big.yaml", f'batches:\n  - {{from: "{a}", to: "{b}", ranges: ["0-600"]}}\n',
         ["big.yaml:2: batches[0].ranges: more than 500 slots in one batch"]),
        ("unknown.yaml", f'batches:\n  - {{from: "127.0.0.1:1", to: "{b}", ranges: ["0-9"]}}\n',
         ["unknown.yaml:2:", "source node 127.0.0.1:1 is not a node of this cluster"]),
        ("replica.yaml", f'batches:\n  - {{from: "{a}", to: "{replica}", ranges: ["0-9"]}}\n',
         ["replica.yaml:2:", f"target node {replica}", "is a replica"]),
        ("notowned.yaml", f'batches:\n  - {{from: "{a}", to: "{b}", ranges: ["16000"]}}\n',
         ["notowned.yaml:2:", "slot 16000 is not owned by source"]),
        ("unknownkey.yaml", f'batches:\n  - {{from: "{a}", to: "{b}", slot: 3}}\n',
         ["unknownkey.yaml:2: batches[0].slot: unknown key"]),
    ]
    before = topology(cluster)
    for name, text, expected in cases:
        path = agent.write_plan(text, name)
        r = agent.cli("enqueue", path)
        assert r.returncode == 1, (name, r.stdout, r.stderr)
        for fragment in expected:
            assert fragment in r.stderr, (name, fragment, r.stderr)
        assert "Traceback" not in r.stderr
        assert topology(cluster) == before, name
    # The daemon itself refuses them too (not only the CLI's local check).
    status, answer = agent.http("POST", "/api/v1/plans",
                                {"file": "api.yaml", "yaml": cases[1][1]},
                                token=agent.control_token)
    assert status == 422 and "batches overlap" in answer["error"], answer
    status, answer = agent.http("POST", "/api/v1/plans", raw=b"{not json",
                                token=agent.control_token)
    assert status == 400, answer
    assert agent.status()["items"] == []
    assert topology(cluster) == before
    check_passes(cluster)


def test_engine_batch_slots_caps_the_batches_a_plan_may_ask_for(cluster):
    """engine.batch_slots lowers the runbook's 500-slot cap for queued plans."""
    a, b, _ = masters_by_first_slot(cluster)
    agent = AgentDaemon(cluster, overrides={"engine.batch_slots": 200})
    agent.start()
    try:
        before = topology(cluster)
        text = f'batches:\n  - {{from: "{a}", to: "{b}", ranges: ["0-299"]}}\n'
        status, answer = agent.http("POST", "/api/v1/plans", {"file": "cap.yaml", "yaml": text},
                                    token=agent.control_token)
        assert status == 422, answer
        assert "cap.yaml:2: batches[0].ranges: more than 200 slots in one batch" in answer["error"]
        assert agent.status()["items"] == []
        assert topology(cluster) == before
    finally:
        agent.stop()


def test_sigterm_mid_batch_then_restart_converges(cluster):
    """SIGTERM while a (throttled) batch moves: the daemon stops within its grace, the next
    start converges the journal and the queue learns where the batch ended up."""
    keys = load_keys(cluster, 3000)
    a, b, _ = masters_by_first_slot(cluster)
    agent = AgentDaemon(cluster, overrides={"engine.group_slots": 1,
                                            "engine.throttle_per_slot": "100ms",
                                            "shutdown_grace": "1s"})
    agent.start()
    try:
        plan = agent.write_plan(
            f'batches:\n  - {{id: long, from: "{a}", to: "{b}", ranges: ["0-299"]}}\n')
        r = agent.cli("enqueue", plan)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: agent.metric("slotguard_agent_slots_migrated_total") >= 5, timeout=60,
                 what="a few slots of the batch to move")
        assert agent.stop() == 0, agent.output()[-3000:]
        out = agent.output()
        assert "received SIGTERM" in out and "interrupting batch long" in out, out[-3000:]

        # Restarted without the throttle.
        agent.config["engine"].pop("throttle_per_slot")
        with open(agent.config_path, "w") as f:
            import yaml
            yaml.safe_dump(agent.config, f)
        agent.start()

        # Recovery converges the journal; the queue then sees where the slots are and runs
        # (or resumes) the batch, which ends done.
        wait_for(lambda: all_done(agent, ["long"]), timeout=120,
                 what="the interrupted batch to be recovered and finished")
        assert agent.item("long")["attempts"] >= 2
        assert {slot_owner(cluster, s) for s in range(0, 300)} == {b}
        assert_cluster_whole(cluster, keys)
    finally:
        agent.stop()


def test_operator_rollback_cancel_and_revert(cluster):
    keys = load_keys(cluster, 3000)
    a, b, _ = masters_by_first_slot(cluster)
    agent = AgentDaemon(cluster, overrides={"engine.group_slots": 1,
                                            "engine.throttle_per_slot": "100ms"})
    agent.start()
    try:
        plan = agent.write_plan(
            f'batches:\n  - {{id: slow, from: "{a}", to: "{b}", ranges: ["0-199"]}}\n'
            f'  - {{id: next, from: "{a}", to: "{b}", ranges: ["200-209"]}}\n')
        assert agent.cli("enqueue", plan).returncode == 0
        wait_for(lambda: agent.metric("slotguard_agent_slots_migrated_total") >= 3, timeout=60,
                 what="the slow batch to move a few slots")

        r = agent.cli("rollback", "next")  # queued: cancelled, never started
        assert r.returncode == 0 and "cancelled" in r.stdout, r.stdout + r.stderr
        r = agent.cli("rollback")  # the running batch
        assert r.returncode == 0 and "rolling back batch slow" in r.stdout, r.stdout + r.stderr
        wait_for(lambda: agent.item("slow")["state"] == "rolled_back", timeout=60,
                 what="the operator's rollback")
        assert agent.item("next")["state"] == "cancelled"
        assert {slot_owner(cluster, s) for s in range(0, 210)} == {a}
        assert agent.metric("slotguard_agent_rollbacks_total", trigger="operator") == 1
        status = agent.status()
        assert status["paused"] is True and status["state"] == "rolled_back", status
        r = agent.cli("rollback")
        assert r.returncode == 1 and "no batch is running" in r.stderr, r.stderr

        # A finished batch is reverted by a batch moving its slots back.
        plan = agent.write_plan(
            f'batches:\n  - {{id: small, from: "{a}", to: "{b}", ranges: ["300-304"]}}\n',
            "small.yaml")
        assert agent.cli("enqueue", plan).returncode == 0
        assert agent.cli("resume").returncode == 0
        wait_for(lambda: all_done(agent, ["small"]), timeout=60, what="the small batch")
        assert slot_owner(cluster, 302) == b
        r = agent.cli("rollback", "small")
        assert r.returncode == 0 and "small-revert" in r.stdout, r.stdout + r.stderr
        wait_for(lambda: all_done(agent, ["small-revert"]), timeout=60, what="the revert batch")
        assert {slot_owner(cluster, s) for s in range(300, 305)} == {a}
        assert_cluster_whole(cluster, keys)
    finally:
        agent.stop()


def test_restart_stays_paused_without_auto_continue(cluster):
    a, b, _ = masters_by_first_slot(cluster)
    agent = AgentDaemon(cluster, overrides={"queue.auto_continue": False,
                                            "queue.approval_threshold_slots": 5})
    agent.start()
    try:
        plan = agent.write_plan(
            f'batches:\n  - {{id: six, from: "{a}", to: "{b}", ranges: ["0-5"]}}\n')
        r = agent.cli("enqueue", plan)
        assert r.returncode == 0 and "approve p1" in r.stdout, r.stdout + r.stderr
        assert agent.status()["paused"] is False  # a fresh start with nothing to resume
        agent.kill()
        agent.start()
        wait_for(lambda: agent.status()["paused"], timeout=30, what="the restarted queue to pause")
        status = agent.status()
        assert "auto_continue" in status["pause_reason"], status
        assert status["state"] == "paused"
        assert agent.cli("approve", "six").returncode == 0
        assert agent.item("six")["display_state"] == "queued"
        assert slot_owner(cluster, 0) == a
        assert agent.cli("resume").returncode == 0
        wait_for(lambda: all_done(agent, ["six"]), timeout=60, what="the batch after resume")
        assert slot_owner(cluster, 5) == b
        assert_cluster_whole(cluster, {})
    finally:
        agent.stop()


def test_enqueue_splits_a_hot_slot_into_its_own_batch(cluster, agent):
    """The runbook's hot-slot limit applies to plan files too: a slot holding over 15% of its
    node's memory leaves its batch for one of its own, named after it."""
    from redis.crc import key_slot
    keys = load_keys(cluster, 500)
    a, b, _ = masters_by_first_slot(cluster)
    tag = next(f"t{i}" for i in range(100000) if key_slot(f"t{i}".encode()) == 5)
    rc = cluster.cluster_client()
    big = {f"{{{tag}}}:big:{i}": "x" * 1048576 for i in range(3)}
    for k, v in big.items():
        rc.set(k, v)
    keys.update(snapshot(cluster, list(big)))
    plan = agent.write_plan(
        f'batches:\n  - {{id: warm, from: "{a}", to: "{b}", ranges: ["0-9"]}}\n')
    r = agent.cli("enqueue", plan)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("hot slot 5 (over 15% of its node's memory) split out of batch warm into its own "
            "batch warm-hot5") in r.stdout, r.stdout
    assert "2 batches (warm, warm-hot5), 10 slots" in r.stdout, r.stdout
    assert agent.item("warm-hot5")["slots"] == [5]
    assert 5 not in agent.item("warm")["slots"] and len(agent.item("warm")["slots"]) == 9
    wait_for(lambda: all_done(agent, ["warm", "warm-hot5"]), timeout=120,
             what="the batch and its hot slot's batch to finish")
    assert {slot_owner(cluster, s) for s in range(10)} == {b}
    assert_cluster_whole(cluster, keys)


def test_startup_warns_of_unreachable_seeds_and_a_shared_token(cluster, agent, tmp_path):
    def started(daemon):  # its start-up warnings come before this line
        wait_for(lambda: "listening on" in daemon.output(), timeout=30, what="'listening on'")
        return daemon.output()

    # The healthy daemon of the `agent` fixture: separate tokens, seeds that answer.
    started(agent)
    assert "redis.seeds" not in agent.output() and "same token" not in agent.output(), \
        agent.output()

    dead = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    bad = AgentDaemon(cluster, overrides={"redis.seeds": dead}, workdir=str(tmp_path / "bad"))
    # One token for both: the webhook reads the control token file.
    bad.config["webhook"]["token_file"] = bad.control_token_file
    with open(bad.config_path, "w") as f:
        yaml.safe_dump(bad.config, f)
    try:
        bad.start()  # it still starts: a seed may come up later
        log = started(bad)
        assert "no seed in redis.seeds answers" in log, log
        for seed in dead:
            assert seed in log, log
        assert "hold the same token" in log, log
        assert bad.control_token_file in log
        assert bad.control_token not in log  # the secret itself never
    finally:
        bad.stop()

    half = AgentDaemon(cluster, overrides={"redis.seeds": [cluster.seed, dead[0]]},
                       workdir=str(tmp_path / "half"))
    try:
        half.start()
        log = started(half)
        assert f"redis.seeds: {dead[0]}: " in log and "the other seeds answer" in log, log
        assert "no seed in redis.seeds answers" not in log and "same token" not in log, log
    finally:
        half.stop()
