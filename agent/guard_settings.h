#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace YAML {
class Node;
}
namespace slotguard::common {
class YamlReader;
}

namespace slotguard::agent {

// Guard thresholds: the engine's (EngineOptions::guards, from agent.yaml or the CLI's flags),
// and the ones in effect for one batch once its overrides are merged in (MergeGuards).
struct GuardSettings {
  std::chrono::seconds coverage_grace{60};
  // Trip when the batch's own failed MIGRATEs plus the failures on the source it did not cause
  // (growth of cmdstat_migrate failed_calls / errorstat_IOERR beyond its own) exceed this.
  int migrate_failures = 5;
  // After a batch, every reachable node must agree on the new owners within this bound.
  std::chrono::seconds convergence_timeout{30};
  // False switches the coverage and migrate-failure guards off (they never trip, whatever a
  // plan's per-batch overrides say); the agent then relies on Alertmanager and operators. The
  // node-health guard stays on (a node in fail/pfail still rolls the batch back: moving slots
  // onto or off a failing node is never safe), and so does the bounded wait for convergence
  // after a batch.
  bool enabled = true;
  std::chrono::milliseconds interval{500};  // how often the guard thread reads the cluster
};

// What one batch (a plan file's `guards:`, a queued batch) or agent.yaml's engine.guards sets
// of GuardSettings; unset fields keep the value they are merged into.
struct GuardOverrides {
  std::optional<std::chrono::seconds> coverage_grace;
  std::optional<int> migrate_failures;  // trip when failures exceed this
  std::optional<std::chrono::seconds> convergence_timeout;
};

// Pure: `base` with every field `overrides` sets replaced.
GuardSettings MergeGuards(GuardSettings base, const std::optional<GuardOverrides>& overrides);

// The coverage_grace, migrate_failures and convergence_timeout keys of the map `node` (found at
// `path`), with the ranges both agent.yaml and plan files accept. The caller checks the map's
// keys (ExpectMap); a bad value fails through `reader`.
GuardOverrides ReadGuardOverrides(const common::YamlReader& reader, const YAML::Node& node,
                                  const std::string& path);

}  // namespace slotguard::agent
