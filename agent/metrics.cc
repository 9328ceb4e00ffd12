#include "agent/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

#include "slotguard_build_info.h"  // generated: SLOTGUARD_REVISION, SLOTGUARD_COMPILER

namespace slotguard::agent {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

const std::vector<std::string>& AgentMetrics::States() {
  static const std::vector<std::string> kStates = {
      "idle", "queued",       "awaiting_approval", "preflight", "migrating", "verifying",
      "done", "rolling_back", "rolled_back",       "paused",    "failed"};
  return kStates;
}

// Registered in exposition order: state and queue, then migration totals, then running
// batches, journal and webhook.
AgentMetrics::AgentMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  AddStateMetrics();
  AddMigrationMetrics();
  AddRunMetrics();
  SetState("idle");
}

void AgentMetrics::AddStateMetrics() {
  BuildGauge()
      .Name("slotguard_agent_build_info")
      .Help(
          "Always 1; the labels say which slotguard-agent build this is (version, git "
          "revision, compiler)")
      .Register(*registry_)
      .Add({{"version", SLOTGUARD_VERSION},
            {"revision", SLOTGUARD_REVISION},
            {"compiler", SLOTGUARD_COMPILER}})
      .Set(1);
  auto& state = BuildGauge()
                    .Name("slotguard_agent_state")
                    .Help("1 for the agent's current state, 0 for the others")
                    .Register(*registry_);
  for (const auto& s : States()) state_gauges_[s] = &state.Add({{"state", s}});
  queue_batches_ = &BuildGauge()
                        .Name("slotguard_agent_queue_batches")
                        .Help("Batches queued, waiting for approval or running")
                        .Register(*registry_)
                        .Add({});
  queue_slots_ = &BuildGauge()
                      .Name("slotguard_agent_queue_slots")
                      .Help("Slots in the batches of slotguard_agent_queue_batches")
                      .Register(*registry_)
                      .Add({});
  approval_wait_ = &BuildGauge()
                        .Name("slotguard_agent_approval_wait_seconds")
                        .Help("Age of the oldest plan waiting for approval (0 when none)")
                        .Register(*registry_)
                        .Add({});
}

void AgentMetrics::AddMigrationMetrics() {
  slots_migrated_ = &BuildCounter()
                         .Name("slotguard_agent_slots_migrated_total")
                         .Help("Slots whose ownership moved to the target")
                         .Register(*registry_)
                         .Add({});
  keys_migrated_ = &BuildCounter()
                        .Name("slotguard_agent_keys_migrated_total")
                        .Help("Keys MIGRATE acknowledged (forward and during rollback)")
                        .Register(*registry_)
                        .Add({});
  migrate_failures_ = &BuildCounter()
                           .Name("slotguard_agent_migrate_failures_total")
                           .Help("Failed MIGRATE commands by reason")
                           .Register(*registry_);
  for (const char* r : {"ioerr", "timeout", "busykey", "oom", "error"}) {
    migrate_failure_counters_[r] = &migrate_failures_->Add({{"reason", r}});
  }
  auto& rollbacks = BuildCounter()
                        .Name("slotguard_agent_rollbacks_total")
                        .Help("Batch rollbacks started, by what triggered them")
                        .Register(*registry_);
  for (const char* t : {"guard", "alertmanager", "operator", "recovery"}) {
    rollbacks_[t] = &rollbacks.Add({{"trigger", t}});
  }
  guard_family_ = &BuildGauge()
                       .Name("slotguard_agent_guard_tripped")
                       .Help("1 while a guard is tripped")
                       .Register(*registry_);
  for (const char* g : {"coverage", "migrate_failures", "node_health", "convergence"}) {
    guards_[g] = &guard_family_->Add({{"guard", g}});
  }
  batch_duration_ = &BuildHistogram()
                         .Name("slotguard_agent_batch_duration_seconds")
                         .Help("Wall time of finished batches (done, rolled back or failed)")
                         .Register(*registry_)
                         .Add({}, prometheus::Histogram::BucketBoundaries{1, 5, 10, 30, 60, 120,
                                                                          300, 600, 1800, 3600});
}

