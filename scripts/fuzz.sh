#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan+UBSan, in build-fuzz) and runs each for
# SECONDS (default 20: CI runs this through scripts/test.sh; give more by hand, e.g. 600; 0 only
# configures and builds).
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 600 webhook_fuzz
# Two targets run at a time (FUZZ_JOBS). Each grows its corpus in build-fuzz/corpus/TARGET,
# seeded from tests/fuzz/seeds/TARGET and the matching files of tests/data. A crash, a sanitizer
# report, a timeout (10 s per input) or an out-of-memory (2 GiB) fails the script and leaves the
# input in build-fuzz/crashes/; rerun it with `build-fuzz/fuzz/TARGET FILE`, then make it a unit
# test in tests/unit/ and fix the parser.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-20}"
shift || true
JOBS="${FUZZ_JOBS:-2}"
BUILD=build-fuzz

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  # -O1 with line tables: what the sanitizers recommend, and quicker to build than -O2 -g.
  cmake -S . -B "$BUILD" -DCMAKE_CXX_COMPILER=clang++ -DSLOTGUARD_FUZZ=ON \
    -DSLOTGUARD_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=None \
    "-DCMAKE_CXX_FLAGS=-O1 -gline-tables-only" >/dev/null
else
  # Configured before: again, so a target added since then is known to --target below.
  cmake -S . -B "$BUILD" >/dev/null
fi

if [ $# -gt 0 ]; then
  TARGETS=("$@")
else
  TARGETS=()
  for src in tests/fuzz/*_fuzz.cc; do TARGETS+=("$(basename "$src" .cc)"); done
fi
cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]}"
[ "$SECONDS_PER_TARGET" = 0 ] && exit 0  # build only

# The files of tests/data each target starts from, besides its own seeds.
data_seeds() {
  case "$1" in
    info_fuzz) ls tests/data/*info*.txt ;;
    nodes_fuzz) ls tests/data/*nodes*.txt ;;
    exporter_scrape_fuzz) ls tests/data/exporter_*.txt ;;
    webhook_fuzz) ls tests/data/alertmanager/*.json ;;
    agent_config_fuzz) ls config/agent.yaml ;;
    exporter_settings_fuzz) ls config/exporter.yaml ;;
    plan_file_fuzz) ls config/plan.example.yaml ;;
    web_config_fuzz) ls config/web.example.yml ;;
  esac
}

mkdir -p "$BUILD/crashes" "$BUILD/fuzz-logs"
run_one() {
  local target="$1" corpus="$BUILD/corpus/$1" seeds="tests/fuzz/seeds/${1%_fuzz}"
  mkdir -p "$corpus"
  for f in $(data_seeds "$target"); do cp -n "$f" "$corpus/" 2>/dev/null || true; done
  local dirs=("$corpus")
  [ -d "$seeds" ] && dirs+=("$seeds")
  if "$BUILD/fuzz/$target" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$BUILD/crashes/$target-" \
    "${dirs[@]}" >"$BUILD/fuzz-logs/$target.log" 2>&1; then
    echo "fuzz: $target: $(grep -m1 'stat::number_of_executed_units' "$BUILD/fuzz-logs/$target.log" |
      awk '{print $2}') runs in ${SECONDS_PER_TARGET}s, clean"
  else
    echo "fuzz: $target: FAILED (log: $BUILD/fuzz-logs/$target.log)"
    grep -E 'ERROR|SUMMARY|Test unit written' "$BUILD/fuzz-logs/$target.log" | head -5
    return 1
  fi
}
export -f run_one data_seeds
export BUILD SECONDS_PER_TARGET
printf '%s\n' "${TARGETS[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one {}'
