#include "agent/check.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "agent/cluster_health.h"
#include "agent/stray_keys.h"
#include "agent_fake_cluster.h"

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
  auto r = JudgeHealth(FromFixture("healthy", 6), {});
  EXPECT_TRUE(r.healthy);
  EXPECT_TRUE(Has(r, "[OK] All nodes agree about slots configuration."));
  EXPECT_TRUE(Has(r, "[OK] All 16384 slots covered."));
  EXPECT_TRUE(HasPrefix(r, ">>> Performing Cluster Check (using node 127.0.0.1:"));
}

TEST(AgentCheck, OpenSlotIsAWarningAndUnhealthy) {
  auto r = JudgeHealth(FromFixture("open_slot", 6), {});
  EXPECT_FALSE(r.healthy);
  EXPECT_TRUE(
      HasPrefix(r, "[WARNING] Node 127.0.0.1:26160 has slots in migrating state (1): 2724."));
  EXPECT_TRUE(
      HasPrefix(r, "[WARNING] Node 127.0.0.1:26161 has slots in importing state (1): 2724."));
  EXPECT_TRUE(Has(r, "[WARNING] The following slots are open: 2724."));
  EXPECT_TRUE(Has(r, "[OK] All 16384 slots covered."));
}

TEST(AgentCheck, FailedNodeIsAnError) {
  auto r = JudgeHealth(FromFixture("failed", 5), {});
  EXPECT_FALSE(r.healthy);
  EXPECT_TRUE(HasPrefix(r, "[ERR] Node 127.0.0.1:26165 (072ae2dd) is flagged fail"));
}

TEST(AgentCheck, UnreachableNodeIsAnError) {
  auto r = JudgeHealth(FromFixture("healthy", 6, true), {});
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
  auto r = JudgeHealth(s, {});
  EXPECT_FALSE(r.healthy);
  EXPECT_TRUE(Has(r, "[WARNING] Nodes don't agree about configuration!"));
  EXPECT_TRUE(Has(r, "[ERR] Not all 16384 slots are covered by nodes."));
}

TEST(AgentCheck, HealthyClusterSaysNoStrayKeys) {
  auto r = JudgeHealth(FromFixture("healthy", 6), {});
  EXPECT_TRUE(Has(r, "[OK] No master holds keys of a slot it does not own."));
}

TEST(AgentCheck, StrayKeysAreErrorsNamingNodeSlotAndCount) {
  StrayKeys strays;
  strays.slots = {{{"127.0.0.1", 26161}, 5, 3, false}, {{"127.0.0.1", 26161}, 2724, 1, true}};
  auto r = JudgeHealth(FromFixture("healthy", 6), strays);
  EXPECT_FALSE(r.healthy);
  EXPECT_TRUE(Has(r, "[ERR] Node 127.0.0.1:26161 holds 3 keys of slot 5 it does not own"));
  EXPECT_TRUE(Has(r,
                  "[ERR] Node 127.0.0.1:26161 holds 1 keys of slot 2724 it does not own "
                  "(slot is importing)"));
  EXPECT_FALSE(HasPrefix(r, "[OK] No master holds keys"));
  // The rest of the judgement is untouched.
  EXPECT_TRUE(Has(r, "[OK] All 16384 slots covered."));
}

TEST(AgentCheck, ManyStraySlotsAreSummedUpAfterTheFirstTwenty) {
  StrayKeys strays;
  for (int slot = 100; slot < 130; ++slot) strays.slots.push_back({{"127.0.0.1", 26162}, slot, 2});
  auto r = JudgeHealth(FromFixture("healthy", 6), strays);
  EXPECT_FALSE(r.healthy);
  EXPECT_TRUE(Has(r, "[ERR] Node 127.0.0.1:26162 holds 2 keys of slot 119 it does not own"));
  EXPECT_FALSE(HasPrefix(r, "[ERR] Node 127.0.0.1:26162 holds 2 keys of slot 120 "));
  EXPECT_TRUE(Has(r,
                  "[ERR] Node 127.0.0.1:26162 holds 20 more keys in 10 more slots it does not "
                  "own"));
}

TEST(AgentCheck, UncountedMasterIsAnError) {
  StrayKeys strays;
  strays.errors = {"127.0.0.1:26160: timed out"};
  auto r = JudgeHealth(FromFixture("healthy", 6), strays);
  EXPECT_FALSE(r.healthy);
  EXPECT_TRUE(
      Has(r, "[ERR] Keys in slots not owned were not counted on 127.0.0.1:26160: timed out"));
}

