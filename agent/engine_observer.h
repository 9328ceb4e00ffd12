#pragma once

#include <cstdint>
#include <string>

#include "agent/batch_state.h"

namespace slotguard::agent {

// What the engine reports while it works. Every method has a no-op default, so an observer
// implements only what it needs (the daemon: prometheus metrics; the CLI: a progress bar).
// Called from the engine's thread, except OnGuard which may come from the guard thread:
// implementations must be thread-safe.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;

  // Every state change of a batch (preflight, migrating, verifying, done, rolling_back, ...).
  virtual void OnState(const std::string& /*batch_id*/, BatchState /*state*/) {}
  // Slots whose ownership moved to the target (counted when SETSLOT NODE reached the target).
  // Rollback does not subtract.
  virtual void OnSlotsMigrated(int /*slots*/) {}
  // Keys MIGRATE acknowledged (forward and during rollback).
  virtual void OnKeysMigrated(int64_t /*keys*/) {}
  // One failed MIGRATE; reason is one of "ioerr", "timeout", "busykey", "error".
  virtual void OnMigrateFailure(const std::string& /*reason*/) {}
  // A rollback started.
  virtual void OnRollback(RollbackTrigger /*trigger*/) {}
  // A guard changed state; guard is one of "coverage", "migrate_failures", "node_health",
  // "convergence". Called with false for every guard when a batch starts.
  virtual void OnGuard(const std::string& /*guard*/, bool /*tripped*/) {}
  // A journal record could not be written (or fsync'd): the step it announced did not run.
  virtual void OnJournalWriteFailure() {}
  // A batch ended (done, rolled back or failed), with its wall time.
  virtual void OnBatchFinished(double /*seconds*/) {}
  // Progress inside a batch: slots of the batch finished so far (for progress bars).
  virtual void OnProgress(const std::string& /*batch_id*/, int /*slots_done*/,
                          int /*slots_total*/) {}
};

// The default: ignores everything.
class NullEngineObserver final : public EngineObserver {};

}  // namespace slotguard::agent
