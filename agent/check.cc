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

namespace {

// The report's lines, section by section, in redis-cli --cluster check's order.
class HealthLines {
 public:
  HealthLines(const ClusterSnapshot& s, HealthReport& report) : s_(s), report_(report) {}

  void Add(CheckLevel level, std::string text) {
    report_.lines.push_back({level, std::move(text)});
  }

  void Topology() {
    std::string using_node = s_.views.empty() ? "?" : s_.views.front().reporter.ToString();
    Add(CheckLevel::kInfo, ">>> Performing Cluster Check (using node " + using_node + ")");
    for (const auto* m : s_.Masters()) {
      Add(CheckLevel::kInfo, "M: " + m->id + " " + m->endpoint.ToString());
      Add(CheckLevel::kInfo, "   slots:[" + RangesText(m->slots) + "] (" +
                                 std::to_string(m->SlotCount()) + " slots) master");
      int replicas = 0;
      for (const auto& n : s_.nodes) replicas += (n.flags.replica && n.master_id == m->id) ? 1 : 0;
      if (replicas > 0)
        Add(CheckLevel::kInfo, "   " + std::to_string(replicas) + " additional replica(s)");
    }
    for (const auto& n : s_.nodes) {
      if (!n.flags.replica) continue;
      Add(CheckLevel::kInfo, "S: " + n.id + " " + n.endpoint.ToString());
      Add(CheckLevel::kInfo, "   slots: (0 slots) slave");
      Add(CheckLevel::kInfo, "   replicates " + n.master_id);
    }
  }

  void NodeStates() {
    for (const auto& r : s_.reports) {
      if (!r.reachable()) {
        Add(CheckLevel::kError, "Node " + r.endpoint.ToString() + " is unreachable: " + r.error);
      } else if (!r.cluster_info) {
        Add(CheckLevel::kError, "Node " + r.endpoint.ToString() + " did not answer CLUSTER INFO.");
      } else {
        auto state = r.cluster_info->Get("cluster_state");
        if (!state || *state != "ok") {
          Add(CheckLevel::kError, "Node " + r.endpoint.ToString() + " reports cluster_state:" +
                                      (state ? *state : std::string("?")) + ".");
        }
      }
    }
  }

  // Agreement, failing nodes and config epoch collisions.
  void Agreement() {
    const auto& j = s_.judgement;
    if (j.consistent && !s_.views.empty()) {
      Add(CheckLevel::kOk, "All nodes agree about slots configuration.");
    } else {
      Add(CheckLevel::kWarning, "Nodes don't agree about configuration!");
    }
    for (const auto& id : j.failing_node_ids) FailingNode(id);
    for (const auto& [epoch, ids] : j.colliding_epochs) {
      std::string who;
      for (const auto& id : ids) who += (who.empty() ? "" : ", ") + s_.Describe(id);
      Add(CheckLevel::kWarning,
          "Config epoch collision: epoch " + std::to_string(epoch) + " is used by " + who + ".");
    }
  }

  // A failing node, as flagged by any view.
  void FailingNode(const std::string& id) {
    std::set<std::string> flags;
    int views = 0;
    for (const auto& v : s_.views) {
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
    Add(CheckLevel::kError, "Node " + s_.Describe(id) + " is flagged " + f + " by " +
                                std::to_string(views) + " node(s).");
  }

  void OpenSlots() {
    Add(CheckLevel::kInfo, ">>> Check for open slots...");
    // Per node and direction, as redis-cli lists them.
    std::map<std::pair<std::string, int>, std::vector<int>> open;
    std::set<int> open_slots;
    for (const auto& o : s_.judgement.open_slots) {
      open[{o.node.ToString(), o.direction == cluster::OpenDirection::kMigrating ? 0 : 1}]
          .push_back(o.slot);
      open_slots.insert(o.slot);
    }
    for (const auto& [key, slots] : open) {
      Add(CheckLevel::kWarning, "Node " + key.first + " has slots in " +
                                    (key.second == 0 ? "migrating" : "importing") + " state (" +
                                    std::to_string(slots.size()) + "): " + Join(slots) + ".");
    }
    if (!open_slots.empty()) {
      Add(CheckLevel::kWarning, "The following slots are open: " +
                                    Join(std::vector<int>(open_slots.begin(), open_slots.end())) +
                                    ".");
    }
  }

  // True when no master holds keys of a slot it does not own (and every one was counted).
  bool StrayKeyLines(const StrayKeys& strays) {
    Add(CheckLevel::kInfo, ">>> Check for keys in slots their node does not own...");
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
      Add(CheckLevel::kError, "Node " + stray.node.ToString() + " holds " +
                                  std::to_string(stray.keys) + " keys of slot " +
                                  std::to_string(stray.slot) + " it does not own" +
                                  (stray.importing ? " (slot is importing)" : ""));
    }
    for (const auto& [node, rest] : not_shown) {
      Add(CheckLevel::kError, "Node " + node.ToString() + " holds " + std::to_string(rest.second) +
                                  " more keys in " + std::to_string(rest.first) +
                                  " more slots it does not own");
    }
    for (const auto& error : strays.errors) {
      Add(CheckLevel::kError, "Keys in slots not owned were not counted on " + error);
    }
    const bool clean = strays.slots.empty() && strays.errors.empty();
    if (clean) Add(CheckLevel::kOk, "No master holds keys of a slot it does not own.");
    return clean;
  }

  void Coverage() {
    const auto& j = s_.judgement;
    Add(CheckLevel::kInfo, ">>> Check slots coverage...");
    if (j.covered == cluster::kSlotCount) {
      Add(CheckLevel::kOk, "All 16384 slots covered.");
      return;
    }
    Add(CheckLevel::kError, "Not all 16384 slots are covered by nodes.");
    if (!j.uncovered_slots.empty()) {
      Add(CheckLevel::kInfo,
          "    uncovered (" + std::to_string(j.uncovered) + "): " + Join(j.uncovered_slots));
    }
    if (!j.disputed_slots.empty()) {
      Add(CheckLevel::kInfo,
          "    disputed (" + std::to_string(j.disputed) + "): " + Join(j.disputed_slots));
    }
  }

 private:
  const ClusterSnapshot& s_;
  HealthReport& report_;
};

}  // namespace

HealthReport JudgeHealth(const ClusterSnapshot& s, const StrayKeys& strays) {
  HealthReport report;
  HealthLines lines(s, report);
  lines.Topology();
  lines.NodeStates();
  lines.Agreement();
  lines.OpenSlots();
  const bool strays_clean = lines.StrayKeyLines(strays);
  lines.Coverage();
  // The lines above say it in redis-cli's words; whether it is healthy is the one judgement
  // preflight and rebalance use too, plus the keys in slots their node does not own.
  report.healthy = AssessHealth(s).empty() && strays_clean;
  return report;
}

}  // namespace slotguard::agent
