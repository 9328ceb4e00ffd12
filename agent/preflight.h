#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/cluster_snapshot.h"
#include "agent/plan.h"
#include "cluster/result.h"

namespace slotguard::agent {

// Settings the runbook wants looked at (CONFIG GET on each master; absent when unreadable).
struct NodeSettings {
  std::optional<long> cluster_node_timeout_ms;
  std::optional<std::string> cluster_require_full_coverage;
  std::optional<long> cluster_migration_barrier;
};

struct PreflightReport {
  std::vector<std::string> warnings;
};

// Pure. Fails (naming the node and the reason) unless: every node answered with
// cluster_state:ok, all 16384 slots are covered and every view agrees, no slot is open, no
// node is flagged fail/pfail/handshake/noaddr, config epochs of masters are unique, the source
// owns every slot of the batch and the target is a reachable master. Settings only warn.
cluster::Result<PreflightReport> Preflight(const ClusterSnapshot& snapshot,
                                           const ResolvedBatch& batch,
                                           const std::map<std::string, NodeSettings>& settings);

}  // namespace slotguard::agent
