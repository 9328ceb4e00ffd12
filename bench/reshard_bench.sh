#!/usr/bin/env bash
# Resharding speed: slotguard-agent reshard vs redis-cli --cluster reshard (defaults, and
# --cluster-pipeline 1000) on the same freshly loaded 3-master/3-replica loopback cluster.
# Not part of CI.
#
#   bench/reshard_bench.sh                       KEYS=300000 SLOTS=2000 RUNS=3
#   KEYS=100000 SLOTS=1000 RUNS=5 bench/reshard_bench.sh
#
# Each run moves the same SLOTS slots (the source's lowest, which is what redis-cli picks too)
# from master 1 to master 2 with each tool in turn, timed wall-clock around the command, while
# a python3-redis RedisCluster client reads and writes keys in the moving slots (its errors and
# latency percentiles are reported per tool). After each timed move the slots are moved back
# (untimed) so every tool starts from the same layout. Medians over RUNS and the ratios are
# printed at the end.
#
# Environment: KEYS (64-byte values, default 300000), SLOTS (default 2000), RUNS (default 3),
# AGENT_VARIANTS (";"-separated extra slotguard-agent reshard flags, one timed variant each;
# default: the defaults, and --batch-slots 200, the default until 1 Dec 2026), SLOTGUARD_BUILD_DIR
# (default build).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${SLOTGUARD_BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
AGENT="$BUILD_DIR/bin/slotguard-agent"
[ -x "$AGENT" ] || { echo "bench: build first: cmake --build $BUILD_DIR --target slotguard-agent" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "bench: redis-cli is not installed (scripts/install-deps.sh)" >&2; exit 1; }

DIR=$(mktemp -d /tmp/slotguard-reshard-bench-XXXXXX)
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

AGENT="$AGENT" BASE="$BASE" DIR="$DIR" KEYS="${KEYS:-300000}" SLOTS="${SLOTS:-2000}" \
RUNS="${RUNS:-3}" AGENT_VARIANTS="${AGENT_VARIANTS-;--batch-slots 200}" /usr/bin/python3 - <<'PY'
import logging
import os
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
DIR = os.environ["DIR"]
KEYS = int(os.environ["KEYS"])
SLOTS = int(os.environ["SLOTS"])
RUNS = int(os.environ["RUNS"])
AGENT_VARIANTS = [shlex.split(v) for v in os.environ["AGENT_VARIANTS"].split(";")]
SEED = f"127.0.0.1:{BASE}"


def owners():
    out = {}
    for first, last, master, *_ in redis.Redis(port=BASE).execute_command("CLUSTER SLOTS"):
        for s in range(first, last + 1):
            out[s] = int(master[1])
    return out


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


masters = sorted(p for p in range(BASE, BASE + 6)
                 if redis.Redis(port=p).info("replication")["role"] == "master")
src, dst = masters[0], masters[1]
src_id = redis.Redis(port=src).execute_command("CLUSTER MYID").decode()
dst_id = redis.Redis(port=dst).execute_command("CLUSTER MYID").decode()
load()
moving = sorted(s for s, p in owners().items() if p == src)[:SLOTS]
moving_set = set(moving)
moved_keys = sum(redis.Redis(port=src).execute_command("CLUSTER COUNTKEYSINSLOT", s)
                 for s in moving)


class Client:
    """Reads and writes keys of the moving slots the whole time, paced at about 1000 requests
    a second (an unpaced Python loop would take a whole core of this 2-core machine away)."""

    def __init__(self):
        self.keys = [f"key:{i}" for i in range(KEYS) if key_slot(f"key:{i}".encode()) in moving_set][:2000]
        self.rc = RedisCluster(host="127.0.0.1", port=BASE)
        self.errors = 0
        self.lat = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        n = 0
        while not self.stop.is_set():
            k = self.keys[n % len(self.keys)]
            n += 1
            t0 = time.perf_counter()
            try:
                if n % 2:
                    self.rc.get(k)
                else:
                    self.rc.set(k, "v" * 64)
            except Exception:
                self.errors += 1
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
        r = subprocess.run([AGENT, "check", SEED], capture_output=True)
        if r.returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit("bench: the cluster did not settle")


def agent_move(frm, to, extra=()):
    j = os.path.join(DIR, f"journal-{time.time_ns()}")
    return [AGENT, "reshard", SEED, "--from", frm, "--to", to, "--slots", str(SLOTS), "--yes",
            "--journal", j, *extra]


