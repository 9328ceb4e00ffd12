#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "agent/plan.h"
#include "cluster/connection.h"
#include "cluster/result.h"

namespace slotguard::agent {

// Keys per slot (COUNTKEYSINSLOT) and bytes per slot estimated from MEMORY USAGE of up to
// `sample_keys` keys of the slot (scaled to the slot's key count), all pipelined. When MEMORY
// USAGE is refused, bytes = keys x the node's average bytes per key.
cluster::Result<std::map<int, SlotLoad>> MeasureSlotLoads(cluster::Connection& source,
                                                          const std::vector<int>& slots,
                                                          int sample_keys = 4);

// used_memory from INFO memory.
cluster::Result<int64_t> UsedMemory(cluster::Connection& node);

}  // namespace slotguard::agent
