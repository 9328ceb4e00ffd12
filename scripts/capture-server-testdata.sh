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
OUT=${1:-tests/data}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

command -v redis-server >/dev/null || { echo "capture: redis-server not on PATH" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "capture: redis-cli not on PATH" >&2; exit 1; }

WORK=$(mktemp -d /tmp/slotguard-capture.XXXXXX)
cleanup() { scripts/redis-cluster.sh down "$WORK" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

export CLUSTER_NODE_TIMEOUT=2000
BASE=
for _ in $(seq 20); do
  b=$(( (RANDOM % 300) * 10 + 42000 ))
  if scripts/redis-cluster.sh up "$WORK" "$b" 3 1 >"$WORK.up.log" 2>&1; then BASE=$b; break; fi
  grep -qE 'in use|did not start' "$WORK.up.log" || { cat "$WORK.up.log" >&2; exit 1; }
  scripts/redis-cluster.sh down "$WORK" >/dev/null 2>&1 || true
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
field() { raw "$1" INFO server | tr -d '\r' | sed -n "s/^$2://p"; }

name=$(field "$BASE" server_name)
name=${name:-redis}
own=$(field "$BASE" "${name}_version")
own=${own:-$(field "$BASE" redis_version)}
PREFIX="$name$(echo "$own" | cut -d. -f1)$(echo "$own" | cut -d. -f2)"
echo "capture: $name $own -> prefix $PREFIX, ports $BASE-$((BASE + 5))" >&2

mapfile -t MASTERS < <(for i in 0 1 2 3 4 5; do p=$((BASE + i))
  cli $p role | head -1 | grep -q master && echo $p; done)
mapfile -t REPLICAS < <(for i in 0 1 2 3 4 5; do p=$((BASE + i))
  cli $p role | head -1 | grep -q slave && echo $p; done)
if [ ${#MASTERS[@]} -ne 3 ] || [ ${#REPLICAS[@]} -ne 3 ]; then
  echo "capture: expected 3+3" >&2
  exit 1
fi
M0=${MASTERS[0]} M1=${MASTERS[1]}

# Traffic and errors, so every nested INFO form shows up.
for i in $(seq 300); do cli -c -p "$M0" set "key:$i" "v$i" >/dev/null; done
for i in $(seq 50); do cli -c -p "$M0" get "key:$i" >/dev/null; done
cli -c -p "$M0" setex "ttl:{a}" 1000 v >/dev/null
key0=$(for i in $(seq 300); do k="key:$i"; [ "$(cli "$M0" cluster countkeysinslot \
  "$(cli "$M0" cluster keyslot "$k")")" -gt 0 ] && echo "$k" && break; done)
cli "$M0" lpush "$key0" x >/dev/null 2>&1 || true             # WRONGTYPE
cli "$M0" nosuchcommand >/dev/null 2>&1 || true                # ERR unknown command
for i in $(seq 10); do cli "$M0" get "key:$i" >/dev/null 2>&1 || true; done  # some MOVED
cli "$M0" mget "key:1" "key:2" >/dev/null 2>&1 || true          # CROSSSLOT
cli "$M0" migrate 127.0.0.1 1 "$key0" 0 200 copy >/dev/null 2>&1 || true  # IOERR

# One slot open: M0 migrates it to M1, M1 imports it.
slot=$(cli "$M0" cluster keyslot "$key0")
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
