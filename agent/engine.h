#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/batch_state.h"
#include "agent/clock.h"
#include "agent/engine_observer.h"
#include "agent/guard_settings.h"
#include "agent/lease.h"
#include "agent/plan.h"
#include "agent/step_hooks.h"
#include "cluster/connection.h"
#include "cluster/credentials.h"
#include "cluster/endpoint.h"
#include "cluster/result.h"
#include "cluster/tls_context.h"

namespace slotguard::agent {

class Journal;

// What the engines of one parallel run share (agent/batch_runner.h). Empty: the engine opens its
// own journal and takes its own lease.
struct EngineShared {
  // Taken and released by the runner (the engine only checks it before each step). Not owned.
  Lease* lease = nullptr;
  // One Journal for every engine: its flock is per open file, and appends are thread-safe.
  std::shared_ptr<Journal> journal;
};

struct EngineOptions {
  std::vector<cluster::Endpoint> seeds;
  // For MIGRATE's AUTH/AUTH2 (the connections themselves authenticate through the Connector).
  std::optional<cluster::Credentials> credentials;
  // TLS for the engine's own connections (guards, lease); null: plain text.
  std::shared_ptr<const cluster::TlsContext> tls;
  int getkeys_count = 1000;  // keys per CLUSTER GETKEYSINSLOT
  int pipeline = 100;        // keys per MIGRATE
  // MIGRATE's own timeout. The Connector's io timeout must be larger (the CLI uses +3 s).
  std::chrono::milliseconds migrate_timeout{2000};
  // Slots in flight together: one pipelined SETSLOT round trip per step per group (each costs
  // the node a nodes.conf fsync, so fewer, larger groups are faster).
  int group_slots = 200;
  bool replace = false;  // REPLACE on BUSYKEY even when the values differ
  std::string journal_dir = "./slotguard-journal";
  GuardSettings guards;
  Limits limits;
  // Rollback and recovery retry unreachable nodes (e.g. a SIGSTOPped target) until then.
  std::chrono::seconds rollback_timeout{300};
  // Timeouts of the guard thread's own connections (when the engine makes them).
  std::chrono::milliseconds guard_io_timeout{1000};
  // MIGRATE commands per pipelined round trip. Each may wait migrate_timeout on a target that
  // stopped answering before the engine can act on a guard, so this bounds the reaction time.
  int migrates_per_round = 16;
  // The cluster-wide migration lease (agent/lease.h) RunBatch and Recover take
  // before their first step and check before each one. Off only for tests of other things.
  LeaseOptions lease;
  // Estimated bytes per MIGRATE (0: keys per MIGRATE only), from the slots'
  // sizes (Batch::loads, else measured in preflight). See MigratorSettings::bytes_per_migrate.
  int64_t migrate_bytes = 4 << 20;
  // Told each named step of a batch (tests kill or hold the engine there); null: the hooks of
  // the environment (StepHooksFromEnvironment), which do nothing outside test builds.
  std::shared_ptr<StepHooks> step_hooks;
  EngineShared shared;
  // Preflight may reuse the snapshot that verified this engine's previous batch. Off in a
  // parallel run: that snapshot may show a sibling batch's slots open.
  bool reuse_verified_snapshot = true;
};

struct BatchOutcome {
  std::string batch_id;
  BatchState state = BatchState::kFailed;  // kDone, kRolledBack or kFailed
  int slots_moved = 0;                     // slots owned by the target at the end
  int64_t keys_moved = 0;
  std::string reason;  // why it rolled back / failed ("" when done)
  std::optional<std::string> tripped_guard;
  std::optional<RollbackTrigger> trigger;
  std::vector<std::string> busy_keys;  // keys that differ on the target (BUSYKEY stop)
  double seconds = 0;
  // Preflight warnings (settings) and rollback notes.
  std::vector<std::string> warnings;
  // True when RequestStop() ended the batch. state is then kFailed, nothing
  // was rolled back and the journal keeps the batch open, so the next Recover() converges it.
  bool stopped = false;
  // Set when a journal record could not be made durable during the batch.
  // The engine stopped at that record (its step did not run, nor did any later one, rollback
  // included) and wrote no end record: the next Recover() converges the batch.
  std::optional<std::string> journal_error;
};

struct RecoveryReport {
  struct BatchRecovery {
    std::string batch_id;
    BatchState state = BatchState::kFailed;  // kDone (finished forward) or kRolledBack
    int slots_forward = 0;                   // slots finished at the target
    int slots_back = 0;                      // slots returned to the source
  };
  std::vector<BatchRecovery> batches;  // empty when the journal had no open batch
  std::vector<std::string> messages;
};

class EngineImpl;

// The foreground engine: preflight, the move protocol, guards, rollback, journal, recovery.
// One batch at a time (RunBatch is not reentrant); RequestRollback may come from any thread.
class Engine {
 public:
  // `guard_connector` is used by the guard thread so it never shares a connection with the
  // engine (which may sit in a MIGRATE). When nullptr the engine makes its own ConnectionPool
  // (credentials from options.credentials, io timeout options.guard_io_timeout).
  // `connector`'s io timeout must exceed options.migrate_timeout (the CLI uses +3 s).
  Engine(cluster::Connector& connector, Clock& clock, EngineOptions options,
         EngineObserver& observer);
  Engine(cluster::Connector& connector, Clock& clock, EngineOptions options,
         EngineObserver& observer, cluster::Connector* guard_connector);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Blocking: preflight, then the batch, journaling every step. A preflight failure is an
  // error (nothing touched; this includes a target whose maxmemory has no room for the batch's
  // estimated bytes, see HeadroomProblem); a guard trip / requested rollback gives kRolledBack; a
  // failure to even roll back gives kFailed (the journal lets Recover() finish the job).
  cluster::Result<BatchOutcome> RunBatch(const Batch& batch);
  // The same, calling `start_gate` after preflight passed and before the first step (a parallel
  // run holds every batch of a round there until all of them have passed their preflight, so no
  // preflight sees a sibling's open slots).
  cluster::Result<BatchOutcome> RunBatch(const Batch& batch,
                                         const std::function<void()>& start_gate);

