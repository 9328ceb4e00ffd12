"""Shared test harness: real loopback Redis clusters and the built binaries.

Every test that needs a cluster gets one of its own on free ports, torn down even when the
test fails. Nothing here sleeps and hopes: wait_for() polls a condition with a deadline.
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SOURCE_DIR = os.environ.get(
    "SLOTGUARD_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN_DIR = os.environ.get("SLOTGUARD_BIN_DIR", os.path.join(SOURCE_DIR, "build", "bin"))
CLUSTER_SH = os.path.join(SOURCE_DIR, "scripts", "redis-cluster.sh")


def require_binary(name):
    """Skips (outside CI) or fails (in CI) when a tool is absent."""
    import pytest
    if shutil.which(name) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; scripts/install-deps.sh should have installed it")
        pytest.skip(f"{name} not installed (run scripts/install-deps.sh)")


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Polls predicate() until it returns a truthy value; raises with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the thing polled may not be up yet
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f" (last error: {last_exc})" if last_exc else ""))


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_bin_dir(name):
    """The bin directory of a server scripts/build-servers.sh has built ("redis-7.2.6"), or
    None when it is not built."""
    r = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "build-servers.sh"), "--list"],
                       capture_output=True, text=True, timeout=60)
    for line in r.stdout.splitlines():
        key, _, value = line.partition("=")
        if key == name and os.path.isfile(os.path.join(value, "redis-server")):
            return value
    return None


def require_server(name):
    """server_bin_dir(name), skipping (outside CI) or failing (in CI, where scripts/test.sh
    builds every server) when it is not built."""
    import pytest
    bin_dir = server_bin_dir(name)
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not built; scripts/test.sh runs scripts/build-servers.sh")
        pytest.skip(f"{name} not built (scripts/build-servers.sh builds it)")
    return bin_dir


def expected_server():
    """The server the version matrix runs this test on ("redis-6.2.16", "valkey-8.0.1"), from
    SLOTGUARD_SERVER; None for the default (whatever redis-server is first on PATH)."""
    return os.environ.get("SLOTGUARD_SERVER") or None


def server_of(info):
    """"<name>-<version>" of a node from its INFO server fields (Valkey also says
    redis_version:7.2.4, so its own valkey_version decides)."""
    name = info.get("server_name", "redis")
    version = info.get("valkey_version") or info.get("redis_version")
    return f"{name}-{version}"


def valkey8(info):
    """True for Valkey 8+, whose primaries replicate CLUSTER SETSLOT to their replicas (which
    then show the open slot too), move an open slot's state to a failed-over end's replacement,
    and clear MIGRATING by themselves once the target claims the slot."""
    version = info.get("valkey_version")
    return bool(version) and int(str(version).split(".")[0]) >= 8


class Certificates:
    """A test CA and certificates it signs, made with the openssl command: `ca.crt`,
    `server.crt`/`.key` (the nodes'; IP SAN 127.0.0.1, for server and client use, as nodes
    also connect to each other) and `client.crt`/`.key`. `issue` makes more: expired ones, other
    names, or signed by another Certificates' CA."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca = os.path.join(directory, "ca.crt")
        self.ca_key = os.path.join(directory, "ca.key")
        self._openssl("req", "-x509", *self._new_key(self.ca_key), "-out", self.ca, "-days", "2",
                      "-subj", "/CN=slotguard test CA")
        self.server, self.server_key = self.issue("server")
        self.client, self.client_key = self.issue("client", san=None)

    @staticmethod
    def _new_key(path):
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", path]

    @staticmethod
    def _openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)

    def issue(self, name, san="IP:127.0.0.1", days=2):
        """(cert, key) paths for a new certificate `name`; days < 0 makes it expired already."""
        crt = os.path.join(self.dir, name + ".crt")
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("extendedKeyUsage=serverAuth,clientAuth\n")
            if san:
                f.write(f"subjectAltName={san}\n")
        self._openssl("req", *self._new_key(key), "-out", csr, "-subj", f"/CN=slotguard {name}")
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                      "-CAcreateserial", "-out", crt, "-days", str(days), "-extfile", ext)
        return crt, key