TEST(AgentCheck, CountStrayKeysAsksMastersAboutTheSlotsTheyDoNotOwn) {
  testing::FakeCluster fake;  // 3 masters (7000-7002) with 5461/5461/5462 slots, 3 replicas
  auto snapshot = TakeSnapshot(fake, {fake.node(0).endpoint});
  ASSERT_TRUE(snapshot) << snapshot.error().message;
  EXPECT_TRUE(CountStrayKeys(fake, *snapshot).slots.empty());

  fake.AddKeys(0, 2);  // owned by node 0: not stray
  // Node 1 holds 3 keys of slot 0 (node 0's); node 2 holds one of slot 1, which it imports.
  for (int i = 0; i < 3; ++i) fake.node(1).keys[testing::FakeCluster::KeyIn(0, i)] = "v";
  fake.node(2).keys[testing::FakeCluster::KeyIn(1)] = "v";
  fake.node(2).importing[1] = fake.node(0).id;
  // A replica holds its master's keys, never judged: it is not asked.
  fake.node(4).keys[testing::FakeCluster::KeyIn(2)] = "v";
  snapshot = TakeSnapshot(fake, {fake.node(0).endpoint});
  ASSERT_TRUE(snapshot);
  fake.ClearLog();
  auto strays = CountStrayKeys(fake, *snapshot);
  EXPECT_TRUE(strays.errors.empty());
  ASSERT_EQ(strays.slots.size(), 2u);
  EXPECT_EQ(strays.slots[0].node, fake.node(1).endpoint);
  EXPECT_EQ(strays.slots[0].slot, 0);
  EXPECT_EQ(strays.slots[0].keys, 3);
  EXPECT_FALSE(strays.slots[0].importing);
  EXPECT_EQ(strays.slots[1].node, fake.node(2).endpoint);
  EXPECT_EQ(strays.slots[1].slot, 1);
  EXPECT_TRUE(strays.slots[1].importing);

  // Exactly the slots each master does not own, masters only.
  std::map<std::string, int> asked;
  for (const auto& c : fake.log()) {
    ASSERT_EQ(c.argv[1], "COUNTKEYSINSLOT");
    ++asked[c.node];
    const int slot = std::stoi(c.argv[2]);
    EXPECT_NE(fake.ById(c.node)->view[slot], c.node) << "asked about its own slot " << slot;
  }
  EXPECT_EQ(asked.size(), 3u);
  EXPECT_EQ(asked[fake.node(0).id], cluster::kSlotCount - 5461);
  EXPECT_EQ(asked[fake.node(2).id], cluster::kSlotCount - 5462);

  auto r = JudgeHealth(*snapshot, strays);
  EXPECT_TRUE(Has(r, "[ERR] Node 127.0.0.1:7001 holds 3 keys of slot 0 it does not own"));
  EXPECT_TRUE(Has(
      r, "[ERR] Node 127.0.0.1:7002 holds 1 keys of slot 1 it does not own (slot is importing)"));
}

TEST(AgentCheck, CountStrayKeysReportsAMasterThatStopsAnswering) {
  testing::FakeCluster fake;
  auto snapshot = TakeSnapshot(fake, {fake.node(0).endpoint});
  ASSERT_TRUE(snapshot);
  fake.node(1).stopped = true;
  auto strays = CountStrayKeys(fake, *snapshot);
  ASSERT_EQ(strays.errors.size(), 1u);
  EXPECT_EQ(strays.errors[0].rfind("127.0.0.1:7001: ", 0), 0u) << strays.errors[0];
  EXPECT_FALSE(JudgeHealth(*snapshot, strays).healthy);
}

