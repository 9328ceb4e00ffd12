#!/usr/bin/env bash
# Builds the Redis/Valkey servers the version matrix tests run on (with TLS) into a cache
# outside the work tree, reusing a finished build, and prints where each one's binaries are.
#
#   scripts/build-servers.sh            build (or reuse) every server, print NAME=BINDIR lines
#   scripts/build-servers.sh --list     print NAME=BINDIR for the servers already built
#
# Sources: the release tarballs redis-6.2.16, redis-7.2.6 and valkey-8.0.1, looked for in
# $SLOTGUARD_SERVER_SOURCES, then ../shared/servers next to the checkout, then /work/shared/servers.
# Cache: ${SLOTGUARD_SERVER_CACHE:-$HOME/.cache/slotguard/servers}/<name>/bin. A build is reused
# when its stamp names the same tarball checksum. Debian's redis-server 7.0.15 (the default
# everywhere else) is not built here.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVERS=(redis-6.2.16 redis-7.2.6 valkey-8.0.1)
CACHE="${SLOTGUARD_SERVER_CACHE:-$HOME/.cache/slotguard/servers}"
JOBS="$(nproc)"

find_sources() {
  local d
  for d in "${SLOTGUARD_SERVER_SOURCES:-}" "$PWD/../shared/servers" /work/shared/servers; do
    if [ -n "$d" ] && [ -f "$d/${SERVERS[0]}.tar.gz" ]; then
      (cd "$d" && pwd)
      return 0
    fi
  done
  return 1
}

list_only=0
if [ "${1:-}" = "--list" ]; then list_only=1; fi

if ! SRC="$(find_sources)"; then
  echo "build-servers: no server tarballs found (looked in \$SLOTGUARD_SERVER_SOURCES," \
    "$PWD/../shared/servers, /work/shared/servers); the version matrix will be skipped" >&2
  exit 0
fi

mkdir -p "$CACHE"
for name in "${SERVERS[@]}"; do
  tarball="$SRC/$name.tar.gz"
  dest="$CACHE/$name"
  if [ ! -f "$tarball" ]; then
    echo "build-servers: $tarball is missing; $name will be skipped" >&2
    continue
  fi
  sum="$(sha256sum "$tarball" | cut -d' ' -f1)"
  if [ -f "$dest/stamp" ] && [ "$(cat "$dest/stamp")" = "$sum" ] && [ -x "$dest/bin/redis-server" ]; then
    echo "$name=$dest/bin"
    continue
  fi
  if [ "$list_only" = 1 ]; then continue; fi
  start=$(date +%s)
  echo "build-servers: building $name with TLS (make -j$JOBS BUILD_TLS=yes); log: $dest.log" >&2
  rm -rf "$dest" "$dest.build"
  mkdir -p "$dest.build"
  tar xzf "$tarball" -C "$dest.build" --strip-components=1
  if ! make -C "$dest.build" -j"$JOBS" BUILD_TLS=yes >"$dest.log" 2>&1; then
    echo "build-servers: building $name failed; last lines of $dest.log:" >&2
    tail -20 "$dest.log" >&2
    exit 1
  fi
  mkdir -p "$dest/bin"
  # Valkey installs valkey-* with redis-* symlinks; copy whichever exist, following links.
  for b in redis-server redis-cli valkey-server valkey-cli; do
    if [ -e "$dest.build/src/$b" ]; then cp -L "$dest.build/src/$b" "$dest/bin/$b"; fi
  done
  # The harness runs redis-server/redis-cli from PATH, as Valkey's own `make install` provides.
  for b in server cli; do
    if [ -e "$dest/bin/valkey-$b" ] && [ ! -e "$dest/bin/redis-$b" ]; then
      ln -s "valkey-$b" "$dest/bin/redis-$b"
    fi
  done
  rm -rf "$dest.build"
  echo "$sum" >"$dest/stamp"
  echo "build-servers: $name built in $(($(date +%s) - start)) s" >&2
  echo "$name=$dest/bin"
done
