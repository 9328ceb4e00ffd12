#!/usr/bin/env bash
# README command two: install what is missing, build, run every test with ctest.
#   scripts/test.sh [ctest args...]      e.g. scripts/test.sh -R exporter
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# Redis 6.2, 7.2 and Valkey 8 for the version matrix (cached; cold: about 10 minutes on 2 cores).
scripts/build-servers.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
# Hostile input (tests/FAULTS.md): one clang build with ASan+UBSan (build-fuzz) runs the unit
# tests, then every libFuzzer target for SLOTGUARD_FUZZ_SECONDS each (0 skips the fuzzing):
# 11 targets x 20 s, two at a time, about 2 minutes of fuzzing.
scripts/fuzz.sh 0  # configures build-fuzz and builds the fuzz targets
cmake --build build-fuzz -j"$(nproc)"
(cd build-fuzz && ctest --output-on-failure --timeout 900 -j2 -R '^unit\.')
if [ "${SLOTGUARD_FUZZ_SECONDS:-20}" != 0 ]; then scripts/fuzz.sh "${SLOTGUARD_FUZZ_SECONDS:-20}"; fi
# Integration tests start their own loopback clusters on distinct ports, so they can run
# side by side; two at a time fits a 2-core machine.
cd build
ctest --output-on-failure --timeout 900 -j2 "$@"
