#include "agent/check.h"

#include <algorithm>
#include <map>
#include <set>

#include "agent/cluster_health.h"

namespace slotguard::agent {
namespace {

std::string Join(const std::vector<int>& values, size_t max_shown = 20) {
  std::string out;
  for (size_t i = 0; i < values.size() && i < max_shown; ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  if (values.size() > max_shown) out += ",...";
  return out;
}

std::string RangesText(const std::vector<cluster::SlotRange>& ranges) {
  std::string out;
  for (const auto& r : ranges) {
    if (!out.empty()) out += ',';
    out += r.first == r.last ? std::to_string(r.first)
                             : std::to_string(r.first) + "-" + std::to_string(r.last);
  }
  return out;
}

}  // namespace

std::string CheckLine::ToString() const {
  switch (level) {
    case CheckLevel::kOk:
      return "[OK] " + text;
    case CheckLevel::kWarning:
      return "[WARNING] " + text;
    case CheckLevel::kError:
      return "[ERR] " + text;
    case CheckLevel::kInfo:
      return text;
  }
  return text;
}

HealthReport JudgeHealth(const ClusterSnapshot& s, const StrayKeys& strays) {
  HealthReport report;
  auto add = [&](CheckLevel level, std::string text) {
    report.lines.push_back({level, std::move(text)});
  };
  const auto& j = s.judgement;

  std::string using_node = s.views.empty() ? "?" : s.views.front().reporter.ToString();
  add(CheckLevel::kInfo, ">>> Performing Cluster Check (using node " + using_node + ")");
  for (const auto* m : s.Masters()) {
    add(CheckLevel::kInfo, "M: " + m->id + " " + m->endpoint.ToString());
    add(CheckLevel::kInfo, "   slots:[" + RangesText(m->slots) + "] (" +
                               std::to_string(m->SlotCount()) + " slots) master");
    int replicas = 0;
    for (const auto& n : s.nodes) replicas += (n.flags.replica && n.master_id == m->id) ? 1 : 0;
    if (replicas > 0)
      add(CheckLevel::kInfo, "   " + std::to_string(replicas) + " additional replica(s)");
  }
  for (const auto& n : s.nodes) {
    if (!n.flags.replica) continue;
    add(CheckLevel::kInfo, "S: " + n.id + " " + n.endpoint.ToString());
    add(CheckLevel::kInfo, "   slots: (0 slots) slave");
    add(CheckLevel::kInfo, "   replicates " + n.master_id);
  }

  for (const auto& r : s.reports) {
    if (!r.reachable()) {
      add(CheckLevel::kError, "Node " + r.endpoint.ToString() + " is unreachable: " + r.error);
    } else if (!r.cluster_info) {
      add(CheckLevel::kError, "Node " + r.endpoint.ToString() + " did not answer CLUSTER INFO.");
    } else {
      auto state = r.cluster_info->Get("cluster_state");
      if (!state || *state != "ok") {
        add(CheckLevel::kError, "Node " + r.endpoint.ToString() + " reports cluster_state:" +
                                    (state ? *state : std::string("?")) + ".");
      }
    }
  }

  if (j.consistent && !s.views.empty()) {
    add(CheckLevel::kOk, "All nodes agree about slots configuration.");
  } else {
    add(CheckLevel::kWarning, "Nodes don't agree about configuration!");
  }

  // Failing nodes, as flagged by any view.
  for (const auto& id : j.failing_node_ids) {
    std::set<std::string> flags;
    int views = 0;
    for (const auto& v : s.views) {
      for (const auto& n : v.nodes) {
        if (n.id != id) continue;
        bool any = false;
        if (n.flags.fail) flags.insert("fail"), any = true;
        if (n.flags.pfail) flags.insert("fail?"), any = true;
        if (n.flags.handshake) flags.insert("handshake"), any = true;
        if (n.flags.noaddr) flags.insert("noaddr"), any = true;
        views += any ? 1 : 0;
      }
    }
    std::string f;
    for (const auto& x : flags) f += (f.empty() ? "" : ",") + x;
    add(CheckLevel::kError, "Node " + s.Describe(id) + " is flagged " + f + " by " +
                                std::to_string(views) + " node(s).");
  }

  for (const auto& [epoch, ids] : j.colliding_epochs) {
    std::string who;
    for (const auto& id : ids) who += (who.empty() ? "" : ", ") + s.Describe(id);
    add(CheckLevel::kWarning,
        "Config epoch collision: epoch " + std::to_string(epoch) + " is used by " + who + ".");
  }

  add(CheckLevel::kInfo, ">>> Check for open slots...");
  // Per node and direction, as redis-cli lists them.
  std::map<std::pair<std::string, int>, std::vector<int>> open;
  std::set<int> open_slots;
  for (const auto& o : j.open_slots) {
    open[{o.node.ToString(), o.direction == cluster::OpenDirection::kMigrating ? 0 : 1}].push_back(
        o.slot);
    open_slots.insert(o.slot);
  }
  for (const auto& [key, slots] : open) {
    add(CheckLevel::kWarning, "Node " + key.first + " has slots in " +
                                  (key.second == 0 ? "migrating" : "importing") + " state (" +
                                  std::to_string(slots.size()) + "): " + Join(slots) + ".");
  }
  if (!open_slots.empty()) {
    add(CheckLevel::kWarning, "The following slots are open: " +
                                  Join(std::vector<int>(open_slots.begin(), open_slots.end())) +
                                  ".");
  }

  add(CheckLevel::kInfo, ">>> Check for keys in slots their node does not own...");
  // A node that lost many slots with their keys would print thousands of lines: the first few
  // per node name the slots, one more line sums up the rest.
  constexpr int kShownPerNode = 20;
  std::map<cluster::Endpoint, std::pair<int, int64_t>> not_shown;  // node -> (slots, keys)
  std::map<cluster::Endpoint, int> shown;
  for (const auto& stray : strays.slots) {
    if (shown[stray.node] >= kShownPerNode) {
      auto& [slots, keys] = not_shown[stray.node];
      ++slots;
      keys += stray.keys;
      continue;
    }
    ++shown[stray.node];
    add(CheckLevel::kError, "Node " + stray.node.ToString() + " holds " +
                                std::to_string(stray.keys) + " keys of slot " +
                                std::to_string(stray.slot) + " it does not own" +
                                (stray.importing ? " (slot is importing)" : ""));
  }
  for (const auto& [node, rest] : not_shown) {
    add(CheckLevel::kError, "Node " + node.ToString() + " holds " + std::to_string(rest.second) +
                                " more keys in " + std::to_string(rest.first) +
                                " more slots it does not own");
  }
  for (const auto& error : strays.errors) {
    add(CheckLevel::kError, "Keys in slots not owned were not counted on " + error);
  }
  const bool strays_clean = strays.slots.empty() && strays.errors.empty();
  if (strays_clean) add(CheckLevel::kOk, "No master holds keys of a slot it does not own.");

  add(CheckLevel::kInfo, ">>> Check slots coverage...");
  if (j.covered == cluster::kSlotCount) {
    add(CheckLevel::kOk, "All 16384 slots covered.");
  } else {
    add(CheckLevel::kError, "Not all 16384 slots are covered by nodes.");
    if (!j.uncovered_slots.empty()) {
      add(CheckLevel::kInfo,
          "    uncovered (" + std::to_string(j.uncovered) + "): " + Join(j.uncovered_slots));
    }
    if (!j.disputed_slots.empty()) {
      add(CheckLevel::kInfo,
          "    disputed (" + std::to_string(j.disputed) + "): " + Join(j.disputed_slots));
    }
  }
  // The lines above say it in redis-cli's words; whether it is healthy is the one judgement
  // preflight and rebalance use too, plus the keys in slots their node does not own.
  report.healthy = AssessHealth(s).empty() && strays_clean;
  return report;
}

}  // namespace slotguard::agent
