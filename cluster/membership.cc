#include "cluster/membership.h"

#include <algorithm>
#include <set>

namespace slotguard::cluster {

ViewRefs MemberViews(const ViewRefs& views) {
  if (views.size() <= 1) return views;
  ViewRefs members;
  for (size_t i = 0; i < views.size(); ++i) {
    bool listed = false;
    for (size_t j = 0; j < views.size() && !listed; ++j) {
      if (i == j || views[j]->reporter_id == views[i]->reporter_id) continue;
      listed = std::any_of(views[j]->nodes.begin(), views[j]->nodes.end(),
                           [&](const NodeEntry& n) { return n.id == views[i]->reporter_id; });
    }
    if (listed) members.push_back(views[i]);
  }
  // Nobody lists anybody (every answering node was reset): keep them all rather than none.
  return members.empty() ? views : members;
}

std::vector<Endpoint> EndpointsInViews(const ViewRefs& views) {
  std::set<Endpoint> out;
  for (const NodesView* view : views) {
    if (!view->reporter.host.empty() && view->reporter.port > 0) out.insert(view->reporter);
    for (const auto& n : view->nodes) {
      if (n.flags.noaddr || n.endpoint.host.empty() || n.endpoint.port <= 0) continue;
      out.insert(n.endpoint);
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace slotguard::cluster
