"""Runs slotguard-exporter against a harness cluster and reads its exposition back."""
import os
import re
import subprocess
import urllib.error
import urllib.request

from harness import Process, bin_path, free_port, wait_for

EXPORTER = bin_path("slotguard-exporter")

SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """Exposition text -> list of (name, {label: value}, float)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES.match(line)
        assert m, f"unparsable line: {line!r}"
        labels = dict(LABEL.findall(m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


class Scrape:
    def __init__(self, text):
        self.text = text
        self.series = parse(text)

    def values(self, name, **labels):
        return [v for n, ls, v in self.series
                if n == name and all(ls.get(k) == str(want) for k, want in labels.items())]

    def value(self, name, **labels):
        found = self.values(name, **labels)
        assert len(found) == 1, f"{name}{labels}: {len(found)} series"
        return found[0]

    def labelsets(self, name):
        return [ls for n, ls, _ in self.series if n == name]


class Exporter:
    """A slotguard-exporter process on a free port."""

    def __init__(self, args, env=None, wait=True):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = Process([EXPORTER, "--web.listen-address", f"127.0.0.1:{self.port}", *args],
                            env=env)
        if wait:
            wait_for(self.healthy, timeout=15, what="exporter /healthz")

    def healthy(self):
        if not self.proc.alive():
            raise AssertionError(f"exporter exited: {self.proc.output()}")
        return self.get("/healthz", timeout=2) == "ok\n"

    def get(self, path, timeout=9):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return r.read().decode()

    def scrape(self, timeout=9):
        # 9 s: below Prometheus' 10 s default, the bound the exporter promises to answer within.
        return Scrape(self.get("/metrics", timeout=timeout))

    def stop(self):
        return self.proc.stop()

    def output(self):
        return self.proc.output()


def promtool_check(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr
