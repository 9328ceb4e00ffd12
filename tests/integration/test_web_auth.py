"""TLS and basic auth on the HTTP endpoints (the exporter-toolkit web config, issue 10).

Certificates are made with `openssl` in the test, bcrypt hashes with python3's crypt module.
The exporter and the agent daemon serve HTTPS; curl, a real Prometheus and a real Alertmanager
talk to them the way an operator's would: with and without the password, with and without a
client certificate, with one from another CA, over plain HTTP to the TLS port, and while
clients that never finish their request hold connections.
"""
import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))

from agent_daemon import AgentDaemon  # noqa: E402
from exporter_support import EXPORTER, Scrape  # noqa: E402
from harness import Cluster, Process, free_port, require_binary, wait_for  # noqa: E402
from prometheus_stack import start_prometheus  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # noqa: E402  (deprecated in 3.11, removed in 3.13: Debian bookworm has 3.11)

PASSWORD = "correct horse battery staple"


def bcrypt(password, cost=10):
    """A $2b$ hash as exporter-toolkit users make them (htpasswd -B gives $2y$, the same)."""
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2 ** cost))


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
            "-subj", f"/CN=slotguard test {name}", cwd=d)


def make_cert(d, name, ca, san=None):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", ext, cwd=d)


@pytest.fixture(scope="module")
def certs():
    require_binary("openssl")
    require_binary("curl")
    d = tempfile.mkdtemp(prefix="slotguard-web-tls-")
    make_ca(d, "ca")
    make_ca(d, "rogue-ca")
    make_cert(d, "server", "ca", san="IP:127.0.0.1,DNS:localhost")
    make_cert(d, "client", "ca")
    make_cert(d, "rogue-client", "rogue-ca")
    return d


@pytest.fixture(scope="module")
def small_cluster():
    c = Cluster(masters=3, replicas=0)
    yield c
    c.down()


def write_web_config(d, name, config):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


def client_cert(d, name):
    """curl's arguments to present the certificate `name` of the folder `d`."""
    return ["--cert", os.path.join(d, f"{name}.crt"), "--key", os.path.join(d, f"{name}.key")]


def curl(url, *args, timeout=15):
    """(curl's exit code, HTTP status or 0, headers + body)."""
    r = subprocess.run(["curl", "-sS", "-i", "--max-time", str(timeout), *args,
                        "-w", "\n%{http_code}", url],
                       capture_output=True, text=True, timeout=timeout + 10)
    out, _, code = r.stdout.rpartition("\n")
    return r.returncode, int(code or 0), out + r.stderr


class TlsExporter:
    """slotguard-exporter with a web config, on a free port."""

    def __init__(self, cluster, web_config_path, certs):
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.certs = certs
        self.proc = Process([EXPORTER, "--redis.addr", cluster.seed, "--scrape.timeout", "5s",
                             "--web.listen-address", f"127.0.0.1:{self.port}"],
                            env={"SLOTGUARD_EXPORTER_WEB_CONFIG_FILE": web_config_path})

        def listening():
            assert self.proc.alive(), f"exporter exited:\n{self.proc.output()}"
            return "listening on" in self.proc.output()
        wait_for(listening, timeout=15, what="exporter listening")

    def stop(self):
        return self.proc.stop()


