#!/usr/bin/env bash
# Scrape time and memory: slotguard-exporter vs prometheus-redis-exporter (redis_exporter, the
# Debian package) against the same loopback cluster, for a 3-master/3-replica and a
# 25-master/25-replica cluster in turn. Not part of CI.
#
#   bench/exporter_bench.sh                 N=50 scrapes each, 10000 keys, both sizes
#   SIZES="3" N=200 KEYS=50000 bench/exporter_bench.sh
#   BASELINE=/tmp/old/bin/slotguard-exporter bench/exporter_bench.sh
#
# What is compared, per scrape round:
#   slotguard        one GET /metrics: all nodes read in parallel (INFO all, CLUSTER INFO,
#                    CLUSTER NODES) plus the cluster-wide slot judgement
#   slotguard --scrape.stray-keys (3+3 only)
#                    the same from a second exporter that also counts stray keys (CLUSTER
#                    COUNTKEYSINSLOT for every slot a master does not own), with the server
#                    time those commands cost per scrape (INFO commandstats of the masters)
#   slotguard baseline (when BASELINE names another slotguard-exporter binary)
#                    the same GET /metrics from that build, in the same loop: before/after
#   redis_exporter   it exports one node per scrape, so a cluster is one target per node: all
#                    GETs /scrape?target=redis://node sent at once (as Prometheus would, one
#                    per target), timed until the last answers; and one node alone
# Times are wall-clock, taken in one Python client for all (a new connection per request, the
# whole body read); medians are printed, then each exporter's resident memory (VmRSS) after
# the scrapes.
#
# Environment: N (scrapes, default 50), KEYS (default 10000), SIZES (masters per case, each
# with one replica per master; default "3 25"), SLOTGUARD_BUILD_DIR (default build), BASELINE.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${N:-50}
KEYS=${KEYS:-10000}
SIZES=${SIZES:-3 25}
BUILD_DIR=${SLOTGUARD_BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
SLOTGUARD="$BUILD_DIR/bin/slotguard-exporter"
BASELINE=${BASELINE:-}
PEER=$(command -v prometheus-redis-exporter || true)

[ -x "$SLOTGUARD" ] || { echo "bench: build first: cmake --build $BUILD_DIR --target slotguard-exporter" >&2; exit 1; }
[ -n "$PEER" ] || { echo "bench: prometheus-redis-exporter is not installed (scripts/install-deps.sh)" >&2; exit 1; }
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || { echo "bench: BASELINE=$BASELINE is not executable" >&2; exit 1; }

port_taken() {
  ss -Htan "sport = :$1" 2>/dev/null | grep -q . && return 0
  (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
  return 1
}
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

DIR=""
PIDS=()
stop_case() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
  if [ -n "$DIR" ]; then
    "$ROOT/scripts/redis-cluster.sh" down "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
  fi
  DIR=""
}
cleanup() {
  trap - EXIT INT TERM
  stop_case
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

run_case() {
  local masters=$1 total=$(($1 * 2))
  DIR=$(mktemp -d /tmp/slotguard-bench-XXXXXX)
  local base=""
  for _ in $(seq 50); do
    local c=$(( (RANDOM % 800) * 10 + 12000 )) ok=1
    for i in $(seq 0 $((total - 1))); do
      if port_taken $((c + i)) || port_taken $((c + i + 10000)); then ok=0; break; fi
    done
    if [ $ok -eq 1 ] && scripts/redis-cluster.sh up "$DIR" "$c" "$masters" 1 >/dev/null; then
      base=$c
      break
    fi
  done
  [ -n "$base" ] || { echo "bench: could not start a $masters+$masters cluster" >&2; exit 1; }

  /usr/bin/python3 - "$base" "$KEYS" <<'EOF'
import sys
from redis.cluster import RedisCluster
port, count = int(sys.argv[1]), int(sys.argv[2])
rc = RedisCluster(host="127.0.0.1", port=port)
pipe = rc.pipeline()
for i in range(count):
    pipe.set(f"bench:{i}", "x" * 32)
    if i % 1000 == 999:
        pipe.execute()
pipe.execute()
rc.close()
EOF

  local sg_port sgs_port=0 sgb_port=0 re_port
  local sg_pid sgs_pid=0 sgb_pid=0 re_pid
  sg_port=$(free_port)
  "$SLOTGUARD" --redis.addr "127.0.0.1:$base" --web.listen-address "127.0.0.1:$sg_port" \
    --log.level warn > "$DIR/slotguard.log" 2>&1 &
  sg_pid=$!
  PIDS+=("$sg_pid")
  if [ "$masters" -eq 3 ]; then
    sgs_port=$(free_port)
    "$SLOTGUARD" --redis.addr "127.0.0.1:$base" --web.listen-address "127.0.0.1:$sgs_port" \
      --scrape.stray-keys --log.level warn > "$DIR/slotguard-stray.log" 2>&1 &
    sgs_pid=$!
    PIDS+=("$sgs_pid")
  fi
  if [ -n "$BASELINE" ]; then
    sgb_port=$(free_port)
    "$BASELINE" --redis.addr "127.0.0.1:$base" --web.listen-address "127.0.0.1:$sgb_port" \
      --log.level warn > "$DIR/slotguard-baseline.log" 2>&1 &
    sgb_pid=$!
    PIDS+=("$sgb_pid")
  fi
  re_port=$(free_port)
  "$PEER" -redis.addr "redis://127.0.0.1:$base" -is-cluster -web.listen-address "127.0.0.1:$re_port" \
    > "$DIR/redis_exporter.log" 2>&1 &
  re_pid=$!
  PIDS+=("$re_pid")
  local urls=("http://127.0.0.1:$sg_port/healthz" "http://127.0.0.1:$re_port/")
  [ "$sgs_port" -eq 0 ] || urls+=("http://127.0.0.1:$sgs_port/healthz")
  [ "$sgb_port" -eq 0 ] || urls+=("http://127.0.0.1:$sgb_port/healthz")
  for url in "${urls[@]}"; do
    for _ in $(seq 100); do curl -sf "$url" >/dev/null && break; sleep 0.1; done
  done

  # Timing in one Python process for all exporters alike (new HTTP connection per request, as
  # Prometheus does by default, the whole body read).
  /usr/bin/python3 - "$sg_port" "$re_port" "$base" "$N" "$KEYS" "$sgs_port" "$sgb_port" \
    "$masters" "$sg_pid" "$re_pid" "$sgs_pid" "$sgb_pid" "$("$SLOTGUARD" --version)" \
    "$("$PEER" -version 2>&1 | sed -n 's/.*msg="\(Redis Metrics Exporter [^ ]*\).*/\1/p')" <<'EOF'
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import redis

(sg_port, re_port, base, n, keys, sgs_port, sgb_port, masters, sg_pid, re_pid, sgs_pid,
 sgb_pid) = (int(x) for x in sys.argv[1:13])
sg_version, re_version = sys.argv[13], sys.argv[14]
nodes = masters * 2
sg_url = f"http://127.0.0.1:{sg_port}/metrics"
sgs_url = f"http://127.0.0.1:{sgs_port}/metrics" if sgs_port else None
sgb_url = f"http://127.0.0.1:{sgb_port}/metrics" if sgb_port else None
re_urls = [f"http://127.0.0.1:{re_port}/scrape?target=redis://127.0.0.1:{base + i}"
           for i in range(nodes)]
pool = ThreadPoolExecutor(nodes)


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def whole_cluster_peer():
    list(pool.map(get, re_urls))  # every target at once, until the slowest answers


def series(text):
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def countkeysinslot_usec():
    """(calls, usec) of CLUSTER COUNTKEYSINSLOT summed over the masters."""
    calls = usec = 0
    for i in range(nodes):
        r = redis.Redis(host="127.0.0.1", port=base + i)
        if r.info("replication")["role"] == "master":
            stat = r.info("commandstats").get("cmdstat_cluster|countkeysinslot", {})
            calls += stat.get("calls", 0)
            usec += stat.get("usec", 0)
    return calls, usec


for _ in range(3):  # warm-up
    get(sg_url)
    if sgs_url:
        get(sgs_url)
    if sgb_url:
        get(sgb_url)
    whole_cluster_peer()
sg, sgs, sgb, re_all, re1 = [], [], [], [], []
calls0, usec0 = countkeysinslot_usec() if sgs_url else (0, 0)
for _ in range(n):
    sg.append(timed(lambda: get(sg_url)))
    if sgs_url:
        sgs.append(timed(lambda: get(sgs_url)))
    if sgb_url:
        sgb.append(timed(lambda: get(sgb_url)))
    re_all.append(timed(whole_cluster_peer))
    re1.append(timed(lambda: get(re_urls[0])))
calls1, usec1 = countkeysinslot_usec() if sgs_url else (0, 0)
rss = {pid: rss_mib(pid) for pid in (sg_pid, re_pid, sgs_pid, sgb_pid) if pid}

med = lambda xs: statistics.median(xs) * 1000
print(f"exporter scrape benchmark: {masters} masters + {masters} replicas on loopback, {keys} keys, "
      f"{n} scrapes each (medians)")
print(f"  {sg_version} | {re_version}")
print(f"  {'slotguard-exporter, whole cluster, one GET /metrics':<56} {med(sg):8.2f} ms"
      f"  ({series(get(sg_url))} series)  RSS {rss[sg_pid]:.1f} MiB")
if sgs_url:
    print(f"  {'slotguard-exporter --scrape.stray-keys, whole cluster':<56} {med(sgs):8.2f} ms"
          f"  (+{med(sgs) - med(sg):.2f} ms; server time {(usec1 - usec0) / n / 1000:.2f} ms"
          f" in {(calls1 - calls0) // n} COUNTKEYSINSLOT per scrape, all masters)"
          f"  RSS {rss[sgs_pid]:.1f} MiB")
if sgb_url:
    print(f"  {'slotguard-exporter BASELINE, whole cluster':<56} {med(sgb):8.2f} ms"
          f"  ({series(get(sgb_url))} series)  RSS {rss[sgb_pid]:.1f} MiB")
print(f"  {f'redis_exporter, whole cluster, {nodes} targets at once':<56} {med(re_all):8.2f} ms"
      f"  ({sum(series(get(u)) for u in re_urls)} series)  RSS {rss[re_pid]:.1f} MiB")
print(f"  {'redis_exporter, one node':<56} {med(re1):8.2f} ms")
print(f"  slotguard whole cluster / redis_exporter one node: {med(sg) / med(re1):.2f}"
      f"   / redis_exporter all nodes: {med(sg) / med(re_all):.2f}"
      f"   RSS slotguard / redis_exporter: {rss[sg_pid] / rss[re_pid]:.2f}")
EOF
  stop_case
}

for m in $SIZES; do run_case "$m"; done
