#include "agent/batch_schedule.h"

#include <algorithm>
#include <numeric>
#include <set>

namespace slotguard::agent {

std::vector<size_t> NextRound(const std::vector<PairWork>& pairs, const ScheduleLimits& limits) {
  std::vector<size_t> order(pairs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return pairs[a].slots_left > pairs[b].slots_left; });
  std::set<std::string> busy;
  std::vector<size_t> round;
  for (size_t i : order) {
    const PairWork& p = pairs[i];
    if (p.batches_left == 0) continue;
    if (limits.parallel > 0 && static_cast<int>(round.size()) >= limits.parallel) break;
    if (p.source == p.target || busy.count(p.source) || busy.count(p.target)) continue;
    busy.insert(p.source);
    busy.insert(p.target);
    round.push_back(i);
  }
  std::sort(round.begin(), round.end());
  return round;
}

}  // namespace slotguard::agent