// AssessHealth is the one judgement behind check, preflight and rebalance.
bool HasKind(const std::vector<HealthProblem>& ps, HealthProblemKind kind,
             const std::string& part) {
  for (const auto& p : ps) {
    if (p.kind == kind && p.text.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST(AgentClusterHealth, AHealthyClusterHasNoProblem) {
  EXPECT_TRUE(AssessHealth(FromFixture("healthy", 6)).empty());
}

TEST(AgentClusterHealth, NamesEachProblemWithItsNode) {
  auto failed = AssessHealth(FromFixture("failed", 5));
  ASSERT_FALSE(failed.empty());
  EXPECT_TRUE(HasKind(failed, HealthProblemKind::kFlagged,
                      "node 127.0.0.1:26165 (072ae2dd) is flagged fail by 127.0.0.1:"));
  auto dead = AssessHealth(FromFixture("healthy", 6, true));
  ASSERT_FALSE(dead.empty());
  EXPECT_EQ(dead.front().kind, HealthProblemKind::kUnreachable);
  EXPECT_EQ(dead.front().text.rfind("node 127.0.0.1:1 is unreachable: connect to", 0), 0u);
  auto open = AssessHealth(FromFixture("open_slot", 6));
  EXPECT_TRUE(HasKind(open, HealthProblemKind::kOpenSlot, "slot 2724 is open (migrating on"));
  EXPECT_TRUE(HasKind(open, HealthProblemKind::kOpenSlot, "slotguard-agent fix"));
}

TEST(AgentClusterHealth, DisagreementAndDisputeAreBothSaid) {
  auto s = FromFixture("healthy", 6);
  for (auto& n : s.views[1].nodes) {
    for (auto& range : n.slots) {
      if (range.first == 0) range.first = 1;
    }
  }
  s.judgement = cluster::JudgeCluster(s.views);
  auto ps = AssessHealth(s);
  EXPECT_TRUE(HasKind(ps, HealthProblemKind::kDisputed, "slots are disputed between nodes (0)"));
  EXPECT_TRUE(HasKind(ps, HealthProblemKind::kDisagree, "differs from"));
}

// check once called a node that answered CLUSTER NODES but not CLUSTER INFO healthy, where
// preflight refused it: one judgement now, and check says why.
TEST(AgentClusterHealth, CheckAndPreflightAgreeOnANodeWithoutClusterInfo) {
  auto s = FromFixture("healthy", 6);
  s.reports[2].cluster_info.reset();
  auto ps = AssessHealth(s);
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps.front().kind, HealthProblemKind::kNoClusterInfo);
  auto r = JudgeHealth(s, {});
  EXPECT_FALSE(r.healthy);
  EXPECT_TRUE(
      Has(r, "[ERR] Node " + s.reports[2].endpoint.ToString() + " did not answer CLUSTER INFO."));
}

TEST(AgentClusterHealth, CheckIsHealthyExactlyWhenNothingIsWrong) {
  for (const auto& [kind, views] :
       std::vector<std::pair<std::string, int>>{{"healthy", 6}, {"failed", 5}, {"open_slot", 6}}) {
    auto s = FromFixture(kind, views);
    EXPECT_EQ(JudgeHealth(s, {}).healthy, AssessHealth(s).empty()) << kind;
  }
}

// The wait after a recovery: looks again until the slots have an agreed owner, bounded.
TEST(AgentSnapshotWhenOwnersAgree, LooksUntilTheSlotsHaveOneOwner) {
  auto healthy = FromFixture("healthy", 6);
  auto split = healthy;
  for (auto& n : split.views[1].nodes) {
    for (auto& range : n.slots) {
      if (range.first == 0) range.first = 1;
    }
  }
  split.judgement = cluster::JudgeCluster(split.views);
  ASSERT_TRUE(split.judgement.Owner(0).empty());
  int looks = 0;
  auto take = [&]() -> cluster::Result<ClusterSnapshot> { return ++looks < 3 ? split : healthy; };
  auto no_wait = [](std::chrono::milliseconds) { return true; };
  auto s = SnapshotWhenOwnersAgree(take, {0, 1}, std::chrono::seconds(60), no_wait);
  ASSERT_TRUE(s);
  EXPECT_EQ(looks, 3);
  EXPECT_FALSE(s->judgement.Owner(0).empty());

  // Never agreed: the last look once the time is up, or when the pause says stop.
  looks = 0;
  auto never = [&]() -> cluster::Result<ClusterSnapshot> {
    ++looks;
    return split;
  };
  s = SnapshotWhenOwnersAgree(never, {0}, std::chrono::milliseconds(0), no_wait);
  ASSERT_TRUE(s);
  EXPECT_EQ(looks, 1);
  EXPECT_TRUE(s->judgement.Owner(0).empty());
  looks = 0;
  s = SnapshotWhenOwnersAgree(never, {0}, std::chrono::seconds(60),
                              [](std::chrono::milliseconds) { return false; });
  EXPECT_EQ(looks, 1);

  // A failed look ends it at once.
  s = SnapshotWhenOwnersAgree(
      [] { return cluster::Result<ClusterSnapshot>(cluster::MakeError("down")); }, {0},
      std::chrono::seconds(60), no_wait);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message, "down");
}

}  // namespace
}  // namespace slotguard::agent
