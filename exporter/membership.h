#pragma once

#include <vector>

#include "cluster/endpoint.h"
#include "cluster/slot_map.h"
#include "exporter/scrape_result.h"

namespace slotguard::exporter {

// Views held elsewhere (by the NodeResults of a scrape), by pointer: a scrape looks at the
// views several times, and copying 50 views of 50 lines each took a quarter of its time.
using ViewRefs = std::vector<const cluster::NodesView*>;

// The views that belong to the cluster: a node counts when another answering node lists its
// id (or when it is the only one answering). A node removed with `redis-cli --cluster del-node`
// is forgotten by the others and reset to a cluster of its own; its view would make every slot
// look disputed, so it is left out and the node list drops it.
ViewRefs MemberViews(const ViewRefs& views);

// Every address the views name (noaddr nodes and ":0" entries left out), sorted and unique:
// the nodes to read on the next scrape. Follows joins, failovers and departures.
std::vector<cluster::Endpoint> EndpointsInViews(const ViewRefs& views);

// MemberViews of the nodes that answered, in the order of `nodes`; valid while `nodes` is.
ViewRefs ClusterViews(const std::vector<NodeResult>& nodes);

}  // namespace slotguard::exporter
