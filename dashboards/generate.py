#!/usr/bin/env python3
"""Writes the slotguard Grafana dashboards (dashboards/*.json) from this one description.

    python3 dashboards/generate.py          rewrite the JSON files
    python3 dashboards/generate.py --check  exit 1 when a JSON file differs from what it writes

The JSON is what users import or provision; this script keeps the two dashboards consistent
(datasource variable, selectors, units, layout) and is checked by
tests/integration/test_ops_static.py, so edit here and regenerate.

Every panel's and variable's datasource is the `$datasource` variable (type datasource): a
provisioned or imported dashboard starts on the default Prometheus and the viewer picks
another in the variable (no `__inputs`: nothing would reference one).
Many clusters: `$job` (the exporter's scrape job), `$cluster` (the `cluster` target label
Prometheus attaches, config/prometheus.yml) and `$instance` (that cluster's exporter) select
the cluster; `$agent` lists only the agents of `$cluster`.
Metric names are the pinned ones (notes/metrics.md) and the recording rules of
rules/slotguard.rules.yml.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}

# Selectors shared by the panels. One exporter (instance) watches one cluster.
C = 'cluster=~"$cluster"'
E = f'job=~"$job", {C}, instance=~"$instance"'   # the cluster's exporter
N = f'{E}, node=~"$node"'                        # nodes of that cluster
A = f'{C}, instance=~"$agent"'                   # the cluster's agent
RI = "$__rate_interval"

STATE_MAPPING = [{
    "type": "value",
    "options": {
        "0": {"text": "fail", "color": "red", "index": 0},
        "1": {"text": "ok", "color": "green", "index": 1},
    },
}]
YES_NO_MAPPING = [{
    "type": "value",
    "options": {
        "0": {"text": "no", "color": "red", "index": 0},
        "1": {"text": "yes", "color": "green", "index": 1},
    },
}]
UP_MAPPING = [{
    "type": "value",
    "options": {
        "0": {"text": "down", "color": "red", "index": 0},
        "1": {"text": "up", "color": "green", "index": 1},
    },
}]
TRIPPED_MAPPING = [{
    "type": "value",
    "options": {
        "0": {"text": "ok", "color": "green", "index": 0},
        "1": {"text": "tripped", "color": "red", "index": 1},
    },
}]


def thresholds(*steps):
    """steps: (value or None, color) from the lowest up."""
    return {"mode": "absolute",
            "steps": [{"value": v, "color": c} for v, c in steps]}


GREEN = thresholds((None, "green"))
ZERO_GOOD = thresholds((None, "green"), (1, "red"))


def target(expr, legend="", instant=False, table=False):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "range": not instant,
         "instant": instant, "editorMode": "code"}
    if table:
        t["format"] = "table"
    return t


class Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    def __init__(self):
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1
        self.panels = []

    def _place(self, panel, w, h):
        if self.x + w > 24:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        panel["id"] = self.next_id
        self.next_id += 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        self.panels.append(panel)

    def row(self, title):
        if self.x:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        self._place({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.x = 0
        self.y += 1
        self.row_h = 0

    def add(self, panel, w, h):
        for i, t in enumerate(panel["targets"]):
            t["refId"] = chr(ord("A") + i)
        self._place(panel, w, h)


def base(kind, title, description, targets, unit="short", th=GREEN, mappings=None,
         decimals=None, custom=None, overrides=None):
    defaults = {"unit": unit, "thresholds": th, "mappings": mappings or [],
                "color": {"mode": "thresholds" if kind in ("stat", "bargauge") else
                          "palette-classic"}}
    if decimals is not None:
        defaults["decimals"] = decimals
    if custom is not None:
        defaults["custom"] = custom
    return {"type": kind, "title": title, "description": description, "datasource": DS,
            "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []}}


def stat(title, description, targets, text_mode="auto", color_mode="background", **kw):
    p = base("stat", title, description, targets, **kw)
    p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "orientation": "auto", "textMode": text_mode, "colorMode": color_mode,
                    "graphMode": "none", "justifyMode": "auto"}
    return p


def timeseries(title, description, targets, unit="short", stack=False, **kw):
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if stack else 0,
              "showPoints": "never", "spanNulls": False,
              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    p = base("timeseries", title, description, targets, unit=unit, custom=custom, **kw)
    p["options"] = {"legend": {"displayMode": "table", "placement": "bottom",
                               "showLegend": True, "calcs": ["lastNotNull", "max"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}}
    return p


def state_timeline(title, description, targets, mappings, th=GREEN):
    p = base("state-timeline", title, description, targets, mappings=mappings, th=th,
             custom={"fillOpacity": 80, "lineWidth": 0})
    p["fieldConfig"]["defaults"]["color"] = {"mode": "thresholds"}
    p["options"] = {"mergeValues": True, "showValue": "auto", "alignValue": "left",
                    "rowHeight": 0.9, "legend": {"showLegend": False, "displayMode": "list",
                                                 "placement": "bottom"},
                    "tooltip": {"mode": "single", "sort": "none"}}
    return p


def bargauge(title, description, targets, unit="short", th=GREEN):
    p = base("bargauge", title, description, targets, unit=unit, th=th)
    p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "orientation": "horizontal", "displayMode": "basic",
                    "showUnfilled": True, "minVizHeight": 10, "minVizWidth": 0,
                    "valueMode": "color"}
    return p


def table(title, description, targets, transformations, overrides=None):
    p = base("table", title, description, targets, overrides=overrides,
             custom={"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False})
    p["options"] = {"showHeader": True, "cellHeight": "sm",
                    "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    p["transformations"] = transformations
    return p


def override(name, **props):
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": k.replace("__", "."), "value": v} for k, v in props.items()]}


def datasource_var():
    return {"type": "datasource", "name": "datasource", "label": "Prometheus",
            "query": "prometheus", "regex": "", "current": {}, "hide": 0,
            "includeAll": False, "multi": False, "options": [], "refresh": 1,
            "skipUrlSync": False}


def query_var(name, label, query, multi, all_value=".+", description=""):
    return {"type": "query", "name": name, "label": label, "description": description,
            "datasource": DS, "definition": query,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2, "regex": "", "sort": 1, "current": {}, "hide": 0,
            "includeAll": multi, "multi": multi, "allValue": all_value if multi else None,
            "options": [], "skipUrlSync": False}


def dashboard(uid, title, description, layout, variables, panel_types, annotations=()):
    requires = [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
                {"type": "datasource", "id": "prometheus", "name": "Prometheus",
                 "version": "1.0.0"}]
    names = {"stat": "Stat", "timeseries": "Time series", "table": "Table",
             "state-timeline": "State timeline", "bargauge": "Bar gauge"}
    for kind in sorted(panel_types):
        requires.append({"type": "panel", "id": kind, "name": names[kind], "version": ""})
    builtin = {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
               "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
               "name": "Annotations & Alerts", "type": "dashboard"}
    return {
        "__requires": requires,
        "annotations": {"list": [builtin, *annotations]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [{"type": "dashboards", "title": "slotguard", "tags": ["slotguard"],
                   "asDropdown": False, "includeVars": True, "keepTime": True,
                   "icon": "external link", "targetBlank": False, "tooltip": "",
                   "url": ""}],
        "liveNow": False,
        "panels": layout.panels,
        "refresh": "30s",
        "schemaVersion": 38,
        "tags": ["slotguard", "redis", "redis-cluster"],
        "templating": {"list": variables},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


def exporter_vars():
    return [
        datasource_var(),
        query_var("job", "Job", "label_values(slotguard_exporter_discovery_ok, job)",
                  multi=False, description="The scrape job of slotguard-exporter"),
        query_var("cluster", "Cluster",
                  'label_values(slotguard_exporter_discovery_ok{job=~"$job"}, cluster)',
                  multi=False, description="The `cluster` target label of the Redis Cluster"),
        query_var("instance", "Exporter",
                  'label_values(slotguard_exporter_discovery_ok{job=~"$job", '
                  f'{C}}}, instance)', multi=False,
                  description="The slotguard-exporter that watches the cluster"),
        query_var("node", "Node", f'label_values(redis_up{{{E}}}, node)', multi=True),
    ]


def cluster_dashboard():
    L = Layout()
    L.row("Cluster")
    L.add(stat("Slot coverage", "Share of the 16384 slots with an agreed owner "
               "(redis-cli --cluster check's judgement). Below 100% for a minute pages and "
               "rolls back a running batch.",
               [target(f"slotguard:cluster_slots_coverage:ratio{{{E}}}")], unit="percentunit",
               decimals=2, th=thresholds((None, "red"), (1, "green"))), 4, 4)
    L.add(stat("Slots covered / uncovered", "Slots with an agreed owner, and slots nobody "
               "owns.",
               [target(f"redis_cluster_slots_covered{{{E}}}", "covered"),
                target(f"redis_cluster_slots_uncovered{{{E}}}", "uncovered")],
               text_mode="value_and_name", color_mode="none"), 4, 4)
    L.add(stat("Disputed slots", "Slots whose owner the nodes' views disagree on.",
               [target(f"redis_cluster_slots_disputed{{{E}}}")], th=ZERO_GOOD), 3, 4)
    L.add(stat("Open slots", "Slots in MIGRATING / IMPORTING state (a move in progress or "
               "left behind).",
               [target(f"sum by (state) (redis_cluster_slots_open{{{E}}})", "{{state}}")],
               text_mode="value_and_name", th=ZERO_GOOD), 3, 4)
    L.add(stat("Config consistent", "All nodes agree on the slot configuration "
               "(as redis-cli --cluster check means it).",
               [target(f"redis_cluster_config_consistent{{{E}}}")],
               mappings=YES_NO_MAPPING), 3, 4)
    L.add(stat("Config epoch collisions", "Masters sharing a config epoch.",
               [target(f"redis_cluster_config_epoch_collisions{{{E}}}")], th=ZERO_GOOD), 3, 4)
    L.add(stat("Nodes failing", "Nodes flagged fail, pfail, handshake or noaddr in any view.",
               [target(f"redis_cluster_nodes_failing{{{E}}}")], th=ZERO_GOOD), 4, 4)
    L.add(stat("Nodes known / answering", "Nodes found by discovery, and nodes that answered "
               "the exporter in time.",
               [target(f"slotguard_exporter_nodes{{{E}}}", "known"),
                target(f"sum(redis_up{{{E}}})", "answering")],
               text_mode="value_and_name", color_mode="none"), 4, 4)
    L.add(stat("Nodes in cluster_state:fail", "Nodes whose CLUSTER INFO says "
               "cluster_state:fail.",
               [target(f"count(redis_cluster_state{{{E}}}) - sum(redis_cluster_state{{{E}}})")],
               th=ZERO_GOOD), 4, 4)
    L.add(stat("Current epoch", "Highest cluster current_epoch any node reports.",
               [target(f"max(redis_cluster_current_epoch{{{E}}})")], color_mode="none"), 4, 4)
    L.add(stat("Exporter scrape", "How long the exporter took to read every node, and "
               "whether discovery worked.",
               [target(f"slotguard_exporter_scrape_duration_seconds{{{E}}}", "duration"),
                target(f"slotguard_exporter_discovery_ok{{{E}}}", "discovery ok")],
               text_mode="value_and_name", color_mode="none", unit="s"), 8, 4)

    L.row("Nodes")
    L.add(state_timeline("cluster_state per node", "CLUSTER INFO cluster_state on each node.",
                         [target(f"redis_cluster_state{{{N}}}", "{{node}}")],
                         STATE_MAPPING, th=thresholds((None, "red"), (1, "green"))), 12, 8)
    L.add(bargauge("Slots per master", "Slots each node owns in its own view (replicas own "
                   "none).",
                   [target(f"redis_cluster_node_slots{{{N}}}", "{{node}}", instant=True)]),
          12, 8)
    node_cols = {"node": 0, "role": 1, "node_id": 2, "master_id": 3, "Value #B": 4,
                 "Value #C": 5, "Value #D": 6, "Value #E": 7, "Value #F": 8}
    L.add(table(
        "Nodes", "One row per node: role, ids, config epoch, owned slots, reachability, "
        "cluster bus links, and how many failure flags (fail, pfail, handshake, noaddr, "
        "nofailover) any view gives it.",
        [target(f"redis_cluster_node_info{{{N}}}", instant=True, table=True),
         target(f"max by (node) (redis_cluster_node_config_epoch{{{N}}})", instant=True,
                table=True),
         target(f"max by (node) (redis_cluster_node_slots{{{N}}})", instant=True, table=True),
         target(f"max by (node) (redis_up{{{N}}})", instant=True, table=True),
         target(f"min by (node) (redis_cluster_node_link_up{{{N}}})", instant=True, table=True),
         target(f'sum by (node) (redis_cluster_node_flag{{{N}, '
                f'flag=~"fail|pfail|handshake|noaddr|nofailover"}})', instant=True,
                table=True)],
        [{"id": "merge", "options": {}},
         {"id": "organize", "options": {
             "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True,
                               "cluster": True, "Value #A": True},
             "indexByName": node_cols,
             "renameByName": {"Value #B": "config epoch", "Value #C": "slots",
                              "Value #D": "answering", "Value #E": "bus links up",
                              "Value #F": "failure flags"}}}],
        overrides=[override("answering", mappings=UP_MAPPING,
                            custom__cellOptions={"type": "color-background"}),
                   override("bus links up", mappings=YES_NO_MAPPING,
                            custom__cellOptions={"type": "color-background"}),
                   override("failure flags", thresholds=ZERO_GOOD,
                            custom__cellOptions={"type": "color-background"})]), 16, 9)
    L.add(table("Node flags", "Every flag set on a node in any view.",
                [target(f"redis_cluster_node_flag{{{N}}} == 1", instant=True, table=True)],
                [{"id": "organize", "options": {
                    "excludeByName": {"Time": True, "__name__": True, "job": True,
                                      "instance": True, "cluster": True, "Value": True},
                    "indexByName": {"node": 0, "flag": 1}}}]), 8, 9)

    L.row("Gossip and replication")
    L.add(timeseries("Cluster bus messages per node", "Gossip messages sent and received on "
                     "the cluster bus.",
                     [target(f"rate(redis_cluster_messages_sent_total{{{N}}}[{RI}])",
                             "{{node}} sent"),
                      target(f"rate(redis_cluster_messages_received_total{{{N}}}[{RI}])",
                             "{{node}} received")], unit="ops"), 12, 8)
    kinds = [("ping", "sent"), ("pong", "sent"), ("meet", "sent"), ("fail", "sent"),
             ("update", "sent"), ("publish", "sent"), ("ping", "received"),
             ("pong", "received")]
    L.add(timeseries("Cluster bus messages by type", "Messages per second over the selected "
                     "nodes, by type. fail and update messages mean failovers and slot "
                     "ownership changes.",
                     [target(f"sum(rate(redis_cluster_stats_messages_{k}_{d}{{{N}}}"
                             f"[{RI}]))", f"{k} {d}") for k, d in kinds], unit="ops"), 12, 8)
    L.add(timeseries("Replica lag", "Bytes each replica is behind its master "
                     "(master_repl_offset minus the replica's acknowledged offset).",
                     [target(f"redis_replica_lag_bytes{{{N}}}", "{{replica}} of {{node}}")],
                     unit="bytes"), 12, 8)
    L.add(timeseries("Bus links and buffer limits", "Nodes whose cluster bus links are all "
                     "up (1), and cluster link buffers that hit their limit.",
                     [target(f"min by (node) (redis_cluster_node_link_up{{{N}}})",
                             "{{node}} links up"),
                      target("rate(redis_cluster_total_cluster_links_buffer_limit_exceeded_"
                             f"total{{{N}}}[{RI}])", "{{node}} buffer limit exceeded/s")]),
          12, 8)

    L.row("Load")
    L.add(timeseries("Keys per node", "Keys in each node's databases.",
                     [target(f"sum by (node) (redis_db_keys{{{N}}})", "{{node}}")]), 8, 8)
    L.add(timeseries("Memory used", "used_memory per node.",
                     [target(f"redis_memory_used_bytes{{{N}}}", "{{node}}")], unit="bytes"),
          8, 8)
    L.add(timeseries("Commands per second", "All commands per node.",
                     [target(f"sum by (node) (rate(redis_commands_total{{{N}}}[{RI}]))",
                             "{{node}}")], unit="ops"), 8, 8)
    L.add(timeseries("Connected clients", "Client connections per node.",
                     [target(f"redis_connected_clients{{{N}}}", "{{node}}")]), 12, 8)
    L.add(timeseries("Exporter time per node", "How long the exporter took to read each "
                     "node.",
                     [target(f"slotguard_exporter_node_scrape_duration_seconds{{{N}}}",
                             "{{node}}")], unit="s"), 12, 8)

    kinds = {p["type"] for p in L.panels if p["type"] != "row"}
    return dashboard(
        "slotguard-cluster", "slotguard / Redis Cluster topology and slots",
        "Redis Cluster health as slotguard-exporter sees it: slot coverage and agreement, open "
        "slots, nodes, gossip and replication.", L, exporter_vars(), kinds)


def migrations_dashboard():
    L = Layout()
    L.row("Agent")
    L.add(stat("Agent state", "The agent's current state.",
               [target(f"slotguard_agent_state{{{A}}} == 1", "{{state}}")],
               text_mode="name", color_mode="none"), 4, 4)
    L.add(stat("Queue", "Batches and slots waiting to move.",
               [target(f"slotguard_agent_queue_batches{{{A}}}", "batches"),
                target(f"slotguard_agent_queue_slots{{{A}}}", "slots")],
               text_mode="value_and_name", color_mode="none"), 5, 4)
    L.add(stat("Waiting for approval", "Age of the oldest plan waiting for an operator's "
               "approval (0: none).",
               [target(f"slotguard_agent_approval_wait_seconds{{{A}}}")], unit="s",
               th=thresholds((None, "green"), (3600, "orange"))), 4, 4)
    L.add(stat("Guards", "Guards that stopped the current batch.",
               [target(f"slotguard_agent_guard_tripped{{{A}}}", "{{guard}}")],
               text_mode="value_and_name", mappings=TRIPPED_MAPPING,
               th=thresholds((None, "green"), (1, "red"))), 11, 4)
    L.add(state_timeline("Agent state over time", "Which state the agent was in.",
                         [target(f"slotguard_agent_state{{{A}}}", "{{state}}")],
                         [{"type": "value", "options": {
                             "0": {"text": " ", "color": "transparent", "index": 0},
                             "1": {"text": "current", "color": "blue", "index": 1}}}]), 24, 7)
    L.add(timeseries("Running batches", "Batches between preflight and their end (a parallel "
                     "rebalance or drain runs several, one per pair of masters), and the slots "
                     "each has finished out of its total.",
                     [target(f"slotguard_agent_running_batches{{{A}}}", "running batches"),
                      target(f"slotguard_agent_running_batch_slots_done{{{A}}}",
                             "{{batch}} slots done"),
                      target(f"slotguard_agent_running_batch_slots{{{A}}}",
                             "{{batch}} slots")]), 24, 7)

    L.row("Throughput")
    L.add(timeseries("Slots migrated per second", "Slots the agent finished moving.",
                     [target(f"slotguard:agent_slots_migrated:rate1m{{{A}}}", "slots/s")],
                     unit="ops"), 8, 8)
    L.add(timeseries("Keys migrated per second", "Keys the agent moved with MIGRATE.",
                     [target(f"slotguard:agent_keys_migrated:rate1m{{{A}}}", "keys/s")],
                     unit="ops"), 8, 8)
    L.add(timeseries("Batch duration", "How long batches take, from preflight to done.",
                     [target("histogram_quantile(0.5, sum by (le) (rate("
                             f"slotguard_agent_batch_duration_seconds_bucket{{{A}}}[{RI}])))",
                             "p50"),
                      target("histogram_quantile(0.99, sum by (le) (rate("
                             f"slotguard_agent_batch_duration_seconds_bucket{{{A}}}[{RI}])))",
                             "p99")], unit="s"), 8, 8)
    L.add(timeseries("Keys left in open slots", "Keys still in slots that are MIGRATING "
                     "(on the source) or IMPORTING (on the target).",
                     [target(f"sum by (slot, state, node) (redis_cluster_open_slot_keys{{{E}}})",
                             "slot {{slot}} {{state}} on {{node}}")]), 12, 8)
    L.add(timeseries("Open slots and slots per master", "Slots in MIGRATING/IMPORTING state, "
                     "and the slots each node owns as they move.",
                     [target(f"sum by (state) (redis_cluster_slots_open{{{E}}})",
                             "open {{state}}"),
                      target(f"redis_cluster_node_slots{{{N}}} > 0", "{{node}} owns")]),
          12, 8)
    L.add(timeseries("MIGRATE and SETSLOT calls", "MIGRATE calls per source node and CLUSTER "
                     "SETSLOT calls per node, as the servers count them.",
                     [target(f'sum by (node) (rate(redis_commands_total{{{N}, cmd="migrate"}}'
                             f"[{RI}]))", "{{node}} MIGRATE"),
                      target(f'sum by (node) (rate(redis_commands_total{{{N}, '
                             f'cmd="cluster|setslot"}}[{RI}]))', "{{node}} SETSLOT")],
                     unit="ops"), 24, 8)

    L.row("Failures and rollbacks")
    L.add(timeseries("MIGRATE failures", "Failed MIGRATE replies as the agent saw them (by "
                     "reason), and failed MIGRATE calls the servers counted (an IOERR is a "
                     "timeout towards the target). More than 3 in 5 minutes rolls back.",
                     [target("sum by (reason) (rate(slotguard_agent_migrate_failures_total"
                             f"{{{A}}}[{RI}]))", "agent: {{reason}}"),
                      target(f"slotguard:migrate_failed_calls:rate5m{{{E}}}",
                             "servers (5m average)"),
                      target(f'rate(redis_commands_failed_calls_total{{{N}, cmd="migrate"}}'
                             f"[{RI}])", "{{node}} failed MIGRATE calls"),
                      target(f'rate(redis_errors_total{{{N}, err="IOERR"}}[{RI}])',
                             "{{node}} IOERR")], unit="ops"), 12, 8)
    L.add(timeseries("Redirects and retries", "ASK and MOVED redirects and TRYAGAIN replies "
                     "clients get, per second over the cluster: ASK and TRYAGAIN rise while "
                     "slots are open.",
                     [target(f'slotguard:redis_errors:rate1m{{{E}, '
                             f'err=~"ASK|MOVED|TRYAGAIN"}}', "{{err}}")], unit="ops"), 12, 8)
    L.add(bargauge("Rollbacks since agent start", "Batches rolled back, by what triggered "
                   "the rollback (guard, alertmanager, operator, recovery).",
                   [target(f"sum by (trigger) (slotguard_agent_rollbacks_total{{{A}}})",
                           "{{trigger}}", instant=True)],
                   th=thresholds((None, "green"), (1, "orange"))), 8, 8)
    L.add(timeseries("Rollbacks", "Rollbacks in each interval, by trigger.",
                     [target("sum by (trigger) (increase(slotguard_agent_rollbacks_total"
                             f"{{{A}}}[{RI}]))", "{{trigger}}")]), 8, 8)
    L.add(timeseries("Alertmanager notifications", "Webhook notifications the agent "
                     "received: accepted (acted on), ignored (resolved, repeated, not "
                     "matching), rejected (bad token or payload).",
                     [target("sum by (result) (rate(slotguard_agent_webhook_notifications_total"
                             f"{{{A}}}[{RI}]))", "{{result}}")], unit="ops"), 8, 8)

    L.row("Clients")
    pct = {"0.5": "p50", "0.99": "p99", "0.999": "p99.9"}
    L.add(timeseries("Client latency percentiles", "Server-side latency percentiles of the "
                     "selected commands (LATENCYSTATS), worst node.",
                     [target(f'max by (cmd) (redis_latency_percentiles_usec{{{N}, '
                             f'cmd=~"$cmd", quantile="{q}"}})', f"{{{{cmd}}}} {name}")
                      for q, name in pct.items()], unit="µs"), 12, 8)
    L.add(timeseries("Commands per second", "The selected commands per second over the "
                     "selected nodes.",
                     [target(f'sum by (cmd) (rate(redis_commands_total{{{N}, cmd=~"$cmd"}}'
                             f"[{RI}]))", "{{cmd}}")], unit="ops"), 12, 8)

    variables = exporter_vars() + [
        query_var("agent", "Agent",
                  f"label_values(slotguard_agent_queue_slots{{{C}}}, instance)",
                  multi=True, description="The slotguard-agents moving this cluster's slots"),
        query_var("cmd", "Command",
                  f"label_values(redis_latency_percentiles_usec{{{E}}}, cmd)", multi=True),
    ]
    annotations = [{
        "name": "Rollbacks", "datasource": DS, "enable": True, "hide": False,
        "iconColor": "red", "titleFormat": "rollback ({{trigger}})",
        "expr": "sum by (trigger) (changes(slotguard_agent_rollbacks_total"
                f"{{{A}}}[1m])) > 0",
        "step": "1m", "useValueForTime": False,
    }]
    kinds = {p["type"] for p in L.panels if p["type"] != "row"}
    return dashboard(
        "slotguard-migrations", "slotguard / Slot migrations",
        "What slotguard-agent is doing: state, queue, throughput, keys left in open slots, "
        "MIGRATE failures, redirects, rollbacks and the latency clients see meanwhile.",
        L, variables, kinds, annotations)


DASHBOARDS = {
    "slotguard-cluster.json": cluster_dashboard,
    "slotguard-migrations.json": migrations_dashboard,
}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv):
    check = "--check" in argv[1:]
    stale = []
    for name, build in DASHBOARDS.items():
        path = os.path.join(HERE, name)
        text = render(build)
        if check:
            try:
                current = open(path, encoding="utf-8").read()
            except FileNotFoundError:
                current = None
            if current != text:
                stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("out of date (run python3 dashboards/generate.py): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