def test_exporter_tls_and_basic_auth(certs, small_cluster):
    web = write_web_config(certs, "exporter-web.yml", {
        "tls_server_config": {"cert_file": "server.crt", "key_file": "server.key"},
        "basic_auth_users": {"prometheus": bcrypt(PASSWORD)},
    })
    exporter = TlsExporter(small_cluster, web, certs)
    ca = os.path.join(certs, "ca.crt")
    try:
        # The log says how it serves, and never the hash.
        assert "TLS, basic auth (1 user)" in exporter.proc.output()
        assert "$2b$" not in exporter.proc.output()

        rc, status, out = curl(exporter.url + "/metrics", "--cacert", ca)
        assert (rc, status) == (0, 401), out
        assert 'WWW-Authenticate: Basic realm="slotguard"' in out
        rc, status, out = curl(exporter.url + "/metrics", "--cacert", ca,
                               "-u", "prometheus:wrong")
        assert (rc, status) == (0, 401), out
        rc, status, out = curl(exporter.url + "/metrics", "--cacert", ca, "-u", "nobody:" + PASSWORD)
        assert (rc, status) == (0, 401), out
        # Every endpoint is behind the password, as with exporter-toolkit.
        rc, status, out = curl(exporter.url + "/healthz", "--cacert", ca)
        assert (rc, status) == (0, 401), out
        rc, status, out = curl(exporter.url + "/metrics", "--cacert", ca,
                               "-u", "prometheus:" + PASSWORD)
        assert (rc, status) == (0, 200), out
        assert "redis_cluster_slots_covered 16384" in out
        # The server's certificate is checked by the client: without the CA curl refuses it.
        rc, status, out = curl(exporter.url + "/healthz", "-u", "prometheus:" + PASSWORD)
        assert rc == 60 and status == 0, out
        # Plain HTTP to the TLS port gets no HTTP answer at all.
        rc, status, out = curl(f"http://127.0.0.1:{exporter.port}/metrics",
                               "-u", "prometheus:" + PASSWORD)
        assert rc != 0 and status == 0, out
        # TLS 1.2 is fine by default.
        rc, status, out = curl(exporter.url + "/healthz", "--cacert", ca, "--tls-max", "1.2",
                               "-u", "prometheus:" + PASSWORD)
        assert (rc, status) == (0, 200), out

        # A real Prometheus: https, the CA, basic auth. A second job with the wrong password
        # must see the exporter down with a 401.
        tmp = tempfile.mkdtemp(prefix="slotguard-web-prom-")
        tls = {"scheme": "https", "tls_config": {"ca_file": ca}}
        prom_proc, prom = start_prometheus(
            tmp, [], {"exporter-tls": exporter.port, "exporter-wrong-password": exporter.port},
            scrape_options={
                "exporter-tls": {**tls, "basic_auth": {"username": "prometheus",
                                                       "password": PASSWORD}},
                "exporter-wrong-password": {**tls, "basic_auth": {"username": "prometheus",
                                                                  "password": "nope"}},
            })
        try:
            def scraped():
                assert prom_proc.alive(), prom_proc.output()
                up = {r["metric"]["job"]: r["value"][1] for r in prom.result("up")}
                slots = prom.result('redis_cluster_slots_covered{job="exporter-tls"}')
                return (up.get("exporter-tls") == "1" and up.get("exporter-wrong-password") == "0"
                        and slots and slots[0]["value"][1] == "16384")
            wait_for(scraped, timeout=60, interval=0.5,
                     what="Prometheus scraping over TLS with basic auth")
            targets = prom.get("/api/v1/targets")["data"]["activeTargets"]
            wrong = next(t for t in targets if t["labels"]["job"] == "exporter-wrong-password")
            assert "401" in wrong["lastError"], wrong
        finally:
            prom_proc.stop()

        # Clients that never finish: silent TCP connections, half a TLS handshake, plain HTTP
        # requests to the TLS port. Scrapes with the right password still answer meanwhile,
        # and the server drops the stalled connections by itself.
        stalled = []
        for i in range(60):
            s = socket.create_connection(("127.0.0.1", exporter.port), timeout=5)
            if i % 3 == 1:
                s.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, no more
            elif i % 3 == 2:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            stalled.append(s)
        for _ in range(3):
            rc, status, out = curl(exporter.url + "/metrics", "--cacert", ca,
                                   "-u", "prometheus:" + PASSWORD, timeout=10)
            assert (rc, status) == (0, 200), out
        rc, status, out = curl(exporter.url + "/metrics", "--cacert", ca,
                               "-u", "prometheus:wrong", timeout=10)
        assert (rc, status) == (0, 401), out

        def all_dropped():
            for s in stalled:
                s.setblocking(False)
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    return False  # still held open
                except OSError:
                    continue  # reset: dropped
                if data != b"":
                    # Plain HTTP gets at most a TLS alert, never an HTTP answer.
                    assert not data.startswith(b"HTTP/"), data[:80]
                    return False
            return True
        wait_for(all_dropped, timeout=60, interval=0.5,
                 what="the exporter dropping stalled and plain-HTTP connections")
        for s in stalled:
            s.close()
        assert exporter.proc.alive()
    finally:
        exporter.stop()


def test_exporter_client_certificates(certs, small_cluster):
    web = write_web_config(certs, "exporter-mtls.yml", {
        "tls_server_config": {"cert_file": "server.crt", "key_file": "server.key",
                              "client_auth_type": "RequireAndVerifyClientCert",
                              "client_ca_file": "ca.crt", "min_version": "TLS13"},
    })
    exporter = TlsExporter(small_cluster, web, certs)
    ca = os.path.join(certs, "ca.crt")
    good, rogue = client_cert(certs, "client"), client_cert(certs, "rogue-client")
    try:
        rc, status, out = curl(exporter.url + "/healthz", "--cacert", ca)
        assert rc != 0 and status == 0, out  # no certificate: the handshake fails
        rc, status, out = curl(exporter.url + "/healthz", "--cacert", ca, *rogue)
        assert rc != 0 and status == 0, out  # signed by another CA
        rc, status, out = curl(exporter.url + "/metrics", "--cacert", ca, *good)
        assert (rc, status) == (0, 200), out
        assert "redis_up" in out
        # min_version: TLS13 refuses a TLS 1.2 client, certificate or not.
        rc, status, out = curl(exporter.url + "/healthz", "--cacert", ca, "--tls-max", "1.2",
                               *good)
        assert rc != 0 and status == 0, out
    finally:
        exporter.stop()


