#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/cluster_snapshot.h"
#include "agent/plan.h"
#include "cluster/result.h"

namespace slotguard::agent {

// One batch as the plan file gives it. `batch.slots` holds the explicit `ranges`; a batch
// that says `slots: N` has slot_count = N and empty batch.slots until ResolvePlanFile picks
// the slots from the live cluster.
struct PlanFileBatch {
  Batch batch;
  std::optional<int> slot_count;
  int line = 0;  // 1-based line of the batch in the file
  int index = 0;
};

struct PlanFile {
  std::string file;
  std::vector<PlanFileBatch> batches;
};

// Parses PLAN.yaml:
//   batches:
//     - id: b1                 # optional; [A-Za-z0-9._-], at most 64 characters, unique
//       from: NODE             # node id or host:port
//       to: NODE
//       slots: N               # the N lowest slots `from` owns (not named by another batch)
//       ranges: ["0-99", "120"]  # or explicit slots (exactly one of slots / ranges)
//       guards: {coverage_grace: 60s, migrate_failures: 3, convergence_timeout: 30s}
// Structural checks need no cluster: YAML syntax, unknown/duplicate keys, types, range order,
// slots in 0..16383, a slot twice, overlapping batches, a batch over `max_batch_slots`,
// from == to. Every error names the file, the line and the field.
cluster::Result<PlanFile> ParsePlanFile(const std::string& text, const std::string& file,
                                        int max_batch_slots = 500);
cluster::Result<PlanFile> LoadPlanFile(const std::string& path, int max_batch_slots = 500);

// Picks the slots of `slots: N` batches: the N lowest slots the cluster agrees `from` owns,
// skipping slots any batch of the plan already names, in file order. Batches with explicit
// ranges are copied unchanged (ValidatePlan checks them against the cluster afterwards).
cluster::Result<Plan> ResolvePlanFile(const PlanFile& plan, const ClusterSnapshot& snapshot);

// Pure: `plan` as a plan file ParsePlanFile reads back to the same batches (ids, from, to,
// explicit ranges). `header` becomes the first comment line; `describe` gives the comment
// after each node id (its address), "" for none.
std::string FormatPlanFile(const Plan& plan, const std::string& header,
                           const std::function<std::string(const std::string&)>& describe);

}  // namespace slotguard::agent
