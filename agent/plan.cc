#include "agent/plan.h"

#include <algorithm>
#include <set>

namespace slotguard::agent {

int Plan::TotalSlots() const {
  int total = 0;
  for (const auto& b : batches) total += static_cast<int>(b.slots.size());
  return total;
}

namespace {

std::string NodeName(const cluster::NodeEntry& n) {
  return n.endpoint.ToString() + " (" + n.id + ")";
}

std::string BatchName(const Batch& b) { return "batch " + (b.id.empty() ? "?" : b.id); }

}  // namespace

cluster::Result<ResolvedBatch> ResolveBatch(const Batch& batch, const ClusterSnapshot& snapshot,
                                            const Limits& limits) {
  const std::string name = BatchName(batch);
  if (batch.from.empty()) return cluster::MakeError(name + ": no source node (from) given");
  if (batch.to.empty()) return cluster::MakeError(name + ": no target node (to) given");
  const auto* from = snapshot.FindNode(batch.from);
  if (from == nullptr) {
    return cluster::MakeError(name + ": source node " + batch.from +
                              " is not a node of this cluster (give a node id or host:port as "
                              "CLUSTER NODES shows it)");
  }
  const auto* to = snapshot.FindNode(batch.to);
  if (to == nullptr) {
    return cluster::MakeError(name + ": target node " + batch.to +
                              " is not a node of this cluster (give a node id or host:port as "
                              "CLUSTER NODES shows it)");
  }
  if (from->id == to->id) {
    return cluster::MakeError(name + ": source and target are the same node " + NodeName(*from));
  }
  // A replica end is refused naming its master by address: after a failover of that end it is
  // the node to use instead.
  auto not_master = [&](const cluster::NodeEntry& n, const char* end,
                        const char* flag) -> cluster::Error {
    const auto* master = snapshot.FindById(n.master_id);
    const std::string of = master ? NodeName(*master) : n.master_id;
    return cluster::Error{name + ": " + end + " node " + NodeName(n) + " is a replica (of " + of +
                          "), not a master: slots can only move between masters" +
                          (master && master->flags.master ? " (after a failover, name its master " +
                                                                master->endpoint.ToString() +
                                                                " as the " + end + ", " + flag + ")"
                                                          : std::string())};
  };
  if (!from->flags.master) return tl::unexpected(not_master(*from, "source", "--from"));
  if (!to->flags.master) return tl::unexpected(not_master(*to, "target", "--to"));
  if (batch.slots.empty()) return cluster::MakeError(name + ": no slots");
  if (static_cast<int>(batch.slots.size()) > limits.max_batch_slots) {
    return cluster::MakeError(name + ": " + std::to_string(batch.slots.size()) +
                              " slots, over the limit of " +
                              std::to_string(limits.max_batch_slots) + " slots per batch");
  }
  std::set<int> seen;
  for (int slot : batch.slots) {
    if (slot < 0 || slot >= cluster::kSlotCount) {
      return cluster::MakeError(name + ": slot " + std::to_string(slot) +
                                " is out of range (0-16383)");
    }
    if (!seen.insert(slot).second) {
      return cluster::MakeError(name + ": slot " + std::to_string(slot) + " is listed twice");
    }
    const std::string_view owner = snapshot.judgement.Owner(slot);
    if (owner != from->id) {
      std::string who = owner.empty() ? std::string("no agreed owner")
                                      : "is owned by " + (snapshot.FindById(owner)
                                                              ? NodeName(*snapshot.FindById(owner))
                                                              : std::string(owner));
      if (owner.empty()) {
        return cluster::MakeError(name + ": slot " + std::to_string(slot) +
                                  " has no agreed owner, so it is not owned by source " +
                                  NodeName(*from));
      }
      return cluster::MakeError(name + ": slot " + std::to_string(slot) +
                                " is not owned by source " + NodeName(*from) + " (it " + who + ")");
    }
  }
  ResolvedBatch out;
  out.batch = batch;
  std::sort(out.batch.slots.begin(), out.batch.slots.end());
  out.source_id = from->id;
  out.source = from->endpoint;
  out.target_id = to->id;
  out.target = to->endpoint;
  return out;
}

cluster::Result<ResolvedPlan> ValidatePlan(const Plan& plan, const ClusterSnapshot& snapshot,
                                           const Limits& limits) {
  if (plan.batches.empty()) return cluster::MakeError("plan has no batches");
  ResolvedPlan out;
  std::map<int, std::string> slot_batch;
  std::set<std::string> ids;
  for (const auto& batch : plan.batches) {
    if (!batch.id.empty() && !ids.insert(batch.id).second) {
      return cluster::MakeError("batch id " + batch.id + " is used twice");
    }
    auto resolved = ResolveBatch(batch, snapshot, limits);
    if (!resolved) return tl::unexpected(resolved.error());
    for (int slot : resolved->batch.slots) {
      auto [it, inserted] = slot_batch.emplace(slot, batch.id);
      if (!inserted) {
        return cluster::MakeError(BatchName(batch) + ": slot " + std::to_string(slot) +
                                  " is also in batch " + it->second + " (batches overlap)");
      }
    }
    out.total_slots += static_cast<int>(resolved->batch.slots.size());
    out.batches.push_back(std::move(*resolved));
  }
  out.needs_approval = out.total_slots > limits.approval_threshold_slots;
  return out;
}

cluster::Result<ReshardPlan> PlanReshard(const ReshardRequest& request,
                                         const std::vector<int>& source_slots,
                                         const std::map<int, SlotLoad>& loads,
                                         int64_t source_memory_bytes, const Limits& limits) {
  if (request.slots <= 0) return cluster::MakeError("--slots must be at least 1");
  if (request.batch_slots < 1 || request.batch_slots > limits.max_batch_slots) {
    return cluster::MakeError("--batch-slots must be 1-" + std::to_string(limits.max_batch_slots) +
                              ", got " + std::to_string(request.batch_slots));
  }
  std::vector<int> owned = source_slots;
  std::sort(owned.begin(), owned.end());
  owned.erase(std::unique(owned.begin(), owned.end()), owned.end());
  if (static_cast<int>(owned.size()) < request.slots) {
    return cluster::MakeError("source " + request.from + " owns " + std::to_string(owned.size()) +
                              " slots, fewer than the " + std::to_string(request.slots) +
                              " asked for");
  }
  owned.resize(request.slots);

  auto load_of = [&](int slot) {
    auto it = loads.find(slot);
    return it == loads.end() ? SlotLoad{} : it->second;
  };
  const double hot_bytes = limits.hot_slot_fraction * static_cast<double>(source_memory_bytes);

  ReshardPlan out;
  std::vector<int> regular;
  for (int slot : owned) {
    if (source_memory_bytes > 0 && static_cast<double>(load_of(slot).bytes) > hot_bytes) {
      out.hot_slots.push_back(slot);
    } else {
      regular.push_back(slot);
    }
  }
  int n = 0;
  auto add_batch = [&](std::vector<int> slots, bool hot) {
    Batch b;
    b.id = request.id_prefix + std::to_string(++n);
    b.from = request.from;
    b.to = request.to;
    BatchEstimate e;
    e.hot = hot;
    for (int s : slots) {
      e.keys += load_of(s).keys;
      e.bytes += load_of(s).bytes;
    }
    b.slots = std::move(slots);
    out.plan.batches.push_back(std::move(b));
    out.estimates.push_back(e);
  };
  for (size_t i = 0; i < regular.size(); i += request.batch_slots) {
    size_t end = std::min(regular.size(), i + static_cast<size_t>(request.batch_slots));
    add_batch(std::vector<int>(regular.begin() + i, regular.begin() + end), false);
  }
  for (int slot : out.hot_slots) add_batch({slot}, true);
  return out;
}

std::vector<int> HotSlots(const std::map<int, SlotLoad>& loads, int64_t memory_bytes,
                          const Limits& limits) {
  std::vector<int> out;
  if (memory_bytes <= 0) return out;
  const double hot_bytes = limits.hot_slot_fraction * static_cast<double>(memory_bytes);
  for (const auto& [slot, load] : loads) {
    if (static_cast<double>(load.bytes) > hot_bytes) out.push_back(slot);
  }
  return out;
}

SplitPlan SplitHotSlots(const Plan& plan, const std::vector<int>& hot_slots) {
  const std::set<int> hot(hot_slots.begin(), hot_slots.end());
  SplitPlan out;
  for (const Batch& b : plan.batches) {
    std::vector<int> keep;
    std::vector<int> alone;
    for (int slot : b.slots) (hot.count(slot) ? alone : keep).push_back(slot);
    if (b.slots.size() <= 1 || alone.empty()) {
      out.plan.batches.push_back(b);
      continue;
    }
    if (keep.empty()) {
      keep.push_back(alone.front());
      alone.erase(alone.begin());
    }
    Batch rest = b;
    rest.slots = std::move(keep);
    const size_t parent = out.plan.batches.size();
    out.plan.batches.push_back(std::move(rest));
    for (int slot : alone) {
      Batch single = b;
      single.id = b.id.empty() ? "" : b.id + "-hot" + std::to_string(slot);
      single.slots = {slot};
      out.splits.push_back({b.id, slot, single.id, parent, out.plan.batches.size()});
      out.plan.batches.push_back(std::move(single));
    }
  }
  return out;
}

}  // namespace slotguard::agent