  // Thread-safe: makes the running batch (if any) roll back at its next step.
  void RequestRollback(RollbackTrigger trigger, std::string reason);
  // Thread-safe: a rollback of batch `batch_id`. If that batch is running it
  // rolls back at its next step; if no batch is running the request is kept for the next
  // RunBatch, which honours it only when it runs that batch (it then rolls back right after
  // preflight). A request for the batch that has just finished (RunBatch returned) is dropped,
  // as is a pending request once a different batch starts, so a late request never hits an
  // unrelated batch.
  void RequestRollback(RollbackTrigger trigger, std::string reason, const std::string& batch_id);

  // Thread-safe, sticky: makes the engine stop for good at its next safe gate
  // (between protocol steps, or between retries of an unreachable node), without rolling
  // anything back and without writing an end record: the journal keeps the batch open, so the
  // next start's Recover() converges it. The running RunBatch returns promptly with
  // outcome.stopped (state kFailed); later RunBatch/Recover calls return an error at once.
  // A command already sent is waited for (at most the connector's io timeout).
  void RequestStop();

  // Reads the journal dir; for every batch not marked done/rolled back, looks at the cluster
  // and converges each touched slot to one owner with every key present. Idempotent.
  cluster::Result<RecoveryReport> Recover();

  // From the thread that runs batches: gives the migration lease back (RunBatch
  // and Recover take it and keep it, so one reshard run holds it across its batches; the daemon
  // calls this between batches). Also done by the destructor. When the engine leaves a batch open,
  // the lease's record of this holder stays, so the next holder is told whose journal converges it.
  void ReleaseLease();
  // Opens the journal and takes the migration lease (the shared one when options.shared.lease),
  // journaling its token; a refusal names the holder.
  cluster::Result<void> AcquireLease();

  // appends a caller's own record (e.g. a reshard run) to the
  // engine's journal, fsync'd. Opens (and locks) the journal when not open yet.
  cluster::Result<void> JournalAppend(const nlohmann::json& record);

 private:
  std::unique_ptr<EngineImpl> impl_;
};

}  // namespace slotguard::agent
