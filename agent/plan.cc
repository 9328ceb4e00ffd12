#include "agent/plan.h"

namespace slotguard::agent {

int Plan::TotalSlots() const {
  int total = 0;
  for (const auto& b : batches) total += static_cast<int>(b.slots.size());
  return total;
}

cluster::Result<ResolvedBatch> ResolveBatch(const Batch& /*batch*/,
                                            const ClusterSnapshot& /*snapshot*/,
                                            const Limits& /*limits*/) {
  return cluster::MakeError("not implemented yet");
}

cluster::Result<ResolvedPlan> ValidatePlan(const Plan& /*plan*/,
                                           const ClusterSnapshot& /*snapshot*/,
                                           const Limits& /*limits*/) {
  return cluster::MakeError("not implemented yet");
}

cluster::Result<ReshardPlan> PlanReshard(const ReshardRequest& /*request*/,
                                         const std::vector<int>& /*source_slots*/,
                                         const std::map<int, SlotLoad>& /*loads*/,
                                         int64_t /*source_memory_bytes*/,
                                         const Limits& /*limits*/) {
  return cluster::MakeError("not implemented yet");
}

}  // namespace slotguard::agent
