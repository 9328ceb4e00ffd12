#include "agent/cluster_snapshot.h"

#include <algorithm>
#include <map>

#include "cluster/cluster_reader.h"
#include "cluster/membership.h"

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
  // Only members' views count (cluster/membership.h): a departed node's would dispute slots.
  cluster::ViewRefs answered;
  for (const auto& r : s.reports) {
    if (r.view) answered.push_back(&*r.view);
  }
  const cluster::ViewRefs members = cluster::MemberViews(answered);
  std::map<std::string, cluster::NodeEntry> by_id;
  std::map<std::string, bool> own_line;
  for (const cluster::NodesView* view : members) {
    s.views.push_back(*view);
    for (const auto& n : view->nodes) {
      if (n.flags.myself) {
        by_id[n.id] = n;
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

cluster::ReadPlan SnapshotPlan() {
  cluster::ReadPlan plan;
  plan.cluster_info = true;
  return plan;
}

NodeReport ReportFrom(cluster::NodeRead read) {
  NodeReport report;
  report.endpoint = read.address;
  report.view = std::move(read.view);
  report.cluster_info = std::move(read.cluster_info);
  // A node whose view came back may still have refused CLUSTER INFO: it answered all the same.
  if (!report.view) {
    report.error = read.error.find(read.dialed.ToString()) == std::string::npos
                       ? read.dialed.ToString() + ": " + read.error
                       : read.error;
  }
  return report;
}

}  // namespace

cluster::Result<ClusterSnapshot> TakeSnapshot(cluster::Connector& connector,
                                              const std::vector<cluster::Endpoint>& seeds) {
  if (seeds.empty()) return cluster::MakeError("cluster discovery: no seed address given");
  cluster::ClusterReader reader(cluster::Borrow(connector), SnapshotPlan());
  // No deadline of its own: each node costs at most its connection's timeouts, all at once.
  cluster::ClusterRead read = reader.Read(seeds, {}, std::nullopt);
  if (!read.discovery_ok) {
    std::string failures;
    for (const auto& n : read.nodes) {
      failures += (failures.empty() ? "" : "; ") + n.dialed.ToString() + ": " + n.error;
    }
    return cluster::MakeError("cluster discovery failed, no node answered CLUSTER NODES (" +
                              failures + ")");
  }
  std::vector<NodeReport> reports;
  reports.reserve(read.nodes.size());
  for (auto& n : read.nodes) reports.push_back(ReportFrom(std::move(n)));
  return BuildSnapshot(std::move(reports));
}

ClusterSnapshot ReadSnapshot(cluster::Connector& connector,
                             const std::vector<cluster::Endpoint>& endpoints) {
  cluster::ClusterReader reader(cluster::Borrow(connector), SnapshotPlan());
  std::vector<NodeReport> reports;
  reports.reserve(endpoints.size());
  for (auto& n : reader.ReadNodes(endpoints, std::nullopt))
    reports.push_back(ReportFrom(std::move(n)));
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
