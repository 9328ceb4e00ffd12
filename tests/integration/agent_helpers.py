"""Shared by the test_agent_*.py integration tests (engine: check, reshard, plan).

Loads data fast (one pipeline per master, each key sent to the master that owns its slot),
snapshots every key (type, value, TTL) and compares snapshots, runs the agent binary, and
checks a cluster whole after a move (assert_cluster_whole).
"""
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))

from harness import bin_path, wait_for  # noqa: E402,F401

import redis  # noqa: E402
from redis.crc import key_slot  # noqa: E402

AGENT = "slotguard-agent"


def agent_bin():
    return bin_path(AGENT)


def run_agent(*args, env=None, timeout=300):
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([agent_bin(), *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout)


def slot_owners(cluster):
    """slot -> port of the master that owns it (from CLUSTER SLOTS of the seed)."""
    owners = {}
    for first, last, master, *_ in cluster.client(cluster.base).execute_command("CLUSTER SLOTS"):
        port = int(master[1])
        for s in range(int(first), int(last) + 1):
            owners[s] = port
    return owners


def master_ids(cluster):
    """[(port, node id)] of the masters, ordered by port."""
    out = []
    for p in sorted(cluster.masters_ports()):
        out.append((p, cluster.node_id(p)))
    return out


def slots_of(cluster, port):
    owners = slot_owners(cluster)
    return sorted(s for s, p in owners.items() if p == port)


def raw(cluster, port):
    return redis.Redis(host="127.0.0.1", port=port, password=cluster.password, socket_timeout=10,
                       **cluster._ssl_kw())


class Dataset:
    """Keys spread over all slots: strings, hashes, lists, sets, zsets, keys with TTL and a few
    1 MB values. `small` is the number of plain string keys; the other types come on top."""

    def __init__(self, small=200000, others=2000, big=3, ttl=2000, prefix="d"):
        self.keys = []
        self.p = prefix
        self.small, self.others, self.big, self.ttl = small, others, big, ttl

    def load(self, cluster):
        owners = slot_owners(cluster)
        pipes = {p: raw(cluster, p).pipeline(transaction=False) for p in set(owners.values())}
        pending = {p: 0 for p in pipes}
        p = self.p

        def put(key, fn):
            port = owners[key_slot(key.encode())]
            fn(pipes[port])
            pending[port] += 1
            self.keys.append(key)
            if pending[port] >= 5000:
                pipes[port].execute()
                pending[port] = 0

        for i in range(self.small):
            k = f"{p}:s:{i}"
            put(k, lambda pl, k=k, i=i: pl.set(k, f"value-{i}-" + "x" * (i % 40)))
        for i in range(self.others):
            k = f"{p}:h:{i}"
            put(k, lambda pl, k=k, i=i: pl.hset(k, mapping={f"f{j}": f"{i}.{j}" for j in range(5)}))
            k = f"{p}:l:{i}"
            put(k, lambda pl, k=k, i=i: pl.rpush(k, *[f"{i}-{j}" for j in range(5)]))
            k = f"{p}:st:{i}"
            put(k, lambda pl, k=k, i=i: pl.sadd(k, *[f"m{i}-{j}" for j in range(5)]))
            k = f"{p}:z:{i}"
            put(k, lambda pl, k=k, i=i: pl.zadd(k, {f"m{j}": i + j / 10 for j in range(5)}))
        for i in range(self.ttl):
            k = f"{p}:t:{i}"
            put(k, lambda pl, k=k, i=i: pl.set(k, f"ttl-{i}", ex=3600 + i))
        for i in range(self.big):
            k = f"{p}:big:{i}"
            put(k, lambda pl, k=k, i=i: pl.set(k, (f"{i}" * 1048576)[:1048576]))
        for pl in pipes.values():
            pl.execute()
        return self


def _read(pl, key):
    """Queues the command that reads `key`'s value, by the type its name says."""
    kind = key.split(":")[1]
    if kind == "h":
        pl.hgetall(key)
    elif kind == "l":
        pl.lrange(key, 0, -1)
    elif kind == "st":
        pl.smembers(key)
    elif kind == "z":
        pl.zrange(key, 0, -1, withscores=True)
    else:
        pl.get(key)


def snapshot(cluster, keys):
    """key -> (TYPE, value, PTTL) read from the master that owns the key's slot now.

    Values are compared, not DUMP payloads: a set's payload depends on its hash table's
    iteration order, which RESTORE does not keep."""
    owners = slot_owners(cluster)
    by_port = {}
    for k in keys:
        by_port.setdefault(owners[key_slot(k.encode())], []).append(k)
    out = {}
    for port, ks in by_port.items():
        r = raw(cluster, port)
        for i in range(0, len(ks), 5000):
            part = ks[i:i + 5000]
            pl = r.pipeline(transaction=False)
            for k in part:
                pl.type(k)
                _read(pl, k)
                pl.pttl(k)
            res = pl.execute()
            for j, k in enumerate(part):
                t, v, ttl = res[3 * j], res[3 * j + 1], res[3 * j + 2]
                out[k] = (t, v if t != b"none" else None, ttl)
    return out


def compare(before, after, ttl_tolerance_ms=120000):
    """Problems found (empty when every key is present with its value and TTL)."""
    problems = []
    for k, (kind, value, ttl) in before.items():
        got = after.get(k)
        if got is None or got[1] is None:
            problems.append(f"{k}: missing")
            continue
        if got[0] != kind or got[1] != value:
            problems.append(f"{k}: value differs")
            continue
        if (ttl < 0) != (got[2] < 0):
            problems.append(f"{k}: TTL {ttl} became {got[2]}")
        elif ttl >= 0 and not (ttl - ttl_tolerance_ms <= got[2] <= ttl):
            problems.append(f"{k}: TTL {ttl} became {got[2]}")
        if len(problems) > 20:
            break
    return problems


def nodes_config(cluster):
    """port -> CLUSTER NODES without the ping/pong timestamps (what must not change)."""
    out = {}
    for p in cluster.ports:
        text = raw(cluster, p).execute_command("CLUSTER", "NODES").decode()
        lines = []
        for line in text.strip().splitlines():
            f = line.split()
            lines.append(" ".join(f[:4] + f[6:]))
        out[p] = sorted(lines)
    return out


def open_slots(cluster, port):
    """(migrating, importing) slot lists on `port`, from its own CLUSTER NODES line."""
    text = raw(cluster, port).execute_command("CLUSTER", "NODES").decode()
    mig, imp = [], []
    for line in text.splitlines():
        f = line.split()
        if "myself" not in f[2]:
            continue
        for e in f[8:]:
            if e.startswith("[") and "->-" in e:
                mig.append(int(e[1:].split("-")[0]))
            elif e.startswith("[") and "-<-" in e:
                imp.append(int(e[1:].split("-")[0]))
    return mig, imp


def owner_in_view(cluster, port, slot):
    """Node id owning `slot` in `port`'s own CLUSTER NODES view."""
    text = raw(cluster, port).execute_command("CLUSTER", "NODES").decode()
    for line in text.splitlines():
        f = line.split()
        for e in f[8:]:
            if e.startswith("["):
                continue
            a, _, b = e.partition("-")
            if int(a) <= slot <= int(b or a):
                return f[0]
    return None


def all_views_agree(cluster):
    texts = set()
    for p in cluster.ports:
        text = raw(cluster, p).execute_command("CLUSTER", "NODES").decode()
        cfg = []
        for line in text.splitlines():
            f = line.split()
            slots = [e for e in f[8:] if not e.startswith("[")]
            if slots:
                cfg.append(f[0] + ":" + ",".join(sorted(slots)))
        texts.add("|".join(sorted(cfg)))
    return len(texts) == 1


def own_line(cluster, port):
    """The fields of `port`'s own (myself) line in its CLUSTER NODES."""
    text = raw(cluster, port).execute_command("CLUSTER", "NODES").decode()
    return next(line.split() for line in text.splitlines() if "myself" in line.split()[2])


def stray_keys(cluster):
    """[(port, slot, keys)]: keys each master holds in slots it does not own in its own view
    (an importing slot included), from COUNTKEYSINSLOT over all of them in one pipeline per
    master. Replicas hold their master's keys and are not asked."""
    out = []
    for port in cluster.ports:
        f = own_line(cluster, port)
        if "master" not in f[2].split(","):
            continue
        owned = set()
        for e in f[8:]:
            if not e.startswith("["):
                a, _, b = e.partition("-")
                owned.update(range(int(a), int(b or a) + 1))
        slots = [s for s in range(16384) if s not in owned]
        pl = raw(cluster, port).pipeline(transaction=False)
        for s in slots:
            pl.execute_command("CLUSTER", "COUNTKEYSINSLOT", s)
        out += [(port, s, n) for s, n in zip(slots, pl.execute()) if n]
    return out


def key_in_slot(slot, prefix="busy", n=0):
    """The n-th key `prefix:<i>` that hashes to `slot`."""
    i = found = 0
    while True:
        k = f"{prefix}:{i}"
        if key_slot(k.encode()) == slot:
            if found == n:
                return k
            found += 1
        i += 1


def at_non_owner(cluster, port, owner_id, slot, *commands):
    """Runs `commands` on `port`, which does not own `slot`, the way a half-done move reaches
    it: IMPORTING from the owner, ASKING before each command, then STABLE again. Returns the
    commands' replies."""
    r = raw(cluster, port)
    r.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", owner_id)
    pl = r.pipeline(transaction=False)
    for c in commands:
        pl.execute_command("ASKING")
        pl.execute_command(*c)
    replies = pl.execute()[1::2]
    r.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
    return replies


def plant_stray(cluster, port, owner_id, slot, key, value):
    """Writes `key` on `port`, which does not own `slot` (as a half-done move would leave it)."""
    at_non_owner(cluster, port, owner_id, slot, ("SET", key, value))


def read_stray(cluster, port, owner_id, slot, key):
    return at_non_owner(cluster, port, owner_id, slot, ("GET", key))[0]


def delete_strays(cluster, port, owner_id, slot, *keys):
    at_non_owner(cluster, port, owner_id, slot, ("DEL", *keys))


def _settled(cluster):
    """Every view agrees, none flags a node fail/pfail, and no two masters share a config epoch
    (see Cluster.master_epochs_unique): what gossip settles by itself after a move or a stopped
    node."""
    if not all_views_agree(cluster):
        return False
    for port in cluster.ports:
        text = raw(cluster, port).execute_command("CLUSTER", "NODES").decode()
        if any(flag in ("fail", "fail?") for line in text.splitlines()
               for flag in line.split()[2].split(",")):
            return False
    return cluster.master_epochs_unique()


def assert_cluster_whole(cluster, before, timeout=30, ttl_tolerance_ms=120000):
    """The key-level check after anything that moved slots: every key of `before` (a snapshot())
    readable at its slot's owner with its value and TTL, no key on a master that does not own
    its slot, no slot open anywhere, all views agree; and `slotguard-agent check` (and
    `redis-cli --cluster check` where installed) say healthy. Waits (bounded) for gossip to
    settle first; nothing else is waited for."""
    wait_for(lambda: _settled(cluster), timeout=timeout,
             what="every view to agree with no node flagged fail")
    opened = {p: open_slots(cluster, p) for p in cluster.ports}
    opened = {p: o for p, o in opened.items() if o != ([], [])}
    assert opened == {}, f"slots left open (port: (migrating, importing)): {opened}"
    problems = compare(before, snapshot(cluster, list(before)), ttl_tolerance_ms)
    assert problems == [], problems[:20]
    strays = stray_keys(cluster)
    assert strays == [], f"keys in slots their node does not own (port, slot, keys): {strays[:20]}"
    chk = run_agent("check", cluster.url, *cluster.tls_flags(), env=password_env(cluster))
    assert chk.returncode == 0, chk.stdout + chk.stderr + "\n" + _views_text(cluster)
    if shutil.which("redis-cli"):
        rc, text = cluster.cluster_check()
        assert rc == 0, text


def _views_text(cluster):
    """Every node's CLUSTER NODES, for the message of a failed whole-cluster check."""
    out = []
    for p in cluster.ports:
        try:
            text = raw(cluster, p).execute_command("CLUSTER", "NODES").decode()
            out.append(f"--- CLUSTER NODES of {p}:\n" + text)
        except Exception as e:  # a node down is part of the picture
            out.append(f"--- {p}: {e}")
    return "\n".join(out)


def is_redis_py_ask_bug(exc):
    """python3-redis 4.3.4 (bookworm) follows -ASK only to a node it learned from CLUSTER SLOTS,
    which leaves out a master that owns no slot yet: moving keys to a new, empty master makes it
    raise AttributeError on None (redis/redis-py#2432, fix pending in #4214; ioredis fixed the
    same in 2016). It is the client's, whoever moves the slots: counted apart, not as an error."""
    return isinstance(exc, AttributeError) and "'NoneType' object has no attribute" in str(exc) \
        and "server_type" in str(exc)


class ClientLoad:
    """A python3-redis RedisCluster client that writes and reads back its own keys (all in the
    slots being moved) and reads dataset keys, the whole time, counting errors and wrong values.
    """

    def __init__(self, cluster, slots, dataset_keys=(), n_keys=400):
        self.cluster = cluster
        self.errors = []
        self.error_times = []  # time.time() of each error, for telling fault windows apart
        self.client_bugs = []  # see is_redis_py_ask_bug
        self.wrong = []
        self.ops = 0
        self.stop_flag = threading.Event()
        wanted = set(slots)
        self.keys = []
        i = 0
        while len(self.keys) < n_keys and i < 10_000_000:
            k = f"client:{i}"
            if key_slot(k.encode()) in wanted:
                self.keys.append(k)
            i += 1
        self.reads = [k for k in dataset_keys if ":s:" in k and key_slot(k.encode()) in wanted][:2000]
        self.latencies = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.client = self.cluster.cluster_client()
        self.expected = {}
        for k in self.keys:
            self.client.set(k, "0")
            self.expected[k] = "0"
        self.thread.start()
        return self

    def run(self):
        n = 0
        while not self.stop_flag.is_set():
            k = self.keys[n % len(self.keys)]
            n += 1
            t0 = time.perf_counter()
            try:
                v = str(n)
                self.client.set(k, v)
                self.expected[k] = v
                got = self.client.get(k)
                if got != v:
                    self.wrong.append((k, v, got))
                if self.reads:
                    rk = self.reads[n % len(self.reads)]
                    i = int(rk.rsplit(":", 1)[1])
                    want = f"value-{i}-" + "x" * (i % 40)
                    got = self.client.get(rk)
                    if got != want:
                        self.wrong.append((rk, want, got))
                self.ops += 1
            except Exception as exc:  # every error counts: the test wants none
                if is_redis_py_ask_bug(exc):
                    self.client_bugs.append(repr(exc))
                    continue
                self.error_times.append(time.time())
                self.errors.append(repr(exc))
            self.latencies.append(time.perf_counter() - t0)

    def stop(self):
        self.stop_flag.set()
        self.thread.join(timeout=30)
        # Everything written must read back from the final owners.
        for k, v in self.expected.items():
            try:
                got = self.client.get(k)
                if got != v:
                    self.wrong.append((k, v, got))
            except Exception as exc:
                self.error_times.append(time.time())
                self.errors.append(repr(exc))
        return self

    def close(self):
        """Closes every connection the client holds. RedisCluster.close() leaves the pools of
        nodes it no longer lists (a master that gave away its last slot) connected."""
        nodes = self.client.nodes_manager
        for node in list(nodes.nodes_cache.values()) + list(nodes.startup_nodes.values()):
            if node.redis_connection:
                node.redis_connection.connection_pool.disconnect()
        self.client.close()


def password_env(cluster):
    return {"REDIS_PASSWORD": cluster.password} if cluster.password else {}


def journal_dir():
    return tempfile.mkdtemp(prefix="slotguard-journal-")


CrashedReshard = collections.namedtuple(
    "CrashedReshard", "data before src_port src_id dst_port dst_id moving journal args")


def crash_reshard(cluster, point, n_slots, dataset):
    """Loads `dataset`, snapshots it, then runs a reshard of the source's `n_slots` lowest slots
    (one batch of up to 300, groups of 100) that the SLOTGUARD_TEST_CRASH_AT hook SIGKILLs at
    `point`. Returns what the test needs to check the crash state and rerun the command."""
    data = dataset.load(cluster)
    before = snapshot(cluster, data.keys)
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    moving = slots_of(cluster, src_port)[:n_slots]
    journal = journal_dir()
    args = ["reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--slots", str(n_slots),
            "--batch-slots", "300", "--group-slots", "100", "--journal", journal]
    crashed = run_agent(*args, env={"SLOTGUARD_TEST_CRASH_AT": point})
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    return CrashedReshard(data, before, src_port, src_id, dst_port, dst_id, moving, journal, args)
