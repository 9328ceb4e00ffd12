# Sourced by scripts/capture-testdata.sh and scripts/capture-server-testdata.sh: a 3+3 loopback
# cluster of the redis-server on PATH and the helpers both captures use.
#   capture_start OUTDIR FIRST_PORT SPREAD   sets OUT, WORK, BASE, MASTERS, REPLICAS, PORTS, M0, M1
#   cli PORT ARGS...    redis-cli
#   raw PORT ARGS...    one bulk-string reply, bytes as the server wrote them (CRLF kept)
#   wait_until SECONDS DESCRIPTION COMMAND...
#   capture_traffic N   N keys, reads, a TTL and one of each error, so every nested INFO form
#                       shows up; sets KEY0, a key M0 holds

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

wait_until() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@"; do
    [ $SECONDS -lt $end ] || { echo "capture: timed out waiting for $what" >&2; exit 1; }
    sleep 0.1
  done
}

capture_cleanup() { scripts/redis-cluster.sh down "$WORK" >/dev/null 2>&1 || true; rm -rf "$WORK"; }

capture_start() {
  local first=$2 spread=$3 b
  OUT=$1
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
  command -v redis-server >/dev/null || { echo "capture: redis-server not on PATH" >&2; exit 1; }
  command -v redis-cli >/dev/null || { echo "capture: redis-cli not on PATH" >&2; exit 1; }
  WORK=$(mktemp -d /tmp/slotguard-capture.XXXXXX)
  trap capture_cleanup EXIT
  export CLUSTER_NODE_TIMEOUT=2000
  BASE=
  for _ in $(seq 20); do
    b=$(( (RANDOM % spread) * 10 + first ))
    if scripts/redis-cluster.sh up "$WORK" "$b" 3 1 >"$WORK.up.log" 2>&1; then BASE=$b; break; fi
    grep -qE 'in use|did not start' "$WORK.up.log" || { cat "$WORK.up.log" >&2; exit 1; }
    scripts/redis-cluster.sh down "$WORK" >/dev/null 2>&1 || true
  done
  rm -f "$WORK.up.log"
  [ -n "$BASE" ] || { echo "capture: no free base port found" >&2; exit 1; }
  # Masters first, then replicas, so file indexes are stable in meaning.
  mapfile -t MASTERS < <(for i in 0 1 2 3 4 5; do p=$((BASE + i))
    cli $p role | head -1 | grep -q master && echo $p; done)
  mapfile -t REPLICAS < <(for i in 0 1 2 3 4 5; do p=$((BASE + i))
    cli $p role | head -1 | grep -q slave && echo $p; done)
  PORTS=("${MASTERS[@]}" "${REPLICAS[@]}")
  [ ${#MASTERS[@]} -eq 3 ] && [ ${#REPLICAS[@]} -eq 3 ] || { echo "capture: expected 3+3" >&2; exit 1; }
  M0=${MASTERS[0]} M1=${MASTERS[1]}
}

capture_traffic() {
  local n=$1 i k
  for i in $(seq "$n"); do cli -c -p "$M0" set "key:$i" "v$i" >/dev/null; done
  for i in $(seq 50); do cli -c -p "$M0" get "key:$i" >/dev/null; done
  cli -c -p "$M0" setex "ttl:{a}" 1000 v >/dev/null
  KEY0=$(for i in $(seq "$n"); do k="key:$i"; [ "$(cli "$M0" cluster countkeysinslot \
    "$(cli "$M0" cluster keyslot "$k")")" -gt 0 ] && echo "$k" && break; done)
  cli "$M0" lpush "$KEY0" x >/dev/null 2>&1 || true             # WRONGTYPE
  cli "$M0" nosuchcommand >/dev/null 2>&1 || true                # ERR unknown command
  for i in $(seq 10); do cli "$M0" get "key:$i" >/dev/null 2>&1 || true; done  # some MOVED
  cli "$M0" mget "key:1" "key:2" >/dev/null 2>&1 || true          # CROSSSLOT
  cli "$M0" cluster setslot 99999 stable >/dev/null 2>&1 || true  # ERR on cluster|setslot
  # MIGRATE to a closed port: cmdstat_migrate failed_calls and errorstat_IOERR.
  cli "$M0" migrate 127.0.0.1 1 "$KEY0" 0 200 copy >/dev/null 2>&1 || true
}
