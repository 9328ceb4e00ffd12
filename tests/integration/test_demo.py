"""README command one (scripts/demo.sh), run non-interactively: the whole loop it starts.

The demo runs with free ports and a 1 s Prometheus interval, the agent unthrottled. The test
waits until Prometheus scrapes the exporter and the agent (cluster="demo", the shipped rules
loaded, Alertmanager connected), enqueues the plan the demo prints with the command it prints,
sees the batches finish in the agent's /metrics and in Prometheus, then stops the demo and
checks that every process it started and its temporary directory are gone.
"""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness import BIN_DIR, SOURCE_DIR, require_binary, wait_for  # noqa: E402
from exporter_support import Scrape  # noqa: E402
from prometheus_stack import PrometheusApi  # noqa: E402

DEMO = os.path.join(SOURCE_DIR, "scripts", "demo.sh")
PLAN_SLOTS = 101 + 200  # config/plan.example.yaml: ranges 0-99 and 120, then 200 slots


class Demo:
    """scripts/demo.sh in the background (its own session), its output collected."""

    def __init__(self):
        env = dict(os.environ)
        env.update(DEMO_FREE_PORTS="1", DEMO_INTERVAL="1", DEMO_THROTTLE="0s", DEMO_KEYS="2000",
                   # The tree ctest built (so the demo's build step has nothing to do).
                   SLOTGUARD_BUILD_DIR=os.path.dirname(os.path.abspath(BIN_DIR)))
        env.pop("SLOTGUARD_AGENT", None)
        env.pop("SLOTGUARD_TOKEN", None)
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
        m = re.search(pattern, self.output(), re.M)
        return m.group(1) if m else None

    def wait_up(self):
        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"demo exited early:\n{self.output()}")
            return "Things to try" in self.output() and "demo: press Ctrl-C" in self.output()
        wait_for(up, timeout=300, interval=0.2, what="the demo's 'Things to try'")
        where = {name: self.find(rf"^    {name}\s+(\S+)")
                 for name in ("exporter", "agent", "Prometheus", "Alertmanager")}
        where["dir"] = self.find(r"configs, tokens and logs in (\S+)\):")
        where["plan"] = self.find(r"\$agent enqueue (\S+/plan\.yaml)$")
        assert all(where.values()), (where, self.output())
        return where

    def processes(self):
        """Every live process of the demo's session, the demo itself included."""
        pids = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                with open(stat) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            # fields: state ppid pgrp session ...
            if int(fields[3]) == self.proc.pid and fields[0] != "Z":
                pids.append(int(stat.split("/")[2]))
        return pids

    def kill_all(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def get(url):
    with urllib.request.urlopen(url, timeout=9) as r:
        return r.read().decode()


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(autouse=True)
def tools():
    for tool in ("redis-server", "curl", "prometheus", "prometheus-alertmanager"):
        require_binary(tool)
    for binary in ("slotguard-exporter", "slotguard-agent"):
        if not os.path.exists(os.path.join(BIN_DIR, binary)):
            pytest.fail(f"{binary} is not built")


def started(demo):
    """Waits for the whole loop; returns where things are and what must be gone at the end."""
    where = demo.wait_up()
    redis_pids = [int(open(f).read()) for f in
                  glob.glob(os.path.join(where["dir"], "cluster", "*", "redis.pid"))]
    assert len(redis_pids) == 6, demo.output()
    # exporter, agent, Alertmanager and Prometheus, besides the demo's shell.
    names = {open(f"/proc/{p}/comm").read().strip() for p in demo.processes()}
    assert {"slotguard-expor", "slotguard-agent", "prometheus"} <= names, names
    return where, redis_pids + demo.processes()


def stopped(demo, sig, code, where, pids):
    demo.proc.send_signal(sig)
    assert demo.proc.wait(timeout=90) == code, demo.output()
    demo.reader.join(10)
    assert "stopped Prometheus, Alertmanager, the agent, the exporter and the cluster" in \
        demo.output()
    assert not os.path.exists(where["dir"]), demo.output()
    wait_for(lambda: not any(alive(p) for p in pids), timeout=20,
             what="every process the demo started to be gone")
    for name in ("exporter", "agent", "Prometheus", "Alertmanager"):
        with pytest.raises(OSError):
            get(where[name])


def test_demo_loop_end_to_end_then_ctrl_c():
    demo = Demo()
    try:
        where, pids = started(demo)
        prom = PrometheusApi(int(re.search(r":(\d+)/", where["Prometheus"]).group(1)))

        def scraped():
            up = prom.result('up{cluster="demo"} == 1')
            covered = prom.result('redis_cluster_slots_covered{cluster="demo"} == 16384')
            rules = prom.get("/api/v1/rules")["data"]["groups"]
            ams = prom.get("/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
            return len(up) == 2 and covered and rules and ams
        wait_for(scraped, timeout=60, interval=0.5,
                 what="Prometheus scraping exporter and agent, rules loaded, Alertmanager known")
        jobs = {s["metric"]["job"] for s in prom.result('up{cluster="demo"} == 1')}
        assert jobs == {"slotguard-exporter", "slotguard-agent"}

        # The plan the demo suggests, enqueued as it says (SLOTGUARD_AGENT, SLOTGUARD_TOKEN).
        env = dict(os.environ, SLOTGUARD_AGENT=where["agent"].rsplit("/metrics", 1)[0],
                   SLOTGUARD_TOKEN=open(os.path.join(where["dir"], "control-token")).read())
        agent = os.path.join(BIN_DIR, "slotguard-agent")
        r = subprocess.run([agent, "enqueue", where["plan"]], env=env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr

        def finished():
            s = Scrape(get(where["agent"]))
            return s.value("slotguard_agent_slots_migrated_total") == PLAN_SLOTS and \
                s.value("slotguard_agent_queue_batches") == 0
        wait_for(finished, timeout=120, interval=0.5,
                 what="both batches of the plan done in the agent's /metrics")
        status = subprocess.run([agent, "status", "--json"], env=env, capture_output=True,
                                text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        items = json.loads(status.stdout)["items"]
        assert [i["state"] for i in items] == ["done", "done"], items
        wait_for(lambda: prom.result('slotguard_agent_slots_migrated_total{cluster="demo"} == %d'
                                     % PLAN_SLOTS), timeout=30,
                 what="Prometheus to scrape the finished batches")
        assert not prom.result('ALERTS{alertstate="firing", slotguard_action="rollback"}')

        stopped(demo, signal.SIGINT, 130, where, pids)
    finally:
        demo.kill_all()


def test_demo_stops_everything_on_sigterm():
    demo = Demo()
    try:
        where, pids = started(demo)
        stopped(demo, signal.SIGTERM, 143, where, pids)
    finally:
        demo.kill_all()
