"""Checks of the packaging operators deploy with, as far as offline tools allow:

- packaging/systemd/: `systemd-analyze verify` on each unit (instantiated for a cluster, the
  binaries pointed at the built ones), no warning tolerated; dedicated user, hardening, and
  ExecReload only where the binary has a reload.
- packaging/kubernetes/: every file parses, `kubectl kustomize` renders it when kubectl is
  installed, the PrometheusRule is exactly what rules/render.py generates from
  rules/slotguard.rules.yml, one exporter Deployment per cluster, the agent's journal on a
  PersistentVolumeClaim, ServiceMonitors that give the rules' job names and the cluster label.
- config/github-actions-reshard.yml: parses, runs check -> canary -> reshard -> check, and
  every slotguard-agent command and flag it uses exists (the built binary's --help).
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))

from harness import SOURCE_DIR, built_binary  # noqa: E402

SYSTEMD_DIR = os.path.join(SOURCE_DIR, "packaging", "systemd")
K8S_DIR = os.path.join(SOURCE_DIR, "packaging", "kubernetes")
WORKFLOW = os.path.join(SOURCE_DIR, "config", "github-actions-reshard.yml")
EXPORTER_JOB, AGENT_JOB = "slotguard-exporter", "slotguard-agent"



def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


def help_text(*args):
    r = run([built_binary("slotguard-agent" if args[0] == "agent" else "slotguard-exporter"),
             *args[1:], "--help"])
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def unit_settings(text):
    """[(section, key, value)] of a systemd unit file."""
    out, section = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def binary_has_reload(binary_dir):
    """Whether a binary's sources handle SIGHUP (the only reload a daemon could offer)."""
    for path in glob.glob(os.path.join(SOURCE_DIR, binary_dir, "*.cc")):
        if "SIGHUP" in open(path).read():
            return True
    return False


# --- systemd --------------------------------------------------------------------------------

UNITS = {"slotguard-exporter@.service": ("slotguard-exporter", "exporter"),
         "slotguard-agent@.service": ("slotguard-agent", "agent")}


def test_systemd_units_present():
    assert sorted(os.path.basename(p) for p in glob.glob(os.path.join(SYSTEMD_DIR, "*.service"))) \
        == sorted(UNITS)


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_systemd_analyze_verify(unit, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (scripts/install-deps.sh installs systemd)")
    binary, _ = UNITS[unit]
    text = open(os.path.join(SYSTEMD_DIR, unit)).read()
    # verify checks that ExecStart's binary exists: point it at the built one.
    assert f"/usr/local/bin/{binary} " in text
    text = text.replace(f"/usr/local/bin/{binary}", built_binary(binary))
    instance = tmp_path / unit.replace("@.", "@shop.")
    instance.write_text(text)
    r = run([analyze, "verify", str(instance)])
    assert r.returncode == 0, r.stdout + r.stderr
    # verify exits 0 on unknown keys and bad values too; any line it prints is a finding.
    findings = [line for line in (r.stdout + r.stderr).splitlines()
                if line.strip() and "Failed to connect to bus" not in line]
    assert not findings, "\n".join(findings)

    # A broken copy is caught (the check above can fail).
    broken = tmp_path / unit.replace("@.", "@broken.")
    broken.write_text(text.replace("ProtectSystem=strict", "ProtectSystem=strictest"))
    r = run([analyze, "verify", str(broken)])
    assert "ProtectSystem" in r.stdout + r.stderr or "protect system" in r.stdout + r.stderr


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_systemd_unit_user_hardening_and_reload(unit):
    binary, src_dir = UNITS[unit]
    settings = unit_settings(open(os.path.join(SYSTEMD_DIR, unit)).read())
    service = {k: v for s, k, v in settings if s == "Service" and k != "SystemCallFilter"}
    assert service["User"] == "slotguard" and service["Group"] == "slotguard"
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                       ("PrivateDevices", "yes"), ("CapabilityBoundingSet", ""),
                       ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
                       ("MemoryDenyWriteExecute", "yes"), ("Restart", "on-failure")):
        assert service.get(key) == value, (unit, key, service.get(key))
    filters = [v for s, k, v in settings if k == "SystemCallFilter"]
    assert "@system-service" in filters
    assert ("ExecReload" in service) == binary_has_reload(src_dir), \
        f"{unit}: ExecReload only where {binary} has a reload"
    # ExecStart uses flags the binary has, with a per-cluster config (%i).
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == f"/usr/local/bin/{binary}"
    assert "%i" in service["ExecStart"]
    help_args = ["agent", argv[1]] if binary == "slotguard-agent" else ["exporter"]
    text = help_text(*help_args)
    for arg in argv[1:]:
        if arg.startswith("--"):
            assert arg in text, f"{unit}: {binary} has no flag {arg}"
    if binary == "slotguard-agent":
        # The journal survives restarts in its own writable state directory.
        assert service["StateDirectory"] == "slotguard/%i"
        assert service["ReadWritePaths"] == "/var/lib/slotguard/%i"
        assert int(service["TimeoutStopSec"].rstrip("s")) > 20  # > shutdown_grace


