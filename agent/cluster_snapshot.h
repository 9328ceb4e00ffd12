#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/connection.h"
#include "cluster/endpoint.h"
#include "cluster/info.h"
#include "cluster/nodes.h"
#include "cluster/result.h"
#include "cluster/slot_map.h"

namespace slotguard::agent {

// What one node answered (or why it did not).
struct NodeReport {
  cluster::Endpoint endpoint;
  std::optional<cluster::NodesView> view;     // its CLUSTER NODES, when it answered
  std::optional<cluster::Info> cluster_info;  // its CLUSTER INFO, when it answered
  std::string error;                          // why it did not answer ("" when it did)
  bool reachable() const { return view.has_value(); }
};

// The whole cluster at one moment: every node's own view, judged together.
struct ClusterSnapshot {
  std::vector<NodeReport> reports;        // one per known node with an address, sorted
  std::vector<cluster::NodesView> views;  // the views of the nodes that answered
  cluster::ClusterJudgement judgement;
  // One entry per node id: the node's own myself line when it answered, else the line of the
  // first view that lists it.
  std::vector<cluster::NodeEntry> nodes;

  // By exact node id, or by "host:port" as the cluster announces it. nullptr when unknown.
  const cluster::NodeEntry* FindNode(std::string_view id_or_address) const;
  const cluster::NodeEntry* FindById(std::string_view id) const;
  const NodeReport* ReportFor(const cluster::Endpoint& endpoint) const;
  // "host:port (first 8 of the id)" for operators; the id alone when unknown.
  std::string Describe(const std::string& id) const;
  // Masters (by their own or the first view), sorted by address.
  std::vector<const cluster::NodeEntry*> Masters() const;
};

// Pure: judges the reports (the members' views among the reachable ones) and indexes the nodes.
ClusterSnapshot BuildSnapshot(std::vector<NodeReport> reports);

// Reads CLUSTER NODES and CLUSTER INFO from exactly `endpoints` (no discovery) through the
// cluster reader, all at once. A node that does not answer costs its io timeout; the reports
// say which did not. For hot paths that already know the nodes (a batch's verification).
ClusterSnapshot ReadSnapshot(cluster::Connector& connector,
                             const std::vector<cluster::Endpoint>& endpoints);

// Reads the cluster from `seeds` through the cluster reader: CLUSTER NODES and CLUSTER INFO from
// every node the members' views name. Fails only when no seed answers; unreachable nodes are
// reported in `reports`; only members' views are judged (cluster/membership.h).
cluster::Result<ClusterSnapshot> TakeSnapshot(cluster::Connector& connector,
                                              const std::vector<cluster::Endpoint>& seeds);

// Looks (`take`) until every slot of `slots` has an agreed owner, or `timeout` has passed, and
// returns the last look either way: right after a batch converged the other nodes still learn
// its owners by gossip, and what runs next (a preflight, a queue reconciling its items) would
// misjudge a slot that only some views give its new owner. `pause` waits between looks and
// returns false to give up early (a daemon stopping). A failed look is returned at once.
cluster::Result<ClusterSnapshot> SnapshotWhenOwnersAgree(
    const std::function<cluster::Result<ClusterSnapshot>()>& take, const std::vector<int>& slots,
    std::chrono::milliseconds timeout, const std::function<bool(std::chrono::milliseconds)>& pause);

}  // namespace slotguard::agent
