#pragma once

#include <string>
#include <vector>

#include "agent/cluster_snapshot.h"
#include "agent/stray_keys.h"

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
// 16384 slots covered, no open slot, no failing node, no config epoch collision among masters,
// cluster_state:ok on every node, and no master holding keys of a slot it does not own
// (`strays`, counted by CountStrayKeys; a master that could not be counted is unhealthy too).
HealthReport JudgeHealth(const ClusterSnapshot& snapshot, const StrayKeys& strays);

}  // namespace slotguard::agent
