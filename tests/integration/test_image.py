"""The container image, built from the Dockerfile by scripts/build-image.sh and run.

Off unless SLOTGUARD_IMAGE_TEST=1: a cold build compiles both binaries at -O3 inside the image
(and, without registry access, makes the Debian base with debootstrap first), which takes far
longer than the rest of CI. Without a Docker daemon it runs with buildah (vfs storage, chroot
isolation) as root: the image's user must not be root, `--version` must work inside it, and
its HEALTHCHECK command must pass against an exporter running in the image (and fail without).
SLOTGUARD_IMAGE=TAG checks an image built before instead of building one.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))

from harness import SOURCE_DIR, Process, free_port, wait_for  # noqa: E402

TAG = "localhost/slotguard:image-test"
ENV = dict(os.environ, STORAGE_DRIVER="vfs", BUILDAH_ISOLATION="chroot")

pytestmark = pytest.mark.skipif(os.environ.get("SLOTGUARD_IMAGE_TEST") != "1",
                                reason="SLOTGUARD_IMAGE_TEST=1 builds and runs the image")


def buildah(*args, timeout=120, check=True):
    r = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout,
                       env=ENV)
    if check:
        assert r.returncode == 0, f"buildah {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def image():
    if shutil.which("buildah") is None or os.geteuid() != 0:
        pytest.skip("needs buildah (scripts/build-image.sh says how) and root")
    tag = os.environ.get("SLOTGUARD_IMAGE")
    if not tag:
        tag = TAG
        started = time.monotonic()
        r = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "build-image.sh"), tag],
                           capture_output=True, text=True, timeout=5400, env=ENV)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
        print(f"image built in {time.monotonic() - started:.0f} s")
    yield tag, json.loads(buildah("inspect", "--type", "image", tag).stdout)
    if tag == TAG:
        buildah("rmi", TAG, check=False)


@pytest.fixture
def container(image):
    ctr = buildah("from", "--pull=never", image[0]).stdout.strip()
    try:
        yield ctr
    finally:
        buildah("rm", ctr, check=False)


def test_image_runs_as_non_root_with_a_healthcheck(image, container):
    docker = image[1]["Docker"]["config"]
    assert docker["User"] == "slotguard"
    health = docker.get("Healthcheck")
    assert health and health["Test"][0] in ("CMD", "CMD-SHELL"), docker
    uid = buildah("run", container, "--", "id", "-u").stdout.strip()
    assert uid != "0" and int(uid) > 0, uid
    for binary in ("slotguard-exporter", "slotguard-agent"):
        r = buildah("run", container, "--", binary, "--version")
        assert r.stdout.startswith(f"{binary} "), r.stdout + r.stderr

    # The HEALTHCHECK command fails with nothing listening, passes with the exporter up.
    check = health["Test"][1:] if health["Test"][0] == "CMD" else ["sh", "-c", health["Test"][1]]
    port = free_port()
    env = ["--env", f"SLOTGUARD_HEALTH_PORT={port}"]
    assert buildah("run", *env, container, "--", *check, check=False).returncode != 0
    exporter = Process(["buildah", "run", container, "--", "slotguard-exporter",
                        "--redis.addr", f"127.0.0.1:{free_port()}",
                        "--web.listen-address", f"127.0.0.1:{port}"], env=ENV)
    try:
        wait_for(lambda: buildah("run", *env, container, "--", *check,
                                 check=False).returncode == 0,
                 timeout=60, interval=1, what="the image's HEALTHCHECK to pass")
    finally:
        exporter.stop()
