#include "agent/batch_schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace slotguard::agent {
namespace {

using Round = std::vector<size_t>;

// Runs rounds until nothing is left, checking every round: one batch per source, at most
// per_target per target, no node both source and target.
std::vector<Round> RunAll(std::vector<PairWork> pairs, ScheduleLimits limits) {
  std::vector<Round> rounds;
  for (Round r = NextRound(pairs, limits); !r.empty(); r = NextRound(pairs, limits)) {
    std::set<std::string> sources;
    std::map<std::string, int> targets;
    for (size_t i : r) {
      EXPECT_TRUE(sources.insert(pairs[i].source).second) << pairs[i].source << " sends twice";
      EXPECT_LE(++targets[pairs[i].target], std::max(1, limits.per_target)) << pairs[i].target;
    }
    for (const auto& s : sources) EXPECT_EQ(targets.count(s), 0u) << s << " sends and receives";
    for (size_t i : r) {
      pairs[i].batches_left--;
      pairs[i].slots_left -= pairs[i].batches_left == 0 ? pairs[i].slots_left : 500;
    }
    rounds.push_back(r);
    if (rounds.size() > 100) break;
  }
  return rounds;
}

TEST(NextRound, DisjointPairsRunTogether) {
  std::vector<PairWork> pairs = {{"a", "d", 1, 100}, {"b", "e", 1, 100}, {"c", "f", 1, 100}};
  EXPECT_EQ(NextRound(pairs, {}), (Round{0, 1, 2}));
}

TEST(NextRound, ATargetReceivesOneBatchAtATime) {
  // Three sources into one new master (a fourth master added empty): one batch per round.
  std::vector<PairWork> pairs = {{"a", "d", 3, 1365}, {"b", "d", 3, 1365}, {"c", "d", 3, 1366}};
  auto rounds = RunAll(pairs, {});
  ASSERT_EQ(rounds.size(), 9u);
  for (const auto& r : rounds) EXPECT_EQ(r.size(), 1u);
}

TEST(NextRound, PerTargetLetsSeveralSourcesFillOneMaster) {
  std::vector<PairWork> pairs = {{"a", "d", 3, 1365}, {"b", "d", 3, 1365}, {"c", "d", 3, 1366}};
  ScheduleLimits limits;
  limits.per_target = 3;
  EXPECT_EQ(NextRound(pairs, limits), (Round{0, 1, 2}));
  EXPECT_EQ(RunAll(pairs, limits).size(), 3u);
  limits.per_target = 2;
  EXPECT_EQ(NextRound(pairs, limits).size(), 2u);
  // Still one batch per source, and a target is never a source in the same round.
  pairs = {{"a", "d", 1, 10}, {"a", "e", 1, 10}, {"d", "f", 1, 10}};
  limits.per_target = 5;
  EXPECT_EQ(NextRound(pairs, limits), (Round{0}));
}

TEST(NextRound, ASourceSendsOneBatchAtATime) {
  std::vector<PairWork> pairs = {{"a", "b", 1, 10}, {"a", "c", 1, 10}};
  EXPECT_EQ(RunAll(pairs, {}).size(), 2u);
}

TEST(NextRound, ANodeIsNeverSourceAndTargetAtOnce) {
  std::vector<PairWork> pairs = {{"a", "b", 1, 10}, {"b", "c", 1, 10}, {"c", "a", 1, 10}};
  for (const auto& r : RunAll(pairs, {})) EXPECT_EQ(r.size(), 1u);
}

TEST(NextRound, MostSlotsLeftGoFirst) {
  // b->d is the longest move: it starts in the first round although a->d comes first in the plan.
  std::vector<PairWork> pairs = {{"a", "d", 1, 10}, {"b", "d", 4, 2000}, {"c", "e", 1, 10}};
  EXPECT_EQ(NextRound(pairs, {}), (Round{1, 2}));
}

TEST(NextRound, ParallelCapsTheRound) {
  std::vector<PairWork> pairs = {{"a", "d", 1, 100}, {"b", "e", 1, 100}, {"c", "f", 1, 100}};
  ScheduleLimits limits;
  limits.parallel = 2;
  EXPECT_EQ(NextRound(pairs, limits), (Round{0, 1}));
  limits.parallel = 1;
  EXPECT_EQ(RunAll(pairs, limits).size(), 3u);
}

TEST(NextRound, FinishedPairsAndSelfMovesAreSkipped) {
  std::vector<PairWork> pairs = {{"a", "d", 0, 0}, {"a", "a", 1, 5}, {"a", "e", 2, 600}};
  EXPECT_EQ(NextRound(pairs, {}), (Round{2}));
  pairs[2].batches_left = 0;
  EXPECT_TRUE(NextRound(pairs, {}).empty());
}

TEST(NextRound, TwoNewMastersTakeFromThreeSourcesTwoAtATime) {
  std::vector<PairWork> pairs = {{"a", "d", 1, 546}, {"a", "e", 1, 546}, {"b", "d", 1, 546},
                                 {"b", "e", 1, 546}, {"c", "d", 1, 546}, {"c", "e", 1, 546}};
  auto rounds = RunAll(pairs, {});
  EXPECT_EQ(rounds.front().size(), 2u);
  size_t batches = 0;
  for (const auto& r : rounds) batches += r.size();
  EXPECT_EQ(batches, 6u);
  EXPECT_LE(rounds.size(), 4u);
}

}  // namespace
}  // namespace slotguard::agent
