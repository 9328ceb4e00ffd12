#!/usr/bin/env bash
# README command one: the whole slotguard loop on this machine, from Debian packages, no Docker.
#
#   scripts/demo.sh
#
# Installs what is missing (scripts/install-deps.sh), builds slotguard-exporter and
# slotguard-agent into build/, and starts, in a temporary directory:
#   - a 3-master/3-replica loopback Redis Cluster with a few thousand keys,
#   - slotguard-exporter watching it (:9478),
#   - the slotguard-agent daemon moving its slots (:9479; webhook.cluster "demo", its own
#     guards off so that the rollback you see comes from Alertmanager),
#   - Prometheus (:9090) with the shipped rules (rules/, every `for:` a sixth as long) scraping
#     both, each target labelled cluster="demo",
#   - Alertmanager (:9093) with the shipped routing (config/alertmanager.yml), which sends the
#     rollback alerts to the agent's webhook with the webhook token.
# (A port already taken is replaced by a free one.) It prints where each answers and what to
# try. Ctrl-C (or SIGTERM) stops everything it started and removes the temporary directory.
#
# Environment:
#   DEMO_SECONDS=N        exit by itself after N seconds (non-interactive use, tests)
#   DEMO_FREE_PORTS=1     free ports for the exporter, agent, Prometheus and Alertmanager too
#   DEMO_INTERVAL=N       Prometheus scrape and rule evaluation interval, seconds (default 2)
#   DEMO_THROTTLE=D       the agent's pause before each slot (default 50ms: batches you can watch)
#   DEMO_KEYS=N           keys to load (default 5000)
#   SLOTGUARD_BUILD_DIR   build tree to use (default: build)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${SLOTGUARD_BUILD_DIR:-build}
case "$BUILD_DIR" in /*) BIN="$BUILD_DIR/bin" ;; *) BIN="$ROOT/$BUILD_DIR/bin" ;; esac
KEYS=${DEMO_KEYS:-5000}
INTERVAL=${DEMO_INTERVAL:-2}
THROTTLE=${DEMO_THROTTLE:-50ms}

say() { printf 'demo: %s\n' "$*"; }

# A port some socket uses in any state (listening, or the local end of a connection).
port_taken() {
  local p=$1
  ss -Htan "sport = :$p" 2>/dev/null | grep -q . && return 0
  (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && return 0
  return 1
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The default port, or a free one when it is taken (or DEMO_FREE_PORTS is set).
pick_port() {
  local default=$1
  if [ -n "${DEMO_FREE_PORTS:-}" ] || port_taken "$default"; then free_port; else echo "$default"; fi
}

DEMO_DIR=""
NAMES=()
PIDS=()
SLEEP_PID=""
# Stops what start() started, last first: SIGTERM, then SIGKILL after 15 s.
stop_all() {
  local i pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[$i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
cleanup() {
  trap - EXIT INT TERM
  [ -n "$SLEEP_PID" ] && kill "$SLEEP_PID" 2>/dev/null || true
  stop_all
  if [ -n "$DEMO_DIR" ]; then
    "$ROOT/scripts/redis-cluster.sh" down "$DEMO_DIR/cluster" >/dev/null 2>&1 || true
    rm -rf "$DEMO_DIR"
  fi
  say "stopped Prometheus, Alertmanager, the agent, the exporter and the cluster; removed ${DEMO_DIR:-nothing}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME COMMAND...: in the background, its output in $DEMO_DIR/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$DEMO_DIR/$name.log" 2>&1 &
  NAMES+=("$name")
  PIDS+=($!)
}

# wait_http NAME URL: until URL answers 2xx (at most 30 s), or the last started process exits.
wait_http() {
  local name=$1 url=$2 pid=${PIDS[$((${#PIDS[@]} - 1))]}
  for _ in $(seq 300); do
    curl -sf -o /dev/null "$url" 2>/dev/null && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      say "$name exited; the end of $DEMO_DIR/$name.log:"
      tail -20 "$DEMO_DIR/$name.log"
      exit 1
    fi
    sleep 0.1
  done
  say "$name did not answer $url within 30 s; the end of $DEMO_DIR/$name.log:"
  tail -20 "$DEMO_DIR/$name.log"
  exit 1
}

say "checking dependencies (scripts/install-deps.sh)"
scripts/install-deps.sh

say "building slotguard-exporter and slotguard-agent into $BUILD_DIR/"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

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

DEMO_DIR=$(mktemp -d /tmp/slotguard-demo-XXXXXX)
CLUSTER_DIR=$DEMO_DIR/cluster
mkdir -p "$CLUSTER_DIR"
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

EXPORTER_PORT=$(pick_port 9478)
AGENT_PORT=$(pick_port 9479)
PROM_PORT=$(pick_port 9090)
AM_PORT=$(pick_port 9093)

# Configs derived from the shipped ones (scripts/demo-configs.py), tokens of its own.
(
  umask 077
  for t in control-token webhook-token; do
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$DEMO_DIR/$t"
  done
)
/usr/bin/python3 scripts/demo-configs.py "$DEMO_DIR" --base "$BASE" --exporter "$EXPORTER_PORT" \
  --agent "$AGENT_PORT" --prometheus "$PROM_PORT" --alertmanager "$AM_PORT" \
  --interval "$INTERVAL" --throttle "$THROTTLE"

say "starting slotguard-exporter, the agent daemon, Alertmanager and Prometheus"
# The exporter answers within Prometheus' scrape timeout (the interval).
start exporter "$BIN/slotguard-exporter" --redis.addr "127.0.0.1:$BASE" \
  --web.listen-address "127.0.0.1:$EXPORTER_PORT" --scrape.timeout "$((INTERVAL * 750))ms"
wait_http exporter "http://127.0.0.1:$EXPORTER_PORT/healthz"
start agent "$BIN/slotguard-agent" run --config "$DEMO_DIR/agent.yaml"
wait_http agent "http://127.0.0.1:$AGENT_PORT/healthz"
start alertmanager prometheus-alertmanager --config.file="$DEMO_DIR/alertmanager.yml" \
  --storage.path="$DEMO_DIR/alertmanager-data" --web.listen-address="127.0.0.1:$AM_PORT" \
  --cluster.listen-address=
wait_http alertmanager "http://127.0.0.1:$AM_PORT/-/ready"
start prometheus prometheus --config.file="$DEMO_DIR/prometheus.yml" \
  --storage.tsdb.path="$DEMO_DIR/prometheus-data" --web.listen-address="127.0.0.1:$PROM_PORT"
wait_http prometheus "http://127.0.0.1:$PROM_PORT/-/ready"

AGENT_URL=http://127.0.0.1:$AGENT_PORT
cat <<EOF

  Everything is up (configs, tokens and logs in $DEMO_DIR):
    Redis Cluster   127.0.0.1:$BASE-$((BASE + 5))   redis-cli -c -p $BASE
    exporter        http://127.0.0.1:$EXPORTER_PORT/metrics
    agent           $AGENT_URL/metrics   (control API, Alertmanager webhook)
    Prometheus      http://127.0.0.1:$PROM_PORT/alerts   (scrapes every ${INTERVAL}s, cluster="demo")
    Alertmanager    http://127.0.0.1:$AM_PORT/

  Things to try, in another terminal:
    export SLOTGUARD_AGENT=$AGENT_URL SLOTGUARD_TOKEN=\$(cat $DEMO_DIR/control-token)
    agent=$BIN/slotguard-agent

  1. Move slots with the example plan (config/plan.example.yaml with this cluster's nodes) and
     watch the batches in the agent's /metrics, in status, and in the exporter's view:
    \$agent enqueue $DEMO_DIR/plan.yaml
    \$agent status
    curl -s $AGENT_URL/metrics | grep -E '^slotguard_agent_(state|slots_migrated_total|queue_slots)'
    curl -s http://127.0.0.1:$EXPORTER_PORT/metrics | grep -E '^redis_cluster_(slots_open|open_slot_keys|node_slots)'

  2. Have Alertmanager roll a running batch back: while it moves slots, take slot 16000 (not
     in the batch) away from every node. SlotguardSlotsUncovered fires (Prometheus /alerts),
     Alertmanager posts it to the agent's webhook, the agent rolls the batch back and pauses:
    \$agent enqueue $DEMO_DIR/slow-plan.yaml
    until \$agent status | grep -q '^state: *migrating'; do sleep 0.5; done; for p in \$(seq $BASE $((BASE + 5))); do redis-cli -p \$p CONFIG SET cluster-require-full-coverage no; redis-cli -p \$p CLUSTER DELSLOTS 16000; done
    \$agent status    # after 10-20 s: rolled_back, paused by SlotguardSlotsUncovered
    redis-cli -p $((BASE + 2)) CLUSTER ADDSLOTS 16000; \$agent resume

  3. Freeze the target of a running batch instead (writes paused, so its MIGRATEs time out):
     SlotguardMigrateFailures fires, but the agent's own node-health guard (on even with the
     guards off) usually stops the batch first: a MIGRATE blocks its source while it waits, so
     the source's peers may flag it failing, and fail it over.
    \$agent resume; \$agent enqueue $DEMO_DIR/slow-plan.yaml
    until \$agent status | grep -q '^state: *migrating'; do sleep 0.5; done; redis-cli -p $BASE CLIENT PAUSE 300000 WRITE
    \$agent status; redis-cli -p $BASE CLIENT UNPAUSE

  4. Stop a replica and watch redis_up go to 0 while the scrape still answers:
    kill -STOP \$(cat $CLUSTER_DIR/$((BASE + 4))/redis.pid)   # kill -CONT to resume

EOF
if [ -n "${DEMO_SECONDS:-}" ]; then
  say "running for $DEMO_SECONDS seconds (DEMO_SECONDS)"
  sleep "$DEMO_SECONDS" &
  SLEEP_PID=$!
  wait "$SLEEP_PID" || true
else
  say "press Ctrl-C to stop"
  while true; do
    for i in "${!PIDS[@]}"; do
      if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
        say "${NAMES[$i]} exited; the end of its log:"
        tail -5 "$DEMO_DIR/${NAMES[$i]}.log"
        exit 1
      fi
    done
    sleep 1 &
    SLEEP_PID=$!
    wait "$SLEEP_PID" || true
  done
fi
