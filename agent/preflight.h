#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/cluster_snapshot.h"
#include "agent/plan.h"
#include "agent/slot_load.h"
#include "cluster/result.h"
#include "cluster/server_version.h"

namespace slotguard::agent {

// Settings the runbook wants looked at (CONFIG GET and INFO server on each master; absent when
// unreadable).
struct NodeSettings {
  std::optional<long> cluster_node_timeout_ms;
  std::optional<std::string> cluster_require_full_coverage;
  std::optional<long> cluster_migration_barrier;
  std::optional<cluster::ServerVersion> server;  // from INFO server
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

// Pure. Why `target` (its name as shown to the operator) has no room for a batch of
// `estimated_bytes` (the sum of the batch's SlotLoad bytes), nullopt when it has or has no
// maxmemory. A move fills the target without asking its eviction policy: with an allkeys-* or
// volatile-* policy it evicts unrelated keys to make room, with noeviction RESTORE fails with
// -OOM half way through. The estimate comes from a few MEMORY USAGE samples per slot and leaves
// out the target's per-key overhead (dict entries, slot-to-key index, fragmentation), so it
// must fit with a quarter to spare, and a twentieth of maxmemory stays free for the clients'
// own writes and buffers while the batch moves.
std::optional<std::string> HeadroomProblem(const std::string& target, const NodeMemory& memory,
                                           int64_t estimated_bytes);

}  // namespace slotguard::agent