class Cluster:
    """A real loopback Redis Cluster made by scripts/redis-cluster.sh.

    tls="tls" makes every node speak TLS only (port 0, tls-port, tls-cluster, tls-replication)
    with certificates made here (`self.certs`); tls="mutual" also requires client certificates
    (tls-auth-clients yes). The clients below then use TLS and the client certificate."""

    def __init__(self, masters=3, replicas=1, password_file=None, node_timeout=5000, tls=None):
        assert tls in (None, "tls", "mutual")
        self.masters = masters
        self.replicas = replicas
        self.total = masters * (replicas + 1)
        self.password_file = password_file
        self.password = open(password_file).read().strip() if password_file else None
        self.tls = tls
        self.certs = None
        self.dir = tempfile.mkdtemp(prefix="slotguard-cluster-")
        env = dict(os.environ)
        env["CLUSTER_NODE_TIMEOUT"] = str(node_timeout)
        if password_file:
            env["REDIS_PASSWORD_FILE"] = password_file
        if tls:
            # Outside self.dir, which a failed start empties.
            self.certs = Certificates(tempfile.mkdtemp(prefix="slotguard-tls-"))
            env["REDIS_TLS_DIR"] = self.certs.dir
            env["REDIS_TLS_AUTH_CLIENTS"] = "yes" if tls == "mutual" else "no"
        last = None
        for _ in range(20):
            base = random.randrange(12000, 21000, 10)
            ports = [base + i for i in range(self.total)]
            if not all(port_free(p) and port_free(p + 10000) for p in ports):
                continue
            r = subprocess.run([CLUSTER_SH, "up", self.dir, str(base), str(masters), str(replicas)],
                               env=env, capture_output=True, text=True, timeout=120)
            if r.returncode == 0:
                self.base = base
                self.ports = ports
                self._check_server()
                return
            last = r.stderr
            subprocess.run([CLUSTER_SH, "down", self.dir], capture_output=True)
            shutil.rmtree(self.dir, ignore_errors=True)
            os.makedirs(self.dir)
        if self.certs:
            shutil.rmtree(self.certs.dir, ignore_errors=True)
        raise RuntimeError(f"could not start a cluster: {last}")

    def _check_server(self):
        """In the version matrix, every node must run the server the test is meant for: a
        test that silently ran on Debian's default would prove nothing about the others."""
        want = expected_server()
        if not want:
            return
        for p in self.ports:
            got = server_of(self.client(p).info("server"))
            if got != want:
                self.down()
                raise RuntimeError(f"node {p} runs {got}, the matrix asked for {want} "
                                   f"(PATH={os.environ.get('PATH')})")

    def replicates_setslot(self):
        """Whether this cluster's server is Valkey 8+ (see valkey8)."""
        return valkey8(self.client(self.base).info("server"))

    @property
    def seed(self):
        return f"127.0.0.1:{self.base}"

    def addr(self, port):
        return f"127.0.0.1:{port}"

    @property
    def url(self):
        """The seed as our binaries take it: rediss:// on a TLS cluster."""
        return f"rediss://{self.seed}" if self.tls else self.seed

    def tls_flags(self):
        """The --tls.* flags of our binaries for this cluster's CA and client certificate."""
        if not self.tls:
            return []
        return ["--tls.ca-file", self.certs.ca, "--tls.cert-file", self.certs.client,
                "--tls.key-file", self.certs.client_key]

    def _ssl_kw(self):
        if not self.tls:
            return {}
        return {"ssl": True, "ssl_ca_certs": self.certs.ca, "ssl_certfile": self.certs.client,
                "ssl_keyfile": self.certs.client_key}

    def client(self, port, **kw):
        import redis
        return redis.Redis(host="127.0.0.1", port=port, password=self.password,
                           decode_responses=True, socket_timeout=5, **self._ssl_kw(), **kw)

    def cluster_client(self, **kw):
        from redis.cluster import RedisCluster
        return RedisCluster(host="127.0.0.1", port=self.base, password=self.password,
                            decode_responses=True, **self._ssl_kw(), **kw)

    def cli(self, *args, check=True, timeout=60):
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        tls = []
        if self.tls:
            tls = ["--tls", "--cacert", self.certs.ca, "--cert", self.certs.client,
                   "--key", self.certs.client_key]
        return subprocess.run(["redis-cli", *tls, *args], env=env, capture_output=True,
                              text=True, check=check, timeout=timeout)

    def cluster_check(self):
        """(exit code, output) of `redis-cli --cluster check` on the seed."""
        r = self.cli("--cluster", "check", self.seed, check=False)
        return r.returncode, r.stdout + r.stderr

    def add_master(self):
        """Starts one more node with the settings scripts/redis-cluster.sh gave the others and
        introduces it with CLUSTER MEET: an empty master, as an operator adds one. Returns its
        port once every node knows it. `down` stops it with the rest."""
        for _ in range(50):
            port = random.randrange(12000, 21000)
            if port_free(port) and port_free(port + 10000):
                break
        else:
            raise RuntimeError("no free port for another node")
        template = open(os.path.join(self.dir, str(self.base), "redis.conf")).read()
        nd = os.path.join(self.dir, str(port))
        os.makedirs(nd)
        conf = template.replace(f"port {self.base}\n", f"port {port}\n")
        conf = conf.replace(os.path.join(self.dir, str(self.base)), nd)
        with open(os.path.join(nd, "redis.conf"), "w") as f:
            f.write(conf)
        subprocess.run(["redis-server", os.path.join(nd, "redis.conf")], check=True, timeout=30)
        wait_for(lambda: not port_free(port), what=f"node {port} listening")
        self.client(self.base).execute_command("CLUSTER", "MEET", "127.0.0.1", str(port))
        self.ports.append(port)
        addr = self.addr(port)

        def known_everywhere():
            for p in self.ports:
                view = self.nodes_text(p)  # redis-py parses it: address -> fields
                if addr not in view or "handshake" in view[addr]["flags"]:
                    return False
            return True

        wait_for(known_everywhere, timeout=60, what=f"every node knows {port}")
        # A master that joins without slots reports cluster_state:fail until its rejoin delay
        # (up to the node timeout) has passed; operators wait for it as `check` would.
        wait_for(lambda: self.client(port).execute_command("CLUSTER INFO")["cluster_state"] == "ok",
                 timeout=60, what=f"node {port} cluster_state:ok")
        # Masters added together all start at config epoch 0; the servers give each its own
        # epoch ping by ping, and `check` (and preflight) refuse a cluster until they have.
        wait_for(self.master_epochs_unique, timeout=60, what="every master's config epoch unique")
        return port

    def master_epochs_unique(self):
        """No two masters share a config epoch, each as the node itself says. Masters that bump
        at the same moment collide until the next ping between them makes the one with the
        smaller node id take a new epoch (clusterHandleConfigEpochCollision)."""
        epochs = []
        for p in self.ports:
            own = next(v for v in self.nodes_text(p).values() if "myself" in v["flags"])
            if "master" in own["flags"]:
                epochs.append(own["epoch"])
        return len(epochs) == len(set(epochs))

    def pid(self, port):
        return int(open(os.path.join(self.dir, str(port), "redis.pid")).read().strip())

    def node_id(self, port):
        return self.client(port).execute_command("CLUSTER MYID")

    def masters_ports(self):
        out = []
        for p in self.ports:
            info = self.client(p).info("replication")
            if info["role"] == "master":
                out.append(p)
        return out

    def replica_ports(self):
        return [p for p in self.ports if p not in self.masters_ports()]

    def nodes_text(self, port):
        return self.client(port).execute_command("CLUSTER NODES")

    def stop(self, port):
        os.kill(self.pid(port), signal.SIGSTOP)

    def cont(self, port):
        os.kill(self.pid(port), signal.SIGCONT)

    def kill(self, port):
        os.kill(self.pid(port), signal.SIGKILL)

    def down(self):
        subprocess.run([CLUSTER_SH, "down", self.dir], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.certs:
            shutil.rmtree(self.certs.dir, ignore_errors=True)


class Process:
    """A binary of ours in the background, its output captured to a file."""

    def __init__(self, args, env=None, cwd=None):
        self.log_path = tempfile.mktemp(prefix="slotguard-proc-", suffix=".log")
        self.log = open(self.log_path, "w")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.args = args
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=full_env, cwd=cwd, stdin=subprocess.DEVNULL)

    def output(self):
        self.log.flush()
        return open(self.log_path).read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def bin_path(name):
    return os.path.join(BIN_DIR, name)


def built_binary(name):
    """The path of a slotguard binary of this build; skips (outside CI) or fails (in CI) when
    it is not built."""
    import pytest
    path = bin_path(name)
    if not os.path.exists(path):
        if os.environ.get("CI"):
            pytest.fail(f"{path} is not built")
        pytest.skip(f"{path} is not built")
    return path
