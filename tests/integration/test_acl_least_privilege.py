"""Least-privilege ACL users (issue 10): the exporter and the agent run as exactly the users
the README's `ACL SETUSER` lines create, on a cluster whose default user is disabled.

The lines are read from README.md itself, so the test and the documentation cannot drift
apart. The exporter scrapes every node; the agent checks the cluster and reshards under a
live client with every key intact. Taking one permission away (`-cluster|countkeysinslot`
while a slot is open) gives one log line naming the command, not one per scrape.
"""
import os
import re
import shlex
import tempfile

import pytest
import redis
from redis.cluster import RedisCluster

import agent_helpers
from agent_helpers import (ClientLoad, Dataset, assert_cluster_whole, journal_dir, master_ids,
                           run_agent, snapshot)
from exporter_support import Exporter
from harness import SOURCE_DIR, Cluster, wait_for

APP_USER, APP_PASS = "app", "app-pass"  # the test's own client and checks
PASSWORDS = {"slotguard-exporter": "exporter-pass", "slotguard-agent": "agent-pass"}


def readme_acl_lines():
    """{user: [ACL SETUSER argv...]} from the README's ACL section (PASSWORD substituted)."""
    text = open(os.path.join(SOURCE_DIR, "README.md")).read()
    section = text.split("## Least-privilege ACL users", 1)[1].split("\n## ", 1)[0]
    out = {}
    for block in re.findall(r"```\n(.*?)```", section, re.S):
        command = " ".join(line.rstrip("\\").strip() for line in block.strip().splitlines())
        if not command.startswith("ACL SETUSER slotguard-"):
            continue
        argv = shlex.split(command)
        user = argv[2]
        out[user] = [a.replace("PASSWORD", PASSWORDS[user]) for a in argv]
    assert set(out) == set(PASSWORDS), f"README ACL lines for {sorted(out)}"
    return out


def password_file(password):
    fd, path = tempfile.mkstemp(prefix="slotguard-acl-pw-")
    os.write(fd, (password + "\n").encode())
    os.close(fd)
    return path


@pytest.fixture
def acl_cluster(monkeypatch):
    c = Cluster(masters=3, replicas=0)
    admin = {p: redis.Redis(host="127.0.0.1", port=p, decode_responses=True, socket_timeout=5)
             for p in c.ports}
    try:
        lines = readme_acl_lines()
        for p, r in admin.items():
            r.execute_command("ACL", "SETUSER", APP_USER, "on", f">{APP_PASS}", "~*", "&*",
                              "+@all")
            for argv in lines.values():
                r.execute_command(*argv)
        # From here on every connection must name its user: the default one is off. The
        # cluster bus does not use it.
        for p in c.ports:
            redis.Redis(host="127.0.0.1", port=p, username=APP_USER, password=APP_PASS) \
                .execute_command("ACL", "SETUSER", "default", "off")
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=c.base).ping()
        # The harness's own reads (snapshot, checks) go as the app user.
        c.client = lambda port, **kw: redis.Redis(
            host="127.0.0.1", port=port, username=APP_USER, password=APP_PASS,
            decode_responses=True, socket_timeout=5, **kw)
        monkeypatch.setattr(agent_helpers, "raw", lambda cluster, port: redis.Redis(
            host="127.0.0.1", port=port, username=APP_USER, password=APP_PASS, socket_timeout=10))
        c.cluster_client = lambda **kw: RedisCluster(
            host="127.0.0.1", port=c.base, username=APP_USER, password=APP_PASS,
            decode_responses=True, **kw)
        yield c
    finally:
        c.down()


def as_user(user):
    path = password_file(PASSWORDS[user])
    return path


