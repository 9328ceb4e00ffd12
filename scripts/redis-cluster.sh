#!/usr/bin/env bash
# A real Redis Cluster of loopback redis-server processes, for tests, benchmarks and the demo.
#
#   redis-cluster.sh up DIR BASEPORT MASTERS REPLICAS   start, create, wait for cluster_state:ok
#   redis-cluster.sh down DIR                           stop every node started in DIR
#
# Node i listens on BASEPORT+i (bus port +10000). Environment:
#   REDIS_PASSWORD_FILE   when set, every node gets requirepass/masterauth from this file
#   CLUSTER_NODE_TIMEOUT  cluster-node-timeout in ms (default 5000)
#   REDIS_SERVER          redis-server binary (default: from PATH)
#   REDIS_TLS_DIR         when set, every node speaks TLS only (port 0, tls-port BASEPORT+i,
#                         tls-cluster, tls-replication) with ca.crt, server.crt/.key of this
#                         directory; redis-cli here uses client.crt/.key
#   REDIS_TLS_AUTH_CLIENTS  tls-auth-clients (default no; yes: clients need a certificate)
set -euo pipefail

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 1
}

port_in_use() {
  local p=$1
  ss -Hltn "sport = :$p" 2>/dev/null | grep -q . && return 0
  (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && return 0
  return 1
}

cli() {
  local port=$1; shift
  local tls=()
  if [ -n "${REDIS_TLS_DIR:-}" ]; then
    tls=(--tls --cacert "$REDIS_TLS_DIR/ca.crt" --cert "$REDIS_TLS_DIR/client.crt"
         --key "$REDIS_TLS_DIR/client.key")
  fi
  if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
    REDISCLI_AUTH="$(cat "$REDIS_PASSWORD_FILE")" redis-cli "${tls[@]}" -p "$port" "$@"
  else
    redis-cli "${tls[@]}" -p "$port" "$@"
  fi
}

cmd_down() {
  local dir=$1
  [ -d "$dir" ] || exit 0
  local pids=()
  for f in "$dir"/*/redis.pid; do
    [ -f "$f" ] || continue
    pids+=("$(cat "$f")")
  done
  [ ${#pids[@]} -eq 0 ] && exit 0
  # A test may have stopped a node with SIGSTOP: continue it so SIGTERM is handled.
  kill -CONT "${pids[@]}" 2>/dev/null || true
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
  rm -f "$dir"/*/redis.pid
}

cmd_up() {
  local dir=$1 base=$2 masters=$3 replicas=$4
  local total=$((masters * (replicas + 1)))
  [ "$masters" -ge 3 ] || { echo "redis-cluster: need at least 3 masters" >&2; exit 1; }
  for i in $(seq 0 $((total - 1))); do
    local p=$((base + i))
    for q in "$p" $((p + 10000)); do
      if port_in_use "$q"; then
        echo "redis-cluster: port $q is in use; pick another BASEPORT" >&2
        exit 1
      fi
    done
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local auth=()
  if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
    local pw
    pw=$(cat "$REDIS_PASSWORD_FILE")
    auth=("requirepass $pw" "masterauth $pw")
  fi
  # DEBUG (the tests' DEBUG SLEEP) is off by default since 7.0, and 6.2 rejects the directive.
  local debug=()
  if ! "${REDIS_SERVER:-redis-server}" --version | grep -q ' v=6\.'; then
    debug=("enable-debug-command local")
  fi
  local addrs=()
  for i in $(seq 0 $((total - 1))); do
    local p=$((base + i)) nd="$dir/$((base + i))"
    mkdir -p "$nd"
    local listen=("port $p")
    if [ -n "${REDIS_TLS_DIR:-}" ]; then
      local t=$REDIS_TLS_DIR
      listen=("port 0" "tls-port $p" "tls-cluster yes" "tls-replication yes"
              "tls-cert-file $t/server.crt" "tls-key-file $t/server.key"
              "tls-ca-cert-file $t/ca.crt" "tls-auth-clients ${REDIS_TLS_AUTH_CLIENTS:-no}")
    fi
    {
      for a in "${listen[@]}"; do echo "$a"; done
      echo "bind 127.0.0.1"
      echo "daemonize yes"
      echo "dir $nd"
      echo "pidfile $nd/redis.pid"
      echo "logfile $nd/redis.log"
      echo "cluster-enabled yes"
      echo "cluster-config-file nodes.conf"
      echo "cluster-node-timeout ${CLUSTER_NODE_TIMEOUT:-5000}"
      echo "appendonly no"
      echo "save \"\""
      for a in "${debug[@]}" "${auth[@]}"; do echo "$a"; done
    } > "$nd/redis.conf"
    chmod 600 "$nd/redis.conf"
    "${REDIS_SERVER:-redis-server}" "$nd/redis.conf"
    addrs+=("127.0.0.1:$p")
  done
  for i in $(seq 0 $((total - 1))); do
    local p=$((base + i)) ok=0
    for _ in $(seq 100); do
      if cli "$p" ping 2>/dev/null | grep -q PONG; then ok=1; break; fi
      sleep 0.05
    done
    [ $ok -eq 1 ] || { echo "redis-cluster: node $p did not start (see $dir/$p/redis.log)" >&2; cmd_down "$dir"; exit 1; }
  done
  if ! cli "$base" --cluster create "${addrs[@]}" --cluster-replicas "$replicas" --cluster-yes \
      > "$dir/create.log" 2>&1; then
    echo "redis-cluster: cluster create failed (see $dir/create.log)" >&2
    cmd_down "$dir"
    exit 1
  fi
  # Ready means: every node says ok and redis-cli's own check is clean.
  for _ in $(seq 300); do
    local all=1
    for i in $(seq 0 $((total - 1))); do
      cli $((base + i)) cluster info 2>/dev/null | grep -q 'cluster_state:ok' || { all=0; break; }
    done
    if [ $all -eq 1 ] && cli "$base" --cluster check "127.0.0.1:$base" >/dev/null 2>&1; then
      # Replicas must have finished their first sync, or a later failover test is racy.
      local synced=1
      for i in $(seq 0 $((total - 1))); do
        if cli $((base + i)) info replication | grep -q '^role:slave'; then
          cli $((base + i)) info replication | grep -q 'master_link_status:up' || synced=0
        fi
      done
      if [ $synced -eq 1 ]; then
        echo "redis-cluster: $total nodes up on 127.0.0.1:$base-$((base + total - 1)) in $dir"
        exit 0
      fi
    fi
    sleep 0.1
  done
  echo "redis-cluster: cluster did not become ok in 30 s (see $dir/*/redis.log)" >&2
  cmd_down "$dir"
  exit 1
}

case "${1:-}" in
  up) [ $# -eq 5 ] || usage; cmd_up "$2" "$3" "$4" "$5" ;;
  down) [ $# -eq 2 ] || usage; cmd_down "$2" ;;
  *) usage ;;
esac
