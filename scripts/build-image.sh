#!/usr/bin/env bash
# Builds the container image from the Dockerfile, without a Docker daemon if need be.
#
#   scripts/build-image.sh [TAG]        (default TAG: localhost/slotguard:latest)
#
# With a working `docker` it runs `docker build`. Otherwise it uses buildah (apt-get install
# buildah debootstrap) as root with the vfs storage driver and chroot isolation, which need no
# daemon, no overlay filesystem and no user namespaces. Where the Dockerfile's base images
# (debian:bookworm, debian:bookworm-slim) cannot be pulled (no registry access), it makes them
# once with debootstrap from the Debian mirror ($SLOTGUARD_DEBIAN_MIRROR, default
# http://deb.debian.org/debian) and stores them under those names; later builds reuse them.
# The image is written in Docker format: OCI images have no HEALTHCHECK.
set -euo pipefail

cd "$(dirname "$0")/.."
TAG=${1:-localhost/slotguard:latest}
MIRROR=${SLOTGUARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
REVISION=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

say() { printf 'build-image: %s\n' "$*" >&2; }

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  say "docker build -t $TAG"
  exec docker build --build-arg SLOTGUARD_REVISION="$REVISION" -t "$TAG" .
fi

command -v buildah >/dev/null || {
  say "no Docker daemon and no buildah: apt-get install buildah debootstrap"
  exit 1
}
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs} BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}

# The base images, pulled if the registry answers, else made with debootstrap.
for base in docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim; do
  buildah inspect --type image "$base" >/dev/null 2>&1 && continue
  if buildah pull -q "$base" >/dev/null 2>&1; then continue; fi
  if ! buildah inspect --type image docker.io/library/debian:bookworm >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || {
      say "cannot pull $base and debootstrap is not installed (apt-get install debootstrap)"
      exit 1
    }
    rootfs=$(mktemp -d /tmp/slotguard-rootfs-XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    say "cannot pull $base: making Debian bookworm with debootstrap from $MIRROR"
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >&2
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    ctr=$(buildah from scratch)
    mnt=$(buildah mount "$ctr")
    cp -a "$rootfs"/. "$mnt"/
    buildah umount "$ctr" >/dev/null
    buildah commit -q "$ctr" docker.io/library/debian:bookworm >/dev/null
    buildah rm "$ctr" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
  fi
  # minbase is small enough to stand for -slim too.
  [ "$base" = docker.io/library/debian:bookworm ] ||
    buildah tag docker.io/library/debian:bookworm "$base"
done

say "buildah bud -t $TAG (storage $STORAGE_DRIVER, isolation $BUILDAH_ISOLATION)"
buildah bud --pull=never --layers --format docker --build-arg SLOTGUARD_REVISION="$REVISION" -t "$TAG" .
