#include "agent/rebalance.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace slotguard::agent {

cluster::Result<BalanceMeasure> ParseBalanceMeasure(const std::string& text) {
  if (text == "slots") return BalanceMeasure::kSlots;
  if (text == "keys") return BalanceMeasure::kKeys;
  if (text == "memory") return BalanceMeasure::kMemory;
  return cluster::MakeError("--by " + text + ": expected slots, keys or memory");
}

const char* BalanceMeasureName(BalanceMeasure m) {
  switch (m) {
    case BalanceMeasure::kSlots:
      return "slots";
    case BalanceMeasure::kKeys:
      return "keys";
    case BalanceMeasure::kMemory:
      return "memory";
  }
  return "slots";
}

namespace {

double Measure(BalanceMeasure by, const std::map<int, SlotLoad>& loads, int slot) {
  if (by == BalanceMeasure::kSlots) return 1;
  auto it = loads.find(slot);
  if (it == loads.end()) return 0;
  return static_cast<double>(by == BalanceMeasure::kKeys ? it->second.keys : it->second.bytes);
}

struct Working {
  size_t index = 0;  // into the masters given
  double weight = 0;
  double surplus = 0;   // holds minus share: > 0 gives, < 0 takes
  std::set<int> slots;  // still owned
};

}  // namespace

cluster::Result<RebalancePlan> PlanRebalance(const std::vector<MasterShare>& masters,
                                             const std::map<int, SlotLoad>& loads,
                                             const RebalanceOptions& options) {
  RebalancePlan out;
  std::vector<Working> part;
  double total = 0;
  double total_weight = 0;
  for (size_t i = 0; i < masters.size(); ++i) {
    const auto& m = masters[i];
    if (m.weight < 0) return cluster::MakeError("weight of " + m.name + " is negative");
    MasterBalance b{m.id, m.name, m.weight};
    for (int slot : m.slots) b.before += Measure(options.by, loads, slot);
    b.taking_part =
        m.weight == 0 ? !m.slots.empty() : (!m.slots.empty() || options.use_empty_masters);
    if (b.taking_part) {
      Working w{i, m.weight, 0, std::set<int>(m.slots.begin(), m.slots.end())};
      part.push_back(std::move(w));
      total += b.before;
      total_weight += m.weight;
    }
    out.masters.push_back(std::move(b));
  }
  if (part.size() < 2) {
    return cluster::MakeError(
        "fewer than two masters take part in the rebalance (a master without slots takes "
        "part only with --use-empty-masters)");
  }
  if (total_weight <= 0) return cluster::MakeError("every master has weight 0: nowhere to go");
  if (total <= 0) {
    return cluster::MakeError(std::string("nothing to balance by ") +
                              BalanceMeasureName(options.by) + ": the masters hold none");
  }
  bool zero_weight_owns = false;
  for (auto& w : part) {
    auto& b = out.masters[w.index];
    b.share = total * w.weight / total_weight;
    w.surplus = b.before - b.share;
    zero_weight_owns = zero_weight_owns || (w.weight == 0 && !w.slots.empty());
    const double dev = b.share > 0 ? std::abs(b.before - b.share) / b.share * 100
                                   : (b.before > 0 ? std::numeric_limits<double>::infinity() : 0);
    out.worst_deviation_pct = std::max(out.worst_deviation_pct, dev);
  }
  for (auto& b : out.masters) b.after = b.before;
  out.within_threshold = !zero_weight_owns && out.worst_deviation_pct <= options.threshold_pct;
  if (out.within_threshold) return out;

  // (from, to) -> slots, in the order the pairs were first used.
  std::vector<std::pair<std::pair<size_t, size_t>, std::vector<int>>> moves;
  auto record = [&](Working& from, Working& to, int slot, double m) {
    from.slots.erase(slot);
    to.slots.insert(slot);
    from.surplus -= m;
    to.surplus += m;
    out.masters[from.index].after -= m;
    out.masters[to.index].after += m;
    const std::pair<size_t, size_t> key{from.index, to.index};
    auto it =
        std::find_if(moves.begin(), moves.end(), [&](const auto& p) { return p.first == key; });
    if (it == moves.end()) {
      moves.push_back({key, {}});
      it = moves.end() - 1;
    }
    it->second.push_back(slot);
  };

  // Receivers, the largest need first; each takes from the donor with the largest surplus.
  std::vector<Working*> receivers;
  for (auto& w : part) {
    if (w.weight > 0 && w.surplus < 0) receivers.push_back(&w);
  }
  std::sort(receivers.begin(), receivers.end(),
            [](const Working* a, const Working* b) { return a->surplus < b->surplus; });
  for (Working* r : receivers) {
    std::set<size_t> tried;
    while (r->surplus < 0) {
      Working* donor = nullptr;
      for (auto& w : part) {
        if (w.surplus > 0 && !tried.count(w.index) && (!donor || w.surplus > donor->surplus)) {
          donor = &w;
        }
      }
      if (!donor) break;
      tried.insert(donor->index);
      const std::vector<int> candidates(donor->slots.begin(), donor->slots.end());
      for (int slot : candidates) {
        const double m = Measure(options.by, loads, slot);
        // A slot moves only when it brings both ends closer to their shares; an empty slot
        // goes along while the receiver still takes, so the moved ranges stay whole.
        if (m > 0 && (m >= 2 * -r->surplus || m >= 2 * donor->surplus)) continue;
        record(*donor, *r, slot, m);
        if (r->surplus >= 0) break;
      }
    }
  }
  // A weight-0 master gives away everything, empty or unmovable slots too: spread over the
  // receivers by weight, in contiguous runs.
  std::vector<Working*> takers;
  for (auto& w : part) {
    if (w.weight > 0) takers.push_back(&w);
  }
  for (auto& w : part) {
    if (w.weight != 0 || w.slots.empty()) continue;
    const std::vector<int> rest(w.slots.begin(), w.slots.end());
    size_t next = 0;
    double given_weight = 0;
    for (size_t t = 0; t < takers.size(); ++t) {
      given_weight += takers[t]->weight;
      const size_t upto = t + 1 == takers.size()
                              ? rest.size()
                              : static_cast<size_t>(std::llround(static_cast<double>(rest.size()) *
                                                                 given_weight / total_weight));
      for (; next < upto && next < rest.size(); ++next) {
        record(w, *takers[t], rest[next], Measure(options.by, loads, rest[next]));
      }
    }
  }

  int n = 0;
  for (auto& [pair, slots] : moves) {
    std::sort(slots.begin(), slots.end());
    for (size_t i = 0; i < slots.size(); i += options.batch_slots) {
      Batch b;
      b.id = options.id_prefix + std::to_string(++n);
      b.from = masters[pair.first].id;
      b.to = masters[pair.second].id;
      const size_t end = std::min(slots.size(), i + static_cast<size_t>(options.batch_slots));
      b.slots.assign(slots.begin() + i, slots.begin() + end);
      for (int slot : b.slots) {
        if (auto it = loads.find(slot); it != loads.end()) b.loads[slot] = it->second;
      }
      out.plan.batches.push_back(std::move(b));
    }
  }
  return out;
}

}  // namespace slotguard::agent
