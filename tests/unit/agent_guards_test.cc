#include "agent/guards.h"

#include <gtest/gtest.h>

#include <limits>

#include "agent/clock.h"

namespace slotguard::agent {
namespace {

using std::chrono::seconds;

GuardSample Healthy(Clock::TimePoint at) {
  GuardSample s;
  s.at = at;
  s.views = 6;
  s.covered = 16384;
  s.source_migrate_failed_calls = 0;
  s.source_ioerr = 0;
  return s;
}

TEST(AgentGuards, CoverageTripsOnlyAfterTheGrace) {
  FakeClock clock;
  GuardEvaluator g(GuardSettings{seconds(60), 5, seconds(30)});
  EXPECT_FALSE(g.Evaluate(Healthy(clock.Now())));
  auto low = Healthy(clock.Now());
  low.covered = 16000;
  EXPECT_FALSE(g.Evaluate(low));
  clock.Advance(seconds(59));
  low.at = clock.Now();
  EXPECT_FALSE(g.Evaluate(low));
  clock.Advance(seconds(2));
  low.at = clock.Now();
  auto trip = g.Evaluate(low);
  ASSERT_TRUE(trip);
  EXPECT_EQ(trip->guard, "coverage");
  EXPECT_NE(trip->reason.find("16000 of 16384"), std::string::npos);
}

TEST(AgentGuards, CoverageRecoveryResetsTheGrace) {
  FakeClock clock;
  GuardEvaluator g(GuardSettings{seconds(10), 5, seconds(30)});
  auto low = Healthy(clock.Now());
  low.covered = 1;
  EXPECT_FALSE(g.Evaluate(low));
  clock.Advance(seconds(8));
  EXPECT_FALSE(g.Evaluate(Healthy(clock.Now())));
  clock.Advance(seconds(8));
  low.at = clock.Now();
  EXPECT_FALSE(g.Evaluate(low));  // a new grace started
  clock.Advance(seconds(11));
  low.at = clock.Now();
  EXPECT_TRUE(g.Evaluate(low));
}

TEST(AgentGuards, NoViewAtAllCountsAsUncovered) {
  FakeClock clock;
  GuardEvaluator g(GuardSettings{seconds(1), 5, seconds(30)});
  GuardSample none;
  none.at = clock.Now();
  EXPECT_FALSE(g.Evaluate(none));
  clock.Advance(seconds(2));
  none.at = clock.Now();
  auto trip = g.Evaluate(none);
  ASSERT_TRUE(trip);
  EXPECT_EQ(trip->guard, "coverage");
}

TEST(AgentGuards, OwnFailuresOverTheThresholdTrip) {
  FakeClock clock;
  GuardEvaluator g(GuardSettings{seconds(60), 2, seconds(30)});
  auto s = Healthy(clock.Now());
  EXPECT_FALSE(g.Evaluate(s));
  s.own_counted = 2;
  s.own_failed = 2;
  s.own_ioerr = 2;
  s.source_migrate_failed_calls = 2;  // the same two, seen by the source
  s.source_ioerr = 2;
  EXPECT_FALSE(g.Evaluate(s));
  EXPECT_EQ(g.MigrateFailures(s), 2);
  s.own_counted = 3;
  s.own_failed = 3;
  s.own_ioerr = 3;
  auto trip = g.Evaluate(s);
  ASSERT_TRUE(trip);
  EXPECT_EQ(trip->guard, "migrate_failures");
}

TEST(AgentGuards, ForeignFailuresOnTheSourceCountOnTopOfOurs) {
  FakeClock clock;
  GuardEvaluator g(GuardSettings{seconds(60), 3, seconds(30)});
  auto s = Healthy(clock.Now());
  s.source_migrate_failed_calls = 100;  // baseline: history before the batch
  s.source_ioerr = 40;
  EXPECT_FALSE(g.Evaluate(s));
  s.own_counted = 1;
  s.own_failed = 1;
  s.own_ioerr = 1;
  s.source_migrate_failed_calls = 101;
  s.source_ioerr = 41;
  EXPECT_EQ(g.MigrateFailures(s), 1);
  s.source_ioerr = 45;  // 4 IOERRs that are not ours
  EXPECT_EQ(g.MigrateFailures(s), 5);
  EXPECT_TRUE(g.Evaluate(s));
}

// The source's counters come from its INFO text: a huge, NaN or shrinking value must neither
// reach an unchecked float-to-integer cast (UBSan) nor overflow the sum.
TEST(AgentGuards, HostileSourceCountersAreClampedNotCast) {
  FakeClock clock;
  GuardEvaluator g(GuardSettings{seconds(60), 3, seconds(30)});
  auto s = Healthy(clock.Now());
  s.source_migrate_failed_calls = 0;
  s.source_ioerr = 0;
  EXPECT_FALSE(g.Evaluate(s));
  s.own_counted = 1;
  s.source_migrate_failed_calls = 1e300;
  s.source_ioerr = std::numeric_limits<double>::infinity();
  const int64_t huge = g.MigrateFailures(s);
  EXPECT_GT(huge, int64_t{1} << 60);
  EXPECT_GT(huge, 0);  // no wrap-around
  auto trip = g.Evaluate(s);
  ASSERT_TRUE(trip);
  EXPECT_EQ(trip->guard, "migrate_failures");

  s.source_migrate_failed_calls = std::numeric_limits<double>::quiet_NaN();
  s.source_ioerr = -1e300;  // a restarted source: its counters went down
  EXPECT_EQ(g.MigrateFailures(s), 1);
}

TEST(AgentGuards, FailingNodeTripsAtOnce) {
  FakeClock clock;
  GuardEvaluator g(GuardSettings{seconds(60), 5, seconds(30)});
  auto s = Healthy(clock.Now());
  s.failing = {"127.0.0.1:7002 (abc) flagged fail? by 127.0.0.1:7000"};
  auto trip = g.Evaluate(s);
  ASSERT_TRUE(trip);
  EXPECT_EQ(trip->guard, "node_health");
  EXPECT_NE(trip->reason.find("7002"), std::string::npos);
}

TEST(AgentGuards, OffNeverTripsOnCoverageOrFailuresButNodeHealthStillDoes) {
  FakeClock clock;
  GuardEvaluator g(GuardSettings{seconds(1), 0, seconds(30), /*enabled=*/false});
  auto s = Healthy(clock.Now());
  s.covered = 0;
  EXPECT_FALSE(g.Evaluate(s));
  clock.Advance(seconds(3600));
  s.at = clock.Now();
  s.own_counted = 1000;
  s.own_failed = 1000;
  s.source_migrate_failed_calls = 5000;
  EXPECT_FALSE(g.Evaluate(s));
  s.failing = {"127.0.0.1:7002 (abc) flagged fail by 127.0.0.1:7000"};
  auto trip = g.Evaluate(s);
  ASSERT_TRUE(trip);
  EXPECT_EQ(trip->guard, "node_health");
}

}  // namespace
}  // namespace slotguard::agent
