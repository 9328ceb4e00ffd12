#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "agent/engine_observer.h"

namespace slotguard::agent {

// Every slotguard_agent_* series (README "Metrics"), on the daemon's /metrics. As an
// EngineObserver it counts what the engine reports; the daemon sets the state and the queue
// gauges. Label values are created up front so every series exists (at 0) from the start.
class AgentMetrics final : public EngineObserver {
 public:
  AgentMetrics();

  // One of the states of slotguard_agent_state (idle, queued, ..., paused, failed).
  void SetState(std::string_view state);
  std::string State() const;
  void SetQueue(int batches, int slots, double approval_wait_seconds);
  // result: accepted | ignored | rejected
  void CountWebhook(std::string_view result);

  void OnSlotsMigrated(int slots) override;
  void OnKeysMigrated(int64_t keys) override;
  void OnMigrateFailure(const std::string& reason) override;
  void OnRollback(RollbackTrigger trigger) override;
  void OnGuard(const std::string& guard, bool tripped) override;
  void OnBatchFinished(double seconds) override;
  void OnJournalWriteFailure() override;

  // Prometheus text exposition of everything above.
  std::string Serialize() const;
  prometheus::Registry& registry() { return *registry_; }

  static const std::vector<std::string>& States();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex mutex_;
  std::string state_;
  std::map<std::string, prometheus::Gauge*> state_gauges_;
  prometheus::Gauge* queue_batches_;
  prometheus::Gauge* queue_slots_;
  prometheus::Gauge* approval_wait_;
  prometheus::Counter* slots_migrated_;
  prometheus::Counter* keys_migrated_;
  prometheus::Family<prometheus::Counter>* migrate_failures_;
  std::map<std::string, prometheus::Counter*> migrate_failure_counters_;
  std::map<std::string, prometheus::Counter*> rollbacks_;
  prometheus::Family<prometheus::Gauge>* guard_family_;
  std::map<std::string, prometheus::Gauge*> guards_;
  prometheus::Histogram* batch_duration_;
  prometheus::Counter* journal_write_failures_;
  std::map<std::string, prometheus::Counter*> webhook_;
};

}  // namespace slotguard::agent
