#include "agent/guard_settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/yaml_reader.h"

namespace slotguard::agent {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

GuardSettings Base() {
  GuardSettings base;
  base.coverage_grace = seconds(60);
  base.migrate_failures = 5;
  base.convergence_timeout = seconds(30);
  base.enabled = false;
  base.interval = std::chrono::milliseconds(250);
  return base;
}

TEST(AgentGuardSettings, NoOverridesKeepEveryField) {
  for (const auto& none : {std::optional<GuardOverrides>{}, std::optional(GuardOverrides{})}) {
    GuardSettings m = MergeGuards(Base(), none);
    EXPECT_EQ(m.coverage_grace, seconds(60));
    EXPECT_EQ(m.migrate_failures, 5);
    EXPECT_EQ(m.convergence_timeout, seconds(30));
    EXPECT_FALSE(m.enabled);
    EXPECT_EQ(m.interval, std::chrono::milliseconds(250));
  }
}

TEST(AgentGuardSettings, EachOverrideReplacesOnlyItsField) {
  GuardSettings m = MergeGuards(Base(), GuardOverrides{seconds(5), std::nullopt, std::nullopt});
  EXPECT_EQ(m.coverage_grace, seconds(5));
  EXPECT_EQ(m.migrate_failures, 5);
  EXPECT_EQ(m.convergence_timeout, seconds(30));

  m = MergeGuards(Base(), GuardOverrides{std::nullopt, 0, std::nullopt});
  EXPECT_EQ(m.coverage_grace, seconds(60));
  EXPECT_EQ(m.migrate_failures, 0);  // 0 is a value, not "unset"

  m = MergeGuards(Base(), GuardOverrides{std::nullopt, std::nullopt, seconds(120)});
  EXPECT_EQ(m.migrate_failures, 5);
  EXPECT_EQ(m.convergence_timeout, seconds(120));
}

TEST(AgentGuardSettings, OverridesNeverSwitchTheGuardsBackOn) {
  GuardSettings m = MergeGuards(Base(), GuardOverrides{seconds(1), 1, seconds(1)});
  EXPECT_FALSE(m.enabled);
  EXPECT_EQ(m.interval, std::chrono::milliseconds(250));
}

TEST(AgentGuardSettings, ReadsTheThreeKeys) {
  common::YamlReader reader("plan.yaml");
  YAML::Node node = reader.Parse("coverage_grace: 2m\nmigrate_failures: 7\n");
  GuardOverrides g = ReadGuardOverrides(reader, node, "batches[0].guards");
  EXPECT_EQ(g.coverage_grace, seconds(120));
  EXPECT_EQ(g.migrate_failures, 7);
  EXPECT_FALSE(g.convergence_timeout);
}

TEST(AgentGuardSettings, ABadValueNamesItsPath) {
  common::YamlReader reader("agent.yaml");
  YAML::Node node = reader.Parse("convergence_timeout: 0s\n");
  try {
    ReadGuardOverrides(reader, node, "engine.guards");
    FAIL() << "a convergence_timeout of 0s was accepted";
  } catch (const common::YamlFieldError& e) {
    EXPECT_THAT(e.what(), HasSubstr("engine.guards.convergence_timeout"));
  }
  node = reader.Parse("migrate_failures: -1\n");
  EXPECT_THROW(ReadGuardOverrides(reader, node, "engine.guards"), common::YamlFieldError);
}

}  // namespace
}  // namespace slotguard::agent
