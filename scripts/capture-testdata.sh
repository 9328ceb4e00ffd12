#!/usr/bin/env bash
# Regenerates the real redis-server output in tests/data/ that the cluster parser tests read.
# Not run in CI: run it by hand after a Redis upgrade and commit what changed.
#
#   scripts/capture-testdata.sh [OUTDIR]     (default: tests/data)
#
# Starts a 3+3 loopback cluster (scripts/redis-cluster.sh) on free ports and captures, as the
# server writes them (CRLF kept):
#   redis70_healthy_nodes_<i>.txt      CLUSTER NODES from every node (0-2 masters, 3-5 replicas)
#   redis70_healthy_cluster_info.txt   CLUSTER INFO from a master
#   redis70_healthy_info_all.txt       INFO all from a master after commands and errors ran
#   redis70_healthy_info_replication.txt  INFO replication from a master (slave0 line)
#   redis70_open_slot_nodes_<i>.txt    every view while one slot is IMPORTING on one master and
#                                      MIGRATING on another (redis70_open_slot.env names them)
#   redis70_hostname_nodes_self.txt / _peer.txt  views after cluster-announce-hostname is set
#   redis70_failed_nodes_<i>.txt       surviving views after a replica was SIGKILLed and flagged
#                                      fail (redis70_failed.env names the dead node)
#   redis70_failed_cluster_info.txt    CLUSTER INFO from a survivor
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-tests/data}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

command -v redis-server >/dev/null || { echo "capture: redis-server not installed" >&2; exit 1; }
redis-server --version | grep -q ' v=7\.0\.' ||
  echo "capture: warning: not redis-server 7.0 ($(redis-server --version))" >&2

WORK=$(mktemp -d /tmp/slotguard-capture.XXXXXX)
cleanup() { scripts/redis-cluster.sh down "$WORK" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

export CLUSTER_NODE_TIMEOUT=2000
BASE=
for _ in $(seq 20); do
  b=$(( (RANDOM % 800) * 10 + 22000 ))
  if scripts/redis-cluster.sh up "$WORK" "$b" 3 1 >"$WORK.up.log" 2>&1; then BASE=$b; break; fi
  grep -q 'in use' "$WORK.up.log" || { cat "$WORK.up.log" >&2; exit 1; }
done
rm -f "$WORK.up.log"
[ -n "$BASE" ] || { echo "capture: no free base port found" >&2; exit 1; }

cli() { local p=$1; shift; redis-cli -p "$p" "$@"; }
# Raw reply bytes (CRLF intact; redis-cli would translate them): one RESP bulk-string reply.
raw() {
  python3 - "$@" <<'EOF'
import socket, sys
port, args = int(sys.argv[1]), [a.encode() for a in sys.argv[2:]]
req = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
s = socket.create_connection(("127.0.0.1", port))
s.sendall(req)
buf = b""
while b"\r\n" not in buf:
    buf += s.recv(65536)
head, rest = buf.split(b"\r\n", 1)
if head[:1] != b"$":
    sys.exit("unexpected reply: %r" % head)
n = int(head[1:])
while len(rest) < n + 2:
    rest += s.recv(65536)
sys.stdout.buffer.write(rest[:n])
EOF
}
wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@"; do
    [ $SECONDS -lt $end ] || { echo "capture: timed out waiting for $what" >&2; exit 1; }
    sleep 0.1
  done
}

# Order nodes: masters first (by slot), then replicas, so file indexes are stable in meaning.
mapfile -t MASTERS < <(for i in 0 1 2 3 4 5; do p=$((BASE + i))
  cli $p role | head -1 | grep -q master && echo $p; done)
mapfile -t REPLICAS < <(for i in 0 1 2 3 4 5; do p=$((BASE + i))
  cli $p role | head -1 | grep -q slave && echo $p; done)
