#include "agent/rebalance.h"

#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <set>

namespace slotguard::agent {
namespace {

std::vector<int> Range(int first, int last) {
  std::vector<int> v(last - first + 1);
  std::iota(v.begin(), v.end(), first);
  return v;
}

// Applies the plan to the masters' slot lists, checking each batch's source owns its slots.
std::map<std::string, std::set<int>> Apply(const std::vector<MasterShare>& masters,
                                           const Plan& plan) {
  std::map<std::string, std::set<int>> owned;
  for (const auto& m : masters) owned[m.id].insert(m.slots.begin(), m.slots.end());
  for (const auto& b : plan.batches) {
    for (int slot : b.slots) {
      EXPECT_EQ(owned[b.from].erase(slot), 1u) << b.id << " slot " << slot << " not at " << b.from;
      owned[b.to].insert(slot);
    }
  }
  return owned;
}

std::vector<MasterShare> ThreePlusEmpty() {
  return {{"a", "h:1", Range(0, 5460)},
          {"b", "h:2", Range(5461, 10922)},
          {"c", "h:3", Range(10923, 16383)},
          {"d", "h:4", {}}};
}

TEST(PlanRebalance, EmptyMasterTakesPartOnlyWhenAsked) {
  RebalanceOptions o;
  auto without = PlanRebalance(ThreePlusEmpty(), {}, o);
  ASSERT_TRUE(without) << without.error().message;
  EXPECT_TRUE(without->within_threshold);
  EXPECT_TRUE(without->plan.batches.empty());

  o.use_empty_masters = true;
  auto with = PlanRebalance(ThreePlusEmpty(), {}, o);
  ASSERT_TRUE(with) << with.error().message;
  EXPECT_FALSE(with->within_threshold);
  auto owned = Apply(ThreePlusEmpty(), with->plan);
  for (const auto& [id, slots] : owned) {
    EXPECT_NEAR(static_cast<double>(slots.size()), 4096, 1) << id;
  }
  for (const auto& b : with->plan.batches) {
    EXPECT_EQ(b.to, "d");
    EXPECT_LE(b.slots.size(), static_cast<size_t>(kDefaultBatchSlots));
    EXPECT_EQ(b.id.rfind("rb", 0), 0u);
  }
}

TEST(PlanRebalance, WithinThresholdDoesNothing) {
  std::vector<MasterShare> m = {{"a", "h:1", Range(0, 8299)}, {"b", "h:2", Range(8300, 16383)}};
  RebalanceOptions o;
  o.threshold_pct = 5;  // 8300 vs 8192 is 1.3% off
  auto r = PlanRebalance(m, {}, o);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->within_threshold);
  o.threshold_pct = 1;
  r = PlanRebalance(m, {}, o);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->within_threshold);
  auto owned = Apply(m, r->plan);
  EXPECT_EQ(owned["a"].size(), 8192u);
  EXPECT_EQ(owned["b"].size(), 8192u);
}

TEST(PlanRebalance, WeightsAndWeightZeroDrains) {
  auto m = ThreePlusEmpty();
  m[0].weight = 0;  // drain a
  m[1].weight = 2;
  RebalanceOptions o;
  auto r = PlanRebalance(m, {}, o);
  ASSERT_TRUE(r) << r.error().message;
  auto owned = Apply(m, r->plan);
  EXPECT_TRUE(owned["a"].empty());
  EXPECT_TRUE(owned["d"].empty());  // empty, not asked to take part
  EXPECT_NEAR(static_cast<double>(owned["b"].size()), 16384.0 * 2 / 3, 1);
  EXPECT_NEAR(static_cast<double>(owned["c"].size()), 16384.0 / 3, 1);
}

TEST(PlanRebalance, DrainGivesAwayEmptySlotsWhenBalancingByKeys) {
  std::vector<MasterShare> m = {
      {"a", "h:1", Range(0, 99)}, {"b", "h:2", Range(100, 199)}, {"c", "h:3", Range(200, 299)}};
  m[2].weight = 0;
  std::map<int, SlotLoad> loads;
  for (int s = 0; s < 300; ++s) loads[s] = {s % 2 == 0 ? 10 : 0, 1000};
  RebalanceOptions o;
  o.by = BalanceMeasure::kKeys;
  auto r = PlanRebalance(m, loads, o);
  ASSERT_TRUE(r) << r.error().message;
  auto owned = Apply(m, r->plan);
  EXPECT_TRUE(owned["c"].empty());
  EXPECT_EQ(owned["a"].size() + owned["b"].size(), 300u);
}

TEST(PlanRebalance, ByMemoryBalancesHeavySlotsNotSlotCounts) {
  // a's first 10 slots weigh 100x the others: by memory a holds ~10x what b holds.
  std::vector<MasterShare> m = {{"a", "h:1", Range(0, 99)}, {"b", "h:2", Range(100, 199)}};
  std::map<int, SlotLoad> loads;
  for (int s = 0; s < 200; ++s) loads[s] = {1, s < 10 ? 100000 : 1000};
  RebalanceOptions o;
  o.by = BalanceMeasure::kMemory;
  o.threshold_pct = 10;
  auto r = PlanRebalance(m, loads, o);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->within_threshold);
  auto owned = Apply(m, r->plan);
  double bytes_a = 0;
  double bytes_b = 0;
  for (int s : owned["a"]) bytes_a += static_cast<double>(loads[s].bytes);
  for (int s : owned["b"]) bytes_b += static_cast<double>(loads[s].bytes);
  const double share = (bytes_a + bytes_b) / 2;
  EXPECT_LE(std::abs(bytes_a - share) / share, 0.10) << bytes_a << " vs " << bytes_b;
  // By slot count they are far apart now: that is the point.
  EXPECT_NE(owned["a"].size(), owned["b"].size());
  // The plan's own "after" agrees with the applied result.
  for (const auto& b : r->masters) {
    EXPECT_DOUBLE_EQ(b.after, b.id == "a" ? bytes_a : bytes_b);
  }
}

TEST(PlanRebalance, RefusesWhatCannotBeBalanced) {
  std::vector<MasterShare> one = {{"a", "h:1", Range(0, 16383)}, {"b", "h:2", {}}};
  auto r = PlanRebalance(one, {}, RebalanceOptions{});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("--use-empty-masters"), std::string::npos);

  std::vector<MasterShare> zero = {{"a", "h:1", Range(0, 10), 0}, {"b", "h:2", Range(11, 20), 0}};
  r = PlanRebalance(zero, {}, RebalanceOptions{});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("weight 0"), std::string::npos);

  RebalanceOptions by_keys;
  by_keys.by = BalanceMeasure::kKeys;
  r = PlanRebalance({{"a", "h:1", Range(0, 10)}, {"b", "h:2", Range(11, 20)}}, {}, by_keys);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("hold none"), std::string::npos);

  EXPECT_FALSE(ParseBalanceMeasure("bytes"));
  EXPECT_EQ(*ParseBalanceMeasure("memory"), BalanceMeasure::kMemory);
}

}  // namespace
}  // namespace slotguard::agent
