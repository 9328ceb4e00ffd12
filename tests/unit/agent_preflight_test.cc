// The pure memory-headroom judgement of preflight (HeadroomProblem).
#include <gtest/gtest.h>

#include "agent/preflight.h"

namespace slotguard::agent {
namespace {

constexpr int64_t kMiB = 1 << 20;

NodeMemory Memory(int64_t used, int64_t max, std::string policy) {
  return NodeMemory{used, max, std::move(policy)};
}

TEST(AgentPreflightHeadroom, NoMaxmemoryNeverRefuses) {
  EXPECT_EQ(HeadroomProblem("t", Memory(900 * kMiB, 0, "noeviction"), 100000 * kMiB), std::nullopt);
}

TEST(AgentPreflightHeadroom, AnEmptyBatchAlwaysFits) {
  EXPECT_EQ(HeadroomProblem("t", Memory(200 * kMiB, 100 * kMiB, "noeviction"), 0), std::nullopt);
}

TEST(AgentPreflightHeadroom, FitsWithTheMargin) {
  // 100 MiB max, 5 MiB reserve, 50 used: 45 MiB headroom; 36 MiB x 1.25 = 45.
  EXPECT_EQ(HeadroomProblem("t", Memory(50 * kMiB, 100 * kMiB, "noeviction"), 36 * kMiB),
            std::nullopt);
}

TEST(AgentPreflightHeadroom, RefusesWhatOnlyFitsWithoutTheMargin) {
  // 40 MiB fits the 45 MiB of headroom, but not with its 25% margin (50 MiB).
  auto why = HeadroomProblem("127.0.0.1:7001 (abc)", Memory(50 * kMiB, 100 * kMiB, "noeviction"),
                             40 * kMiB);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("target 127.0.0.1:7001 (abc) has no memory headroom"), std::string::npos)
      << *why;
  EXPECT_NE(why->find("estimated 40.0 MiB"), std::string::npos) << *why;
  EXPECT_NE(why->find("headroom 45.0 MiB"), std::string::npos) << *why;
  EXPECT_NE(why->find("maxmemory-policy noeviction"), std::string::npos) << *why;
  EXPECT_NE(why->find("-OOM"), std::string::npos) << *why;
}

TEST(AgentPreflightHeadroom, AnEvictingPolicySaysItWouldEvictUnrelatedKeys) {
  for (const char* policy : {"allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru",
                             "volatile-ttl", "volatile-random", "volatile-lfu"}) {
    auto why = HeadroomProblem("t", Memory(99 * kMiB, 100 * kMiB, policy), kMiB);
    ASSERT_TRUE(why) << policy;
    EXPECT_NE(why->find("evict unrelated keys"), std::string::npos) << *why;
    EXPECT_NE(why->find(policy), std::string::npos) << *why;
  }
}

TEST(AgentPreflightHeadroom, AFullTargetShowsNoNegativeHeadroom) {
  auto why = HeadroomProblem("t", Memory(120 * kMiB, 100 * kMiB, "noeviction"), 1);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("headroom 0.0 MiB"), std::string::npos) << *why;
}

}  // namespace
}  // namespace slotguard::agent
