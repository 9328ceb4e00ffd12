#include "agent/guard_settings.h"

#include <yaml-cpp/yaml.h>

#include "common/yaml_reader.h"

namespace slotguard::agent {

GuardSettings MergeGuards(GuardSettings base, const std::optional<GuardOverrides>& overrides) {
  if (!overrides) return base;
  if (overrides->coverage_grace) base.coverage_grace = *overrides->coverage_grace;
  if (overrides->migrate_failures) base.migrate_failures = *overrides->migrate_failures;
  if (overrides->convergence_timeout) base.convergence_timeout = *overrides->convergence_timeout;
  return base;
}

GuardOverrides ReadGuardOverrides(const common::YamlReader& reader, const YAML::Node& node,
                                  const std::string& path) {
  using std::chrono::seconds;
  GuardOverrides out;
  if (node["coverage_grace"]) {
    out.coverage_grace = std::chrono::duration_cast<seconds>(reader.Duration(
        node["coverage_grace"], path + ".coverage_grace", seconds(0), seconds(86'400)));
  }
  if (node["migrate_failures"]) {
    out.migrate_failures = static_cast<int>(
        reader.Int(node["migrate_failures"], path + ".migrate_failures", 0, 1'000'000));
  }
  if (node["convergence_timeout"]) {
    out.convergence_timeout = std::chrono::duration_cast<seconds>(reader.Duration(
        node["convergence_timeout"], path + ".convergence_timeout", seconds(1), seconds(86'400)));
  }
  return out;
}

}  // namespace slotguard::agent
