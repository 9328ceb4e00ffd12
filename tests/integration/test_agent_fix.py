"""`slotguard-agent fix` on what other tools leave: a `redis-cli --cluster reshard` killed in
the middle of a slot (keys on both nodes, the slot open on both), and slots without an owner,
with and without keys somewhere."""
import os
import signal
import subprocess

from redis.crc import key_slot

from agent_helpers import (ClientLoad, Dataset, assert_cluster_whole, journal_dir, password_env,
                           raw, run_agent, slots_of, snapshot)
from harness import wait_for


def tag_for(slot):
    i = 0
    while key_slot(f"t{i}".encode()) != slot:
        i += 1
    return f"t{i}"


def test_fix_repairs_a_killed_redis_cli_reshard(cluster):
    c = cluster
    env = password_env(c)
    src, dst = sorted(c.masters_ports())[:2]
    slot = slots_of(c, src)[0]
    tag = tag_for(slot)
    rc = c.cluster_client()
    pipe = rc.pipeline()
    heavy = [f"{{{tag}}}:{i}" for i in range(20000)]
    for k in heavy:
        pipe.set(k, k)
    pipe.execute()
    data = Dataset(small=5000, others=200, big=0, ttl=500).load(c)
    keys = heavy + data.keys
    before = snapshot(c, keys)

    # redis-cli moves one key per MIGRATE here, so it is still inside the first slot when killed.
    cli_env = dict(os.environ, **({"REDISCLI_AUTH": c.password} if c.password else {}))
    proc = subprocess.Popen(
        ["redis-cli", "--cluster", "reshard", c.seed, "--cluster-from", c.node_id(src),
         "--cluster-to", c.node_id(dst), "--cluster-slots", "5", "--cluster-yes",
         "--cluster-pipeline", "1"], env=cli_env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: raw(c, dst).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) > 200,
                 timeout=60, what="redis-cli moving keys of the first slot")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    on_src = raw(c, src).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)
    on_dst = raw(c, dst).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)
    assert on_src > 0 and on_dst > 0, (on_src, on_dst)
    assert f"[{slot}->-" in raw(c, src).execute_command("CLUSTER", "NODES").decode()
    rc_check, _ = c.cluster_check()
    assert rc_check != 0  # redis-cli sees the open slot too

    client = ClientLoad(c, range(16384), keys).start()
    journal = journal_dir()
    try:
        r = run_agent("fix", c.seed, "--dry-run", "--journal", journal, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"slots {slot}: MIGRATING/IMPORTING left open" in r.stdout, r.stdout
        assert "Dry run: nothing changed." in r.stdout
        assert raw(c, dst).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == on_dst

        # A fix killed (kill -9) once the slot is the target's but before the source is told:
        # the journal holds the open batch, and the next fix converges it.
        r = run_agent("fix", c.seed, "--journal", journal, timeout=600,
                      env={**env, "SLOTGUARD_TEST_CRASH_AT": "converge_after_target_node"})
        assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
        assert f"[{slot}->-" in raw(c, src).execute_command("CLUSTER", "NODES").decode()

        r = run_agent("fix", c.seed, "--journal", journal, env=env, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Fixed." in r.stdout, r.stdout
        assert "finished at the target" in r.stdout + r.stderr, r.stdout + r.stderr
    finally:
        client.stop()
    assert client.errors == [], client.errors[:5]
    assert client.wrong == [], client.wrong[:5]
    assert_cluster_whole(c, before)  # every key at its owner, nothing open, checks clean
    r = run_agent("fix", c.seed, "--journal", journal, env=env)
    assert r.returncode == 0 and "Nothing to fix." in r.stdout, r.stdout + r.stderr


def test_fix_assigns_only_unowned_slots_no_node_holds_keys_of(cluster):
    c = cluster
    env = password_env(c)
    src = sorted(c.masters_ports())[0]
    empty_slot, keyed_slot = slots_of(c, src)[:2]
    raw(c, src).set(f"{{{tag_for(keyed_slot)}}}:k", "v")
    # Every node forgets the owner (a view only drops an owner it is told to).
    for port in c.ports:
        raw(c, port).execute_command("CLUSTER", "DELSLOTS", empty_slot, keyed_slot)

    def unowned_everywhere():
        for port in c.ports:
            text = raw(c, port).execute_command("CLUSTER", "SLOTS")
            owned = {s for first, last, *_ in text for s in range(first, last + 1)}
            if empty_slot in owned or keyed_slot in owned:
                return False
        return True

    wait_for(unowned_everywhere, what="both slots unassigned in every view")
    r = run_agent("fix", c.seed, "--journal", journal_dir(), env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert (f"slot {keyed_slot}: no owner, keys on {c.addr(src)} 1 keys: not assigned"
            in r.stdout), r.stdout
    assert f"slots {empty_slot}: no owner and no key anywhere: CLUSTER ADDSLOTS" in r.stdout
    wait_for(lambda: empty_slot in set().union(*[set(slots_of(c, p)) for p in c.masters_ports()]),
             what="the keyless slot assigned")
    assert all(keyed_slot not in slots_of(c, p) for p in c.masters_ports())
    assert raw(c, src).execute_command("CLUSTER", "COUNTKEYSINSLOT", keyed_slot) == 1
