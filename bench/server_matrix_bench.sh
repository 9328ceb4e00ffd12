#!/usr/bin/env bash
# The reshard benchmark (bench/reshard_bench.sh) on every server of the version matrix, quiet
# and with both cores kept busy, each against that server's own cli (`redis-cli --cluster
# reshard`, `valkey-cli` for Valkey). Not part of CI.
#
#   bench/server_matrix_bench.sh              KEYS=100000 SLOTS=2000 RUNS=2
#   SERVERS="valkey-8.0.1" bench/server_matrix_bench.sh
#
# Servers: Debian's redis-server ("default") and every build scripts/build-servers.sh lists
# (SERVERS narrows it: names as build-servers.sh prints them, "default" for Debian's). Busy: two
# `yes > /dev/null` processes run for the whole measurement, as two compiler jobs would.
# Prints each run's summary, then one line per server and condition: the medians and the
# slowest run's ratio (the promise is "every run", so the minimum is what counts).
set -euo pipefail
cd "$(dirname "$0")/.."

export KEYS="${KEYS:-100000}" SLOTS="${SLOTS:-2000}" RUNS="${RUNS:-2}" REFERENCE=0
# The summary judges the defaults; AGENT_VARIANTS adds variants timed in the same runs (e.g.
# "--batch-slots 200" for a paired comparison), printed in each server's block.
export AGENT_VARIANTS="${AGENT_VARIANTS:-}"
declare -A BIN=([default]=/usr/bin)
while IFS='=' read -r name dir; do
  [ -n "$name" ] && BIN[$name]=$dir
done < <(scripts/build-servers.sh --list 2>/dev/null)
SERVERS=${SERVERS:-default ${!BIN[*]}}

busy_pids=()
stop_busy() {
  if [ ${#busy_pids[@]} -gt 0 ]; then kill "${busy_pids[@]}" 2>/dev/null || true; fi
  busy_pids=()
}
trap stop_busy EXIT INT TERM

summary=()
for server in $SERVERS; do
  dir=${BIN[$server]:-}
  [ -n "$dir" ] || { echo "bench: $server is not built (scripts/build-servers.sh)" >&2; exit 1; }
  for condition in quiet busy; do
    if [ "$condition" = busy ]; then
      for _ in 1 2; do yes > /dev/null & busy_pids+=($!); done
    fi
    echo "== $server, $condition" >&2
    out=$(PATH="$dir:$PATH" bench/reshard_bench.sh 2>&1) || { echo "$out" >&2; exit 1; }
    stop_busy
    echo "$out" | sed -n '/^reshard benchmark/,$p'
    line=$(echo "$out" | grep -E "^  slotguard-agent reshard.*x faster than redis-cli defaults" | head -1)
    cli=$(echo "$out" | grep -E "^  redis-cli --cluster reshard \(defaults\)" | awk '{for(i=1;i<=NF;i++) if($i=="s") {print $(i-1); exit}}')
    agent=$(echo "$out" | grep -E "^  slotguard-agent reshard" | head -1 | awk '{for(i=1;i<=NF;i++) if($i=="s") {print $(i-1); exit}}')
    summary+=("$(printf '%-14s %-6s cli %7s s  slotguard %7s s  %s' "$server" "$condition" \
      "$cli" "$agent" "$(echo "$line" | sed 's/.*(within a run vs defaults: /per run: /; s/)$//')")")
  done
done
echo
echo "server matrix (median of $RUNS runs, $KEYS keys, $SLOTS slots, each against its own cli):"
printf '  %s\n' "${summary[@]}"
