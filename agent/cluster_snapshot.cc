#include "agent/cluster_snapshot.h"

namespace slotguard::agent {

const cluster::NodeEntry* ClusterSnapshot::FindNode(std::string_view /*id_or_address*/) const {
  return nullptr;
}
const cluster::NodeEntry* ClusterSnapshot::FindById(std::string_view /*id*/) const {
  return nullptr;
}
const NodeReport* ClusterSnapshot::ReportFor(const cluster::Endpoint& /*endpoint*/) const {
  return nullptr;
}
std::vector<const cluster::NodeEntry*> ClusterSnapshot::Masters() const { return {}; }

ClusterSnapshot BuildSnapshot(std::vector<NodeReport> reports) {
  ClusterSnapshot s;
  s.reports = std::move(reports);
  return s;
}

cluster::Result<ClusterSnapshot> TakeSnapshot(cluster::Connector& /*connector*/,
                                              const std::vector<cluster::Endpoint>& /*seeds*/) {
  return cluster::MakeError("not implemented yet");
}

}  // namespace slotguard::agent
