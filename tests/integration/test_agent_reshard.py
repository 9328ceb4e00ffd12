"""Issue 3, test 1: reshard 2000 slots in several batches under a live RedisCluster client.

200k+ keys over all slots (strings, hashes, lists, sets, zsets, TTL keys, 1 MB values). While a
python3-redis RedisCluster client writes and reads back its own keys in the moving slots (and
reads dataset keys there) the agent moves 2000 slots in batches of 200. Afterwards: zero client
errors, zero wrong values, and the cluster whole (assert_cluster_whole: every key present with
its type, value and TTL at its slot's owner, none stranded, nothing open, `check` and
`redis-cli --cluster check` healthy).
"""
import pytest

from agent_helpers import (ClientLoad, Dataset, assert_cluster_whole, journal_dir, master_ids,
                           password_env, run_agent, slots_of, snapshot)
from harness import require_binary


@pytest.mark.core
def test_reshard_2000_slots_under_client_load(cluster):
    require_binary("redis-cli")
    data = Dataset(small=200000, others=2000, big=3, ttl=2000).load(cluster)
    before = snapshot(cluster, data.keys)
    assert len(before) >= 200000

    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    moving = slots_of(cluster, src_port)[:2000]
    client = ClientLoad(cluster, moving, data.keys).start()
    try:
        r = run_agent("reshard", cluster.seed, "--from", src_id, "--to", f"127.0.0.1:{dst_port}",
                      "--slots", "2000", "--yes", "--journal", journal_dir(),
                      env=password_env(cluster))
    finally:
        client.stop()
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # Several batches (the default 500 slots each), one line each (not a terminal).
    assert out.count(" slots moved ") == 4, out
    assert "Done: 2000 slots moved" in out

    assert client.ops > 100, f"the client barely ran ({client.ops} ops)"
    assert client.errors == [], client.errors[:5]
    assert client.wrong == [], client.wrong[:5]

    moved = set(moving)
    assert set(slots_of(cluster, dst_port)) >= moved
    assert not (set(slots_of(cluster, src_port)) & moved)
    assert_cluster_whole(cluster, before)
