#include "agent/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>

namespace slotguard::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(AgentMetricsTest, BuildInfoIsOneWithVersionRevisionAndCompiler) {
  AgentMetrics m;
  const std::string text = m.Serialize();
  EXPECT_THAT(text, HasSubstr("# TYPE slotguard_agent_build_info gauge"));
  std::smatch match;
  ASSERT_TRUE(std::regex_search(text, match,
                                std::regex("\nslotguard_agent_build_info\\{([^}]*)\\} (\\S+)\n")))
      << text;
  EXPECT_EQ(match[2].str(), "1");
  const std::string labels = match[1].str();
  EXPECT_THAT(labels, HasSubstr(std::string("version=\"") + SLOTGUARD_VERSION + "\""));
  EXPECT_TRUE(std::regex_search(labels, std::regex("revision=\"([0-9a-f]{12}|unknown)\"")))
      << labels;
  EXPECT_TRUE(std::regex_search(labels, std::regex("compiler=\"(GNU|Clang|AppleClang) [0-9.]+\"")))
      << labels;
}

TEST(AgentMetricsTest, EveryPinnedSeriesExistsFromTheStart) {
  AgentMetrics m;
  const std::string text = m.Serialize();
  for (const char* state :
       {"idle", "queued", "awaiting_approval", "preflight", "migrating", "verifying", "done",
        "rolling_back", "rolled_back", "paused", "failed"}) {
    EXPECT_THAT(text, HasSubstr(std::string("slotguard_agent_state{state=\"") + state + "\"}"));
  }
  EXPECT_THAT(text, HasSubstr("slotguard_agent_state{state=\"idle\"} 1"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_queue_batches 0"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_queue_slots 0"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_approval_wait_seconds 0"));
  EXPECT_THAT(text, HasSubstr("# TYPE slotguard_agent_slots_migrated_total counter"));
  EXPECT_THAT(text, HasSubstr("# TYPE slotguard_agent_keys_migrated_total counter"));
  for (const char* r : {"ioerr", "timeout", "busykey", "oom", "error"}) {
    EXPECT_THAT(text, HasSubstr(std::string("slotguard_agent_migrate_failures_total{reason=\"") +
                                r + "\"} 0"));
  }
  for (const char* t : {"guard", "alertmanager", "operator", "recovery"}) {
    EXPECT_THAT(text,
                HasSubstr(std::string("slotguard_agent_rollbacks_total{trigger=\"") + t + "\"} 0"));
  }
  for (const char* g : {"coverage", "migrate_failures", "node_health", "convergence"}) {
    EXPECT_THAT(text,
                HasSubstr(std::string("slotguard_agent_guard_tripped{guard=\"") + g + "\"} 0"));
  }
  EXPECT_THAT(text, HasSubstr("# TYPE slotguard_agent_batch_duration_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_journal_write_failures_total 0"));
  for (const char* r : {"accepted", "ignored", "rejected"}) {
    EXPECT_THAT(text,
                HasSubstr(std::string("slotguard_agent_webhook_notifications_total{result=\"") + r +
                          "\"} 0"));
  }
}

TEST(AgentMetricsTest, ObserverAndSetters) {
  AgentMetrics m;
  m.SetState("migrating");
  m.SetState("no-such-state");  // ignored
  EXPECT_EQ(m.State(), "migrating");
  m.SetQueue(3, 1100, 42.5);
  m.OnSlotsMigrated(10);
  m.OnKeysMigrated(1234);
  m.OnMigrateFailure("ioerr");
  m.OnRollback(RollbackTrigger::kAlertmanager);
  m.OnGuard("coverage", true);
  m.OnBatchFinished(12);
  m.OnJournalWriteFailure();
  m.CountWebhook("accepted");
  m.CountWebhook("rejected");
  m.CountWebhook("rejected");
  const std::string text = m.Serialize();
  EXPECT_THAT(text, HasSubstr("slotguard_agent_state{state=\"migrating\"} 1"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_state{state=\"idle\"} 0"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_queue_batches 3"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_queue_slots 1100"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_approval_wait_seconds 42.5"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_slots_migrated_total 10"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_keys_migrated_total 1234"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_migrate_failures_total{reason=\"ioerr\"} 1"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_rollbacks_total{trigger=\"alertmanager\"} 1"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_guard_tripped{guard=\"coverage\"} 1"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_batch_duration_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_journal_write_failures_total 1"));
  EXPECT_THAT(text,
              HasSubstr("slotguard_agent_webhook_notifications_total{result=\"rejected\"} 2"));
  EXPECT_THAT(text, Not(HasSubstr("no-such-state")));
}

TEST(AgentMetricsTest, EveryRunningBatchHasItsOwnSeries) {
  AgentMetrics m;
  EXPECT_THAT(m.Serialize(), HasSubstr("slotguard_agent_running_batches 0"));
  m.OnState("b1", BatchState::kPreflight);
  m.OnState("b2", BatchState::kPreflight);
  m.OnState("b1", BatchState::kMigrating);
  m.OnState("b2", BatchState::kMigrating);
  m.OnProgress("b1", 100, 300);
  m.OnProgress("b2", 200, 500);
  m.OnState("b2", BatchState::kRollingBack);
  std::string text = m.Serialize();
  EXPECT_THAT(text, HasSubstr("slotguard_agent_running_batches 2"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_running_batch{batch=\"b1\",state=\"migrating\"} 1"));
  EXPECT_THAT(text,
              HasSubstr("slotguard_agent_running_batch{batch=\"b2\",state=\"rolling_back\"} 1"));
  EXPECT_THAT(text, Not(HasSubstr("batch=\"b2\",state=\"migrating\"")));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_running_batch_slots_done{batch=\"b1\"} 100"));
  EXPECT_THAT(text, HasSubstr("slotguard_agent_running_batch_slots{batch=\"b2\"} 500"));

  m.OnState("b1", BatchState::kDone);
  m.OnState("b2", BatchState::kRolledBack);
  m.OnProgress("b1", 300, 300);  // late: the batch has ended
  text = m.Serialize();
  EXPECT_THAT(text, HasSubstr("slotguard_agent_running_batches 0"));
  EXPECT_THAT(text, Not(HasSubstr("batch=\"b1\"")));
  EXPECT_THAT(text, Not(HasSubstr("batch=\"b2\"")));
}

}  // namespace
}  // namespace slotguard::agent