@pytest.mark.parametrize("mode, none_ok, rogue_ok", [
    ("RequestClientCert", True, True),
    ("RequireAnyClientCert", False, True),
    ("VerifyClientCertIfGiven", True, False),
])
def test_exporter_other_client_auth_types(certs, small_cluster, mode, none_ok, rogue_ok):
    """The client_auth_type values test_exporter_client_certificates does not cover: whether a
    client without a certificate, and one with a certificate from another CA, are served."""
    tls = {"cert_file": "server.crt", "key_file": "server.key", "client_auth_type": mode}
    if mode == "VerifyClientCertIfGiven":
        tls["client_ca_file"] = "ca.crt"
    web = write_web_config(certs, f"exporter-{mode}.yml", {"tls_server_config": tls})
    exporter = TlsExporter(small_cluster, web, certs)
    ca = os.path.join(certs, "ca.crt")
    good, rogue = client_cert(certs, "client"), client_cert(certs, "rogue-client")
    try:
        for tls_max in (["--tls-max", "1.2"], []):
            rc, status, out = curl(exporter.url + "/healthz", "--cacert", ca, *tls_max, *good)
            assert (rc, status) == (0, 200), out
            rc, status, out = curl(exporter.url + "/healthz", "--cacert", ca, *tls_max)
            assert ((rc, status) == (0, 200)) == none_ok, out
            if not none_ok:
                assert rc != 0 and status == 0, out  # dropped, never an HTTP answer
            rc, status, out = curl(exporter.url + "/healthz", "--cacert", ca, *tls_max, *rogue)
            assert ((rc, status) == (0, 200)) == rogue_ok, out
            if not rogue_ok:
                assert rc != 0 and status == 0, out
    finally:
        exporter.stop()


