"""The README's claim about redis_exporter's names, checked against a real redis_exporter.

README.md lists (between `<!-- shared-with-redis_exporter -->` markers) the names slotguard
shares with redis_exporter. Both exporters scrape the same node: every listed name must be in
both outputs, with the same label keys (slotguard's `node` aside) and the same values: equal for
what does not move, and for what only grows (counters, uptime, replication offset) slotguard's
reading must lie between a redis_exporter scrape taken before it and one taken after. Every name
both export must be in the list or among the differences the README names.
"""
import os
import re
import sys
import urllib.request

import pytest
import redis

sys.path.insert(0, os.path.dirname(__file__))

from harness import SOURCE_DIR, Cluster, Process, free_port, require_binary, wait_for  # noqa: E402
from exporter_support import EXPORTER, Exporter, Scrape  # noqa: E402

# Same name, documented as different (README, "Where they differ").
DOCUMENTED_DIFFERENT = {"redis_latency_percentiles_usec", "redis_latency_percentiles_usec_sum",
                        "redis_latency_percentiles_usec_count", "redis_instance_info"}
# Readings that only grow between two scrapes.
MONOTONIC = re.compile(r"(_total$|^redis_uptime_in_seconds$|^redis_master_repl_offset$|"
                       r"^redis_cluster_stats_messages_)")
# Readings that move with the scrapes themselves (their connections, their buffers).
FLUCTUATING = {"redis_memory_used_bytes": 0.2, "redis_connected_clients": 0.5}


def claimed_names():
    with open(os.path.join(SOURCE_DIR, "README.md")) as f:
        text = f.read()
    m = re.search(r"<!-- shared-with-redis_exporter -->(.*?)<!-- /shared-with-redis_exporter -->",
                  text, re.S)
    assert m, "README.md has no shared-with-redis_exporter list"
    names = re.findall(r"`([a-z_<>]+)`", m.group(1))
    assert len(names) > 20, names
    return names


def expand(claim, names):
    """`redis_cluster_stats_messages_<type>_sent` -> the names of that shape in `names`."""
    if "<type>" not in claim:
        return {claim} if claim in names else set()
    pattern = re.compile("^" + re.escape(claim).replace(re.escape("<type>"), "[a-z]+") + "$")
    return {n for n in names if pattern.match(n)}


def fetch(url):
    with urllib.request.urlopen(url, timeout=9) as r:
        return Scrape(r.read().decode())


def by_labels(scrape, name, drop=()):
    return {frozenset((k, v) for k, v in ls.items() if k not in drop): v
            for n, ls, v in scrape.series if n == name}


@pytest.fixture(scope="module")
def both():
    require_binary("redis-server")
    require_binary("prometheus-redis-exporter")
    if not os.path.exists(EXPORTER):
        pytest.fail(f"{EXPORTER} is not built")
    cluster = Cluster(masters=3, replicas=1)
    procs = []
    try:
        port = cluster.masters_ports()[0]
        rc = cluster.cluster_client()
        for i in range(300):
            rc.set(f"names:{i}", "v", ex=3600 if i % 3 == 0 else None)
        # Error replies on this node, so redis_errors_total has a series on both sides.
        moved = 0
        for i in range(50):
            try:
                cluster.client(port).get(f"names:elsewhere:{i}")
            except redis.exceptions.ResponseError:  # MOVED: the key's slot is elsewhere
                moved += 1
        assert moved
        slotguard = Exporter(["--redis.addr", cluster.seed, "--scrape.timeout", "5s"])
        procs.append(slotguard)
        rx_port = free_port()
        rx = Process(["prometheus-redis-exporter", f"--redis.addr=redis://127.0.0.1:{port}",
                      f"--web.listen-address=127.0.0.1:{rx_port}"])
        procs.append(rx)
        rx_url = f"http://127.0.0.1:{rx_port}/metrics"

        def rx_up():
            assert rx.alive(), rx.output()
            try:
                return fetch(rx_url).values("redis_up") == [1.0]
            except OSError:
                return False
        wait_for(rx_up, timeout=30, interval=0.2, what="redis_exporter answering with redis_up 1")
        yield cluster.addr(port), slotguard, rx_url
    finally:
        for p in procs:
            p.stop()
        cluster.down()


def test_shared_names_have_redis_exporters_labels_and_values(both):
    node, slotguard, rx_url = both
    before = fetch(rx_url)
    sg = slotguard.scrape()
    after = fetch(rx_url)
    sg_names = {n for n, ls, _ in sg.series if ls.get("node") == node}
    rx_names = {n for n, _, _ in after.series}

    shared = set()
    for claim in claimed_names():
        names = expand(claim, sg_names)
        assert names, f"README says slotguard exports {claim}; its scrape of {node} has no such name"
        for name in names:
            assert name in rx_names, f"README says redis_exporter has {name}; it does not"
        shared |= names

    failures = []
    for name in sorted(shared):
        mine = by_labels(sg, name)
        mine = {k - {("node", node)}: v for k, v in mine.items() if ("node", node) in k}
        first, last = by_labels(before, name), by_labels(after, name)
        keys_mine = {frozenset(k for k, _ in ls) for ls in mine}
        keys_rx = {frozenset(k for k, _ in ls) for ls in last}
        if keys_mine != keys_rx:
            failures.append(f"{name}: label keys {keys_mine} here, {keys_rx} in redis_exporter")
            continue
        for labels, value in mine.items():
            if labels not in last:
                failures.append(f"{name}{dict(labels)}: not in redis_exporter's output")
                continue
            lo, hi = first.get(labels, 0.0), last[labels]
            if MONOTONIC.search(name):
                ok = lo - 1e-9 <= value <= hi + 1e-9
            elif name in FLUCTUATING:
                slack = FLUCTUATING[name] * max(lo, hi, 4)
                ok = min(lo, hi) - slack <= value <= max(lo, hi) + slack
            else:
                ok = lo == value == hi
            if not ok:
                failures.append(f"{name}{dict(labels)}: slotguard {value}, redis_exporter "
                                f"{lo} before and {hi} after")
    assert not failures, "\n".join(failures)

    # Every name both export is claimed, or named as different in the README.
    unlisted = (sg_names & rx_names) - shared - DOCUMENTED_DIFFERENT
    assert not unlisted, f"both export {sorted(unlisted)}: list them in README.md or say how they differ"
    # The names slotguard used to export for the bus counters are gone.
    assert not {n for n in sg_names if n.startswith("redis_cluster_stats_messages_")
                and n.endswith("_total")}


def test_documented_differences_are_real(both):
    node, slotguard, rx_url = both
    sg, rx = slotguard.scrape(), fetch(rx_url)
    quantiles = {ls["quantile"] for ls in sg.labelsets("redis_latency_percentiles_usec")
                 if ls.get("node") == node}
    assert quantiles == {"0.5", "0.99", "0.999"}, quantiles
    assert {ls["quantile"] for ls in rx.labelsets("redis_latency_percentiles_usec")} == \
        {"50", "99", "99.9"}
    mine = {k for ls in sg.labelsets("redis_instance_info") if ls.get("node") == node
            for k in ls} - {"node"}
    theirs = {k for ls in rx.labelsets("redis_instance_info") for k in ls}
    assert mine != theirs and {"role", "redis_version"} <= mine & theirs, (mine, theirs)
