#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/batch_schedule.h"
#include "agent/engine.h"
#include "agent/plan.h"

namespace slotguard::agent {

// What the other running batches do when one batch of a parallel run trips a guard (or fails).
enum class OnTrip {
  // They finish: their own guards watch their own nodes, so a trip elsewhere says nothing
  // about them, and rolling a healthy batch back only keeps its slots open longer.
  kFinish,
  // They roll back too (at their next step): every batch of the round ends where it started.
  kRollback,
};
cluster::Result<OnTrip> ParseOnTrip(const std::string& text);

// One source -> target move: its batches run one after another, each on the pair's engine.
struct PairMove {
  std::string source_id;
  std::string target_id;
  std::vector<Batch> batches;
  Engine* engine = nullptr;  // not owned; one engine (and connection pool) per pair
};

struct RunnerOptions {
  ScheduleLimits limits;
  OnTrip on_trip = OnTrip::kFinish;
};

// The result of one batch, as RunBatch gave it.
struct BatchEnd {
  size_t pair = 0;
  const Batch* batch = nullptr;  // into Run's `pairs`: valid while they live
  cluster::Result<BatchOutcome> outcome = cluster::MakeError("not run");
};

// Runs the batches of several pairs in rounds (NextRound): the batches of a round run at the
// same time, each on its pair's engine with its own preflight, guards, journal records and
// rollback; a round starts its first step only once every batch in it has passed preflight.
// A batch that does not end done stops new rounds; the others of its round finish or roll back
// (RunnerOptions::on_trip). One pair gives the sequential run of a reshard.
class BatchRunner {
 public:
  explicit BatchRunner(RunnerOptions options) : options_(options) {}

  // Blocking. `on_end` is called from the batch's thread as each batch ends (thread-safe
  // callers only). Returns every batch that ran, in the order they ended.
  std::vector<BatchEnd> Run(std::vector<PairMove>& pairs,
                            const std::function<void(const BatchEnd&)>& on_end);

  // Thread-safe: no new batch starts (the running ones go on).
  void StopNew();
  // Thread-safe: every running batch rolls back at its next step, and no new batch starts.
  void RequestRollback(RollbackTrigger trigger, const std::string& reason);
  // Thread-safe: only batch `batch_id` rolls back, at its next step (or right after its
  // preflight when its engine has not started it yet). No new batch starts after it; the other
  // running batches finish, whatever RunnerOptions::on_trip says (an operator named this one).
  // False when the batch is not in the round in flight.
  bool RequestRollback(RollbackTrigger trigger, const std::string& reason,
                       const std::string& batch_id);
  // Thread-safe: every engine stops at its next safe gate (Engine::RequestStop).
  void RequestStop();
  bool stopped_new() const { return stop_new_.load(); }

 private:
  void RunRound(std::vector<PairMove>& pairs, const std::vector<size_t>& round,
                std::vector<size_t>& next, std::vector<BatchEnd>& ends,
                const std::function<void(const BatchEnd&)>& on_end);
  void OnBatchEnded(const BatchEnd& end);

  RunnerOptions options_;
  std::atomic<bool> stop_new_{false};
  std::mutex mutex_;  // running_ and ends
  // The round in flight: each engine with the batch it runs (a rollback names the batch, so an
  // engine that has not started it yet still honours the request when it does).
  std::vector<std::pair<Engine*, std::string>> running_;
  std::set<std::string> named_rollbacks_;  // batches rolled back alone (no --on-trip for them)
};

}  // namespace slotguard::agent
