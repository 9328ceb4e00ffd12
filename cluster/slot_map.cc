#include "cluster/slot_map.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace slotguard::cluster {
namespace {

std::string RangeText(const SlotRange& r) {
  if (r.first == r.last) return std::to_string(r.first);
  return std::to_string(r.first) + "-" + std::to_string(r.last);
}

}  // namespace

SlotMap::SlotMap() : owners_(kSlotCount, kUnassigned) {}

SlotMap::SlotMap(const std::vector<NodeEntry>& nodes) : SlotMap() {
  for (const auto& node : nodes) {
    if (node.slots.empty()) continue;
    const Index owner = Intern(node.id);
    for (const auto& range : node.slots) Assign(range.first, range.last, owner);
  }
}

SlotMap::Index SlotMap::Find(std::string_view id) const {
  // A linear search: the table holds the masters of one cluster, tens of ids.
  for (size_t i = 0; i < ids_.size(); ++i) {
    if (ids_[i] == id) return static_cast<Index>(i);
  }
  return kUnassigned;
}

SlotMap::Index SlotMap::Intern(std::string_view id) {
  const Index found = Find(id);
  if (found != kUnassigned) return found;
  if (ids_.size() >= kMaxOwners) return kUnassigned;
  ids_.emplace_back(id);
  return static_cast<Index>(ids_.size() - 1);
}

void SlotMap::Assign(int first, int last, Index owner) {
  first = std::max(first, 0);
  last = std::min(last, kSlotCount - 1);
  if (first > last) return;
  std::fill(owners_.begin() + first, owners_.begin() + last + 1, owner);
}

int SlotMap::Assigned() const {
  return static_cast<int>(kSlotCount - std::count(owners_.begin(), owners_.end(), kUnassigned));
}

int SlotMap::Count(std::string_view id) const {
  const Index i = Find(id);
  if (i == kUnassigned) return 0;
  return static_cast<int>(std::count(owners_.begin(), owners_.end(), i));
}

// Mirrors redis-cli's clusterManagerGetConfigSignature: per node line with slots,
// "id:" + its slot entries (open-slot brackets left out) sorted as strings and joined by ",";
// those entries sorted as strings and joined by "|". Lines without slots are left out.
std::string ConfigSignature(const std::vector<NodeEntry>& nodes) {
  std::vector<std::string> configs;
  for (const auto& node : nodes) {
    if (node.slots.empty()) continue;
    std::vector<std::string> ranges;
    ranges.reserve(node.slots.size());
    for (const auto& r : node.slots) ranges.push_back(RangeText(r));
    std::sort(ranges.begin(), ranges.end());
    std::string config = node.id + ":";
    for (size_t i = 0; i < ranges.size(); ++i) {
      if (i > 0) config += ',';
      config += ranges[i];
    }
    configs.push_back(std::move(config));
  }
  std::sort(configs.begin(), configs.end());
  std::string signature;
  for (size_t i = 0; i < configs.size(); ++i) {
    if (i > 0) signature += '|';
    signature += configs[i];
  }
  return signature;
}

ClusterJudgement JudgeCluster(const std::vector<NodesView>& views) {
  std::vector<const NodesView*> refs;
  refs.reserve(views.size());
  for (const auto& v : views) refs.push_back(&v);
  return JudgeClusterRefs(refs);
}