def bare_move():
    """Reference, not a tool: the protocol with nothing around it (no preflight, journal,
    guards or verification; every slot's SETSLOTs in one round trip per node and step, one
    epoch bump on the target, MIGRATEs 8 per round trip, from Python)."""
    src_r, dst_r = redis.Redis(port=src), redis.Redis(port=dst)
    others = [redis.Redis(port=p) for p in masters if p not in (src, dst)]

    def pipe(r, cmds):
        pl = r.pipeline(transaction=False)
        for c in cmds:
            pl.execute_command(*c)
        return pl.execute()

    pipe(dst_r, [("CLUSTER", "SETSLOT", s, "IMPORTING", src_id) for s in moving])
    pipe(src_r, [("CLUSTER", "SETSLOT", s, "MIGRATING", dst_id) for s in moving])
    keys = pipe(src_r, [("CLUSTER", "GETKEYSINSLOT", s, 1000) for s in moving])
    cmds = [("MIGRATE", "127.0.0.1", str(dst), "", "0", "2000", "KEYS", *k) for k in keys if k]
    for i in range(0, len(cmds), 8):
        pipe(src_r, cmds[i:i + 8])
    # On the target, every slot but the last is made STABLE before its NODE, so the target
    # bumps its epoch and broadcasts once, not once per slot (what the agent does per group).
    node_target = []
    for s in moving[:-1]:
        node_target += [("CLUSTER", "SETSLOT", s, "STABLE"), ("CLUSTER", "SETSLOT", s, "NODE", dst_id)]
    node_target.append(("CLUSTER", "SETSLOT", moving[-1], "NODE", dst_id))
    pipe(dst_r, node_target)
    for r in [src_r, *others]:
        pipe(r, [("CLUSTER", "SETSLOT", s, "NODE", dst_id) for s in moving])
    return subprocess.CompletedProcess([], 0, "", "")


TOOLS = {
    "redis-cli --cluster reshard (defaults)":
        lambda: ["redis-cli", "--cluster", "reshard", SEED, "--cluster-from", src_id,
                 "--cluster-to", dst_id, "--cluster-slots", str(SLOTS), "--cluster-yes"],
    "redis-cli --cluster reshard --cluster-pipeline 1000":
        lambda: ["redis-cli", "--cluster", "reshard", SEED, "--cluster-from", src_id,
                 "--cluster-to", dst_id, "--cluster-slots", str(SLOTS), "--cluster-yes",
                 "--cluster-pipeline", "1000"],
}
# The bare protocol knows nothing of Valkey 8's replicated SETSLOT: REFERENCE=0 leaves it out.
if os.environ.get("REFERENCE", "1") != "0":
    TOOLS["reference: bare pipelined protocol, no safety (not a tool)"] = None
for variant in AGENT_VARIANTS:
    name = "slotguard-agent reshard" + (" " + " ".join(variant) if variant else " (defaults)")
    TOOLS[name] = lambda variant=variant: agent_move(src_id, dst_id, variant)
results = {name: [] for name in TOOLS}
clients = {name: {"errors": 0, "lat": []} for name in TOOLS}
for run in range(RUNS):
    for name, cmd in TOOLS.items():
        wait_clean()
        with Client() as c:
            t0 = time.perf_counter()
            r = bare_move() if cmd is None else subprocess.run(cmd(), capture_output=True,
                                                                text=True)
            dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"bench: {name} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        if sorted(s for s, p in owners().items() if p == dst and s in moving_set) != moving:
            raise SystemExit(f"bench: {name} did not move every slot")
        results[name].append(dt)
        clients[name]["errors"] += c.errors
        clients[name]["lat"] += c.lat
        print(f"run {run + 1}: {name}: {dt:.3f} s, client errors {c.errors}", flush=True)
        # Back to the same layout, untimed.
        wait_clean()
        back = subprocess.run(agent_move(dst_id, src_id), capture_output=True, text=True)
        if back.returncode != 0:
            raise SystemExit(f"bench: moving back failed:\n{back.stdout}\n{back.stderr}")


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] * 1000 if v else float("nan")


version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
print()
print(f"reshard benchmark: 3 masters + 3 replicas on loopback ({version}), {KEYS} keys of 64 bytes, "
      f"{SLOTS} slots ({moved_keys} keys) moved per run, {RUNS} runs each (medians)")
base_med = statistics.median(results[list(TOOLS)[0]])
pipe_med = statistics.median(results[list(TOOLS)[1]])
for name in TOOLS:
    med = statistics.median(results[name])
    lat = clients[name]["lat"]
    print(f"  {name:<55} {med:8.3f} s  {SLOTS / med:8.0f} slots/s  client: {clients[name]['errors']} errors, "
          f"{len(lat)} ops, latency p50 {pct(lat, 0.5):.2f} ms p99 {pct(lat, 0.99):.2f} ms max {pct(lat, 1.0):.1f} ms")
for name in [n for n in TOOLS if n.startswith("slotguard-agent")]:
    med = statistics.median(results[name])
    # Each run times every tool back to back on the same machine state: the ratio within a run
    # shows how much of the spread is the machine's.
    per_run = sorted(b / a for a, b in zip(results[name], results[list(TOOLS)[0]]))
    print(f"  {name}: {base_med / med:.1f}x faster than redis-cli defaults, "
          f"{pipe_med / med:.1f}x faster than redis-cli --cluster-pipeline 1000 "
          f"(within a run vs defaults: min {per_run[0]:.1f}x, median "
          f"{statistics.median(per_run):.1f}x, max {per_run[-1]:.1f}x)")
PY
