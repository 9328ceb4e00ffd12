#!/usr/bin/env bash
# Adding a fourth, empty master to a loaded 3-master/3-replica loopback cluster:
# `slotguard-agent rebalance --use-empty-masters` vs `redis-cli --cluster rebalance
# --cluster-use-empty-masters` on the same data, while a python3-redis RedisCluster client reads
# and writes keys of every slot (its errors and latency percentiles are reported per tool). After
# each timed run the new master is drained again (untimed, `slotguard-agent drain`), so every run
# starts from the same layout. slotguard runs twice: as the runbook has it (a target receives one
# batch at a time, so the three moves run one after another) and with --per-target 3 (the three
# sources send to the new master at the same time). Medians over RUNS and the ratios are printed
# at the end. Not CI.
#
#   bench/rebalance_bench.sh                       KEYS=300000 RUNS=3
#
# Environment: KEYS (64-byte values, default 300000), RUNS (default 3), SLOTGUARD_BUILD_DIR,
# SHOW_AGENT_OUTPUT=1 (print slotguard's output of each run: a line per batch with its time),
# AGENT_VARIANTS (";"-separated extra flags of the default run, one more timed variant each,
# e.g. "--batch-slots 200" for a paired comparison).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${SLOTGUARD_BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
AGENT="$BUILD_DIR/bin/slotguard-agent"
[ -x "$AGENT" ] || { echo "bench: build first: cmake --build $BUILD_DIR --target slotguard-agent" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "bench: redis-cli is not installed (scripts/install-deps.sh)" >&2; exit 1; }