void AgentMetrics::AddRunMetrics() {
  running_batches_ = &BuildGauge()
                          .Name("slotguard_agent_running_batches")
                          .Help(
                              "Batches between preflight and their end (several in a parallel "
                              "rebalance or drain)")
                          .Register(*registry_)
                          .Add({});
  running_batch_ = &BuildGauge()
                        .Name("slotguard_agent_running_batch")
                        .Help("1 per running batch, labelled with its phase")
                        .Register(*registry_);
  running_slots_done_ = &BuildGauge()
                             .Name("slotguard_agent_running_batch_slots_done")
                             .Help("Slots of a running batch finished so far")
                             .Register(*registry_);
  running_slots_ = &BuildGauge()
                        .Name("slotguard_agent_running_batch_slots")
                        .Help("Slots in a running batch")
                        .Register(*registry_);
  journal_write_failures_ =
      &BuildCounter()
           .Name("slotguard_agent_journal_write_failures_total")
           .Help("Journal records that could not be written or fsync'd (the batch stopped there)")
           .Register(*registry_)
           .Add({});
  auto& webhook = BuildCounter()
                      .Name("slotguard_agent_webhook_notifications_total")
                      .Help("Alertmanager notifications received, by what the agent did")
                      .Register(*registry_);
  for (const char* r : {"accepted", "ignored", "rejected"}) {
    webhook_[r] = &webhook.Add({{"result", r}});
  }
}

void AgentMetrics::SetState(std::string_view state) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_gauges_.find(std::string(state)) == state_gauges_.end()) return;
  state_ = std::string(state);
  for (auto& [name, gauge] : state_gauges_) gauge->Set(name == state ? 1 : 0);
}

std::string AgentMetrics::State() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

void AgentMetrics::SetQueue(int batches, int slots, double approval_wait_seconds) {
  queue_batches_->Set(batches);
  queue_slots_->Set(slots);
  approval_wait_->Set(approval_wait_seconds);
}

void AgentMetrics::CountWebhook(std::string_view result) {
  auto it = webhook_.find(std::string(result));
  if (it != webhook_.end()) it->second->Increment();
}

void AgentMetrics::OnSlotsMigrated(int slots) {
  if (slots > 0) slots_migrated_->Increment(slots);
}

void AgentMetrics::OnKeysMigrated(int64_t keys) {
  if (keys > 0) keys_migrated_->Increment(static_cast<double>(keys));
}

void AgentMetrics::OnMigrateFailure(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = migrate_failure_counters_.find(reason);
  if (it == migrate_failure_counters_.end()) {
    it = migrate_failure_counters_.emplace(reason, &migrate_failures_->Add({{"reason", reason}}))
             .first;
  }
  it->second->Increment();
}

void AgentMetrics::OnRollback(RollbackTrigger trigger) {
  rollbacks_.at(ToString(trigger))->Increment();
}

void AgentMetrics::OnGuard(const std::string& guard, bool tripped) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = guards_.find(guard);
  if (it == guards_.end())
    it = guards_.emplace(guard, &guard_family_->Add({{"guard", guard}})).first;
  it->second->Set(tripped ? 1 : 0);
}

void AgentMetrics::OnBatchFinished(double seconds) { batch_duration_->Observe(seconds); }

void AgentMetrics::OnJournalWriteFailure() { journal_write_failures_->Increment(); }

void AgentMetrics::OnState(const std::string& batch_id, BatchState state) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = running_.find(batch_id);
  const bool ended = state == BatchState::kDone || state == BatchState::kRolledBack ||
                     state == BatchState::kFailed || state == BatchState::kQueued ||
                     state == BatchState::kAwaitingApproval;
  if (it != running_.end()) {
    running_batch_->Remove(it->second.phase);
    if (ended) {
      if (it->second.slots_done) running_slots_done_->Remove(it->second.slots_done);
      if (it->second.slots) running_slots_->Remove(it->second.slots);
      running_.erase(it);
    }
  }
  if (!ended) {
    Running& r = running_[batch_id];
    r.phase = &running_batch_->Add({{"batch", batch_id}, {"state", ToString(state)}});
    r.phase->Set(1);
  }
  running_batches_->Set(static_cast<double>(running_.size()));
}

void AgentMetrics::OnProgress(const std::string& batch_id, int slots_done, int slots_total) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = running_.find(batch_id);
  if (it == running_.end()) return;  // ended meanwhile
  Running& r = it->second;
  if (!r.slots_done) r.slots_done = &running_slots_done_->Add({{"batch", batch_id}});
  if (!r.slots) r.slots = &running_slots_->Add({{"batch", batch_id}});
  r.slots_done->Set(slots_done);
  r.slots->Set(slots_total);
}

std::string AgentMetrics::Serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace slotguard::agent
