#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/clock.h"

namespace slotguard::agent {

// Named points of a batch the engine passes (after_importing, mid_keys, after_target_node,
// before_rollback, converge_*: see engine.cc). Tests hook them to kill or hold the engine at a
// known step; the engine itself only says where it is. The default does nothing.
class StepHooks {
 public:
  virtual ~StepHooks() = default;
  // The engine reached `point`. `released` turns true when a stop or rollback was asked for
  // since, which ends any hold there.
  virtual void Reached(const std::string& /*point*/, const std::function<bool()>& /*released*/) {}
  // Whether a hook waits at `point`: the engine counts a batch's keys for "mid_keys" only then.
  virtual bool Watches(const std::string& /*point*/) const { return false; }
};

// One hold of SLOTGUARD_TEST_PAUSE_AT: the nth time `point` is reached, for `ms`.
struct StepPause {
  std::string point;
  int nth = 1;
  int ms = 0;
};

// "<point>[@<nth>]:<ms>[,...]"; malformed items are skipped (a test-only variable).
std::vector<StepPause> ParseStepPauses(const std::string& text);

// The hooks the integration tests drive through the environment: SLOTGUARD_TEST_CRASH_AT=<point>
// (SIGKILL there) and SLOTGUARD_TEST_PAUSE_AT. Only in builds with the CMake option
// SLOTGUARD_TEST_HOOKS (tests on); elsewhere, and with neither variable set, the no-op.
std::unique_ptr<StepHooks> StepHooksFromEnvironment(Clock& clock);

}  // namespace slotguard::agent
