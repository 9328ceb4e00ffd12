"""A real `slotguard-agent run` daemon for integration and e2e tests.

AgentDaemon writes its own tokens and an agent.yaml derived from the shipped config/agent.yaml
(so the shipped schema is what the tests run), starts the binary, waits for /healthz, and
offers the control CLI (`cli(...)`), raw HTTP (`http(...)`) and /metrics parsing.
"""
import atexit
import base64
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request

import yaml

from harness import SOURCE_DIR, Process, bin_path, free_port, wait_for


def topology(cluster):
    """Each node's CLUSTER NODES without the fields that change by themselves (ping/pong
    times, link state): what must stay identical when a plan is refused."""
    views = {}
    for port in cluster.ports:
        lines = []
        text = cluster.cli("-p", str(port), "CLUSTER", "NODES").stdout
        for line in text.strip().splitlines():
            f = line.split()
            lines.append(" ".join(f[0:4] + [f[6]] + f[8:]))
        views[port] = sorted(lines)
    return views


def slot_owner(cluster, slot):
    for s in cluster.client(cluster.base).execute_command("CLUSTER SLOTS"):
        if s[0] <= slot <= s[1]:
            return f"{s[2][0]}:{s[2][1]}"
    return None


def masters_by_first_slot(cluster):
    """[(address, port)] of the masters, ordered by the first slot each owns."""
    ranges = sorted(cluster.client(cluster.base).execute_command("CLUSTER SLOTS"),
                    key=lambda r: r[0])
    return [(f"{r[2][0]}:{r[2][1]}", int(r[2][1])) for r in ranges]