def test_exporter_as_least_privilege_user(acl_cluster):
    cluster = acl_cluster
    pw = as_user("slotguard-exporter")
    exporter = Exporter(["--redis.addr", cluster.seed, "--redis.user", "slotguard-exporter",
                         "--redis.password-file", pw, "--scrape.timeout", "5s"])
    try:
        scrape = exporter.scrape()
        assert scrape.values("redis_up") == [1.0] * 3, exporter.output()
        assert scrape.value("redis_cluster_slots_covered") == 16384
        assert "NOPERM" not in exporter.output()

        # An open slot with keys: the exporter counts them with CLUSTER COUNTKEYSINSLOT.
        (src, src_id), (dst, dst_id), _ = master_ids(cluster)
        slot = 0
        key = "{06S}k"  # slot 0
        client = cluster.client(src)
        assert client.execute_command("CLUSTER", "KEYSLOT", key) == slot
        client.set(key, "v")
        cluster.client(dst).execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        try:
            wait_for(lambda: exporter.scrape().values("redis_cluster_open_slot_keys"),
                     timeout=15, what="open slot key count")
            # Take the permission away on the source: the count cannot be read any more.
            client.execute_command("ACL", "SETUSER", "slotguard-exporter",
                                   "-cluster|countkeysinslot")
            for _ in range(3):
                scrape = exporter.scrape()
                assert scrape.values("redis_up") == [1.0] * 3  # the node itself is fine
            lines = [l for l in exporter.output().splitlines()
                     if "COUNTKEYSINSLOT" in l and "NOPERM" in l]
            assert len(lines) == 1, exporter.output()  # once, not per scrape
            assert "README" in lines[0] and "127.0.0.1:%d" % src in lines[0], lines[0]
        finally:
            client.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
            cluster.client(dst).execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
            client.delete(key)
        # Without CLUSTER INFO a node cannot be scraped at all: redis_up 0, and the log line
        # names CLUSTER INFO (not CLUSTER NODES), once.
        cluster.client(dst).execute_command("ACL", "SETUSER", "slotguard-exporter", "-cluster|info")
        for _ in range(3):
            scrape = exporter.scrape()
        assert sorted(scrape.values("redis_up")) == [0.0, 1.0, 1.0]
        lines = [l for l in exporter.output().splitlines() if "down:" in l]
        assert len(lines) == 1, exporter.output()
        assert f"127.0.0.1:{dst} down: CLUSTER INFO refused: NOPERM" in lines[0], lines[0]
        assert "exporter-pass" not in exporter.output()
    finally:
        exporter.stop()
        os.unlink(pw)


def test_agent_check_and_reshard_as_least_privilege_user(acl_cluster):
    cluster = acl_cluster
    pw = as_user("slotguard-agent")
    creds = ["--user", "slotguard-agent", "--password-file", pw]
    try:
        data = Dataset(small=3000, others=50, big=0, ttl=50).load(cluster)
        before = snapshot(cluster, data.keys)
        r = run_agent("check", cluster.seed, *creds)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "NOPERM" not in r.stdout + r.stderr

        (src, src_id), (dst, dst_id), _ = master_ids(cluster)
        load = ClientLoad(cluster, range(0, 200), data.keys).start()
        try:
            r = run_agent("reshard", cluster.seed, "--from", src_id, "--to", dst_id,
                          "--slots", "100", *creds, "--journal", journal_dir(), timeout=120)
        finally:
            load.stop()
        assert r.returncode == 0, r.stdout + r.stderr
        assert "agent-pass" not in r.stdout + r.stderr
        assert load.errors == [] and load.wrong == [], (load.errors[:5], load.wrong[:5])
        migrate = cluster.client(src).info("commandstats")["cmdstat_migrate"]
        assert migrate["calls"] > 0 and migrate["failed_calls"] == 0, migrate
    finally:
        os.unlink(pw)
    # The key-level check runs `slotguard-agent check` as the default user: turn it back on.
    for p in cluster.ports:
        cluster.client(p).execute_command("ACL", "SETUSER", "default", "on")
    assert_cluster_whole(cluster, before)


def test_reshard_refuses_before_opening_a_slot_when_migrate_would_be_refused(acl_cluster):
    """The agent user without +select on the target: MIGRATE's own connection there would be
    refused (NOPERM) once slots are open, and then no key could move either way. The agent
    tries the commands MIGRATE runs where they change nothing, and refuses the batch first."""
    cluster = acl_cluster
    pw = as_user("slotguard-agent")
    creds = ["--user", "slotguard-agent", "--password-file", pw]
    try:
        data = Dataset(small=2000, others=20, big=0, ttl=20).load(cluster)
        before = snapshot(cluster, data.keys)
        (src, src_id), (dst, dst_id), _ = master_ids(cluster)
        cluster.client(dst).execute_command("ACL", "SETUSER", "slotguard-agent", "-select")
        r = run_agent("reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--slots", "50",
                      *creds, "--journal", journal_dir(), timeout=120)
        out = r.stdout + r.stderr
        assert r.returncode == 1, out
        assert (f"the ACL user slotguard-agent cannot run SELECT on 127.0.0.1:{dst}" in out
                and "NOPERM" in out and "Nothing was changed" in out), out
        assert "agent-pass" not in out
        assert "[" not in cluster.client(src).execute_command("CLUSTER", "NODES")  # none open
    finally:
        os.unlink(pw)
    for p in cluster.ports:
        cluster.client(p).execute_command("ACL", "SETUSER", "default", "on")
    assert_cluster_whole(cluster, before)
