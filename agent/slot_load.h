#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/plan.h"
#include "cluster/connection.h"
#include "cluster/result.h"

namespace slotguard::agent {

// Keys per slot (COUNTKEYSINSLOT) and bytes per slot estimated from MEMORY USAGE of up to
// `sample_keys` keys of the slot (scaled to the slot's key count), all pipelined: two round
// trips (counts and samples together, then MEMORY USAGE). When MEMORY USAGE is refused,
// bytes = keys x the node's average bytes per key.
cluster::Result<std::map<int, SlotLoad>> MeasureSlotLoads(cluster::Connection& source,
                                                          const std::vector<int>& slots,
                                                          int sample_keys = 4);

// used_memory from INFO memory.
cluster::Result<int64_t> UsedMemory(cluster::Connection& node);

// What INFO memory says about room for more data.
struct NodeMemory {
  int64_t used_memory = 0;
  int64_t maxmemory = 0;  // 0: no limit
  std::string maxmemory_policy;
};
cluster::Result<NodeMemory> ReadNodeMemory(cluster::Connection& node);

}  // namespace slotguard::agent