def test_bad_web_configs_are_refused_at_start(certs, small_cluster):
    bad = write_web_config(certs, "bad-web.yml", {
        "tls_server_config": {"cert_file": "server.crt", "key_file": "server.key",
                              "client_auth_type": "RequireAndVerifyClientCert"},
    })
    r = subprocess.run([EXPORTER, "--redis.addr", small_cluster.seed, "--web.listen-address",
                        f"127.0.0.1:{free_port()}", "--web.config.file", bad],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "bad-web.yml:2: tls_server_config.client_ca_file: required" in r.stdout + r.stderr
    # A key that is not the certificate's: refused when the server starts, naming both files.
    mismatched = write_web_config(certs, "mismatched-web.yml", {
        "tls_server_config": {"cert_file": "server.crt", "key_file": "client.key"}})
    r = subprocess.run([EXPORTER, "--redis.addr", small_cluster.seed, "--web.listen-address",
                        f"127.0.0.1:{free_port()}", "--web.config.file", mismatched],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "does not belong to the certificate" in r.stdout + r.stderr, r.stdout + r.stderr


def test_agent_webhook_over_tls_from_alertmanager(certs, small_cluster):
    require_binary("prometheus-alertmanager")
    ca = os.path.join(certs, "ca.crt")
    client = (os.path.join(certs, "client.crt"), os.path.join(certs, "client.key"))
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(*client)
    agent = AgentDaemon(small_cluster, web_config={
        "tls_server_config": {"cert_file": os.path.join(certs, "server.crt"),
                              "key_file": os.path.join(certs, "server.key"),
                              "client_auth_type": "RequireAndVerifyClientCert",
                              "client_ca_file": ca},
        "basic_auth_users": {"prometheus": bcrypt(PASSWORD)},
    }, ssl_context=context, basic_auth=("prometheus", PASSWORD))
    agent.start()
    tmp = tempfile.mkdtemp(prefix="slotguard-web-am-")
    alertmanager = None
    try:
        assert agent.url.startswith("https://")
        cert = ["--cacert", ca, "--cert", client[0], "--key", client[1]]
        # /metrics: the client certificate and the password.
        rc, status, out = curl(agent.url + "/metrics", *cert)
        assert (rc, status) == (0, 401), out
        rc, status, out = curl(agent.url + "/metrics", *cert, "-u", "prometheus:" + PASSWORD)
        assert (rc, status) == (0, 200), out
        rc, status, out = curl(agent.url + "/metrics", "--cacert", ca,
                               "-u", "prometheus:" + PASSWORD)
        assert rc != 0 and status == 0, out  # no client certificate
        # Control API and webhook: the client certificate and their bearer tokens.
        rc, status, out = curl(agent.url + "/api/v1/status", *cert)
        assert (rc, status) == (0, 401), out
        rc, status, out = curl(agent.url + "/api/v1/status", *cert,
                               "-H", f"Authorization: Bearer {agent.control_token}")
        assert (rc, status) == (0, 200), out
        rc, status, out = curl(agent.url + "/api/v1/status", "--cacert", ca,
                               "-H", f"Authorization: Bearer {agent.control_token}")
        assert rc != 0 and status == 0, out

        # The control CLI over https: the CA, a client certificate (cert and key in one PEM).
        pem = os.path.join(tmp, "client.pem")
        with open(pem, "w") as f:
            f.write(open(client[0]).read() + open(client[1]).read())
        r = agent.cli("status", "--json", "--ca-file", ca, "--cert-file", pem)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "items" in json.loads(r.stdout)
        r = agent.cli("status", "--ca-file", ca)  # no client certificate
        assert r.returncode == 1 and "the agent at https://" in r.stderr, r.stdout + r.stderr

        # A real Alertmanager posts to the webhook over TLS with its client certificate and
        # the bearer token.
        am_port = free_port()
        config = {
            "route": {"receiver": "agent", "group_by": ["alertname"], "group_wait": "0s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "agent", "webhook_configs": [{
                "url": agent.url + "/api/v1/alertmanager", "send_resolved": True,
                "http_config": {
                    "authorization": {"type": "Bearer",
                                      "credentials_file": agent.webhook_token_file},
                    "tls_config": {"ca_file": ca, "cert_file": client[0],
                                   "key_file": client[1]}}}]}],
        }
        with open(os.path.join(tmp, "alertmanager.yml"), "w") as f:
            yaml.safe_dump(config, f)
        alertmanager = Process(["prometheus-alertmanager",
                                f"--config.file={tmp}/alertmanager.yml",
                                f"--storage.path={tmp}/am-data",
                                f"--web.listen-address=127.0.0.1:{am_port}",
                                "--cluster.listen-address="])

        def post_alert():
            assert alertmanager.alive(), alertmanager.output()
            body = json.dumps([{"labels": {"alertname": "SlotguardWebTlsTest",
                                           "slotguard_action": "rollback", "cluster": "e2e"}}])
            req = urllib.request.Request(f"http://127.0.0.1:{am_port}/api/v2/alerts",
                                         data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_for(post_alert, timeout=30, interval=0.5, what="Alertmanager accepting an alert")

        def delivered():
            assert alertmanager.alive(), alertmanager.output()
            counts = {dict(labels).get("result"): v for (name, labels), v in agent.metrics().items()
                      if name == "slotguard_agent_webhook_notifications_total"}
            assert counts.get("rejected", 0) == 0, (counts, alertmanager.output())
            return sum(counts.values()) >= 1
        try:
            wait_for(delivered, timeout=60, interval=0.5,
                     what="Alertmanager's notification reaching the agent over TLS")
        except AssertionError as e:
            raise AssertionError(f"{e}\nAlertmanager:\n{alertmanager.output()[-3000:]}\n"
                                 f"agent:\n{agent.output()[-3000:]}") from None
        assert "notification" in agent.output()
    finally:
        if alertmanager:
            alertmanager.stop()
        agent.stop()


def test_cli_checks_the_agent_certificate_names_the_url_host(certs, tmp_path):
    """The control CLI sends the control token only to the agent its URL names: a certificate
    from the right CA issued for another host is refused, as curl refuses it; the same server
    reached by a name its certificate holds answers."""
    make_cert(certs, "elsewhere", "ca", san="DNS:elsewhere.example,DNS:localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(certs, "elsewhere.crt"),
                            os.path.join(certs, "elsewhere.key"))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    seen.append(tls.recv(65536))
                    body = b'{"state": "idle", "items": []}'
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                                % (len(body), body))
            except (OSError, ssl.SSLError):
                pass

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    token = tmp_path / "token"
    token.write_text("s3cret-control-token\n")
    ca = os.path.join(certs, "ca.crt")
    cli = [os.path.join(os.environ["SLOTGUARD_BIN_DIR"], "slotguard-agent"), "status", "--json",
           "--token-file", str(token), "--ca-file", ca]
    try:
        # 127.0.0.1 is not in the certificate: refused before the request is written.
        r = subprocess.run(cli + ["--agent", f"https://127.0.0.1:{port}"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"the agent at https://127.0.0.1:{port}" in r.stderr, r.stderr
        assert "s3cret-control-token" not in r.stderr
        assert not any(b"s3cret" in request for request in seen)
        # localhost is: the same server answers.
        r = subprocess.run(cli + ["--agent", f"https://localhost:{port}"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["state"] == "idle"
        assert any(b"Bearer s3cret-control-token" in request for request in seen)
    finally:
        listener.close()
