#!/usr/bin/env bash
# Captures, from the redis-server (or Valkey's) on PATH, the real output the version-detection
# and exporter collector tests read, named after the server it came from. Not run in CI: run it
# by hand once per server and commit the files.
#
#   PATH=~/.cache/slotguard/servers/redis-6.2.16/bin:$PATH scripts/capture-server-testdata.sh
#   scripts/capture-server-testdata.sh [OUTDIR]     (default: tests/data)
#
# The prefix is the server's name and major+minor version: redis62, redis70, redis72, valkey80.
# Starts a 3+3 loopback cluster (scripts/redis-cluster.sh) on free ports at 42000 and above, runs
# some traffic and errors (so commandstats, errorstats and latencystats have lines), opens one
# slot (migrating on one master, importing on another) and writes, CRLF kept as the server
# writes it:
#   <prefix>_info_server.txt   INFO server from the migrating master
#   <prefix>_info_all.txt      INFO all from the same master
#   <prefix>_cluster_info.txt  CLUSTER INFO from the same master
#   exporter_<prefix>.txt      INFO all, CLUSTER INFO and CLUSTER NODES from every node, each
#                              after a "==> host:port COMMAND" line (tests/unit/exporter_fixtures.h)
#   <prefix>.env               which node is which, the open slot and its key count
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/capture-lib.sh
. scripts/capture-lib.sh
capture_start "${1:-tests/data}" 42000 300

field() { raw "$1" INFO server | tr -d '\r' | sed -n "s/^$2://p"; }
name=$(field "$BASE" server_name)
name=${name:-redis}
own=$(field "$BASE" "${name}_version")
own=${own:-$(field "$BASE" redis_version)}
PREFIX="$name$(echo "$own" | cut -d. -f1)$(echo "$own" | cut -d. -f2)"
echo "capture: $name $own -> prefix $PREFIX, ports $BASE-$((BASE + 5))" >&2

capture_traffic 300

# One slot open: M0 migrates it to M1, M1 imports it.
slot=$(cli "$M0" cluster keyslot "$KEY0")
id0=$(cli "$M0" cluster myid) id1=$(cli "$M1" cluster myid)
cli "$M1" cluster setslot "$slot" importing "$id0" >/dev/null
cli "$M0" cluster setslot "$slot" migrating "$id1" >/dev/null
# A moment for the replicas to acknowledge the traffic (their slaveN lines then show it).
sleep 1

raw "$M0" INFO server >"$OUT/${PREFIX}_info_server.txt"
raw "$M0" INFO all >"$OUT/${PREFIX}_info_all.txt"
raw "$M0" CLUSTER INFO >"$OUT/${PREFIX}_cluster_info.txt"
{
  for p in "${MASTERS[@]}" "${REPLICAS[@]}"; do
    for cmd in "INFO all" "CLUSTER INFO" "CLUSTER NODES"; do
      printf '==> 127.0.0.1:%s %s\n' "$p" "$cmd"
      # shellcheck disable=SC2086  # the command's words are its arguments
      raw "$p" $cmd
    done
  done
} >"$OUT/exporter_${PREFIX}.txt"
printf 'server=%s %s\nmasters=%s\nreplicas=%s\nslot=%s\nmigrating_node=%s\nimporting_node=%s\nkeys_in_slot=%s\n' \
  "$name" "$own" "${MASTERS[*]}" "${REPLICAS[*]}" "$slot" "127.0.0.1:$M0" "127.0.0.1:$M1" \
  "$(cli "$M0" cluster countkeysinslot "$slot")" >"$OUT/${PREFIX}.env"

echo "capture: wrote ${PREFIX}_info_server.txt ${PREFIX}_info_all.txt ${PREFIX}_cluster_info.txt" \
  "exporter_${PREFIX}.txt ${PREFIX}.env to $OUT" >&2
