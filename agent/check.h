#pragma once

#include <string>
#include <vector>

#include "agent/cluster_snapshot.h"

namespace slotguard::agent {

enum class CheckLevel { kInfo, kOk, kWarning, kError };

struct CheckLine {
  CheckLevel level = CheckLevel::kInfo;
  std::string text;
  std::string ToString() const;  // "[OK] text", "[WARNING] text", "[ERR] text", or text
};

// The judgement of `slotguard-agent check`, in the words of `redis-cli --cluster check`.
struct HealthReport {
  std::vector<CheckLine> lines;
  bool healthy = false;
};

// Pure. Healthy means: every node answered, every view agrees on the slot configuration, all
// 16384 slots covered, no open slot, no failing node, no config epoch collision among masters
// and cluster_state:ok on every node.
HealthReport JudgeHealth(const ClusterSnapshot& snapshot);

}  // namespace slotguard::agent
