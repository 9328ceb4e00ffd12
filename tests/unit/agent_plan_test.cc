#include "agent/plan.h"

#include <gtest/gtest.h>

#include "agent_fake_cluster.h"

namespace slotguard::agent {
namespace {

ClusterSnapshot Snapshot(testing::FakeCluster& fake) {
  auto s = TakeSnapshot(fake, {fake.node(0).endpoint});
  EXPECT_TRUE(s.has_value());
  return *s;
}

TEST(AgentPlan, PlanReshardSplitsIntoBatchesOfTheRequestedSize) {
  std::vector<int> owned;
  for (int s = 0; s < 1000; ++s) owned.push_back(s);
  ReshardRequest req{"a", "b", 450, 200, "b"};
  auto plan = PlanReshard(req, owned, {}, 0, Limits{});
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_EQ(plan->plan.batches.size(), 3u);
  EXPECT_EQ(plan->plan.batches[0].slots.size(), 200u);
  EXPECT_EQ(plan->plan.batches[1].slots.size(), 200u);
  EXPECT_EQ(plan->plan.batches[2].slots.size(), 50u);
  EXPECT_EQ(plan->plan.batches[0].slots.front(), 0);
  EXPECT_EQ(plan->plan.batches[2].slots.back(), 449);
  EXPECT_EQ(plan->plan.batches[1].id, "b2");
  EXPECT_EQ(plan->plan.TotalSlots(), 450);
}

TEST(AgentPlan, HotSlotsGoAloneAndKeepTheirEstimates) {
  std::vector<int> owned{5, 1, 2, 3, 4};
  std::map<int, SlotLoad> loads{{1, {10, 100}}, {3, {2, 200000}}, {4, {1, 140000}}};
  ReshardRequest req{"a", "b", 5, 200, "b"};
  // 15% of 1 MB = 150000: slot 3 (200000) is hot, slot 4 (140000) is not.
  auto plan = PlanReshard(req, owned, loads, 1000000, Limits{});
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->hot_slots, std::vector<int>{3});
  ASSERT_EQ(plan->plan.batches.size(), 2u);
  EXPECT_EQ(plan->plan.batches[0].slots, (std::vector<int>{1, 2, 4, 5}));
  EXPECT_EQ(plan->plan.batches[1].slots, std::vector<int>{3});
  EXPECT_TRUE(plan->estimates[1].hot);
  EXPECT_EQ(plan->estimates[0].keys, 11);
  EXPECT_EQ(plan->estimates[0].bytes, 140100);
}

TEST(AgentPlan, PlanReshardRefusesBadSizes) {
  std::vector<int> owned{1, 2, 3};
  EXPECT_FALSE(PlanReshard({"a", "b", 4, 200, "b"}, owned, {}, 0, Limits{}));
  EXPECT_FALSE(PlanReshard({"a", "b", 0, 200, "b"}, owned, {}, 0, Limits{}));
  auto over = PlanReshard({"a", "b", 2, 501, "b"}, owned, {}, 0, Limits{});
  ASSERT_FALSE(over);
  EXPECT_NE(over.error().message.find("1-500"), std::string::npos);
}

TEST(AgentPlan, ValidatePlanResolvesNodesByIdAndAddress) {
  testing::FakeCluster fake;
  auto s = Snapshot(fake);
  Plan plan;
  plan.batches.push_back({"b1", fake.node(0).id, "127.0.0.1:7001", {0, 1, 2}, std::nullopt});
  auto r = ValidatePlan(plan, s, Limits{});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->batches[0].source, fake.node(0).endpoint);
  EXPECT_EQ(r->batches[0].target_id, fake.node(1).id);
  EXPECT_FALSE(r->needs_approval);
}

TEST(AgentPlan, ValidatePlanErrorsNameTheProblem) {
  testing::FakeCluster fake;
  auto s = Snapshot(fake);
  const std::string a = fake.node(0).id;
  const std::string b = fake.node(1).id;
  auto err = [&](Plan plan) {
    auto r = ValidatePlan(plan, s, Limits{});
    EXPECT_FALSE(r);
    return r ? std::string() : r.error().message;
  };
  EXPECT_NE(err({{{"b1", "nope", b, {1}, {}}}}).find("source node nope is not a node"),
            std::string::npos);
  EXPECT_NE(err({{{"b1", a, b, {16384}, {}}}}).find("slot 16384 is out of range"),
            std::string::npos);
  EXPECT_NE(err({{{"b1", a, b, {10000}, {}}}}).find("slot 10000 is not owned by source"),
            std::string::npos);
  EXPECT_NE(err({{{"b1", a, fake.node(3).id, {1}, {}}}}).find("is a replica"), std::string::npos);
  // The replica's master is named by address, as the target to use after a failover.
  EXPECT_NE(err({{{"b1", a, fake.node(3).id, {1}, {}}}})
                .find("name its master " + fake.node(0).endpoint.ToString() + " as the target"),
            std::string::npos)
      << err({{{"b1", a, fake.node(3).id, {1}, {}}}});
  EXPECT_NE(err({{{"b1", a, a, {1}, {}}}}).find("same node"), std::string::npos);
  EXPECT_NE(err({{{"b1", a, b, {1, 1}, {}}}}).find("listed twice"), std::string::npos);
  EXPECT_NE(err({{{"b1", a, b, {1, 2}, {}}, {"b2", a, b, {2}, {}}}}).find("batches overlap"),
            std::string::npos);
  std::vector<int> many;
  for (int i = 0; i < 501; ++i) many.push_back(i);
  EXPECT_NE(err({{{"b1", a, b, many, {}}}}).find("over the limit of 500"), std::string::npos);
}

