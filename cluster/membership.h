#pragma once

#include <vector>

#include "cluster/endpoint.h"
#include "cluster/slot_map.h"

namespace slotguard::cluster {

// Views held elsewhere (by the reads of a scrape or snapshot), by pointer: a reader looks at the
// views several times, and copying 50 views of 50 lines each took a quarter of a scrape.
using ViewRefs = std::vector<const NodesView*>;

// The one membership rule of both binaries: a view belongs to the cluster when another answering
// node lists its reporter's id (or when it is the only one answering, or nobody lists anybody).
// A node that departed (`redis-cli --cluster del-node`, or CLUSTER FORGET by every other node)
// is in no other view any more; it is reset or still lists its old peers, and its view would make
// slots look disputed or uncovered, so it is left out of the judgement and the node list drops it.
// A failed or unreachable node is still listed by the others: it stays a member.
ViewRefs MemberViews(const ViewRefs& views);

// Every address the views name (noaddr nodes and ":0" entries left out), sorted and unique:
// the nodes to read next. Follows joins, failovers and departures.
std::vector<Endpoint> EndpointsInViews(const ViewRefs& views);

}  // namespace slotguard::cluster