class AgentDaemon:
    def __init__(self, cluster, overrides=None, workdir=None, web_config=None, ssl_context=None,
                 basic_auth=None):
        """web_config: a dict written as the agent's web_config_file (TLS, basic auth);
        ssl_context and basic_auth ((user, password)) are what this object's own requests
        (health, metrics, http) then present."""
        self.cluster = cluster
        self.ssl_context = ssl_context
        self.basic_auth = basic_auth
        if workdir is None:
            # Kept until the test process ends (a test reads its journal after stop()).
            workdir = tempfile.mkdtemp(prefix="slotguard-agentd-")
            atexit.register(shutil.rmtree, workdir, ignore_errors=True)
        self.dir = workdir
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        scheme = "https" if web_config and "tls_server_config" in web_config else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.control_token_file = os.path.join(self.dir, "control-token")
        self.webhook_token_file = os.path.join(self.dir, "webhook-token")
        for path in (self.control_token_file, self.webhook_token_file):
            if not os.path.exists(path):
                with open(path, "w") as f:
                    f.write(secrets.token_hex(16) + "\n")
                os.chmod(path, 0o600)
        self.control_token = open(self.control_token_file).read().strip()
        self.webhook_token = open(self.webhook_token_file).read().strip()
        with open(os.path.join(SOURCE_DIR, "config", "agent.yaml")) as f:
            config = yaml.safe_load(f)
        config["redis"]["seeds"] = [cluster.seed, cluster.addr(cluster.ports[1])]
        if cluster.tls:
            config["redis"]["seeds"] = [f"rediss://{s}" for s in config["redis"]["seeds"]]
            config["redis"]["tls"] = {"ca_file": cluster.certs.ca,
                                      "cert_file": cluster.certs.client,
                                      "key_file": cluster.certs.client_key}
        config["listen_address"] = f"127.0.0.1:{self.port}"
        config["journal_dir"] = os.path.join(self.dir, "journal")
        config["control"]["token_file"] = self.control_token_file
        config["webhook"]["token_file"] = self.webhook_token_file
        if web_config is not None:
            config["web_config_file"] = os.path.join(self.dir, "web.yml")
            with open(config["web_config_file"], "w") as f:
                yaml.safe_dump(web_config, f)
        for key, value in (overrides or {}).items():
            node = config
            parts = key.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = value
        self.config = config
        self.config_path = os.path.join(self.dir, "agent.yaml")
        with open(self.config_path, "w") as f:
            yaml.safe_dump(config, f)
        self.proc = None
        self.logs = []

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, env=None):
        """env: extra environment of this start only (e.g. the SLOTGUARD_TEST_* hooks)."""
        env = dict(env or {})
        if self.cluster.password:
            env["REDIS_PASSWORD"] = self.cluster.password
        self.proc = Process([bin_path("slotguard-agent"), "run", "--config", self.config_path],
                            env=env)
        wait_for(self.healthy, timeout=30, what=f"agent daemon /healthz on {self.url}")
        return self

    def healthy(self):
        if self.proc and not self.proc.alive():
            raise AssertionError("agent daemon exited:\n" + self.output())
        try:
            with self._open(urllib.request.Request(self.url + "/healthz"), timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    def _open(self, req, timeout):
        """urlopen with this object's TLS context and basic auth, when it has them."""
        if self.basic_auth is not None and not req.has_header("Authorization"):
            user, password = self.basic_auth
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        return urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context)

    def kill(self):
        """SIGKILL: nothing is flushed or finished, as in a crash."""
        self.proc.proc.send_signal(signal.SIGKILL)
        self.proc.proc.wait(timeout=10)
        self._retire()

    def stop(self, sig=signal.SIGTERM):
        """Stops the daemon (SIGTERM by default); returns its exit code."""
        if self.proc is None:
            return None
        rc = self.proc.stop(sig, timeout=90)
        self._retire()
        return rc

    def _retire(self):
        if not self.proc.log.closed:
            self.proc.log.close()
        self.logs.append(open(self.proc.log_path).read())
        self.proc = None

    def output(self):
        current = open(self.proc.log_path).read() if self.proc else ""
        return "".join(self.logs) + current

    # -- control -----------------------------------------------------------------------
    def cli(self, *args, token_file=None, agent=None, env=None, timeout=120):
        cmd = [bin_path("slotguard-agent"), *args, "--agent", agent or self.url,
               "--token-file", token_file or self.control_token_file]
        full_env = dict(os.environ)
        full_env.pop("SLOTGUARD_TOKEN", None)
        if env:
            full_env.update(env)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)

    def status(self):
        r = self.cli("status", "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def item(self, batch_id):
        for item in self.status()["items"]:
            if item["id"] == batch_id:
                return item
        return None

    def http(self, method, path, body=None, token=None, raw=None, headers=None):
        """(status, parsed JSON or text) of one request; token=None sends no Authorization."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with self._open(req, timeout=30) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def metrics(self):
        """{(name, frozenset(labels.items())): value} of /metrics."""
        with self._open(urllib.request.Request(self.url + "/metrics"), timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
            if not m:
                continue
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
            out[(m.group(1), labels)] = float(m.group(4))
        return out

    def metric(self, name, **labels):
        return self.metrics().get((name, frozenset(labels.items())))

    def state(self):
        for (name, labels), value in self.metrics().items():
            if name == "slotguard_agent_state" and value == 1:
                return dict(labels)["state"]
        return None

    def write_plan(self, text, name="plan.yaml"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path


def alertmanager_only_agent(cluster, cluster_label, workdir, throttle_per_slot="250ms"):
    """An AgentDaemon (not started) that only Alertmanager can stop: its own guards off, its
    webhook acting on alerts labelled cluster=`cluster_label`, and batches slow enough to be
    caught running (one key per MIGRATE, one slot per step, `throttle_per_slot` before each)."""
    return AgentDaemon(cluster, overrides={
        "engine.guards": {"enabled": False},
        "engine.pipeline": 1,
        "engine.group_slots": 1,
        "engine.throttle_per_slot": throttle_per_slot,
        "log.format": "json",
        "webhook.cluster": cluster_label,
    }, workdir=workdir)
