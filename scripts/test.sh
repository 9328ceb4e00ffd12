#!/usr/bin/env bash
# README command two: install what is missing, build, run every test with ctest.
#   scripts/test.sh [ctest args...]      e.g. scripts/test.sh -R exporter
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# Redis 6.2, 7.2 and Valkey 8 for the version matrix (cached; cold: about 10 minutes on 2 cores).
scripts/build-servers.sh
# Warnings are errors here (CI and development), not in a user's build (SLOTGUARD_WERROR).
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLOTGUARD_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
# The Release build users and the container image make: the Dockerfile's cmake invocation
# (tests/integration/test_ops_static.py checks they stay the same), warnings as errors, the
# two binaries only (no tests, no benchmarks): a second compile of the cluster, exporter and
# agent sources at -O3. Measured cold at -j1 on a 2-core machine shared with four other
# builds: 53 minutes; unchanged sources after that: about a minute (make or ccache).
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release \
  -DSLOTGUARD_BUILD_TESTS=OFF -DSLOTGUARD_BUILD_BENCH=OFF -DSLOTGUARD_TEST_HOOKS=OFF \
  -DSLOTGUARD_WERROR=ON >/dev/null
cmake --build build-release -j"$(nproc)" --target slotguard-exporter slotguard-agent
build-release/bin/slotguard-exporter --version >/dev/null
build-release/bin/slotguard-agent --version >/dev/null
# Hostile input (tests/FAULTS.md): one clang build with ASan+UBSan (build-fuzz) runs the unit
# tests, then every libFuzzer target for SLOTGUARD_FUZZ_SECONDS each (0 skips the fuzzing):
# 11 targets x 10 s in CI, two at a time, about a minute of fuzzing (longer by hand).
scripts/fuzz.sh 0  # configures build-fuzz and builds the fuzz targets
cmake --build build-fuzz -j"$(nproc)"
(cd build-fuzz && ctest --output-on-failure --timeout 900 -j2 -R '^unit\.')
if [ "${SLOTGUARD_FUZZ_SECONDS:-10}" != 0 ]; then scripts/fuzz.sh "${SLOTGUARD_FUZZ_SECONDS:-10}"; fi
# Integration tests start their own loopback clusters on distinct ports, so they can run
# side by side; two at a time fits a 2-core machine.
cd build
ctest --output-on-failure --timeout 900 -j2 "$@"
