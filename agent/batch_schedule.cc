#include "agent/batch_schedule.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

namespace slotguard::agent {

std::vector<size_t> NextRound(const std::vector<PairWork>& pairs, const ScheduleLimits& limits) {
  std::vector<size_t> order(pairs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return pairs[a].slots_left > pairs[b].slots_left; });
  std::set<std::string> sources;
  std::map<std::string, int> targets;  // batches each target receives in this round
  std::vector<size_t> round;
  for (size_t i : order) {
    const PairWork& p = pairs[i];
    if (p.batches_left == 0) continue;
    if (limits.parallel > 0 && static_cast<int>(round.size()) >= limits.parallel) break;
    const bool free = p.source != p.target && !sources.count(p.source) &&
                      !targets.count(p.source) && !sources.count(p.target) &&
                      targets[p.target] < std::max(1, limits.per_target);
    if (!free) continue;
    sources.insert(p.source);
    ++targets[p.target];
    round.push_back(i);
  }
  std::sort(round.begin(), round.end());
  return round;
}

}  // namespace slotguard::agent