DIR=$(mktemp -d /tmp/slotguard-rebalance-bench-XXXXXX)
cleanup() {
  "$ROOT/scripts/redis-cluster.sh" down "$DIR/cluster" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

BASE=""
for _ in $(seq 30); do
  b=$(( (RANDOM % 800) * 10 + 22000 ))
  if CLUSTER_NODE_TIMEOUT=15000 "$ROOT/scripts/redis-cluster.sh" up "$DIR/cluster" "$b" 3 1 >/dev/null 2>&1; then
    BASE=$b
    break
  fi
  "$ROOT/scripts/redis-cluster.sh" down "$DIR/cluster" >/dev/null 2>&1 || true
done
[ -n "$BASE" ] || { echo "bench: could not start a cluster" >&2; exit 1; }
# The fourth master: the same settings, one port above the six, introduced with CLUSTER MEET.
NEW=$((BASE + 6))
mkdir -p "$DIR/cluster/$NEW"
sed -e "s/^port $BASE\$/port $NEW/" -e "s#$DIR/cluster/$BASE#$DIR/cluster/$NEW#g" \
  "$DIR/cluster/$BASE/redis.conf" > "$DIR/cluster/$NEW/redis.conf"
# Stays a master when a drain takes its last slot, so every run starts with it empty.
echo "cluster-allow-replica-migration no" >> "$DIR/cluster/$NEW/redis.conf"
redis-server "$DIR/cluster/$NEW/redis.conf"
for _ in $(seq 100); do redis-cli -p "$NEW" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$BASE" cluster meet 127.0.0.1 "$NEW" >/dev/null

AGENT="$AGENT" BASE="$BASE" NEW="$NEW" DIR="$DIR" KEYS="${KEYS:-300000}" RUNS="${RUNS:-3}" \
SHOW_AGENT_OUTPUT="${SHOW_AGENT_OUTPUT:-}" AGENT_VARIANTS="${AGENT_VARIANTS:-}" \
/usr/bin/python3 - <<'PY'
import logging
import os
import random
import shlex
import statistics
import subprocess
import threading
import time

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

logging.disable(logging.CRITICAL)  # redis-py logs every redirect it follows
AGENT = os.environ["AGENT"]
BASE = int(os.environ["BASE"])
NEW = int(os.environ["NEW"])
DIR = os.environ["DIR"]
KEYS = int(os.environ["KEYS"])
RUNS = int(os.environ["RUNS"])
SEED = f"127.0.0.1:{BASE}"


def owners():
    out = {}
    for first, last, master, *_ in redis.Redis(port=BASE).execute_command("CLUSTER SLOTS"):
        for s in range(first, last + 1):
            out[s] = int(master[1])
    return out


def wait_until(pred, what, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise SystemExit(f"bench: timed out waiting for {what}")


def every_node_knows_new():
    for p in list(range(BASE, BASE + 6)) + [NEW]:
        view = redis.Redis(port=p).cluster("NODES")  # parsed: address -> fields
        addr = f"127.0.0.1:{NEW}"
        if addr not in view or "handshake" in view[addr]["flags"]:
            return False
    return True


wait_until(every_node_knows_new, "the new master to join")


def load():
    own = owners()
    pipes = {p: redis.Redis(port=p).pipeline(transaction=False) for p in set(own.values())}
    value = "v" * 64
    for i in range(KEYS):
        k = f"key:{i}"
        pipes[own[key_slot(k.encode())]].set(k, value)
        if i % 10000 == 9999:
            for pl in pipes.values():
                pl.execute()
    for pl in pipes.values():
        pl.execute()


load()


class Client:
    """Reads and writes random keys of the whole keyspace, paced at about 1000 requests a
    second (an unpaced Python loop would take a core of this 2-core machine away)."""

    def __init__(self):
        self.rc = RedisCluster(host="127.0.0.1", port=BASE)
        self.errors = 0
        self.ask_bug = 0
        self.kinds = []  # the first few errors, as they were raised
        self.lat = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        rng = random.Random(1)
        n = 0
        while not self.stop.is_set():
            k = f"key:{rng.randrange(KEYS)}"
            n += 1
            t0 = time.perf_counter()
            try:
                if n % 2:
                    self.rc.get(k)
                else:
                    self.rc.set(k, "v" * 64)
            except AttributeError as exc:
                # python3-redis 4.3.4 cannot follow -ASK to a master that owned no slot when it
                # read CLUSTER SLOTS (redis/redis-py#2432): the client's bug, counted apart.
                if "server_type" not in str(exc):
                    raise
                self.ask_bug += 1
            except Exception as exc:
                self.errors += 1
                if len(self.kinds) < 5:
                    self.kinds.append(f"{time.strftime('%H:%M:%S')} {k} {exc!r}")
            self.lat.append(time.perf_counter() - t0)
            time.sleep(0.001)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join()


def wait_clean():
    deadline = time.time() + 60
    while time.time() < deadline:
        if subprocess.run([AGENT, "check", SEED], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit("bench: the cluster did not settle")


def journal():
    return os.path.join(DIR, f"journal-{time.time_ns()}")


TOOLS = {
    "redis-cli --cluster rebalance --cluster-use-empty-masters":
        lambda: ["redis-cli", "--cluster", "rebalance", SEED, "--cluster-use-empty-masters"],
    "slotguard-agent rebalance --use-empty-masters":
        lambda: [AGENT, "rebalance", SEED, "--use-empty-masters", "--yes", "--journal", journal()],
    # The three sources fill the new master together (a target receives up to 3 batches at once).
    "slotguard-agent rebalance --use-empty-masters --per-target 3":
        lambda: [AGENT, "rebalance", SEED, "--use-empty-masters", "--yes", "--per-target", "3",
                 "--journal", journal()],
}
# Extra timed variants of the default run, for paired comparisons: AGENT_VARIANTS="--batch-slots 200".
for variant in [shlex.split(v) for v in os.environ.get("AGENT_VARIANTS", "").split(";") if v.strip()]:
    TOOLS["slotguard-agent rebalance --use-empty-masters " + " ".join(variant)] = (
        lambda variant=variant: [AGENT, "rebalance", SEED, "--use-empty-masters", "--yes", *variant,
                                 "--journal", journal()])
results = {name: [] for name in TOOLS}
clients = {name: {"errors": 0, "ask_bug": 0, "lat": []} for name in TOOLS}
moved = {}
for run in range(RUNS):
    for name, cmd in TOOLS.items():
        wait_clean()
        with Client() as c:
            t0 = time.perf_counter()
            r = subprocess.run(cmd(), capture_output=True, text=True)
            dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"bench: {name} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        got = sum(1 for p in owners().values() if p == NEW)
        if abs(got - 4096) > 82:
            raise SystemExit(f"bench: {name} left the new master with {got} slots")
        moved[name] = got
        results[name].append(dt)
        clients[name]["errors"] += c.errors
        clients[name]["ask_bug"] += c.ask_bug
        clients[name]["lat"] += c.lat
        print(f"run {run + 1}: {name}: {dt:.3f} s, {got} slots to the new master, client errors {c.errors} {c.kinds}, redis-py#2432 {c.ask_bug}", flush=True)
        if os.environ.get("SHOW_AGENT_OUTPUT") and name.startswith("slotguard"):
            print(r.stdout, flush=True)  # its batch lines: where the time goes
        wait_clean()
        back = subprocess.run([AGENT, "drain", f"127.0.0.1:{NEW}", "--yes", "--journal", journal()],
                              capture_output=True, text=True)
        if back.returncode != 0:
            raise SystemExit(f"bench: draining back failed:\n{back.stdout[-2000:]}\n{back.stderr[-2000:]}")


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] * 1000 if v else float("nan")


version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
print()
print(f"rebalance benchmark: 3 masters + 3 replicas and one new empty master on loopback ({version}), "
      f"{KEYS} keys of 64 bytes, {RUNS} runs each (medians)")
names = list(TOOLS)
for name in names:
    med = statistics.median(results[name])
    lat = clients[name]["lat"]
    print(f"  {name:<58} {med:8.3f} s  {moved[name]} slots  client: {clients[name]['errors']} errors "
          f"(+{clients[name]['ask_bug']} redis-py#2432), "
          f"{len(lat)} ops, latency p50 {pct(lat, 0.5):.2f} ms p99 {pct(lat, 0.99):.2f} ms max {pct(lat, 1.0):.1f} ms")
for other in names[1:]:
    per_run = sorted(a / b for a, b in zip(results[names[0]], results[other]))
    print(f"  {other}: {statistics.median(results[names[0]]) / statistics.median(results[other]):.1f}x "
          f"faster than redis-cli (per run {per_run[0]:.1f}x-{per_run[-1]:.1f}x)")
PY