TEST(AgentPlan, OverThousandSlotsNeedsApproval) {
  testing::FakeCluster fake;
  auto s = Snapshot(fake);
  Plan plan;
  for (int b = 0; b < 3; ++b) {
    Batch batch{"b" + std::to_string(b), fake.node(0).id, fake.node(1).id, {}, std::nullopt};
    for (int i = 0; i < 400; ++i) batch.slots.push_back(b * 400 + i);
    plan.batches.push_back(batch);
  }
  auto r = ValidatePlan(plan, s, Limits{});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->total_slots, 1200);
  EXPECT_TRUE(r->needs_approval);
}

TEST(AgentPlan, HotSlotsOfAPlanFileAreSplitIntoTheirOwnBatches) {
  Limits limits;
  std::map<int, SlotLoad> loads{{1, {10, 100}}, {2, {10, 200}}, {3, {1, 16}}, {7, {5, 151}}};
  // 1000 bytes of memory: over 150 bytes is hot.
  EXPECT_EQ(HotSlots(loads, 1000, limits), (std::vector<int>{2, 7}));
  EXPECT_TRUE(HotSlots(loads, 0, limits).empty());

  GuardOverrides g{std::chrono::seconds(30), 3, std::nullopt};
  Plan plan{{Batch{"x", "a", "b", {1, 2, 3}, g}, Batch{"", "a", "b", {7, 8}, std::nullopt},
             Batch{"one", "a", "b", {2}, std::nullopt}, Batch{"allhot", "c", "d", {2, 7}, g}}};
  SplitPlan split = SplitHotSlots(plan, {2, 7});
  const auto& b = split.plan.batches;
  ASSERT_EQ(b.size(), 7u);
  EXPECT_EQ(b[0].id, "x");
  EXPECT_EQ(b[0].slots, (std::vector<int>{1, 3}));
  EXPECT_EQ(b[1].id, "x-hot2");
  EXPECT_EQ(b[1].slots, (std::vector<int>{2}));
  EXPECT_EQ(b[1].from, "a");
  EXPECT_EQ(b[1].to, "b");
  ASSERT_TRUE(b[1].guards);
  EXPECT_EQ(b[1].guards->migrate_failures, 3);
  EXPECT_EQ(b[2].slots, (std::vector<int>{8}));
  EXPECT_EQ(b[3].id, "");  // the queue names both, as it names any batch without an id
  EXPECT_EQ(b[3].slots, (std::vector<int>{7}));
  EXPECT_EQ(b[4].id, "one");  // alone already
  EXPECT_EQ(b[5].id, "allhot");
  EXPECT_EQ(b[5].slots, (std::vector<int>{2}));
  EXPECT_EQ(b[6].id, "allhot-hot7");
  EXPECT_EQ(split.plan.TotalSlots(), plan.TotalSlots());
  ASSERT_EQ(split.splits.size(), 3u);
  EXPECT_EQ(split.splits[0].batch_id, "x");
  EXPECT_EQ(split.splits[0].slot, 2);
  EXPECT_EQ(split.splits[0].hot_batch_id, "x-hot2");
  EXPECT_EQ(split.splits[0].batch_index, 0u);
  EXPECT_EQ(split.splits[0].hot_batch_index, 1u);
  EXPECT_EQ(split.splits[1].batch_index, 2u);
  EXPECT_EQ(split.splits[1].hot_batch_index, 3u);
  EXPECT_EQ(split.splits[2].hot_batch_id, "allhot-hot7");

  // Nothing hot: the plan is unchanged.
  SplitPlan same = SplitHotSlots(plan, {});
  EXPECT_TRUE(same.splits.empty());
  EXPECT_EQ(same.plan.batches.size(), plan.batches.size());
}

}  // namespace
}  // namespace slotguard::agent
