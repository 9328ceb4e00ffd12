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

SlotMap::SlotMap(const std::vector<NodeEntry>& nodes) {
  for (const auto& node : nodes) {
    for (const auto& range : node.slots) {
      for (int s = range.first; s <= range.last; ++s) owners_[s] = node.id;
    }
  }
}

int SlotMap::Assigned() const {
  return static_cast<int>(std::count_if(owners_.begin(), owners_.end(),
                                        [](const std::string& o) { return !o.empty(); }));
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
  ClusterJudgement j;
  j.views = static_cast<int>(views.size());

  // Per view, a pointer to the owner's id per slot (null when unassigned): cheaper than a
  // SlotMap of string copies, and this runs on every scrape.
  std::vector<std::array<const std::string*, kSlotCount>> owners(views.size());
  for (size_t v = 0; v < views.size(); ++v) {
    owners[v].fill(nullptr);
    for (const auto& node : views[v].nodes) {
      for (const auto& range : node.slots) {
        for (int s = range.first; s <= range.last; ++s) owners[v][s] = &node.id;
      }
    }
  }
  auto same = [](const std::string* a, const std::string* b) {
    return a == b || (a != nullptr && b != nullptr && *a == *b);
  };

  // Coverage. With no view at all nothing is known to be covered: all slots count as uncovered.
  for (int s = 0; s < kSlotCount; ++s) {
    const std::string* first = owners.empty() ? nullptr : owners.front()[s];
    bool agree = true;
    for (size_t v = 1; v < owners.size() && agree; ++v) agree = same(owners[v][s], first);
    if (!agree) {
      ++j.disputed;
      j.disputed_slots.push_back(s);
    } else if (first == nullptr) {
      ++j.uncovered;
      j.uncovered_slots.push_back(s);
    } else {
      ++j.covered;
      j.owner[s] = *first;
    }
  }

  // Open slots: only a node's own line carries them.
  for (const auto& v : views) {
    const NodeEntry* me = FindMyself(v.nodes);
    if (me == nullptr) continue;
    Endpoint where = v.reporter.host.empty() ? me->endpoint : v.reporter;
    std::string id = v.reporter_id.empty() ? me->id : v.reporter_id;
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

  // Consistency as redis-cli --cluster check decides it.
  j.consistent = !views.empty();
  if (!views.empty()) {
    const std::string first = ConfigSignature(views.front().nodes);
    for (size_t i = 1; i < views.size() && j.consistent; ++i) {
      if (ConfigSignature(views[i].nodes) != first) j.consistent = false;
    }
  }

  // Config epochs among masters. A node's own line is authoritative for its epoch; a node that
  // did not answer is taken at the highest epoch any view gives it as a master.
  std::map<std::string, uint64_t> master_epoch;
  std::set<std::string> own_line;
  for (const auto& v : views) {
    for (const auto& n : v.nodes) {
      if (!n.flags.master) continue;
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

  std::set<std::string> failing;
  for (const auto& v : views) {
    for (const auto& n : v.nodes) {
      if (n.flags.fail || n.flags.pfail || n.flags.handshake || n.flags.noaddr) {
        failing.insert(n.id);
      }
    }
  }
  j.failing_node_ids.assign(failing.begin(), failing.end());
  return j;
}

}  // namespace slotguard::cluster
