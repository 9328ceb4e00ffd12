#include "agent/cluster_snapshot.h"

#include <algorithm>
#include <future>
#include <map>

#include "cluster/discovery.h"

namespace slotguard::agent {

const cluster::NodeEntry* ClusterSnapshot::FindById(std::string_view id) const {
  for (const auto& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

std::string ClusterSnapshot::Describe(const std::string& id) const {
  if (const auto* n = FindById(id)) return n->endpoint.ToString() + " (" + id.substr(0, 8) + ")";
  return id;
}

const cluster::NodeEntry* ClusterSnapshot::FindNode(std::string_view id_or_address) const {
  if (const auto* n = FindById(id_or_address)) return n;
  auto endpoint = cluster::ParseEndpoint(id_or_address);
  if (!endpoint) return nullptr;
  for (const auto& n : nodes) {
    if (n.endpoint == *endpoint) return &n;
  }
  // "localhost:7000" and friends: compare ports when the host is a loopback alias.
  return nullptr;
}

const NodeReport* ClusterSnapshot::ReportFor(const cluster::Endpoint& endpoint) const {
  for (const auto& r : reports) {
    if (r.endpoint == endpoint) return &r;
  }
  return nullptr;
}

std::vector<const cluster::NodeEntry*> ClusterSnapshot::Masters() const {
  std::vector<const cluster::NodeEntry*> out;
  for (const auto& n : nodes) {
    if (n.flags.master) out.push_back(&n);
  }
  std::sort(out.begin(), out.end(),
            [](const auto* a, const auto* b) { return a->endpoint < b->endpoint; });
  return out;
}

ClusterSnapshot BuildSnapshot(std::vector<NodeReport> reports) {
  ClusterSnapshot s;
  std::sort(reports.begin(), reports.end(),
            [](const NodeReport& a, const NodeReport& b) { return a.endpoint < b.endpoint; });
  s.reports = std::move(reports);
  std::map<std::string, cluster::NodeEntry> by_id;
  std::map<std::string, bool> own_line;
  for (const auto& r : s.reports) {
    if (!r.view) continue;
    s.views.push_back(*r.view);
    for (const auto& n : r.view->nodes) {
      if (n.flags.myself) {
        cluster::NodeEntry own = n;
        // The address we reached it at is authoritative when it does not know its own.
        if (own.endpoint.host.empty()) own.endpoint = r.endpoint;
        by_id[n.id] = own;
        own_line[n.id] = true;
      } else if (!own_line[n.id] && by_id.find(n.id) == by_id.end()) {
        by_id[n.id] = n;
      }
    }
  }
  for (auto& [id, n] : by_id) s.nodes.push_back(std::move(n));
  std::sort(s.nodes.begin(), s.nodes.end(),
            [](const auto& a, const auto& b) { return a.endpoint < b.endpoint; });
  s.judgement = cluster::JudgeCluster(s.views);
  return s;
}

namespace {

const std::vector<cluster::Argv>& NodeCommands() {
  static const std::vector<cluster::Argv> commands{{"CLUSTER", "NODES"}, {"CLUSTER", "INFO"}};
  return commands;
}

NodeReport ParseNode(const cluster::Endpoint& endpoint,
                     const cluster::Result<std::vector<cluster::Reply>>& replies) {
  NodeReport report;
  report.endpoint = endpoint;
  if (!replies) {
    report.error = replies.error().message;
    return report;
  }
  const auto& nodes_reply = (*replies)[0];
  const auto& info_reply = (*replies)[1];
  if (nodes_reply.IsError()) {
    report.error = endpoint.ToString() + ": CLUSTER NODES refused: " + nodes_reply.str;
    return report;
  }
  auto nodes = cluster::ParseClusterNodes(nodes_reply.str);
  if (!nodes) {
    report.error = endpoint.ToString() + ": " + nodes.error().message;
    return report;
  }
  cluster::NodesView view;
  view.reporter = endpoint;
  if (const auto* me = cluster::FindMyself(*nodes)) view.reporter_id = me->id;
  view.nodes = std::move(*nodes);
  report.view = std::move(view);
  if (!info_reply.IsError()) {
    if (auto info = cluster::ParseInfo(info_reply.str)) report.cluster_info = std::move(*info);
  }
  return report;
}

NodeReport ReadNode(cluster::Connector& connector, const cluster::Endpoint& endpoint) {
  return ParseNode(endpoint, connector.Get(endpoint).Pipeline(NodeCommands()));
}

}  // namespace

cluster::Result<ClusterSnapshot> TakeSnapshot(cluster::Connector& connector,
                                              const std::vector<cluster::Endpoint>& seeds) {
  auto topology = cluster::Discover(connector, seeds);
  if (!topology) return tl::unexpected(topology.error());
  std::vector<cluster::Endpoint> endpoints = topology->Endpoints();
  // Every node at once: a stopped node costs one io timeout, not one per node.
  std::vector<std::future<NodeReport>> futures;
  futures.reserve(endpoints.size());
  for (const auto& e : endpoints) {
    futures.push_back(
        std::async(std::launch::async, [&connector, e] { return ReadNode(connector, e); }));
  }
  std::vector<NodeReport> reports;
  reports.reserve(endpoints.size());
  for (auto& f : futures) reports.push_back(f.get());
  return BuildSnapshot(std::move(reports));
}

}  // namespace slotguard::agent

namespace slotguard::agent {

ClusterSnapshot ReadSnapshot(cluster::Connector& connector,
                             const std::vector<cluster::Endpoint>& endpoints) {
  // Every request goes out before any reply is read: one round trip for all nodes, no threads.
  std::vector<cluster::Result<void>> sent;
  sent.reserve(endpoints.size());
  for (const auto& e : endpoints) sent.push_back(connector.Get(e).Send(NodeCommands()));
  std::vector<NodeReport> reports;
  reports.reserve(endpoints.size());
  for (size_t i = 0; i < endpoints.size(); ++i) {
    if (!sent[i]) {
      reports.push_back(ParseNode(endpoints[i], tl::unexpected(sent[i].error())));
      continue;
    }
    reports.push_back(
        ParseNode(endpoints[i], connector.Get(endpoints[i]).Receive(NodeCommands().size())));
  }
  return BuildSnapshot(std::move(reports));
}

cluster::Result<ClusterSnapshot> SnapshotWhenOwnersAgree(
    const std::function<cluster::Result<ClusterSnapshot>()>& take, const std::vector<int>& slots,
    std::chrono::milliseconds timeout,
    const std::function<bool(std::chrono::milliseconds)>& pause) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto snapshot = take();
    if (!snapshot) return snapshot;
    const bool agreed = std::all_of(slots.begin(), slots.end(), [&](int slot) {
      return !snapshot->judgement.Owner(slot).empty();
    });
    if (agreed || std::chrono::steady_clock::now() >= deadline ||
        !pause(std::chrono::milliseconds(200))) {
      return snapshot;
    }
  }
}

}  // namespace slotguard::agent