def test_sysusers_creates_the_dedicated_user(tmp_path):
    text = open(os.path.join(SYSTEMD_DIR, "slotguard.sysusers")).read()
    lines = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0][:2] == ["u", "slotguard"]
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.skip("systemd-sysusers is not installed")
    (tmp_path / "etc").mkdir()
    for f in ("passwd", "group", "shadow", "gshadow"):
        (tmp_path / "etc" / f).write_text("root:x:0:0:root:/root:/bin/bash\n" if f == "passwd"
                                          else "root:x:0:\n" if f == "group" else "")
    conf = tmp_path / "slotguard.conf"
    conf.write_text(text)
    r = run([sysusers, f"--root={tmp_path}", str(conf)])
    assert r.returncode == 0, r.stdout + r.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text()
    assert re.search(r"^slotguard:x:\d+:\d+:.*:/var/lib/slotguard:/usr/sbin/nologin$", passwd,
                     re.M), passwd


# --- Kubernetes -----------------------------------------------------------------------------

def k8s_docs():
    docs = []
    for path in sorted(glob.glob(os.path.join(K8S_DIR, "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    docs.append((os.path.basename(path), doc))
    return docs


def by_kind(kind):
    return [d for _, d in k8s_docs() if d.get("kind") == kind]


def test_kubernetes_yaml_parses_and_is_complete():
    docs = k8s_docs()
    assert docs
    for name, d in docs:
        assert d.get("apiVersion") and d.get("kind"), name
        if d["kind"] != "Kustomization":
            assert d["metadata"]["name"], name
    (kust,) = by_kind("Kustomization")
    listed = set(kust["resources"])
    files = {os.path.basename(p) for p in glob.glob(os.path.join(K8S_DIR, "*.yaml"))}
    assert listed == files - {"kustomization.yaml"}, (listed, files)


def test_kubectl_kustomize_renders():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    r = run([kubectl, "kustomize", K8S_DIR])
    assert r.returncode == 0, r.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(r.stdout) if d]
    for kind in ("Deployment", "Service", "ServiceMonitor", "PrometheusRule",
                 "PersistentVolumeClaim", "ConfigMap"):
        assert kind in kinds, kinds


def test_prometheusrule_is_generated_from_the_rules():
    render = os.path.join(SOURCE_DIR, "rules", "render.py")
    path = os.path.join(K8S_DIR, "prometheusrule.yaml")
    (kust,) = by_kind("Kustomization")
    r = run([sys.executable, render, "--prometheusrule", "--namespace", kust["namespace"],
             "--check", path])
    assert r.returncode == 0, ("regenerate: rules/render.py --prometheusrule --namespace "
                               f"{kust['namespace']} > {path}\n{r.stderr}")
    (rule,) = by_kind("PrometheusRule")
    with open(os.path.join(SOURCE_DIR, "rules", "slotguard.rules.yml")) as f:
        source = yaml.safe_load(f)
    assert rule["spec"]["groups"] == source["groups"]


def containers(deployment):
    return deployment["spec"]["template"]["spec"]["containers"]


def test_one_exporter_deployment_per_cluster_with_existing_settings():
    services = by_kind("Service")
    deployments = by_kind("Deployment")
    exporters = [d for d in deployments
                 if d["metadata"]["labels"]["app.kubernetes.io/name"] == EXPORTER_JOB]
    clusters = [d["metadata"]["labels"]["app.kubernetes.io/instance"] for d in exporters]
    assert len(clusters) >= 2 and len(set(clusters)) == len(clusters), clusters
    exporter_help = help_text("exporter")
    for d in exporters:
        cluster = d["metadata"]["labels"]["app.kubernetes.io/instance"]
        assert d["spec"]["replicas"] == 1
        (c,) = containers(d)
        assert c["command"] == ["slotguard-exporter"]
        for env in c["env"]:
            if env["name"].startswith("SLOTGUARD_EXPORTER_"):
                assert env["name"] in exporter_help, env["name"]
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert d["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        # Its Service carries the cluster label the ServiceMonitor copies to the targets.
        (svc,) = [s for s in services if s["spec"]["selector"] ==
                  d["spec"]["selector"]["matchLabels"]]
        assert svc["metadata"]["labels"]["cluster"] == cluster
        assert svc["metadata"]["labels"]["app.kubernetes.io/name"] == EXPORTER_JOB


def test_agent_journal_on_a_persistent_volume_and_its_cluster():
    agents = [d for d in by_kind("Deployment")
              if d["metadata"]["labels"]["app.kubernetes.io/name"] == AGENT_JOB]
    assert agents
    exporter_clusters = {d["metadata"]["labels"]["app.kubernetes.io/instance"]
                         for d in by_kind("Deployment")
                         if d["metadata"]["labels"]["app.kubernetes.io/name"] == EXPORTER_JOB}
    claims = {c["metadata"]["name"] for c in by_kind("PersistentVolumeClaim")}
    configmaps = {c["metadata"]["name"]: c for c in by_kind("ConfigMap")}
    with open(os.path.join(SOURCE_DIR, "config", "agent.yaml")) as f:
        example = yaml.safe_load(f)
    run_help = help_text("agent", "run")
    for d in agents:
        assert d["spec"]["replicas"] == 1
        assert d["spec"]["strategy"]["type"] == "Recreate"  # never two daemons on one journal
        (c,) = containers(d)
        argv = c["command"]
        assert argv[:2] == ["slotguard-agent", "run"]
        for arg in argv[2:]:
            if arg.startswith("--"):
                assert arg in run_help, arg
        volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        config_path = argv[argv.index("--config") + 1]
        config_mount = os.path.dirname(config_path)
        cm = configmaps[volumes[mounts[config_mount]]["configMap"]["name"]]
        config = yaml.safe_load(cm["data"][os.path.basename(config_path)])
        # Only keys the maintained example has.
        for key, value in config.items():
            assert key in example, key
            if isinstance(value, dict):
                for sub in value:
                    assert sub in example[key] or (key, sub) == ("webhook", "cluster"), (key, sub)
        journal = config["journal_dir"]
        mount = max((m for m in mounts if journal.startswith(m.rstrip("/") + "/")), key=len)
        claim = volumes[mounts[mount]]["persistentVolumeClaim"]["claimName"]
        assert claim in claims
        assert config["webhook"]["cluster"] in exporter_clusters
        assert config["webhook"]["cluster"] == d["metadata"]["labels"]["app.kubernetes.io/instance"]
        for key in ("control", "webhook"):
            token = config[key]["token_file"]
            tmount = max((m for m in mounts if token.startswith(m.rstrip("/") + "/")), key=len)
            assert "secret" in volumes[mounts[tmount]], f"{key} token not from a Secret"


def test_servicemonitors_give_the_rules_job_names_and_the_cluster_label():
    services = by_kind("Service")
    monitors = by_kind("ServiceMonitor")
    jobs = set()
    for m in monitors:
        spec = m["spec"]
        assert "cluster" in spec["targetLabels"]
        selected = [s for s in services if all(s["metadata"]["labels"].get(k) == v for k, v in
                                               spec["selector"]["matchLabels"].items())]
        assert selected, m["metadata"]["name"]
        for s in selected:
            jobs.add(s["metadata"]["labels"][spec["jobLabel"]])
            assert "cluster" in s["metadata"]["labels"]
            ports = {p["name"] for p in s["spec"]["ports"]}
            assert {e["port"] for e in spec["endpoints"]} <= ports
    # The job names the shipped rules select.
    rules = open(os.path.join(SOURCE_DIR, "rules", "slotguard.rules.yml")).read()
    assert jobs == {EXPORTER_JOB, AGENT_JOB}
    for job in jobs:
        assert f'job="{job}"' in rules


# --- the GitHub Actions workflow example ----------------------------------------------------

def workflow():
    with open(WORKFLOW) as f:
        return yaml.safe_load(f)


def agent_invocations(steps):
    """(step name, argv) for every slotguard-agent command in the workflow's run scripts."""
    out = []
    for step in steps:
        script = re.sub(r"\\\n\s*", " ", step.get("run", ""))
        for line in script.splitlines():
            line = line.strip()
            if line.startswith("slotguard-agent "):
                out.append((step["name"], shlex.split(line)))
    return out


def test_workflow_parses_and_gates_in_the_runbook_order():
    wf = workflow()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads `on` as true
    assert "workflow_dispatch" in triggers
    (job,) = wf["jobs"].values()
    assert job["runs-on"]
    assert wf["concurrency"]["cancel-in-progress"] is False
    calls = agent_invocations(job["steps"])
    commands = [argv[1] for _, argv in calls]
    # preflight check, plan, canary reshard, check, guarded reshard, post-move check
    assert commands == ["check", "plan", "reshard", "check", "reshard", "check"], commands
    canary, main = [argv for _, argv in calls if argv[1] == "reshard"]
    assert canary[canary.index("--journal") + 1] != main[main.index("--journal") + 1]
    # no grep of redis-cli output any more: exit codes are the gate
    scripts = " ".join(step.get("run", "") for step in job["steps"])
    assert "redis-cli" not in scripts and "grep" not in scripts


def test_workflow_uses_only_existing_agent_commands_and_flags():
    wf = workflow()
    (job,) = wf["jobs"].values()
    calls = agent_invocations(job["steps"])
    assert calls
    for step, argv in calls:
        text = help_text("agent", argv[1])
        for arg in argv[2:]:
            if arg.startswith("--"):
                flag = arg.split("=")[0]
                assert re.search(r"(^|[\s,])" + re.escape(flag) + r"\b", text), \
                    f"step {step!r}: slotguard-agent {argv[1]} has no flag {flag}"
