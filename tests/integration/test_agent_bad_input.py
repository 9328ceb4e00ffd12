"""Issue 3, test 5: bad arguments get a clear error, exit 1, and the cluster is untouched.

CLUSTER NODES of every node (without the ping/pong times) is compared before and after.
"""
import pytest

from agent_helpers import journal_dir, master_ids, nodes_config, raw, run_agent, slots_of
from redis.crc import key_slot


def hot_tag(slot):
    i = 0
    while key_slot(f"t{i}".encode()) != slot:
        i += 1
    return f"t{i}"


def cases(cluster):
    (src_port, src_id), (dst_port, dst_id), (other_port, other_id) = master_ids(cluster)
    replica = cluster.replica_ports()[0]
    src_slots = slots_of(cluster, src_port)
    other_slot = slots_of(cluster, other_port)[0]
    base = ["--journal", journal_dir()]
    return [
        ("unknown node", ["reshard", cluster.seed, "--from", "f" * 40, "--to", dst_id,
                          "--slots", "10", *base], "not a node of this cluster"),
        ("unknown address", ["reshard", cluster.seed, "--from", src_id, "--to", "127.0.0.1:1",
                             "--slots", "10", *base], "not a node of this cluster"),
        ("slot not owned", ["reshard", cluster.seed, "--from", src_id, "--to", dst_id,
                            "--ranges", f"{src_slots[0]},{other_slot}", *base],
         f"slot {other_slot} is not owned by source"),
        ("slot out of range", ["reshard", cluster.seed, "--from", src_id, "--to", dst_id,
                               "--ranges", "16384", *base], "out of range"),
        ("negative slot range", ["reshard", cluster.seed, "--from", src_id, "--to", dst_id,
                                 "--ranges", "20000-20010", *base], "out of range"),
        ("batch over 500", ["reshard", cluster.seed, "--from", src_id, "--to", dst_id,
                            "--slots", "600", "--batch-slots", "501", *base],
         "--batch-slots must be 1-500"),
        ("target is a replica", ["reshard", cluster.seed, "--from", src_id, "--to",
                                 f"127.0.0.1:{replica}", "--slots", "10", *base],
         "is a replica"),
        ("same node", ["reshard", cluster.seed, "--from", src_id, "--to", src_id, "--slots", "10",
                       *base], "same node"),
        ("too many slots", ["reshard", cluster.seed, "--from", src_id, "--to", dst_id,
                            "--slots", "9000", "--yes", *base], "owns only"),
        ("over 1000 without --yes", ["reshard", cluster.seed, "--from", src_id, "--to", dst_id,
                                     "--slots", "1200", *base], "--yes"),
        ("garbage number", ["reshard", cluster.seed, "--from", src_id, "--to", dst_id,
                            "--slots", "lots", *base], "could not convert: --slots"),
        ("bad ranges", ["reshard", cluster.seed, "--from", src_id, "--to", dst_id,
                        "--ranges", "1-x", *base], "not a slot or a range"),
        ("unreachable seed", ["reshard", "127.0.0.1:1", "--from", src_id, "--to", dst_id,
                              "--slots", "10", *base], "127.0.0.1:1"),
        ("missing password file", ["reshard", cluster.seed, "--from", src_id, "--to", dst_id,
                                   "--slots", "10", "--password-file", "/nonexistent/pw", *base],
         "/nonexistent/pw"),
        ("plan: slot not owned", ["plan", cluster.seed, "--from", src_id, "--to", dst_id,
                                  "--ranges", str(other_slot)], "is not owned by source"),
    ]


def test_bad_arguments_change_nothing(cluster):
    before = nodes_config(cluster)
    failures = []
    for name, args, expect in cases(cluster):
        r = run_agent(*args)
        err = r.stdout + r.stderr
        if r.returncode != 1:
            failures.append(f"{name}: exit {r.returncode}: {err}")
        elif expect.lower() not in err.lower():
            failures.append(f"{name}: message lacks {expect!r}: {err}")
    assert failures == [], "\n".join(failures)
    assert nodes_config(cluster) == before


def test_plan_and_dry_run_change_nothing(cluster):
    (src_port, src_id), (dst_port, dst_id), _ = master_ids(cluster)
    # Slot 5 holds most of the source's memory: the plan must put it in a batch of its own.
    r = raw(cluster, src_port)
    for i in range(3):
        r.set(f"{{{hot_tag(5)}}}:big:{i}", "x" * 1048576)
    before = nodes_config(cluster)
    p = run_agent("plan", cluster.seed, "--from", src_id, "--to", dst_id, "--slots", "1200",
                  "--batch-slots", "500")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "in 4 batch(es)" in p.stdout, p.stdout
    assert "Approval: needed" in p.stdout
    assert "Hot slots split out (over 15% of the source's memory, one batch each): 5" in p.stdout
    hot = [line for line in p.stdout.splitlines() if "hot slot, alone" in line]
    assert len(hot) == 1 and " 5 " in hot[0] and "MiB" in hot[0], p.stdout
    d = run_agent("reshard", cluster.seed, "--from", src_id, "--to", dst_id, "--slots", "100",
                  "--dry-run", "--journal", journal_dir())
    assert d.returncode == 0, d.stdout + d.stderr
    assert "Dry run: nothing changed." in d.stdout
    assert nodes_config(cluster) == before


@pytest.mark.parametrize("flag", ["--help"])
def test_help_lists_the_options(flag):
    r = run_agent("reshard", flag)
    assert r.returncode == 0
    for opt in ["--from", "--to", "--slots", "--batch-slots", "--pipeline", "--timeout",
                "--replace", "--yes", "--journal", "--dry-run", "--password-file"]:
        assert opt in r.stdout