PORTS=("${MASTERS[@]}" "${REPLICAS[@]}")
[ ${#MASTERS[@]} -eq 3 ] && [ ${#REPLICAS[@]} -eq 3 ] || { echo "capture: expected 3+3" >&2; exit 1; }
M0=${MASTERS[0]} M1=${MASTERS[1]}
id_of() { cli "$1" cluster myid; }

# --- healthy: some traffic, errors and keys so every nested INFO form shows up.
for i in $(seq 200); do cli -c -p "$M0" set "key:$i" "v$i" >/dev/null; done
for i in $(seq 50); do cli -c -p "$M0" get "key:$i" >/dev/null; done
cli -c -p "$M0" setex "ttl:{a}" 1000 v >/dev/null
key0=$(for i in $(seq 200); do k="key:$i"; [ "$(cli "$M0" cluster countkeysinslot \
  "$(cli "$M0" cluster keyslot "$k")")" -gt 0 ] && echo "$k" && break; done)
cli "$M0" lpush "$key0" x >/dev/null 2>&1 || true           # WRONGTYPE
cli "$M0" nosuchcommand >/dev/null 2>&1 || true              # ERR unknown command
for i in $(seq 10); do cli "$M0" get "key:$i" >/dev/null 2>&1 || true; done  # some MOVED
cli "$M0" mget "key:1" "key:2" >/dev/null 2>&1 || true        # CROSSSLOT
cli "$M0" cluster setslot 99999 stable >/dev/null 2>&1 || true  # ERR on cluster|setslot
# MIGRATE to a closed port: cmdstat_migrate failed_calls and errorstat_IOERR.
cli "$M0" migrate 127.0.0.1 1 "$key0" 0 200 copy >/dev/null 2>&1 || true
for i in "${!PORTS[@]}"; do raw "${PORTS[$i]}" CLUSTER NODES >"$OUT/redis70_healthy_nodes_$i.txt"; done
raw "$M0" CLUSTER INFO >"$OUT/redis70_healthy_cluster_info.txt"
raw "$M0" INFO all >"$OUT/redis70_healthy_info_all.txt"
# The replica's offset must have caught up for a realistic slave0 line.
wait_until 10 "slave0 online" bash -c "redis-cli -p $M0 info replication | grep -q 'slave0:.*state=online'"
raw "$M0" INFO replication >"$OUT/redis70_healthy_info_replication.txt"

# --- a slot open in both directions: M1 imports from M0, M0 migrates to M1.
slot=$(cli "$M0" cluster keyslot "$key0")
id0=$(id_of "$M0") id1=$(id_of "$M1")
cli "$M1" cluster setslot "$slot" importing "$id0" >/dev/null
cli "$M0" cluster setslot "$slot" migrating "$id1" >/dev/null
for i in "${!PORTS[@]}"; do raw "${PORTS[$i]}" CLUSTER NODES >"$OUT/redis70_open_slot_nodes_$i.txt"; done
printf 'slot=%s\nmigrating_node=%s\nimporting_node=%s\nkeys_in_slot=%s\n' "$slot" "$id0" "$id1" \
  "$(cli "$M0" cluster countkeysinslot "$slot")" >"$OUT/redis70_open_slot.env"
cli "$M1" cluster setslot "$slot" stable >/dev/null
cli "$M0" cluster setslot "$slot" stable >/dev/null

# --- a node with a hostname, seen by itself and (after gossip) by a peer.
cli "$M1" config set cluster-announce-hostname "redis-b.example.internal" >/dev/null
raw "$M1" CLUSTER NODES >"$OUT/redis70_hostname_nodes_self.txt"
wait_until 15 "peer sees the hostname" bash -c \
  "redis-cli -p $M0 cluster nodes | grep -q ',redis-b.example.internal '"
raw "$M0" CLUSTER NODES >"$OUT/redis70_hostname_nodes_peer.txt"
cli "$M1" config set cluster-announce-hostname "" >/dev/null
wait_until 15 "hostname gone" bash -c \
  "! redis-cli -p $M0 cluster nodes | grep -q 'redis-b.example.internal'"

# --- a failed node: SIGKILL a replica, wait until every survivor flags it fail.
dead=${REPLICAS[2]}
dead_id=$(id_of "$dead")
kill -KILL "$(cat "$WORK/$dead/redis.pid")"
survivors=("${MASTERS[@]}" "${REPLICAS[0]}" "${REPLICAS[1]}")
for p in "${survivors[@]}"; do
  wait_until 30 "$p to flag $dead fail" bash -c \
    "redis-cli -p $p cluster nodes | grep '^$dead_id ' | grep -q ' [a-z,]*fail[, ]'"
done
for i in "${!survivors[@]}"; do raw "${survivors[$i]}" CLUSTER NODES >"$OUT/redis70_failed_nodes_$i.txt"; done
raw "$M0" CLUSTER INFO >"$OUT/redis70_failed_cluster_info.txt"
printf 'failed_node=%s\n' "$dead_id" >"$OUT/redis70_failed.env"

echo "capture: wrote $(ls "$OUT"/redis70_* | wc -l) files to $OUT ($(redis-server --version | cut -d' ' -f3))"
