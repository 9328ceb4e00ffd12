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

// One PlanRebalance: the masters taking part and the moves recorded so far.
class Rebalancer {
 public:
  Rebalancer(const std::vector<MasterShare>& masters, const std::map<int, SlotLoad>& loads,
             const RebalanceOptions& options)
      : masters_(masters), loads_(loads), options_(options) {}

  cluster::Result<RebalancePlan> Run() {
    if (auto r = TakePart(); !r) return tl::unexpected(r.error());
    Shares();
    if (out_.within_threshold) return out_;
    FillReceivers();
    EmptyZeroWeights();
    MakeBatches();
    return out_;
  }

 private:
  double Of(int slot) const { return Measure(options_.by, loads_, slot); }

  // Which masters take part, and what each holds; errors when there is nothing to balance.
  cluster::Result<void> TakePart() {
    for (size_t i = 0; i < masters_.size(); ++i) {
      const auto& m = masters_[i];
      if (m.weight < 0) return cluster::MakeError("weight of " + m.name + " is negative");
      MasterBalance b{m.id, m.name, m.weight};
      for (int slot : m.slots) b.before += Of(slot);
      b.taking_part =
          m.weight == 0 ? !m.slots.empty() : (!m.slots.empty() || options_.use_empty_masters);
      if (b.taking_part) {
        Working w{i, m.weight, 0, std::set<int>(m.slots.begin(), m.slots.end())};
        part_.push_back(std::move(w));
        total_ += b.before;
        total_weight_ += m.weight;
      }
      out_.masters.push_back(std::move(b));
    }
    if (part_.size() < 2) {
      return cluster::MakeError(
          "fewer than two masters take part in the rebalance (a master without slots takes "
          "part only with --use-empty-masters)");
    }
    if (total_weight_ <= 0) return cluster::MakeError("every master has weight 0: nowhere to go");
    if (total_ <= 0) {
      return cluster::MakeError(std::string("nothing to balance by ") +
                                BalanceMeasureName(options_.by) + ": the masters hold none");
    }
    return {};
  }

  // Each one's share and surplus, the worst deviation, and whether that is within threshold.
  void Shares() {
    bool zero_weight_owns = false;
    for (auto& w : part_) {
      auto& b = out_.masters[w.index];
      b.share = total_ * w.weight / total_weight_;
      w.surplus = b.before - b.share;
      zero_weight_owns = zero_weight_owns || (w.weight == 0 && !w.slots.empty());
      const double dev = b.share > 0 ? std::abs(b.before - b.share) / b.share * 100
                                     : (b.before > 0 ? std::numeric_limits<double>::infinity() : 0);
      out_.worst_deviation_pct = std::max(out_.worst_deviation_pct, dev);
    }
    for (auto& b : out_.masters) b.after = b.before;
    out_.within_threshold = !zero_weight_owns && out_.worst_deviation_pct <= options_.threshold_pct;
  }

  void Record(Working& from, Working& to, int slot, double m) {
    from.slots.erase(slot);
    to.slots.insert(slot);
    from.surplus -= m;
    to.surplus += m;
    out_.masters[from.index].after -= m;
    out_.masters[to.index].after += m;
    const std::pair<size_t, size_t> key{from.index, to.index};
    auto it =
        std::find_if(moves_.begin(), moves_.end(), [&](const auto& p) { return p.first == key; });
    if (it == moves_.end()) {
      moves_.push_back({key, {}});
      it = moves_.end() - 1;
    }
    it->second.push_back(slot);
  }

  // Receivers, the largest need first; each takes from the donor with the largest surplus.
  void FillReceivers() {
    std::vector<Working*> receivers;
    for (auto& w : part_) {
      if (w.weight > 0 && w.surplus < 0) receivers.push_back(&w);
    }
    std::sort(receivers.begin(), receivers.end(),
              [](const Working* a, const Working* b) { return a->surplus < b->surplus; });
    for (Working* r : receivers) {
      std::set<size_t> tried;
      while (r->surplus < 0) {
        Working* donor = nullptr;
        for (auto& w : part_) {
          if (w.surplus > 0 && !tried.count(w.index) && (!donor || w.surplus > donor->surplus)) {
            donor = &w;
          }
        }
        if (!donor) break;
        tried.insert(donor->index);
        const std::vector<int> candidates(donor->slots.begin(), donor->slots.end());
        for (int slot : candidates) {
          const double m = Of(slot);
          // A slot moves only when it brings both ends closer to their shares; an empty slot
          // goes along while the receiver still takes, so the moved ranges stay whole.
          if (m > 0 && (m >= 2 * -r->surplus || m >= 2 * donor->surplus)) continue;
          Record(*donor, *r, slot, m);
          if (r->surplus >= 0) break;
        }
      }
    }
  }

  // A weight-0 master gives away everything, empty or unmovable slots too: spread over the
  // receivers by weight, in contiguous runs.
  void EmptyZeroWeights() {
    std::vector<Working*> takers;
    for (auto& w : part_) {
      if (w.weight > 0) takers.push_back(&w);
    }
    for (auto& w : part_) {
      if (w.weight != 0 || w.slots.empty()) continue;
      const std::vector<int> rest(w.slots.begin(), w.slots.end());
      size_t next = 0;
      double given_weight = 0;
      for (size_t t = 0; t < takers.size(); ++t) {
        given_weight += takers[t]->weight;
        const size_t upto =
            t + 1 == takers.size()
                ? rest.size()
                : static_cast<size_t>(std::llround(static_cast<double>(rest.size()) * given_weight /
                                                   total_weight_));
        for (; next < upto && next < rest.size(); ++next) {
          Record(w, *takers[t], rest[next], Of(rest[next]));
        }
      }
    }
  }

  void MakeBatches() {
    int n = 0;
    for (auto& [pair, slots] : moves_) {
      std::sort(slots.begin(), slots.end());
      for (size_t i = 0; i < slots.size(); i += options_.batch_slots) {
        Batch b;
        b.id = options_.id_prefix + std::to_string(++n);
        b.from = masters_[pair.first].id;
        b.to = masters_[pair.second].id;
        const size_t end = std::min(slots.size(), i + static_cast<size_t>(options_.batch_slots));
        b.slots.assign(slots.begin() + i, slots.begin() + end);
        for (int slot : b.slots) {
          if (auto it = loads_.find(slot); it != loads_.end()) b.loads[slot] = it->second;
        }
        out_.plan.batches.push_back(std::move(b));
      }
    }
  }

  const std::vector<MasterShare>& masters_;
  const std::map<int, SlotLoad>& loads_;
  const RebalanceOptions& options_;
  RebalancePlan out_;
  std::vector<Working> part_;  // filled once (TakePart): pointers into it stay valid
  double total_ = 0;
  double total_weight_ = 0;
  // (from, to) -> slots, in the order the pairs were first used.
  std::vector<std::pair<std::pair<size_t, size_t>, std::vector<int>>> moves_;
};

}  // namespace

cluster::Result<RebalancePlan> PlanRebalance(const std::vector<MasterShare>& masters,
                                             const std::map<int, SlotLoad>& loads,
                                             const RebalanceOptions& options) {
  return Rebalancer(masters, loads, options).Run();
}

}  // namespace slotguard::agent
