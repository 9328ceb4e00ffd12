#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/batch_state.h"
#include "cluster/endpoint.h"
#include "cluster/result.h"
#include "common/file_lock.h"

namespace slotguard::agent {

// The engine's write-ahead journal: DIR/journal.jsonl, one JSON object per line, appended and
// fdatasync'd BEFORE the step it describes runs. One record covers a group of slots in the same
// step, so a group pays one fsync per step, not one per slot. The directory is locked (flock on
// DIR/journal.lock) so two agents never write the same journal; within one agent the engines of a
// parallel run share one Journal (appends are thread-safe; records name their batch).
//
// Record types ("type"):
//   batch     {batch, source_id, source, target_id, target, slots}  a batch starts
//   step      {batch, step, slots}   about to run `step` on `slots` (importing, migrating,
//                                   node_target, node_source, node_others, and the rollback /
//                                   recovery steps normalize, reverse_*, ...)
//   rollback  {batch, trigger, reason}   the batch is being rolled back
//   end       {batch, state, reason}     done | rolled_back | failed
//   run       {run, from, to, request, batches:[{id, slots}]}   a reshard run and its plan
//   run_end   {run, state}
// Every record also has "ts" (unix ms). A torn last line (kill -9 mid-write) is skipped.
class Journal {
 public:
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // A journal file above this size is compacted when it is opened (see CompactRecords).
  static constexpr int64_t kCompactAboveBytes = 1 << 20;

  // Creates DIR when missing, takes the lock, compacts the file when it is over
  // `compact_above_bytes`, opens it for appending.
  static cluster::Result<std::unique_ptr<Journal>> Open(
      const std::string& dir, int64_t compact_above_bytes = kCompactAboveBytes);

  // Appends one record and makes it durable (write + fdatasync) before returning.
  cluster::Result<void> Append(nlohmann::json record);
  // Appends several records with one write and one fdatasync. On failure (a full or read-only
  // filesystem, EIO) the file is cut back to its size before the call, so none of the records
  // is in it and a later append starts on a clean line.
  cluster::Result<void> AppendAll(std::vector<nlohmann::json> records);

  const std::string& path() const { return path_; }

  // Compacts the file in place (see CompactRecords) when it has grown over `bytes`, so a
  // long-running daemon's journal stays small; appends go on at the end of the new file.
  cluster::Result<void> CompactIfOver(int64_t bytes = kCompactAboveBytes);

  // The records of a journal's text, one JSON object with a "type" per line; other lines
  // (a torn last line, garbage) are skipped and counted in `skipped` (optional).
  static std::vector<nlohmann::json> ParseRecords(std::string_view text, int* skipped = nullptr);

  // Every parseable record of DIR/journal.jsonl (none when the file does not exist).
  // `skipped` (optional) receives the number of unparseable lines.
  static cluster::Result<std::vector<nlohmann::json>> Read(const std::string& dir,
                                                           int* skipped = nullptr);

 private:
  Journal(std::string dir, std::string path, int fd, common::FileLock lock)
      : dir_(std::move(dir)), path_(std::move(path)), fd_(fd), lock_(std::move(lock)) {}
  std::string dir_;
  std::string path_;
  int fd_ = -1;
  common::FileLock lock_;  // held while the journal is open
  std::string broken_;     // set when a failed append could not be cut back: appends refused
  // Appends and compaction: the engines of a parallel run share one Journal (agent/batch_runner.h).
  std::mutex mutex_;
};

// Batch stage 5, journaled: as recovery reads it back after a stop or crash.
// One batch as the journal tells it (its latest incarnation when an id is reused).
struct JournalBatch {
  std::string id;
  std::string source_id;
  cluster::Endpoint source;
  std::string target_id;
  cluster::Endpoint target;
  std::vector<int> slots;
  // The ends' replicas when the batch started: the one promoted after a failover of an end that
  // no longer answers (and so cannot say whose replica it is now).
  std::vector<std::string> source_replicas;
  std::vector<std::string> target_replicas;
  std::set<int> touched;                       // slots named by any step record
  std::map<std::string, std::set<int>> steps;  // step -> slots
  bool rollback = false;
  std::string trigger;
  std::string reason;
  std::optional<BatchState> end;  // kDone, kRolledBack, kFailed; none when open
  // Needs recovery: never ended, or ended failed (its slots may still be open).
  bool open() const { return !end || *end == BatchState::kFailed; }
};

struct JournalRun {
  std::string id;
  std::string from;
  std::string to;
  nlohmann::json request;  // the reshard arguments that made it
  std::vector<std::pair<std::string, std::vector<int>>> batches;  // id, slots
  std::optional<std::string> end;                                 // run_end state
  int64_t end_ms = 0;                                             // its "ts"
  // Ended "done", or "abandoned" for a newer run: never resumed. Every other ending
  // (interrupted, rolled_back, failed, or none at all after a kill) leaves it unfinished.
  bool finished() const { return end && (*end == "done" || *end == "abandoned"); }
};

struct JournalState {
  std::vector<JournalBatch> batches;  // in order of first appearance (latest incarnation)
  std::vector<JournalRun> runs;
  const JournalBatch* FindBatch(const std::string& id) const;
  std::vector<const JournalBatch*> OpenBatches() const;
  const JournalRun* LastUnfinishedRun() const;  // the latest run, unless it is finished()
};

// Pure: folds records into per-batch and per-run state.
JournalState ReplayJournal(const std::vector<nlohmann::json>& records);

// Pure: the records that replay to the same state for everything the agent reads from it:
// every record of a batch that is still open (never ended, or ended failed) and of every run;
// of an ended batch only its batch, rollback and end records (its steps are history); nothing of
// an incarnation a later batch record with the same id replaced, or of a batch whose start was
// never written. Order is kept.
std::vector<nlohmann::json> CompactRecords(const std::vector<nlohmann::json>& records);

// Helpers that build records (also used by tests).
nlohmann::json BatchRecord(const std::string& batch_id, const std::string& source_id,
                           const cluster::Endpoint& source, const std::string& target_id,
                           const cluster::Endpoint& target, const std::vector<int>& slots,
                           const std::vector<std::string>& source_replicas = {},
                           const std::vector<std::string>& target_replicas = {});
nlohmann::json StepRecord(const std::string& batch_id, const std::string& step,
                          const std::vector<int>& slots);
nlohmann::json RollbackRecord(const std::string& batch_id, RollbackTrigger trigger,
                              const std::string& reason);
nlohmann::json EndRecord(const std::string& batch_id, BatchState state, const std::string& reason);

}  // namespace slotguard::agent
