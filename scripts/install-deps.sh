#!/usr/bin/env bash
# Installs every Debian package slotguard's build, tests, demo and benchmarks need.
# Idempotent and non-interactive; returns quickly when everything is present.
set -euo pipefail

PACKAGES=(
  # build
  cmake g++ make pkg-config clang-format
  prometheus-cpp-dev libmicrohttpd-dev libgnutls28-dev libhiredis-dev libyaml-cpp-dev libspdlog-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev
  libexpected-dev
  # the HTTP layer is libmicrohttpd (above), its TLS GnuTLS; OpenSSL checks the web config's
  # certificate and key, libcrypt verifies bcrypt; openssl makes test_web_auth.py's certificates
  libssl-dev libcrypt-dev openssl
  # the ASan+UBSan build and the libFuzzer targets (scripts/fuzz.sh); libFuzzer is in libclang-rt
  clang libclang-rt-dev
  # TLS to Redis (cluster/transport.cc) and the servers of the version matrix
  # (scripts/build-servers.sh, BUILD_TLS=yes): libssl-dev above
  # runtime for tests and the demo
  redis-server redis-tools prometheus prometheus-alertmanager python3 python3-redis
  python3-pytest python3-yaml curl procps iproute2 docker-compose
  # systemd-analyze verify for packaging/systemd/ (the package is not started)
  systemd
  # peers for the benchmarks
  prometheus-redis-exporter
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends keeps the footprint small; the services are started by the
# scripts themselves, never by the package's init scripts.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
