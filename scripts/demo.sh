#!/usr/bin/env bash
# README command one: see slotguard-exporter work on a real Redis Cluster in a minute.
#
#   scripts/demo.sh
#
# Installs what is missing (scripts/install-deps.sh), builds the exporter and the agent into
# build/ (the README's example session runs build/bin/slotguard-agent next), starts a
# 3-master/3-replica loopback cluster with a few thousand keys in a temporary directory, starts
# slotguard-exporter on :9478 (or a free port when 9478 is taken), and prints where to look.
# Ctrl-C (or SIGTERM) stops everything it started and removes the temporary directory.
#
# Environment:
#   DEMO_SECONDS=N        exit by itself after N seconds (non-interactive use, tests)
#   DEMO_KEYS=N           keys to load (default 5000)
#   SLOTGUARD_BUILD_DIR   build tree to use (default: build)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${SLOTGUARD_BUILD_DIR:-build}
KEYS=${DEMO_KEYS:-5000}

say() { printf 'demo: %s\n' "$*"; }

# A port some socket uses in any state (listening, or the local end of a connection).
port_taken() {
  local p=$1
  ss -Htan "sport = :$p" 2>/dev/null | grep -q . && return 0
  (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && return 0
  return 1
}

CLUSTER_DIR=""
EXPORTER_PID=""
SLEEP_PID=""
cleanup() {
  trap - EXIT INT TERM
  [ -n "$SLEEP_PID" ] && kill "$SLEEP_PID" 2>/dev/null || true
  if [ -n "$EXPORTER_PID" ] && kill -0 "$EXPORTER_PID" 2>/dev/null; then
    kill -TERM "$EXPORTER_PID" 2>/dev/null || true
    wait "$EXPORTER_PID" 2>/dev/null || true
  fi
  if [ -n "$CLUSTER_DIR" ]; then
    "$ROOT/scripts/redis-cluster.sh" down "$CLUSTER_DIR" >/dev/null 2>&1 || true
    rm -rf "$CLUSTER_DIR"
  fi
  say "stopped the exporter and the cluster, removed the temporary directory"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "checking dependencies (scripts/install-deps.sh)"
scripts/install-deps.sh

say "building slotguard-exporter and slotguard-agent into $BUILD_DIR/"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target slotguard-exporter slotguard-agent >/dev/null
EXPORTER="$ROOT/$BUILD_DIR/bin/slotguard-exporter"
case "$BUILD_DIR" in /*) EXPORTER="$BUILD_DIR/bin/slotguard-exporter" ;; esac

# Six free ports in a row, and their bus ports (+10000), kept below the kernel's ephemeral
# range (32768+) where an outgoing connection could take a bus port between check and bind.
pick_base() {
  for _ in $(seq 50); do
    local candidate=$(( (RANDOM % 900) * 10 + 12000 )) free=1
    for i in $(seq 0 5); do
      if port_taken $((candidate + i)) || port_taken $((candidate + i + 10000)); then
        free=0
        break
      fi
    done
    if [ $free -eq 1 ]; then echo "$candidate"; return 0; fi
  done
  return 1
}

CLUSTER_DIR=$(mktemp -d /tmp/slotguard-demo-XXXXXX)
BASE=""
for attempt in 1 2 3; do
  candidate=$(pick_base) || { say "no free block of ports found between 12000 and 21000"; exit 1; }
  say "starting a 3-master/3-replica cluster on 127.0.0.1:$candidate-$((candidate + 5)) in $CLUSTER_DIR"
  if scripts/redis-cluster.sh up "$CLUSTER_DIR" "$candidate" 3 1; then
    BASE=$candidate
    break
  fi
  # Another program took one of the ports meanwhile: clean up and try another block.
  scripts/redis-cluster.sh down "$CLUSTER_DIR" >/dev/null 2>&1 || true
  rm -rf "${CLUSTER_DIR:?}"/*
done
[ -n "$BASE" ] || { say "could not start the cluster (see the messages above)"; exit 1; }

say "loading $KEYS keys"
/usr/bin/python3 - "$BASE" "$KEYS" <<'EOF'
import sys
from redis.cluster import RedisCluster

port, count = int(sys.argv[1]), int(sys.argv[2])
rc = RedisCluster(host="127.0.0.1", port=port, decode_responses=True)
pipe = rc.pipeline()
for i in range(count):
    pipe.set(f"demo:key:{i}", f"value-{i}")
    if i % 10 == 0:
        pipe.hset(f"demo:user:{i}", mapping={"name": f"user{i}", "visits": i})
        pipe.expire(f"demo:user:{i}", 3600)
    if i % 500 == 499:
        pipe.execute()
pipe.execute()
for i in range(200):
    rc.get(f"demo:key:{i}")
rc.close()
EOF
# A few commands sent to the wrong node, so redis_errors_total{err="MOVED"} has something.
for i in $(seq 1 20); do redis-cli -p "$BASE" get "demo:key:$i" >/dev/null 2>&1 || true; done

PORT=9478
if port_taken "$PORT"; then
  PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  say "port 9478 is busy; the exporter uses port $PORT instead"
fi
"$EXPORTER" --redis.addr "127.0.0.1:$BASE" --web.listen-address "127.0.0.1:$PORT" \
  --scrape.timeout 5s > "$CLUSTER_DIR/exporter.log" 2>&1 &
EXPORTER_PID=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$EXPORTER_PID" 2>/dev/null || { cat "$CLUSTER_DIR/exporter.log"; exit 1; }
  sleep 0.1
done

cat <<EOF

  slotguard-exporter is up, scraping the cluster at 127.0.0.1:$BASE (exporter log: $CLUSTER_DIR/exporter.log)

  Scrape it:
    curl -s http://127.0.0.1:$PORT/metrics

  Metrics to try:
    curl -s http://127.0.0.1:$PORT/metrics | grep -E '^redis_up|^redis_cluster_slots_(covered|uncovered|disputed)|^redis_cluster_config_consistent'
    curl -s http://127.0.0.1:$PORT/metrics | grep -E '^redis_cluster_node_(info|slots)'
    curl -s http://127.0.0.1:$PORT/metrics | grep -E '^redis_db_keys|^redis_errors_total|^redis_replica_lag_bytes'

  Open a slot by hand and watch redis_cluster_slots_open / redis_cluster_open_slot_keys:
    redis-cli -p $((BASE + 1)) cluster setslot 0 importing \$(redis-cli -p $BASE cluster myid)
    redis-cli -p $BASE cluster setslot 0 migrating \$(redis-cli -p $((BASE + 1)) cluster myid)
    curl -s http://127.0.0.1:$PORT/metrics | grep -E '^redis_cluster_(slots_open|open_slot_keys)'

  Stop a node and watch redis_up go to 0 while the scrape still answers:
    kill -STOP \$(cat $CLUSTER_DIR/$((BASE + 4))/redis.pid)   # and kill -CONT to resume

EOF
if [ -n "${DEMO_SECONDS:-}" ]; then
  say "running for $DEMO_SECONDS seconds (DEMO_SECONDS)"
  sleep "$DEMO_SECONDS" &
  SLEEP_PID=$!
  wait "$SLEEP_PID" || true
else
  say "press Ctrl-C to stop"
  while kill -0 "$EXPORTER_PID" 2>/dev/null; do
    sleep 1 &
    SLEEP_PID=$!
    wait "$SLEEP_PID" || true
  done
  say "the exporter exited:"
  tail -5 "$CLUSTER_DIR/exporter.log"
fi
