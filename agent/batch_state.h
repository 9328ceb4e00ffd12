#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace slotguard::agent {

// A batch's place in the state machine (DESIGN.md), for the engine and the daemon's queue alike.
// Names match the values of the slotguard_agent_state{state} metric; `idle` and `paused` are
// daemon states, not batch states, and `cancelled` is the queue's alone.
enum class BatchState {
  kQueued,
  kAwaitingApproval,
  kPreflight,
  kMigrating,
  kVerifying,
  kDone,
  kRollingBack,
  kRolledBack,
  kFailed,
  // A queued batch an operator removed before it started (no engine reports it).
  kCancelled,
};

// What made a batch roll back; names match slotguard_agent_rollbacks_total{trigger}.
enum class RollbackTrigger { kGuard, kAlertmanager, kOperator, kRecovery };

inline std::string ToString(BatchState state) {
  switch (state) {
    case BatchState::kQueued:
      return "queued";
    case BatchState::kAwaitingApproval:
      return "awaiting_approval";
    case BatchState::kPreflight:
      return "preflight";
    case BatchState::kMigrating:
      return "migrating";
    case BatchState::kVerifying:
      return "verifying";
    case BatchState::kDone:
      return "done";
    case BatchState::kRollingBack:
      return "rolling_back";
    case BatchState::kRolledBack:
      return "rolled_back";
    case BatchState::kFailed:
      return "failed";
    case BatchState::kCancelled:
      return "cancelled";
  }
  return "failed";
}

// Between preflight and its end: an engine works on the batch.
inline bool IsRunning(BatchState state) {
  return state == BatchState::kPreflight || state == BatchState::kMigrating ||
         state == BatchState::kVerifying || state == BatchState::kRollingBack;
}

// Over: done, rolled back, failed or cancelled.
inline bool IsEnded(BatchState state) {
  return state == BatchState::kDone || state == BatchState::kRolledBack ||
         state == BatchState::kFailed || state == BatchState::kCancelled;
}

inline std::string ToString(RollbackTrigger trigger) {
  switch (trigger) {
    case RollbackTrigger::kGuard:
      return "guard";
    case RollbackTrigger::kAlertmanager:
      return "alertmanager";
    case RollbackTrigger::kOperator:
      return "operator";
    case RollbackTrigger::kRecovery:
      return "recovery";
  }
  return "operator";
}

inline std::optional<BatchState> ParseBatchState(std::string_view text) {
  for (auto s :
       {BatchState::kQueued, BatchState::kAwaitingApproval, BatchState::kPreflight,
        BatchState::kMigrating, BatchState::kVerifying, BatchState::kDone, BatchState::kRollingBack,
        BatchState::kRolledBack, BatchState::kFailed, BatchState::kCancelled}) {
    if (ToString(s) == text) return s;
  }
  return std::nullopt;
}

inline std::optional<RollbackTrigger> ParseRollbackTrigger(std::string_view text) {
  for (auto t : {RollbackTrigger::kGuard, RollbackTrigger::kAlertmanager,
                 RollbackTrigger::kOperator, RollbackTrigger::kRecovery}) {
    if (ToString(t) == text) return t;
  }
  return std::nullopt;
}

}  // namespace slotguard::agent
