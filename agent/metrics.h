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
  // Per running batch (several run at once in a parallel rebalance): its phase and progress.
  void OnState(const std::string& batch_id, BatchState state) override;
  void OnProgress(const std::string& batch_id, int slots_done, int slots_total) override;

  // Prometheus text exposition of everything above.
  std::string Serialize() const;
  prometheus::Registry& registry() { return *registry_; }

  static const std::vector<std::string>& States();

 private:
  // The constructor's parts, in registration order.
  void AddStateMetrics();
  void AddMigrationMetrics();
  void AddRunMetrics();

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
  // Series of the batches between preflight and their end, removed when they end.
  struct Running {
    prometheus::Gauge* phase = nullptr;  // in running_batch_ (labels batch, state)
    prometheus::Gauge* slots_done = nullptr;
    prometheus::Gauge* slots = nullptr;
  };
  prometheus::Family<prometheus::Gauge>* running_batch_;
  prometheus::Family<prometheus::Gauge>* running_slots_done_;
  prometheus::Family<prometheus::Gauge>* running_slots_;
  prometheus::Gauge* running_batches_;
  std::map<std::string, Running> running_;
};

}  // namespace slotguard::agent
