"""Redis 6.2 and an ACL user: the agent's MIGRATE carries `AUTH2 user password` (6.0+), and a
reshard run as that user moves every key while the default user has another password (so a
MIGRATE that fell back to `AUTH password` would be refused by the target).

Runs on the 6.2.16 build of scripts/build-servers.sh (found with its --list); skipped when that
build is absent (fails in CI, where scripts/test.sh builds it). The same reshard on the default server is in test_agent_check.py."""
import os
import tempfile

import pytest

from agent_helpers import (Dataset, assert_cluster_whole, journal_dir, master_ids, raw,
                           run_agent, slots_of, snapshot)
from harness import Cluster, require_server

SERVER = "redis-6.2.16"


@pytest.fixture
def redis62_auth_cluster(monkeypatch):
    bin_dir = require_server(SERVER)
    # The harness and scripts/redis-cluster.sh run redis-server/redis-cli from PATH.
    monkeypatch.setenv("PATH", bin_dir + os.pathsep + os.environ["PATH"])
    fd, path = tempfile.mkstemp(prefix="slotguard-pw-")
    os.write(fd, b"default-pass\n")
    os.close(fd)
    c = Cluster(masters=3, replicas=1, password_file=path)
    try:
        yield c
    finally:
        c.down()
        os.unlink(path)


def test_reshard_as_acl_user_on_redis62(redis62_auth_cluster):
    cluster = redis62_auth_cluster
    for p in cluster.ports:
        assert cluster.client(p).info("server")["redis_version"].startswith("6.2."), p
    data = Dataset(small=3000, others=50, big=0, ttl=50).load(cluster)
    before = snapshot(cluster, data.keys)
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)

    for p in cluster.ports:
        raw(cluster, p).execute_command("ACL", "SETUSER", "mover", "on", ">mover-pass", "~*",
                                        "&*", "+@all")
    fd, pw = tempfile.mkstemp(prefix="slotguard-pw-mover-")
    os.write(fd, b"mover-pass\n")
    os.close(fd)
    try:
        r = run_agent("reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--slots", "150",
                      "--user", "mover", "--password-file", pw, "--journal", journal_dir())
    finally:
        os.unlink(pw)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mover-pass" not in r.stdout + r.stderr
    assert len(set(slots_of(cluster, dst_port)) - set(range(5461, 10923))) == 150

    # Keys really travelled by MIGRATE, authenticated as the ACL user, none failed.
    migrate = cluster.client(src_port).info("commandstats")["cmdstat_migrate"]
    assert migrate["calls"] > 0 and migrate["failed_calls"] == 0, migrate
    assert cluster.client(dst_port).info("commandstats").get("cmdstat_restore-asking", {}) \
        .get("calls", 0) > 0
    assert_cluster_whole(cluster, before)
