"""The command-line contract of both binaries as the README states it: usage errors exit 1,
--help/--version exit 0; every exporter flag has a SLOTGUARD_EXPORTER_* environment variable
(flag > environment > --config) that the README's flag table names; both binaries export a
build_info gauge. Runs the real binaries; no Redis needed (the exporter serves /metrics with
an unreachable seed)."""
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))

from harness import SOURCE_DIR, Process, built_binary, free_port, wait_for  # noqa: E402



def run(args, env=None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLOTGUARD_EXPORTER_")}
    clean.update(env or {})
    return subprocess.run(args, capture_output=True, text=True, timeout=30, env=clean)


@pytest.mark.parametrize("args", [
    ["--bogus"],
    ["--redis.addr"],                                         # value missing
    ["--redis.addr", "127.0.0.1:7000", "--scrape.timeout", "abc"],
    ["--redis.addr", "127.0.0.1:7000", "--scrape.timeout", "12s"],
    ["--redis.addr", "127.0.0.1:7000", "--log.level", "loud"],
    ["--redis.addr", "127.0.0.1:7000", "--web.listen-address", "nonsense"],
    ["--redis.addr", "127.0.0.1:7000", "extra-positional"],
    ["--redis.addr", "nonsense"],
    [],                                                       # no seed
])
def test_exporter_usage_errors_exit_1(args):
    r = run([built_binary("slotguard-exporter"), *args])
    assert r.returncode == 1, (args, r.returncode, r.stderr)
    assert r.stderr.strip(), "an error must say what is wrong"


@pytest.mark.parametrize("args", [
    [],                                                       # a subcommand is required
    ["--bogus"],
    ["check"],                                                # address missing
    ["reshard", "127.0.0.1:7000", "--slots", "abc"],
    ["plan", "127.0.0.1:7000", "--no-such-flag"],
    ["run", "--no-such-flag"],
    ["no-such-command"],
])
def test_agent_usage_errors_exit_1(args):
    r = run([built_binary("slotguard-agent"), *args])
    assert r.returncode == 1, (args, r.returncode, r.stderr)


@pytest.mark.parametrize("name", ["slotguard-exporter", "slotguard-agent"])
def test_help_and_version_exit_0(name):
    for flag in ("--help", "--version"):
        r = run([built_binary(name), flag])
        assert r.returncode == 0, (name, flag, r.stderr)
        assert r.stdout.strip()


def exporter_flags_and_envs():
    """(flag, environment variable) for every flag --help lists (CLI11 prints '(Env:NAME)')."""
    r = run([built_binary("slotguard-exporter"), "--help"])
    assert r.returncode == 0
    pairs, flag = [], None
    for line in r.stdout.splitlines():
        m = re.match(r"\s+(?:-\w,\s*)?(--[\w.-]+)", line)
        if m:
            flag = m.group(1)
            if flag in ("--help", "--version"):
                flag = None
                continue
            pairs.append([flag, None])
        env = re.search(r"\(Env:(\w+)\)", line)
        if env and flag:
            pairs[-1][1] = env.group(1)
    return [tuple(p) for p in pairs]


def test_every_exporter_flag_has_an_environment_variable_in_the_readme():
    pairs = exporter_flags_and_envs()
    assert len(pairs) >= 10, pairs
    readme = open(os.path.join(SOURCE_DIR, "README.md")).read()
    table = readme.split("## slotguard-exporter", 1)[1].split("### Flags", 1)[1]
    table = table.split("\n### ", 1)[0]
    for flag, env in pairs:
        assert env, f"{flag} has no environment variable"
        assert env == "SLOTGUARD_EXPORTER_" + re.sub(r"[.-]", "_", flag[2:]).upper(), (flag, env)
        row = next((line for line in table.splitlines() if line.startswith(f"| `{flag}")), None)
        assert row, f"README flag table has no row for {flag}"
        assert f"`{env}`" in row, f"README row of {flag} does not name {env}"


def scrape(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


def test_exporter_runs_from_the_environment_flags_win_and_build_info(tmp_path):
    """The exporter started from environment variables only; a flag wins over its variable,
    the variable over --config; /metrics carries slotguard_exporter_build_info."""
    exporter = built_binary("slotguard-exporter")
    config = tmp_path / "exporter.yaml"
    config.write_text("web:\n  telemetry_path: /from-file\nlog:\n  level: warn\n")
    port = free_port()
    env = {
        "SLOTGUARD_EXPORTER_CONFIG": str(config),
        # nothing listens there: the exporter still serves, with redis_up 0 / discovery_ok 0
        "SLOTGUARD_EXPORTER_REDIS_ADDR": f"127.0.0.1:{free_port()}",
        "SLOTGUARD_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "SLOTGUARD_EXPORTER_WEB_TELEMETRY_PATH": "/from-env",
        "SLOTGUARD_EXPORTER_SCRAPE_TIMEOUT": "300ms",
        "SLOTGUARD_EXPORTER_LOG_FORMAT": "json",
    }
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SLOTGUARD_EXPORTER_")}
    full_env.update(env)
    proc = Process([exporter], env=full_env)
    try:
        wait_for(lambda: proc.alive() and scrape(port, "/healthz")[0] == 200, timeout=20,
                 what="the exporter started from the environment")
        status, text = scrape(port, "/from-env")
        assert status == 200
        assert scrape(port, "/from-file")[0] == 404      # the variable wins over the file
        assert "slotguard_exporter_discovery_ok 0" in text
        m = re.search(r'^slotguard_exporter_build_info\{([^}]*)\} 1$', text, re.M)
        assert m, text[:2000]
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        cmake = open(os.path.join(SOURCE_DIR, "CMakeLists.txt")).read()
        version = re.search(r"project\(slotguard VERSION ([0-9.]+)", cmake).group(1)
        assert labels["version"] == version
        assert re.fullmatch(r"(GNU|Clang) [0-9.]+", labels["compiler"]), labels
        revision = labels["revision"]
        if revision != "unknown":
            # A commit of this repository (the one configured; later commits may follow).
            r = subprocess.run(["git", "-C", SOURCE_DIR, "cat-file", "-e", revision + "^{commit}"],
                               capture_output=True)
            assert r.returncode == 0, f"revision {revision} is not a commit here"
        # JSON logs from the variable
        assert '"level"' in proc.output() or '{"' in proc.output(), proc.output()
    finally:
        proc.stop()

    # A flag wins over its variable.
    port2 = free_port()
    full_env["SLOTGUARD_EXPORTER_WEB_LISTEN_ADDRESS"] = f"127.0.0.1:{port2}"
    proc = Process([exporter, "--web.telemetry-path=/from-flag"], env=full_env)
    try:
        wait_for(lambda: proc.alive() and scrape(port2, "/healthz")[0] == 200, timeout=20,
                 what="the exporter with a flag over the environment")
        assert scrape(port2, "/from-flag")[0] == 200
        assert scrape(port2, "/from-env")[0] == 404
    finally:
        proc.stop()
