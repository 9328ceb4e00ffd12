"""Issue 3, test 4: BUSYKEY. The target already holds a key of a slot it does not own.

With a different value the agent stops before moving anything of that group, names the key,
rolls the batch back (exit 2) and overwrites nothing: the source keeps its value, the target's
stray copy is untouched. With an equal value the move proceeds and the key ends at the target.
"""
from agent_helpers import (Dataset, compare, journal_dir, master_ids, raw, run_agent, slots_of,
                           snapshot)
from redis.crc import key_slot


def key_in_slot(slot, prefix="busy"):
    i = 0
    while True:
        k = f"{prefix}:{i}"
        if key_slot(k.encode()) == slot:
            return k
        i += 1


def plant_stray(cluster, port, owner_id, slot, key, value):
    """Writes `key` on `port`, which does not own `slot` (as a half-done move would leave it)."""
    r = raw(cluster, port)
    r.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", owner_id)
    pl = r.pipeline(transaction=False)
    pl.execute_command("ASKING")
    pl.set(key, value)
    pl.execute()
    r.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")


def read_stray(cluster, port, owner_id, slot, key):
    r = raw(cluster, port)
    r.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", owner_id)
    pl = r.pipeline(transaction=False)
    pl.execute_command("ASKING")
    pl.get(key)
    value = pl.execute()[1]
    r.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
    return value


def test_busykey_different_value_stops_and_overwrites_nothing(cluster):
    data = Dataset(small=20000, others=100, big=0, ttl=100).load(cluster)
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    slots = slots_of(cluster, src_port)[:300]
    # The conflict sits in the second group of the batch: the first group moves, then comes back.
    slot = slots[150]
    key = key_in_slot(slot)
    raw(cluster, src_port).set(key, "source-value")
    plant_stray(cluster, dst_port, src_id, slot, key, "target-value")
    before = snapshot(cluster, data.keys + [key])

    r = run_agent("reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--ranges",
                  f"{slots[0]}-{slots[-1]}", "--journal", journal_dir())
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "BUSYKEY" in out and key in out, out

    assert raw(cluster, src_port).get(key) == b"source-value"
    assert read_stray(cluster, dst_port, src_id, slot, key) == b"target-value"
    assert set(slots) <= set(slots_of(cluster, src_port))
    problems = compare(before, snapshot(cluster, data.keys + [key]))
    assert problems == [], problems
    chk = run_agent("check", cluster.seed)
    assert chk.returncode == 0, chk.stdout + chk.stderr


def test_busykey_equal_value_proceeds(cluster):
    data = Dataset(small=20000, others=100, big=0, ttl=100).load(cluster)
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    slots = slots_of(cluster, src_port)[:200]
    slot = slots[50]
    key = key_in_slot(slot)
    raw(cluster, src_port).set(key, "same-value")
    plant_stray(cluster, dst_port, src_id, slot, key, "same-value")
    before = snapshot(cluster, data.keys + [key])

    r = run_agent("reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--ranges",
                  f"{slots[0]}-{slots[-1]}", "--journal", journal_dir())
    assert r.returncode == 0, r.stdout + r.stderr
    assert set(slots) <= set(slots_of(cluster, dst_port))
    assert raw(cluster, dst_port).get(key) == b"same-value"
    assert raw(cluster, src_port).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    problems = compare(before, snapshot(cluster, data.keys + [key]))
    assert problems == [], problems
    assert run_agent("check", cluster.seed).returncode == 0


def test_busykey_different_value_with_replace_overwrites(cluster):
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    slots = slots_of(cluster, src_port)[:50]
    slot = slots[10]
    key = key_in_slot(slot)
    raw(cluster, src_port).set(key, "source-value")
    plant_stray(cluster, dst_port, src_id, slot, key, "target-value")
    r = run_agent("reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--ranges",
                  f"{slots[0]}-{slots[-1]}", "--replace", "--journal", journal_dir())
    assert r.returncode == 0, r.stdout + r.stderr
    assert raw(cluster, dst_port).get(key) == b"source-value"
