#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/cluster_snapshot.h"
#include "cluster/connection.h"
#include "cluster/endpoint.h"

namespace slotguard::agent {

// Keys masters hold in slots they do not own in their own CLUSTER NODES view. Clients are sent
// elsewhere for those slots, so such keys are lost to them (and deleted if the node ever takes
// the slot back from a higher epoch). `redis-cli --cluster check` does not look for them.
struct StrayKeys {
  struct Slot {
    cluster::Endpoint node;
    int slot = 0;
    int64_t keys = 0;
    bool importing = false;  // the node imports the slot: keys arrive there mid-move
  };
  std::vector<Slot> slots;          // only slots holding keys, by node then slot
  std::vector<std::string> errors;  // "H:P: why", one per master that could not be counted
};

// CLUSTER COUNTKEYSINSLOT for every slot each reachable master does not own in its own view
// (replicas hold their master's keys and are skipped). Sent in chunks to every master before
// any reply is read, so the whole count costs a few round trips, not one per master.
StrayKeys CountStrayKeys(cluster::Connector& connector, const ClusterSnapshot& snapshot);

}  // namespace slotguard::agent
