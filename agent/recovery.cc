#include "agent/recovery.h"

#include <set>

#include "cluster/slot_map.h"

namespace slotguard::agent {

SlotObservation Observe(int slot, const std::string& source_id,
                        const std::vector<cluster::NodeEntry>& source_view,
                        const std::string& target_id,
                        const std::vector<cluster::NodeEntry>& target_view, int64_t source_keys,
                        int64_t target_keys, const FormerEnds& former) {
  SlotObservation o;
  o.slot = slot;
  o.source_keys = source_keys;
  o.target_keys = target_keys;
  // A former end's id read as its replacement's.
  auto as_end = [&](const std::string& id) {
    if (!former.target_id.empty() && id == former.target_id) return target_id;
    if (!former.source_id.empty() && id == former.source_id) return source_id;
    return id;
  };
  auto owner_in = [&](const std::vector<cluster::NodeEntry>& view) {
    for (const auto& n : view) {
      for (const auto& r : n.slots) {
        if (slot >= r.first && slot <= r.last) return as_end(n.id);
      }
    }
    return std::string();
  };
  auto is_target = [&](const std::string& peer) { return as_end(peer) == target_id; };
  auto is_source = [&](const std::string& peer) { return as_end(peer) == source_id; };
  o.owner_in_source_view = owner_in(source_view);
  o.owner_in_target_view = owner_in(target_view);
  if (const auto* me = cluster::FindMyself(source_view)) {
    o.source_epoch = me->config_epoch;
    for (const auto& open : me->open_slots) {
      if (open.slot != slot || !is_target(open.peer_id)) continue;
      if (open.direction == cluster::OpenDirection::kMigrating) o.source_migrating = true;
      if (open.direction == cluster::OpenDirection::kImporting) o.source_importing = true;
    }
  }
  if (const auto* me = cluster::FindMyself(target_view)) {
    o.target_epoch = me->config_epoch;
    for (const auto& open : me->open_slots) {
      if (open.slot != slot || !is_source(open.peer_id)) continue;
      if (open.direction == cluster::OpenDirection::kMigrating) o.target_migrating = true;
      if (open.direction == cluster::OpenDirection::kImporting) o.target_importing = true;
    }
  }
  return o;
}

const cluster::NodeEntry* PromotedMaster(const std::vector<cluster::NodeEntry>& nodes,
                                         const std::string& node_id, bool unreachable,
                                         const std::vector<std::string>& former_replicas) {
  auto by_id = [&](const std::string& id) -> const cluster::NodeEntry* {
    for (const auto& n : nodes) {
      if (n.id == id) return &n;
    }
    return nullptr;
  };
  auto healthy_master = [](const cluster::NodeEntry* m) {
    return m && m->flags.master && !m->flags.fail && !m->flags.pfail && !m->flags.noaddr;
  };
  const auto* node = by_id(node_id);
  if (node && node->flags.replica && !node->master_id.empty()) {
    const auto* master = by_id(node->master_id);
    return healthy_master(master) ? master : nullptr;
  }
  if (!unreachable) return nullptr;
  for (const auto& r : former_replicas) {
    if (const auto* m = by_id(r); healthy_master(m)) return m;
  }
  return nullptr;
}

Side SettledOwner(const SlotObservation& o, const std::string& source_id,
                  const std::string& target_id) {
  const bool a = o.owner_in_source_view == source_id;
  const bool b = o.owner_in_target_view == target_id;
  if (a && b) return o.target_epoch > o.source_epoch ? Side::kTarget : Side::kSource;
  if (b) return Side::kTarget;
  if (a) return Side::kSource;
  // Neither claims it in its own view, but both may agree on one of them.
  if (o.owner_in_source_view == target_id && o.owner_in_target_view == target_id) {
    return Side::kTarget;
  }
  if (o.owner_in_source_view == source_id || o.owner_in_target_view == source_id) {
    return Side::kSource;
  }
  return Side::kNeither;
}

bool ForwardReady(const SlotObservation& o, const std::string& source_id,
                  const std::string& target_id) {
  Side side = SettledOwner(o, source_id, target_id);
  if (side == Side::kTarget) return true;
  if (side != Side::kSource) return false;
  // B may be STABLE already: SETSLOT NODE on the target makes all slots of a group but the last
  // STABLE just before it gives them to B (NodeOnTargetArgv). A crash between the two leaves A
  // MIGRATING with no key left and every key at B; opening B again finishes it forward.
  return o.source_migrating && o.source_keys == 0 && !o.target_migrating;
}

bool NeedsSettling(const SlotObservation& o, Side side, const std::string& source_id,
                   const std::string& target_id) {
  bool open = o.source_migrating || o.source_importing || o.target_migrating || o.target_importing;
  if (open) return true;
  if (side == Side::kSource) {
    return o.target_keys > 0 || o.owner_in_target_view != source_id ||
           o.owner_in_source_view != source_id;
  }
  return o.source_keys > 0 || o.owner_in_source_view != target_id ||
         o.owner_in_target_view != target_id;
}

ConvergencePlan PlanConvergence(const std::vector<SlotObservation>& slots,
                                const std::string& source_id, const std::string& target_id,
                                ConvergeMode mode) {
  ConvergencePlan plan;
  bool all_ready = !slots.empty();
  for (const auto& o : slots) {
    if (!ForwardReady(o, source_id, target_id)) all_ready = false;
  }
  plan.to_target = mode == ConvergeMode::kAuto && all_ready;
  for (const auto& o : slots) {
    Side side = SettledOwner(o, source_id, target_id);
    if (side == Side::kNeither) {
      plan.stuck.push_back(o.slot);
      continue;
    }
    if (side == Side::kTarget) {
      // B MIGRATING to A is a move back already under way: the reverse finishes it (keys cannot
      // be sent to a MIGRATING node).
      if (!o.target_migrating && NeedsSettling(o, side, source_id, target_id)) {
        plan.settle_at_target.push_back(o.slot);
      }
      if (!plan.to_target) plan.reverse.push_back(o.slot);
      continue;
    }
    // Settled at the source. Keys on B come home only through the forward protocol (see
    // above): closing the slot would strand them on a node that does not own it.
    if (o.source_migrating || o.target_keys > 0) {
      plan.finish_forward.push_back(o.slot);
      if (!plan.to_target) plan.reverse.push_back(o.slot);
    } else if (plan.to_target) {
      plan.finish_forward.push_back(o.slot);  // not reached: all_ready implies MIGRATING
    } else if (NeedsSettling(o, side, source_id, target_id)) {
      plan.close_at_source.push_back(o.slot);
    }
  }
  return plan;
}

std::map<cluster::Endpoint, std::vector<int>> ReplicaLeftovers(const ClusterSnapshot& snapshot,
                                                               const std::vector<int>& slots) {
  const std::set<int> wanted(slots.begin(), slots.end());
  std::map<std::string, std::set<int>> open_at;  // node id -> its open slots
  for (const auto& o : snapshot.judgement.open_slots) open_at[o.node_id].insert(o.slot);
  std::map<cluster::Endpoint, std::set<int>> stable;
  for (const auto& o : snapshot.judgement.open_slots) {
    if (!wanted.count(o.slot)) continue;
    const auto* node = snapshot.FindById(o.node_id);
    if (node == nullptr || node->flags.master || node->master_id.empty()) continue;
    const auto* master = snapshot.FindById(node->master_id);
    if (master == nullptr || open_at[master->id].count(o.slot)) continue;
    stable[master->endpoint].insert(o.slot);
  }
  std::map<cluster::Endpoint, std::vector<int>> out;
  for (const auto& [endpoint, set] : stable) out[endpoint].assign(set.begin(), set.end());
  return out;
}

}  // namespace slotguard::agent
