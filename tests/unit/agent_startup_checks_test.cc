#include "agent/startup_checks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace slotguard::agent {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

AgentConfig WithWebhook() {
  AgentConfig c;
  c.control_token_file = "/etc/slotguard/control-token";
  c.webhook.enabled = true;
  c.webhook.token_file = "/etc/slotguard/webhook-token";
  return c;
}

const std::vector<SeedProbe> kAnswered = {{"127.0.0.1:7000", ""}, {"127.0.0.1:7001", ""}};

TEST(StartupChecksTest, NothingToSayWhenAllIsWell) {
  EXPECT_THAT(StartupWarnings(WithWebhook(), "control-secret", "webhook-secret", kAnswered),
              IsEmpty());
}

TEST(StartupChecksTest, OneTokenForControlAndWebhookIsNamedNeverPrinted) {
  auto w = StartupWarnings(WithWebhook(), "same-secret", "same-secret", kAnswered);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_THAT(w[0], AllOf(HasSubstr("/etc/slotguard/control-token"),
                          HasSubstr("/etc/slotguard/webhook-token"), HasSubstr("same token"),
                          Not(HasSubstr("same-secret"))));
}

TEST(StartupChecksTest, SameTokenDoesNotMatterWithoutTheWebhook) {
  AgentConfig c = WithWebhook();
  c.webhook.enabled = false;
  EXPECT_THAT(StartupWarnings(c, "same-secret", "", kAnswered), IsEmpty());
}

TEST(StartupChecksTest, NoSeedAnswers) {
  auto w = StartupWarnings(
      WithWebhook(), "a", "b",
      {{"127.0.0.1:7000", "Connection refused"}, {"127.0.0.1:7001", "Connection refused"}});
  ASSERT_EQ(w.size(), 1u);
  EXPECT_THAT(w[0], AllOf(HasSubstr("no seed in redis.seeds answers"),
                          HasSubstr("127.0.0.1:7000: Connection refused"),
                          HasSubstr("127.0.0.1:7001: Connection refused")));
}

TEST(StartupChecksTest, SomeSeedsDoNotAnswer) {
  auto w = StartupWarnings(WithWebhook(), "a", "b",
                           {{"127.0.0.1:7000", ""}, {"127.0.0.1:7001", "timed out"}});
  EXPECT_THAT(w, ElementsAre(AllOf(HasSubstr("redis.seeds: 127.0.0.1:7001: timed out"),
                                   HasSubstr("the other seeds answer"))));
}

}  // namespace
}  // namespace slotguard::agent
