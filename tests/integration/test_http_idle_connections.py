"""Idle and trickling connections must not stop the HTTP endpoints (issue 10).

Against a running exporter and a running agent daemon, a thread holds 300 idle TCP connections
(connected, nothing sent) and 50 "trickling" ones (a request head sent a byte at a time, never
finished) to each, reopening whatever the server drops, the way a misbehaving client or a port
scanner would. Meanwhile Prometheus-style scrapes of the exporter's /metrics, the agent's
/healthz and /metrics, and an Alertmanager webhook POST must each still be answered within
Prometheus' default 10 s scrape timeout. Nothing is timed beyond that generous bound.
"""
import json
import os
import resource
import socket
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))

from agent_daemon import AgentDaemon  # noqa: E402
from exporter_support import Exporter, Scrape  # noqa: E402

IDLE = 300
TRICKLING = 50
TIMEOUT = 10  # Prometheus' default scrape_timeout
TRICKLE = b"GET /metrics HTTP/1.1\r\nHost: slotguard\r\nX-Slow: " + b"x" * 4000


class Siege:
    """Holds IDLE idle and TRICKLING trickling connections to each port until stopped."""

    def __init__(self, ports):
        self.ports = ports
        self.stop_flag = threading.Event()
        self.opened = 0
        self.dropped = 0  # connections the servers closed (then opened again)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.conns = []  # [socket, port, trickle offset or None]

    def open(self, port, trickle):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        self.opened += 1
        self.conns.append([s, port, 0 if trickle else None])

    def __enter__(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 2 * len(self.ports) * (IDLE + TRICKLING) + 256
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        for port in self.ports:
            for i in range(IDLE + TRICKLING):
                self.open(port, i >= IDLE)
        self.thread.start()
        time.sleep(2)  # the servers' workers take them up
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(timeout=30)
        for s, _, _ in self.conns:
            s.close()

    def run(self):
        while not self.stop_flag.is_set():
            for conn in list(self.conns):
                s, port, offset = conn
                try:
                    if s.recv(4096, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                        raise ConnectionResetError  # closed by the server
                except BlockingIOError:
                    pass  # still open, nothing to read
                except OSError:
                    self.conns.remove(conn)
                    s.close()
                    self.dropped += 1
                    self.open(port, offset is not None)
                    continue
                if offset is not None and offset < len(TRICKLE):
                    try:
                        s.send(TRICKLE[offset:offset + 1])
                        conn[2] += 1
                    except (BlockingIOError, OSError):
                        pass
            self.stop_flag.wait(0.5)


def answered(what, call):
    """call()'s result, or an AssertionError naming `what` when it did not answer in time."""
    try:
        return call()
    except Exception as e:  # noqa: BLE001  (a timeout, a reset: all mean "did not answer")
        raise AssertionError(f"{what} did not answer within {TIMEOUT}s under the siege: {e!r}")


def get(url):
    with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
        return r.status, r.read().decode()


def post_webhook(agent):
    body = json.dumps({"version": "4", "status": "resolved", "alerts": []}).encode()
    req = urllib.request.Request(agent.url + "/api/v1/alertmanager", data=body, method="POST")
    req.add_header("Authorization", f"Bearer {agent.webhook_token}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
        return r.status, json.loads(r.read().decode())


def test_idle_and_trickling_connections_do_not_stop_scrapes_or_the_webhook(cluster):
    exporter = Exporter(["--redis.addr", cluster.seed, "--scrape.timeout", "5s"])
    agent = AgentDaemon(cluster)
    agent.start()
    try:
        with Siege([exporter.port, agent.port]) as siege:
            # Several rounds, spread over more than one request timeout, so that some rounds
            # meet connections the servers are dropping and the siege opening new ones.
            for _ in range(4):
                status, text = answered("exporter /metrics",
                                        lambda: get(exporter.url + "/metrics"))
                assert status == 200
                assert set(Scrape(text).values("redis_cluster_slots_assigned")) == {16384.0}
                status, text = answered("agent /healthz", lambda: get(agent.url + "/healthz"))
                assert status == 200 and text == "ok\n"
                status, text = answered("agent /metrics", lambda: get(agent.url + "/metrics"))
                assert status == 200 and "slotguard_agent" in text
                status, reply = answered("Alertmanager webhook", lambda: post_webhook(agent))
                assert status == 200 and reply["result"] == "ignored", reply
                time.sleep(2)
            assert siege.opened >= 2 * (IDLE + TRICKLING)
        # Both still healthy once the siege is over.
        assert get(exporter.url + "/healthz")[1] == "ok\n"
        assert get(agent.url + "/healthz")[0] == 200
    finally:
        agent.stop()
        exporter.stop()
