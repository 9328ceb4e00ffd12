#pragma once

#include <vector>

#include "cluster/endpoint.h"
#include "cluster/slot_map.h"
#include "exporter/scrape_result.h"

namespace slotguard::exporter {

// The views that belong to the cluster: a node counts when another answering node lists its
// id (or when it is the only one answering). A node removed with `redis-cli --cluster del-node`
// is forgotten by the others and reset to a cluster of its own; its view would make every slot
// look disputed, so it is left out and the node list drops it.
std::vector<cluster::NodesView> MemberViews(const std::vector<cluster::NodesView>& views);

// Every address the views name (noaddr nodes and ":0" entries left out), sorted and unique:
// the nodes to read on the next scrape. Follows joins, failovers and departures.
std::vector<cluster::Endpoint> EndpointsInViews(const std::vector<cluster::NodesView>& views);

// MemberViews of the nodes that answered, in the order of `nodes`.
std::vector<cluster::NodesView> ClusterViews(const std::vector<NodeResult>& nodes);

}  // namespace slotguard::exporter
