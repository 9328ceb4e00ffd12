"""Smoke test of README command one (scripts/demo.sh), run non-interactively."""
import glob
import os
import re
import signal
import subprocess
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness import BIN_DIR, SOURCE_DIR, require_binary, wait_for  # noqa: E402
from exporter_support import Scrape  # noqa: E402

DEMO = os.path.join(SOURCE_DIR, "scripts", "demo.sh")


class Demo:
    """scripts/demo.sh in the background, its output collected line by line."""

    def __init__(self, seconds):
        env = dict(os.environ)
        env["DEMO_SECONDS"] = str(seconds)
        env["DEMO_KEYS"] = "3000"
        # The tree ctest built (so the demo's build step has nothing to do).
        env["SLOTGUARD_BUILD_DIR"] = os.path.dirname(os.path.abspath(BIN_DIR))
        self.proc = subprocess.Popen([DEMO], cwd=SOURCE_DIR, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self):
        return "".join(self.lines)

    def find(self, pattern):
        m = re.search(pattern, self.output())
        return m.group(1) if m else None

    def wait_up(self):
        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"demo exited early:\n{self.output()}")
            return self.find(r"curl -s (http://127\.0\.0\.1:\d+/metrics)\n")
        return wait_for(up, timeout=240, interval=0.2, what="the demo's curl line")

    def kill_all(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def scrape(url):
    import urllib.request
    with urllib.request.urlopen(url, timeout=9) as r:
        return Scrape(r.read().decode())


def redis_pids(cluster_dir):
    return [int(open(f).read().strip()) for f in glob.glob(os.path.join(cluster_dir, "*", "redis.pid"))]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(autouse=True)
def tools():
    require_binary("redis-server")
    require_binary("curl")
    if not os.path.exists(os.path.join(BIN_DIR, "slotguard-exporter")):
        pytest.fail("slotguard-exporter is not built")


def check_up_and_scrape(demo):
    url = demo.wait_up()
    cluster_dir = demo.find(r"cluster on 127\.0\.0\.1:\d+-\d+ in (\S+)\n")
    assert cluster_dir and os.path.isdir(cluster_dir), demo.output()
    pids = redis_pids(cluster_dir)
    assert len(pids) == 6
    s = scrape(url)
    assert sorted(s.values("redis_up")) == [1.0] * 6
    assert s.value("redis_cluster_slots_covered") == 16384
    masters = {ls["node"] for ls in s.labelsets("redis_cluster_node_info") if ls["role"] == "master"}
    assert sum(s.value("redis_db_keys", node=m, db="db0") for m in masters) >= 3000
    return url, cluster_dir, pids


def check_cleaned_up(demo, url, cluster_dir, pids):
    assert not os.path.exists(cluster_dir), demo.output()
    wait_for(lambda: not any(alive(p) for p in pids), timeout=20, what="redis nodes stopped")
    with pytest.raises(Exception):
        scrape(url)
    assert "stopped the exporter and the cluster" in demo.output()


def test_demo_runs_scrapes_and_exits_by_itself():
    demo = Demo(seconds=15)
    try:
        url, cluster_dir, pids = check_up_and_scrape(demo)
        assert demo.proc.wait(timeout=120) == 0, demo.output()
        demo.reader.join(10)
        check_cleaned_up(demo, url, cluster_dir, pids)
    finally:
        demo.kill_all()


def test_demo_stops_everything_on_sigterm():
    demo = Demo(seconds=600)
    try:
        url, cluster_dir, pids = check_up_and_scrape(demo)
        demo.proc.send_signal(signal.SIGTERM)
        assert demo.proc.wait(timeout=60) == 143, demo.output()  # 128 + SIGTERM, from its trap
        demo.reader.join(10)
        check_cleaned_up(demo, url, cluster_dir, pids)
    finally:
        demo.kill_all()
