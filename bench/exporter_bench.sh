#!/usr/bin/env bash
# Scrape time: slotguard-exporter vs prometheus-redis-exporter (redis_exporter, the Debian
# package) against the same 3-master/3-replica loopback cluster. Not part of CI.
#
#   bench/exporter_bench.sh                 N=50 scrapes each, 10000 keys
#   N=200 KEYS=50000 bench/exporter_bench.sh
#
# What is compared, per scrape round:
#   slotguard        one GET /metrics: all six nodes read in parallel (INFO all, CLUSTER INFO,
#                    CLUSTER NODES) plus the cluster-wide slot judgement
#   slotguard --scrape.stray-keys
#                    the same from a second exporter that also counts stray keys (CLUSTER
#                    COUNTKEYSINSLOT for every slot a master does not own), with the server
#                    time those commands cost per scrape (INFO commandstats of the masters)
#   redis_exporter   it exports one node per scrape, so a cluster is six targets: six GETs
#                    /scrape?target=redis://node sent at once (as Prometheus would, one per
#                    target), timed until the last answers; and, for reference, one node alone
# Times are wall-clock, taken in one Python client for both (a new connection per request,
# the whole body read); medians and the ratio are printed.
#
# Environment: N (scrapes, default 50), KEYS (default 10000), SLOTGUARD_BUILD_DIR (default build).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${N:-50}
KEYS=${KEYS:-10000}
BUILD_DIR=${SLOTGUARD_BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
SLOTGUARD="$BUILD_DIR/bin/slotguard-exporter"
PEER=$(command -v prometheus-redis-exporter || true)

[ -x "$SLOTGUARD" ] || { echo "bench: build first: cmake --build $BUILD_DIR --target slotguard-exporter" >&2; exit 1; }
[ -n "$PEER" ] || { echo "bench: prometheus-redis-exporter is not installed (scripts/install-deps.sh)" >&2; exit 1; }

port_taken() {
  ss -Htan "sport = :$1" 2>/dev/null | grep -q . && return 0
  (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
  return 1
}
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

DIR=$(mktemp -d /tmp/slotguard-bench-XXXXXX)
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  "$ROOT/scripts/redis-cluster.sh" down "$DIR" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

BASE=""
for _ in $(seq 50); do
  c=$(( (RANDOM % 900) * 10 + 12000 )) ok=1
  for i in $(seq 0 5); do
    if port_taken $((c + i)) || port_taken $((c + i + 10000)); then ok=0; break; fi
  done
  if [ $ok -eq 1 ] && scripts/redis-cluster.sh up "$DIR" "$c" 3 1 >/dev/null; then BASE=$c; break; fi
done
[ -n "$BASE" ] || { echo "bench: could not start a cluster" >&2; exit 1; }

/usr/bin/python3 - "$BASE" "$KEYS" <<'EOF'
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

SG_PORT=$(free_port)
"$SLOTGUARD" --redis.addr "127.0.0.1:$BASE" --web.listen-address "127.0.0.1:$SG_PORT" \
  --log.level warn > "$DIR/slotguard.log" 2>&1 &
PIDS+=($!)
SGS_PORT=$(free_port)
"$SLOTGUARD" --redis.addr "127.0.0.1:$BASE" --web.listen-address "127.0.0.1:$SGS_PORT" \
  --scrape.stray-keys --log.level warn > "$DIR/slotguard-stray.log" 2>&1 &
PIDS+=($!)
RE_PORT=$(free_port)
"$PEER" -redis.addr "redis://127.0.0.1:$BASE" -is-cluster -web.listen-address "127.0.0.1:$RE_PORT" \
  > "$DIR/redis_exporter.log" 2>&1 &
PIDS+=($!)
for url in "http://127.0.0.1:$SG_PORT/healthz" "http://127.0.0.1:$SGS_PORT/healthz" \
  "http://127.0.0.1:$RE_PORT/"; do
  for _ in $(seq 100); do curl -sf "$url" >/dev/null && break; sleep 0.1; done
done

# Timing in one Python process for both exporters alike (new HTTP connection per request, as
# Prometheus does by default, the whole body read).
/usr/bin/python3 - "$SG_PORT" "$RE_PORT" "$BASE" "$N" "$KEYS" "$SGS_PORT" "$("$SLOTGUARD" --version)" \
  "$("$PEER" -version 2>&1 | sed -n 's/.*msg="\(Redis Metrics Exporter [^ ]*\).*/\1/p')" <<'EOF'
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import redis

sg_port, re_port, base, n, keys, sgs_port = (int(x) for x in sys.argv[1:7])
sg_version, re_version = sys.argv[7], sys.argv[8]
sg_url = f"http://127.0.0.1:{sg_port}/metrics"
sgs_url = f"http://127.0.0.1:{sgs_port}/metrics"
re_urls = [f"http://127.0.0.1:{re_port}/scrape?target=redis://127.0.0.1:{base + i}"
           for i in range(6)]
pool = ThreadPoolExecutor(6)


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def whole_cluster_peer():
    list(pool.map(get, re_urls))  # six targets at once, until the slowest answers


def series(text):
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def countkeysinslot_usec():
    """(calls, usec) of CLUSTER COUNTKEYSINSLOT summed over the masters."""
    calls = usec = 0
    for i in range(6):
        r = redis.Redis(host="127.0.0.1", port=base + i)
        if r.info("replication")["role"] == "master":
            stat = r.info("commandstats").get("cmdstat_cluster|countkeysinslot", {})
            calls += stat.get("calls", 0)
            usec += stat.get("usec", 0)
    return calls, usec


for _ in range(3):  # warm-up
    get(sg_url)
    get(sgs_url)
    whole_cluster_peer()
sg, sgs, re6, re1 = [], [], [], []
calls0, usec0 = countkeysinslot_usec()
for _ in range(n):
    sg.append(timed(lambda: get(sg_url)))
    sgs.append(timed(lambda: get(sgs_url)))
    re6.append(timed(whole_cluster_peer))
    re1.append(timed(lambda: get(re_urls[0])))
calls1, usec1 = countkeysinslot_usec()

med = lambda xs: statistics.median(xs) * 1000
print(f"exporter scrape benchmark: 3 masters + 3 replicas on loopback, {keys} keys, "
      f"{n} scrapes each (medians)")
print(f"  {sg_version} | {re_version}")
print(f"  {'slotguard-exporter, whole cluster, one GET /metrics':<56} {med(sg):8.2f} ms"
      f"  ({series(get(sg_url))} series)")
print(f"  {'slotguard-exporter --scrape.stray-keys, whole cluster':<56} {med(sgs):8.2f} ms"
      f"  (+{med(sgs) - med(sg):.2f} ms; server time {(usec1 - usec0) / n / 1000:.2f} ms"
      f" in {(calls1 - calls0) // n} COUNTKEYSINSLOT per scrape, all masters)")
print(f"  {'redis_exporter, whole cluster, 6 targets at once':<56} {med(re6):8.2f} ms"
      f"  ({sum(series(get(u)) for u in re_urls)} series)")
print(f"  {'redis_exporter, one node':<56} {med(re1):8.2f} ms")
print(f"  ratio, whole cluster (redis_exporter / slotguard-exporter): {med(re6) / med(sg):.2f}x")
EOF
