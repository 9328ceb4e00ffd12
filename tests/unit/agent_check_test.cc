#include "agent/check.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace slotguard::agent {
namespace {

std::string Read(const std::string& name) {
  std::ifstream in(std::string(SLOTGUARD_TEST_DATA) + "/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The captured views of a real 3+3 cluster (tests/data/redis70_<kind>_nodes_<i>.txt).
ClusterSnapshot FromFixture(const std::string& kind, int views, bool add_unreachable = false) {
  std::vector<NodeReport> reports;
  auto info = cluster::ParseInfo(Read("redis70_healthy_cluster_info.txt"));
  for (int i = 0; i < views; ++i) {
    auto nodes = cluster::ParseClusterNodes(
        Read("redis70_" + kind + "_nodes_" + std::to_string(i) + ".txt"));
    EXPECT_TRUE(nodes) << kind << " " << i;
    NodeReport r;
    const auto* me = cluster::FindMyself(*nodes);
    r.endpoint = me->endpoint;
    r.view = cluster::NodesView{me->id, me->endpoint, *nodes};
    r.cluster_info = *info;
    reports.push_back(std::move(r));
  }
  if (add_unreachable) {
    NodeReport dead;
    dead.endpoint = {"127.0.0.1", 1};
    dead.error = "connect to 127.0.0.1:1: Connection refused";
    reports.push_back(dead);
  }
  return BuildSnapshot(std::move(reports));
}

bool Has(const HealthReport& r, const std::string& line) {
  for (const auto& l : r.lines) {
    if (l.ToString() == line) return true;
  }
  return false;
}

bool HasPrefix(const HealthReport& r, const std::string& prefix) {
  for (const auto& l : r.lines) {
    if (l.ToString().rfind(prefix, 0) == 0) return true;
  }
  return false;
}

TEST(AgentCheck, HealthyClusterIsOk) {
  auto r = JudgeHealth(FromFixture("healthy", 6));
  EXPECT_TRUE(r.healthy);
  EXPECT_TRUE(Has(r, "[OK] All nodes agree about slots configuration."));
  EXPECT_TRUE(Has(r, "[OK] All 16384 slots covered."));
  EXPECT_TRUE(HasPrefix(r, ">>> Performing Cluster Check (using node 127.0.0.1:"));
}

TEST(AgentCheck, OpenSlotIsAWarningAndUnhealthy) {
  auto r = JudgeHealth(FromFixture("open_slot", 6));
  EXPECT_FALSE(r.healthy);
  EXPECT_TRUE(
      HasPrefix(r, "[WARNING] Node 127.0.0.1:26160 has slots in migrating state (1): 2724."));
  EXPECT_TRUE(
      HasPrefix(r, "[WARNING] Node 127.0.0.1:26161 has slots in importing state (1): 2724."));
  EXPECT_TRUE(Has(r, "[WARNING] The following slots are open: 2724."));
  EXPECT_TRUE(Has(r, "[OK] All 16384 slots covered."));
}

TEST(AgentCheck, FailedNodeIsAnError) {
  auto r = JudgeHealth(FromFixture("failed", 5));
  EXPECT_FALSE(r.healthy);
  EXPECT_TRUE(HasPrefix(r, "[ERR] Node 127.0.0.1:26165 (072ae2dd) is flagged fail"));
}

TEST(AgentCheck, UnreachableNodeIsAnError) {
  auto r = JudgeHealth(FromFixture("healthy", 6, true));
  EXPECT_FALSE(r.healthy);
  EXPECT_TRUE(HasPrefix(r, "[ERR] Node 127.0.0.1:1 is unreachable"));
}

TEST(AgentCheck, DisagreeingViewsAndUncoveredSlots) {
  auto s = FromFixture("healthy", 6);
  // One view loses slot 0 entirely: views disagree, and slot 0 is disputed.
  auto& v = s.views[1];
  for (auto& n : v.nodes) {
    for (auto& range : n.slots) {
      if (range.first == 0) range.first = 1;
    }
  }
  s.judgement = cluster::JudgeCluster(s.views);
  auto r = JudgeHealth(s);
  EXPECT_FALSE(r.healthy);
  EXPECT_TRUE(Has(r, "[WARNING] Nodes don't agree about configuration!"));
  EXPECT_TRUE(Has(r, "[ERR] Not all 16384 slots are covered by nodes."));
}

}  // namespace
}  // namespace slotguard::agent
