#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/cluster_snapshot.h"
#include "agent/guard_settings.h"
#include "cluster/endpoint.h"
#include "cluster/result.h"

namespace slotguard::agent {

// Keys and estimated bytes of one slot on its node.
struct SlotLoad {
  int64_t keys = 0;
  int64_t bytes = 0;
};

// Batch stage 1, planned: as the user, a plan file or the planner states it.
// One batch: move `slots` from `from` to `to`. from/to are a node id or "host:port" as given
// by the user; ValidatePlan resolves them.
struct Batch {
  std::string id;
  std::string from;
  std::string to;
  std::vector<int> slots;
  std::optional<GuardOverrides> guards;
  // The slots' sizes as the plan measured them (reshard). The engine bounds
  // each MIGRATE's bytes and checks the target's memory headroom with them; slots missing here
  // are measured in preflight. Not journaled: a resumed run measures again.
  std::map<int, SlotLoad> loads;
};

struct Plan {
  std::vector<Batch> batches;
  int TotalSlots() const;
};

// Slots per batch unless told otherwise: the runbook's most (Limits::max_batch_slots). Each batch
// pays a preflight, SETSLOT rounds with a nodes.conf fsync on every node and a convergence wait,
// so fewer, larger batches move the same slots faster (bench/README.md); a rollback then undoes
// up to this many slots.
constexpr int kDefaultBatchSlots = 500;

// Limits from the runbook.
struct Limits {
  int max_batch_slots = 500;
  int approval_threshold_slots = 1000;  // a plan with more slots than this needs approval
  double hot_slot_fraction = 0.15;      // a slot above this share of its node's memory goes alone
};

// Batch stage 3, resolved: ends checked against the live cluster, named by id and address.
struct ResolvedBatch {
  Batch batch;
  std::string source_id;
  cluster::Endpoint source;
  std::string target_id;
  cluster::Endpoint target;
};

struct ResolvedPlan {
  std::vector<ResolvedBatch> batches;
  int total_slots = 0;
  bool needs_approval = false;  // total_slots > limits.approval_threshold_slots
};

// Checks a plan against the live cluster without touching it: every from/to names a known
// node, to is a master other than from, every slot is in 0..16383, owned by `from` (as the
// cluster agrees), in no other batch and not twice in its batch, each batch has 1..max slots.
// The error names the batch, the node or slot, and the reason.
cluster::Result<ResolvedBatch> ResolveBatch(const Batch& batch, const ClusterSnapshot& snapshot,
                                            const Limits& limits);
cluster::Result<ResolvedPlan> ValidatePlan(const Plan& plan, const ClusterSnapshot& snapshot,
                                           const Limits& limits);

struct ReshardRequest {
  std::string from;
  std::string to;
  int slots = 0;  // how many slots to move (the lowest-numbered the source owns)
  int batch_slots = kDefaultBatchSlots;
  std::string id_prefix = "b";  // batch ids are <prefix>1, <prefix>2, ...
};

struct BatchEstimate {
  int64_t keys = 0;
  int64_t bytes = 0;
  bool hot = false;  // a single slot above the hot-slot fraction
};

struct ReshardPlan {
  Plan plan;
  std::vector<BatchEstimate> estimates;  // one per batch
  std::vector<int> hot_slots;
};

// Pure: picks the `request.slots` lowest slots of `source_slots`, puts every hot slot
// (bytes > limits.hot_slot_fraction * source_memory_bytes) in a batch of its own and cuts the
// rest into batches of request.batch_slots. `loads` may lack slots (counted as empty).
cluster::Result<ReshardPlan> PlanReshard(const ReshardRequest& request,
                                         const std::vector<int>& source_slots,
                                         const std::map<int, SlotLoad>& loads,
                                         int64_t source_memory_bytes, const Limits& limits);

// The runbook's hot-slot limit for plans that come from a file.
// Slots whose estimated bytes exceed limits.hot_slot_fraction of `memory_bytes` (the owner's
// used_memory); none when memory_bytes is unknown (<= 0).
std::vector<int> HotSlots(const std::map<int, SlotLoad>& loads, int64_t memory_bytes,
                          const Limits& limits);

struct HotSlotSplit {
  std::string batch_id;  // the batch the slot was in ("" when the plan gave it no id)
  int slot = 0;
  std::string hot_batch_id;  // its own batch: "<batch id>-hot<slot>" ("" when no id above)
  size_t batch_index = 0;    // positions in the split plan
  size_t hot_batch_index = 0;
};

struct SplitPlan {
  Plan plan;
  std::vector<HotSlotSplit> splits;
};

// Pure: every hot slot of a batch with more than one slot goes into a batch of its own, right
// after the batch it came from (same from, to and guard overrides). A batch made only of hot
// slots keeps the first; a one-slot batch is alone already.
SplitPlan SplitHotSlots(const Plan& plan, const std::vector<int>& hot_slots);

}  // namespace slotguard::agent
