#pragma once

#include <string>
#include <vector>

#include "cluster/connection.h"
#include "cluster/endpoint.h"
#include "cluster/nodes.h"
#include "cluster/result.h"

namespace slotguard::cluster {

// The nodes of a cluster as one reachable node describes them.
struct Topology {
  Endpoint answered_by;
  std::vector<NodeEntry> nodes;
  // Addresses of every node with an address (fail and pfail nodes included: they still have
  // to be reported as down), sorted.
  std::vector<Endpoint> Endpoints() const;
};

// Asks each candidate in turn (seeds first, then `known`) for CLUSTER NODES; the first that
// answers wins. Fails naming every candidate and why, when none answers.
Result<Topology> Discover(Connector& connector, const std::vector<Endpoint>& seeds,
                          const std::vector<Endpoint>& known = {});

}  // namespace slotguard::cluster
