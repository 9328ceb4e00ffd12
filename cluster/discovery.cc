#include "cluster/discovery.h"

#include <algorithm>

namespace slotguard::cluster {

std::vector<Endpoint> Topology::Endpoints() const {
  std::vector<Endpoint> out;
  for (const auto& n : nodes) {
    // noaddr nodes (and handshake stubs of a forgotten node) have no usable address.
    if (n.flags.noaddr || n.endpoint.host.empty() || n.endpoint.port <= 0) continue;
    out.push_back(n.endpoint);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<Topology> Discover(Connector& connector, const std::vector<Endpoint>& seeds,
                          const std::vector<Endpoint>& known) {
  std::vector<Endpoint> candidates;
  for (const auto* list : {&seeds, &known}) {
    for (const auto& e : *list) {
      if (std::find(candidates.begin(), candidates.end(), e) == candidates.end()) {
        candidates.push_back(e);
      }
    }
  }
  if (candidates.empty()) return MakeError("cluster discovery: no seed address given");

  std::string failures;
  for (const auto& candidate : candidates) {
    std::string why;
    auto reply = connector.Get(candidate).Command({"CLUSTER", "NODES"});
    if (!reply) {
      why = reply.error().message;
    } else if (reply->IsError()) {
      why = "CLUSTER NODES refused: " + reply->str;
    } else if (reply->type != Reply::Type::kString && reply->type != Reply::Type::kStatus) {
      why = "CLUSTER NODES: unexpected reply type";
    } else if (auto nodes = ParseClusterNodes(reply->str); !nodes) {
      why = nodes.error().message;
    } else {
      Topology topology{candidate, std::move(*nodes)};
      // A node that was never MEET by another does not know its own IP and writes ":port":
      // the address we reached it at is the best there is.
      for (auto& n : topology.nodes) {
        if (n.flags.myself && n.endpoint.host.empty()) n.endpoint.host = candidate.host;
      }
      return topology;
    }
    if (!failures.empty()) failures += "; ";
    failures += candidate.ToString() + ": " + why;
  }
  return MakeError("cluster discovery failed, no node answered CLUSTER NODES (" + failures + ")");
}

}  // namespace slotguard::cluster
