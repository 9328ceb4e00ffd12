#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/batch_state.h"
#include "agent/plan.h"
#include "cluster/result.h"
#include "common/file_lock.h"

namespace slotguard::agent {

// Batch stage 2, queued (daemon only): a Batch with its queue.json state.
struct QueueItem {
  Batch batch;
  std::string plan_id;
  std::string plan_file;
  // kQueued (awaiting approval too: see AwaitingApproval), a running state (IsRunning: the
  // engine's phase), or an ended one (IsEnded, kCancelled included). Never kAwaitingApproval.
  BatchState state = BatchState::kQueued;
  bool needs_approval = false;  // the plan is over the approval threshold
  bool approved = false;
  bool rollback_requested = false;  // an operator/alert asked to roll this batch back
  int attempts = 0;
  int64_t enqueued_at_ms = 0;  // wall clock (unix ms): survives restarts
  int64_t approved_at_ms = 0;
  int64_t started_at_ms = 0;
  int64_t finished_at_ms = 0;
  std::string message;  // the last outcome or error

  bool Terminal() const { return IsEnded(state); }
  bool Running() const { return IsRunning(state); }
  bool AwaitingApproval() const {
    return state == BatchState::kQueued && needs_approval && !approved;
  }
  // "queued", "awaiting_approval", "migrating", "done", ...
  std::string DisplayState() const;
};

struct QueueStats {
  int batches = 0;  // not yet finished (queued, awaiting approval, running)
  int slots = 0;
  double approval_wait_seconds = 0;  // age of the oldest batch awaiting approval, 0 when none
};

struct QueueState {
  std::vector<QueueItem> items;  // in queue order; finished ones kept as recent history
  bool paused = false;
  std::string pause_reason;
  int64_t next_plan_seq = 1;
  std::vector<std::string> alert_keys;  // webhook dedup memory, oldest first
};

nlohmann::json ToJson(const QueueItem& item);
// Reads what ToJson wrote, and the queue.json of earlier versions (state "running" with the
// engine's state in "phase").
cluster::Result<QueueItem> ItemFromJson(const nlohmann::json& json);

// Pure: the batches the worker may start now, in queue order: none while paused or while the
// first unfinished batch runs or waits for approval; otherwise that batch and the queued,
// approved batches of the same plan right behind it (a plan's batches were checked together;
// a later plan may depend on an earlier one, so plans never mix).
std::vector<QueueItem> RunnableItems(const QueueState& state);

// The state held in a queue.json text; `path` names the file in errors ("... is damaged").
cluster::Result<QueueState> ParseQueueState(const std::string& text, const std::string& path);

// The daemon's persistent queue of batches and approvals, in `<journal_dir>/queue.json`.
// Every change writes the whole state to a temp file, fsyncs it, renames it over the old one
// and fsyncs the directory, so a crash at any moment leaves either the old or the new state.
// A change that cannot be persisted is not applied (the caller gets the error).
// Thread-safe. Plans run strictly in order: a batch awaiting approval holds back the ones
// behind it, since later plans may depend on it; the batches of one plan may run together
// (RunnableItems).
class Queue {
 public:
  using WallClock = std::function<int64_t()>;  // unix ms

  // Opens (or creates) the queue in `dir` and takes an exclusive lock on `<dir>/daemon.lock`
  // so two daemons never share a journal directory.
  static cluster::Result<std::unique_ptr<Queue>> Open(const std::string& dir,
                                                      WallClock wall_clock = {});
  ~Queue();
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  // Appends the plan's batches (ids generated where the plan gave none). Refuses a batch id
  // already in the queue and slots that an unfinished queued batch already moves.
  // Returns the plan id.
  cluster::Result<std::string> Enqueue(const Plan& plan, const std::string& plan_file,
                                       bool needs_approval);
  // Approves the whole plan of `id` (a plan id or any of its batch ids). Returns the batch
  // ids approved.
  cluster::Result<std::vector<std::string>> Approve(const std::string& id);
  cluster::Result<void> Pause(const std::string& reason);
  cluster::Result<void> Resume();
  // Removes a batch that has not started.
  cluster::Result<void> Cancel(const std::string& batch_id, const std::string& why);

  // Worker side. Waits up to `timeout` for a runnable batch: not paused, the first unfinished
  // item is queued and approved (or needs no approval).
  std::optional<QueueItem> WaitForRunnable(std::chrono::milliseconds timeout);
  // The same for RunnableItems: empty when none became runnable within `timeout`.
  std::vector<QueueItem> WaitForRunnableItems(std::chrono::milliseconds timeout);
  // Refused for a batch that is no longer queued (e.g. cancelled after its run was set up).
  cluster::Result<void> MarkRunning(const std::string& batch_id);
  // The engine's state of a running batch (a running state; ignored once the batch is not
  // running any more: its end is recorded by Finish or Requeue).
  cluster::Result<void> SetPhase(const std::string& batch_id, BatchState phase);
  // `state`: done, rolled back or failed.
  cluster::Result<void> Finish(const std::string& batch_id, BatchState state,
                               const std::string& message);
  // Puts a running batch back at its place as queued (interrupted before it changed anything,
  // or recovery returned its slots).
  // `remaining`, when given, replaces the batch's slots (the ones that still have to move).
  cluster::Result<void> Requeue(const std::string& batch_id, const std::string& message,
                                const std::optional<std::vector<int>>& remaining = std::nullopt);
  cluster::Result<void> MarkRollbackRequested(const std::string& batch_id);
  // Puts a batch moving `slots` back from a finished batch's target to its source before the
  // first unfinished batch. Returns the new batch id ("<id>-revert", "-revert2", ...).
  cluster::Result<std::string> InsertRevert(const std::string& batch_id,
                                            const std::vector<int>& slots);
  // Wakes WaitForRunnable (shutdown).
  void Wake();

  // Webhook dedup memory (persisted; at most 1000 keys).
  bool AlertSeen(const std::string& key) const;
  cluster::Result<void> RememberAlerts(const std::vector<std::string>& keys);

  QueueState Snapshot() const;
  std::optional<QueueItem> Find(const std::string& batch_id) const;
  std::optional<QueueItem> Running() const;
  QueueStats Stats() const;
  const std::string& path() const { return path_; }

 private:
  Queue(std::string dir, WallClock wall_clock, common::FileLock lock);
  cluster::Result<void> Load();
  // Applies `change` to a copy of the state, persists it and only then publishes it.
  cluster::Result<void> Mutate(const std::function<cluster::Result<void>(QueueState&)>& change);
  cluster::Result<void> Persist(const QueueState& state) const;
  static void TrimHistory(QueueState& state);

  std::string dir_;
  std::string path_;
  WallClock wall_clock_;
  common::FileLock lock_;  // held while the queue is open: one daemon per journal dir
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  QueueState state_;
};

}  // namespace slotguard::agent
