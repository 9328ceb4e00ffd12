"""Issue 3, test 4: BUSYKEY. The target already holds a key of a slot it does not own.

With a different value the agent stops before moving anything of that group, names the key,
rolls the batch back (exit 2) and overwrites nothing: the source keeps its value, the target's
stray copy is untouched. With an equal value the move proceeds and the key ends at the target.
"""
from agent_helpers import (Dataset, assert_cluster_whole, delete_strays, journal_dir, key_in_slot,
                           master_ids, plant_stray, raw, read_stray, run_agent, slots_of, snapshot)


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
    # The planted copy is still a stray, and `check` says so; once it is gone all is whole.
    chk = run_agent("check", cluster.seed)
    assert chk.returncode == 1, chk.stdout + chk.stderr
    assert (f"[ERR] Node 127.0.0.1:{dst_port} holds 1 keys of slot {slot} it does not own"
            in chk.stdout.splitlines()), chk.stdout
    delete_strays(cluster, dst_port, src_id, slot, key)
    assert_cluster_whole(cluster, before)


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
    assert_cluster_whole(cluster, before)


def test_busykey_different_value_with_replace_overwrites(cluster):
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    slots = slots_of(cluster, src_port)[:50]
    slot = slots[10]
    key = key_in_slot(slot)
    raw(cluster, src_port).set(key, "source-value")
    plant_stray(cluster, dst_port, src_id, slot, key, "target-value")
    before = snapshot(cluster, [key])
    r = run_agent("reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--ranges",
                  f"{slots[0]}-{slots[-1]}", "--replace", "--journal", journal_dir())
    assert r.returncode == 0, r.stdout + r.stderr
    assert raw(cluster, dst_port).get(key) == b"source-value"
    assert_cluster_whole(cluster, before)
