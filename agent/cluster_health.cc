#include "agent/cluster_health.h"

#include "cluster/slot_map.h"

namespace slotguard::agent {
namespace {

std::string FirstSlots(const std::vector<int>& slots) {
  std::string out;
  for (size_t i = 0; i < slots.size() && i < 5; ++i) {
    out += (i ? "," : "") + std::to_string(slots[i]);
  }
  if (slots.size() > 5) out += ",...";
  return out;
}

const char* FlagOf(const cluster::NodeEntry& n) {
  return n.flags.fail        ? "fail"
         : n.flags.pfail     ? "fail?"
         : n.flags.handshake ? "handshake"
         : n.flags.noaddr    ? "noaddr"
                             : nullptr;
}

}  // namespace

std::vector<HealthProblem> AssessHealth(const ClusterSnapshot& s) {
  std::vector<HealthProblem> out;
  auto add = [&](HealthProblemKind kind, std::string text) {
    out.push_back({kind, std::move(text)});
  };
  for (const auto& r : s.reports) {
    if (!r.reachable()) {
      add(HealthProblemKind::kUnreachable,
          "node " + r.endpoint.ToString() + " is unreachable: " + r.error);
    } else if (!r.cluster_info) {
      add(HealthProblemKind::kNoClusterInfo,
          "node " + r.endpoint.ToString() + " did not answer CLUSTER INFO");
    } else if (auto state = r.cluster_info->Get("cluster_state"); !state || *state != "ok") {
      add(HealthProblemKind::kClusterState,
          "node " + r.endpoint.ToString() +
              " reports cluster_state:" + (state ? *state : std::string("?")));
    }
  }
  if (s.views.empty()) {
    add(HealthProblemKind::kNoView, "no node answered CLUSTER NODES");
    return out;
  }
  const auto& j = s.judgement;
  for (const auto& id : j.failing_node_ids) {
    // Named by the first view that flags it.
    bool named = false;
    for (const auto& v : s.views) {
      for (const auto& n : v.nodes) {
        const char* flag = n.id == id ? FlagOf(n) : nullptr;
        if (flag == nullptr || named) continue;
        add(HealthProblemKind::kFlagged,
            "node " + s.Describe(id) + " is flagged " + flag + " by " + v.reporter.ToString());
        named = true;
      }
    }
  }
  if (!j.disputed_slots.empty()) {
    add(HealthProblemKind::kDisputed, std::to_string(j.disputed) +
                                          " slots are disputed between nodes (" +
                                          FirstSlots(j.disputed_slots) + ")");
  }
  if (!j.uncovered_slots.empty()) {
    add(HealthProblemKind::kUncovered,
        "only " + std::to_string(j.covered) +
            " of 16384 slots are covered (uncovered: " + FirstSlots(j.uncovered_slots) + ")");
  }
  if (!j.consistent) {
    std::string text = "nodes don't agree about the slot configuration";
    const std::string first = cluster::ConfigSignature(s.views.front().nodes);
    for (const auto& v : s.views) {
      if (cluster::ConfigSignature(v.nodes) != first) {
        text += " (" + v.reporter.ToString() + " differs from " +
                s.views.front().reporter.ToString() + ")";
        break;
      }
    }
    add(HealthProblemKind::kDisagree, std::move(text));
  }
  if (!j.open_slots.empty()) {
    const auto& o = j.open_slots.front();
    add(HealthProblemKind::kOpenSlot,
        "slot " + std::to_string(o.slot) + " is open (" +
            (o.direction == cluster::OpenDirection::kMigrating ? "migrating" : "importing") +
            " on " + o.node.ToString() + "); " + std::to_string(j.open_slots.size()) +
            " open slot(s) in all; close them first: slotguard-agent reshard with the --journal "
            "of the run that left them, else slotguard-agent fix");
  }
  for (const auto& [epoch, ids] : j.colliding_epochs) {
    std::string who;
    for (const auto& id : ids) who += (who.empty() ? "" : ", ") + s.Describe(id);
    add(HealthProblemKind::kEpochCollision,
        "config epoch " + std::to_string(epoch) + " is shared by masters " + who);
  }
  return out;
}

}  // namespace slotguard::agent
