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
# shellcheck source=scripts/capture-lib.sh
. scripts/capture-lib.sh
redis-server --version | grep -q ' v=7\.0\.' ||
  echo "capture: warning: not redis-server 7.0 ($(redis-server --version))" >&2
capture_start "${1:-tests/data}" 22000 800
id_of() { cli "$1" cluster myid; }

# --- healthy: some traffic, errors and keys so every nested INFO form shows up.
capture_traffic 200
for i in "${!PORTS[@]}"; do raw "${PORTS[$i]}" CLUSTER NODES >"$OUT/redis70_healthy_nodes_$i.txt"; done
raw "$M0" CLUSTER INFO >"$OUT/redis70_healthy_cluster_info.txt"
raw "$M0" INFO all >"$OUT/redis70_healthy_info_all.txt"
# The replica's offset must have caught up for a realistic slave0 line.
wait_until 10 "slave0 online" bash -c "redis-cli -p $M0 info replication | grep -q 'slave0:.*state=online'"
raw "$M0" INFO replication >"$OUT/redis70_healthy_info_replication.txt"

# --- a slot open in both directions: M1 imports from M0, M0 migrates to M1.
slot=$(cli "$M0" cluster keyslot "$KEY0")
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