namespace {

// Owners where every view agrees; `disputed` marks the slots where one differs.
void JudgeOwners(const std::vector<const NodesView*>& views, ClusterJudgement& j,
                 std::vector<bool>& disputed) {
  // Every view's owners as indexes into one table of ids (the judgement's own), so views are
  // compared slot by slot as integers: the first view is the candidate, each later one is laid
  // out in `view` and any slot where they differ is disputed.
  SlotMap& agreed = j.owners;
  std::vector<SlotMap::Index> view(kSlotCount);
  for (size_t v = 0; v < views.size(); ++v) {
    if (v > 0) std::fill(view.begin(), view.end(), SlotMap::kUnassigned);
    for (const auto& node : views[v]->nodes) {
      if (node.slots.empty()) continue;
      const SlotMap::Index owner = agreed.Intern(node.id);
      for (const auto& range : node.slots) {
        if (v == 0) {
          agreed.Assign(range.first, range.last, owner);
        } else {
          const int first = std::max(range.first, 0);
          const int last = std::min(range.last, kSlotCount - 1);
          if (first <= last) std::fill(view.begin() + first, view.begin() + last + 1, owner);
        }
      }
    }
    if (v == 0) continue;
    for (int s = 0; s < kSlotCount; ++s) {
      if (view[s] != agreed.OwnerIndex(s)) disputed[s] = true;
    }
  }
}

void JudgeCoverage(const std::vector<bool>& disputed, ClusterJudgement& j) {
  SlotMap& agreed = j.owners;
  // Coverage. With no view at all nothing is known to be covered: all slots count as uncovered.
  for (int s = 0; s < kSlotCount; ++s) {
    if (disputed[s]) {
      ++j.disputed;
      j.disputed_slots.push_back(s);
      agreed.Assign(s, s, SlotMap::kUnassigned);
    } else if (agreed.OwnerIndex(s) == SlotMap::kUnassigned) {
      ++j.uncovered;
      j.uncovered_slots.push_back(s);
    } else {
      ++j.covered;
    }
  }
}

void JudgeOpenSlots(const std::vector<const NodesView*>& views, ClusterJudgement& j) {
  // Open slots: only a node's own line carries them.
  for (const NodesView* v : views) {
    const NodeEntry* me = FindMyself(v->nodes);
    if (me == nullptr) continue;
    Endpoint where = v->reporter.host.empty() ? me->endpoint : v->reporter;
    std::string id = v->reporter_id.empty() ? me->id : v->reporter_id;
    for (const auto& open : me->open_slots) {
      j.open_slots.push_back(OpenSlotState{open.slot, open.direction, id, where, open.peer_id});
    }
  }
  auto key = [](const OpenSlotState& o) {
    return std::tie(o.slot, o.node, o.node_id, o.direction, o.peer_id);
  };
  std::sort(j.open_slots.begin(), j.open_slots.end(),
            [&](const OpenSlotState& a, const OpenSlotState& b) { return key(a) < key(b); });
  j.open_slots.erase(
      std::unique(j.open_slots.begin(), j.open_slots.end(),
                  [&](const OpenSlotState& a, const OpenSlotState& b) { return key(a) == key(b); }),
      j.open_slots.end());
}

void JudgeConsistency(const std::vector<const NodesView*>& views, ClusterJudgement& j) {
  // Consistency as redis-cli --cluster check decides it.
  j.consistent = !views.empty();
  if (!views.empty()) {
    const std::string first = ConfigSignature(views.front()->nodes);
    for (size_t i = 1; i < views.size() && j.consistent; ++i) {
      if (ConfigSignature(views[i]->nodes) != first) j.consistent = false;
    }
  }
}

void JudgeEpochs(const std::vector<const NodesView*>& views, ClusterJudgement& j) {
  // Config epochs among masters. A node's own line is authoritative for its role and epoch; a
  // node that did not answer is taken at the highest epoch any view gives it as a master. A
  // view that still lists a replica as master carries its master's epoch (a replica's pings
  // announce its master's configEpoch), which would read as a collision no server resolves.
  std::set<std::string> own_replica;
  for (const NodesView* v : views) {
    for (const auto& n : v->nodes) {
      if (n.flags.myself && !n.flags.master) own_replica.insert(n.id);
    }
  }
  std::map<std::string, uint64_t> master_epoch;
  std::set<std::string> own_line;
  for (const NodesView* v : views) {
    for (const auto& n : v->nodes) {
      if (!n.flags.master || own_replica.count(n.id)) continue;
      if (n.flags.myself) {
        master_epoch[n.id] = n.config_epoch;
        own_line.insert(n.id);
      } else if (!own_line.count(n.id)) {
        auto [it, inserted] = master_epoch.emplace(n.id, n.config_epoch);
        if (!inserted) it->second = std::max(it->second, n.config_epoch);
      }
    }
  }
  std::map<uint64_t, std::vector<std::string>> by_epoch;
  for (const auto& [id, epoch] : master_epoch) by_epoch[epoch].push_back(id);
  for (auto& [epoch, ids] : by_epoch) {
    if (ids.size() < 2) continue;
    j.epoch_collisions += static_cast<int>(ids.size());
    j.colliding_epochs[epoch] = std::move(ids);
  }
}

void JudgeFailing(const std::vector<const NodesView*>& views, ClusterJudgement& j) {
  std::set<std::string> failing;
  for (const NodesView* v : views) {
    for (const auto& n : v->nodes) {
      if (n.flags.fail || n.flags.pfail || n.flags.handshake || n.flags.noaddr) {
        failing.insert(n.id);
      }
    }
  }
  j.failing_node_ids.assign(failing.begin(), failing.end());
}

}  // namespace

ClusterJudgement JudgeClusterRefs(const std::vector<const NodesView*>& views) {
  ClusterJudgement j;
  j.views = static_cast<int>(views.size());
  std::vector<bool> disputed(kSlotCount, false);
  JudgeOwners(views, j, disputed);
  JudgeCoverage(disputed, j);
  JudgeOpenSlots(views, j);
  JudgeConsistency(views, j);
  JudgeEpochs(views, j);
  JudgeFailing(views, j);
  return j;
}

}  // namespace slotguard::cluster
