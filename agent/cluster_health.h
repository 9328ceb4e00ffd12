#pragma once

#include <string>
#include <vector>

#include "agent/cluster_snapshot.h"

namespace slotguard::agent {

enum class HealthProblemKind {
  kNoView,          // no node answered CLUSTER NODES
  kUnreachable,     // a node did not answer
  kNoClusterInfo,   // a node answered CLUSTER NODES but not CLUSTER INFO
  kClusterState,    // a node reports cluster_state other than ok
  kFlagged,         // a view flags a node fail, fail?, handshake or noaddr
  kDisputed,        // views disagree on a slot's owner
  kUncovered,       // a slot has no owner
  kDisagree,        // views differ in the slot configuration
  kOpenSlot,        // a slot is MIGRATING or IMPORTING somewhere
  kEpochCollision,  // two masters share a config epoch
};

struct HealthProblem {
  HealthProblemKind kind;
  std::string text;  // for operators, lower case, no final period: "node 10.0.0.1:7000 is ..."
};

// Pure. The one judgement of whether a cluster is settled enough to move slots: what `check`
// reports unhealthy (with its key counts besides), what preflight refuses a batch for, and what
// rebalance and drain refuse to plan around. Empty when settled. In the order an operator fixes
// them: a node that does not answer first, open slots after disagreement.
std::vector<HealthProblem> AssessHealth(const ClusterSnapshot& snapshot);

}  // namespace slotguard::agent
