#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/plan.h"
#include "cluster/result.h"

namespace slotguard::agent {

// What a rebalance evens out: slot counts (redis-cli's measure), keys, or estimated bytes.
enum class BalanceMeasure { kSlots, kKeys, kMemory };

cluster::Result<BalanceMeasure> ParseBalanceMeasure(const std::string& text);
const char* BalanceMeasureName(BalanceMeasure m);

// One master as the planner sees it.
struct MasterShare {
  std::string id;
  std::string name;        // host:port, for messages
  std::vector<int> slots;  // owned, ascending
  double weight = 1.0;     // 0: give away everything
};

struct RebalanceOptions {
  BalanceMeasure by = BalanceMeasure::kSlots;
  // Masters that own no slot take part only when asked (redis-cli's
  // --cluster-use-empty-masters); a master with weight 0 always gives its slots away.
  bool use_empty_masters = false;
  // Nothing moves when every taking-part master is within this many percent of its share
  // and no weight-0 master owns anything.
  double threshold_pct = 2.0;
  int batch_slots = kDefaultBatchSlots;
  std::string id_prefix = "rb";
};

struct MasterBalance {
  std::string id;
  std::string name;
  double weight = 0;
  bool taking_part = false;
  double before = 0;  // in the measure's unit
  double share = 0;   // what it should hold
  double after = 0;   // what it holds once the plan ran
};

struct RebalancePlan {
  Plan plan;  // batches of at most batch_slots, each one source and one target
  std::vector<MasterBalance> masters;
  double worst_deviation_pct = 0;  // before, over the taking-part masters
  bool within_threshold = false;   // nothing to do
};

// Pure: the moves that bring every taking-part master to its weighted share of the measure
// (`loads` gives keys and bytes per slot; slots missing count as empty). Each receiver takes
// from the master with the largest surplus, slot by slot in ascending order, a slot only when
// it brings both closer to their shares, so a few heavy slots do not overshoot. Errors: fewer
// than two masters take part, all weights 0, nothing to measure.
cluster::Result<RebalancePlan> PlanRebalance(const std::vector<MasterShare>& masters,
                                             const std::map<int, SlotLoad>& loads,
                                             const RebalanceOptions& options);

}  // namespace slotguard::agent
