#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/busy_key.h"
#include "agent/clock.h"
#include "agent/engine_observer.h"
#include "agent/guards.h"
#include "agent/setslot_support.h"
#include "cluster/connection.h"
#include "cluster/credentials.h"
#include "cluster/endpoint.h"
#include "cluster/info.h"
#include "cluster/result.h"

namespace slotguard::agent {

// Batch stage 4, running (the migrator's part): only the ends its SETSLOT and MIGRATE rounds need.
// The two ends of a move of slots (from owns them at the start).
struct MoveEnds {
  std::string from_id;
  cluster::Endpoint from;
  std::string to_id;
  cluster::Endpoint to;
  MoveEnds Reversed() const { return {to_id, to, from_id, from}; }
};

struct MigratorSettings {
  int getkeys_count = 1000;  // keys per CLUSTER GETKEYSINSLOT
  int keys_per_migrate = 100;
  // Estimated bytes per MIGRATE (0: count only). MIGRATE blocks the source until the target
  // has restored every key it carries: 100 keys of 1 MB block it long enough to look dead to
  // its replicas and peers. Slots whose keys are big (Migrator::SetKeyBytes) get fewer keys per
  // MIGRATE, at least one.
  int64_t bytes_per_migrate = 4 << 20;
  std::chrono::milliseconds migrate_timeout{2000};
  bool replace = false;
  std::optional<cluster::Credentials> auth;  // for MIGRATE's AUTH / AUTH2
  // MIGRATE commands in flight at once (two rounds of half): deep enough that the source still
  // has MIGRATEs queued while the agent waits for a core on a busy machine.
  int migrates_per_round = 16;
  int slots_per_scan = 128;  // GETKEYSINSLOT commands per pipelined round trip
  std::chrono::milliseconds epoch_fence_timeout{10000};  // see Migrator::AwaitEpochFence
  // How long a node that replicates SETSLOT (Valkey 8) may wait for its replicas before it
  // answers -NOREPLICAS: below the connection's read timeout, so the answer arrives first.
  std::chrono::milliseconds setslot_replica_timeout{2000};
  // Connections per such node that SETSLOTs are spread over (SplitIntoLanes).
  size_t setslot_lanes = 32;
};

// One step about to run on some slots, for the journal.
struct JournalStep {
  std::string step;
  std::vector<int> slots;
};

// How the caller steers one call: journal before each step, stop conditions, test hooks.
struct StepControl {
  // Writes the step records and makes them durable (one fsync for all) before the steps run.
  // May be called from a helper thread (it runs while keys move).
  std::function<cluster::Result<void>(const std::vector<JournalStep>& steps)> journal;
  // A reason to stop now (guard trip, rollback request, engine stop), nullopt to go on. Also
  // ends the retries of an unreachable node (see deadline).
  std::function<std::optional<std::string>()> stop;
  // Test hook: called at named points (after_importing, after_target_node, ...).
  std::function<void(const char* point)> crash_point;
  // Called after every acknowledged MIGRATE with the number of keys it carried.
  std::function<void(int64_t keys)> on_keys;
  // Retry transport failures until then (rollback and recovery); none: fail at once.
  std::optional<Clock::TimePoint> deadline;
  std::string step_prefix;                       // journal step names are prefix + step
  std::vector<cluster::Endpoint> other_masters;  // get SETSLOT NODE after from and to
};

struct MoveResult {
  enum class Status { kDone, kStopped, kConflict, kError };
  Status status = Status::kDone;
  std::vector<int> finished;               // slots completed
  int64_t keys = 0;                        // keys MIGRATE acknowledged
  std::vector<std::string> conflict_keys;  // BUSYKEY with a different value (kConflict)
  std::vector<std::string> left_keys;      // left on the moving node (kToOwner, different)
  std::vector<std::string> warnings;
  // The receiving node refused keys with -OOM (maxmemory reached, noeviction): retrying cannot
  // help until memory is freed there, so the call returned at once (status kError).
  bool target_full = false;
  // The receiving node cannot read the keys' RDB format (it runs an older server): no retry
  // can help until it is upgraded, so the call returned at once (status kError).
  bool unreadable = false;
  // A node refused MIGRATE for the credentials slotguard gives it (NOPERM, NOAUTH, WRONGPASS:
  // the ACL user lacks a permission MIGRATE needs, e.g. +select on the target, or the password
  // is wrong): no retry can help until the ACL is fixed, so the call returned at once.
  bool refused = false;
  std::string message;  // why it stopped / failed
  // Whether trying the same move again later may succeed.
  bool retryable() const {
    return status != Status::kConflict && !target_full && !unreadable && !refused;
  }
  bool ok() const { return status == Status::kDone; }
};

// The slot move protocol over a Connector: pipelined SETSLOTs per group of slots, GETKEYSINSLOT
// + MIGRATE per slot, BUSYKEY handling. Holds no cluster state of its own.
class Migrator {
 public:
  Migrator(cluster::Connector& connector, Clock& clock, MigratorSettings settings,
           EngineObserver& observer, MigrateCounters& counters);

  // The forward protocol for `slots`, all owned by ends.from (stable or already open towards
  // ends.to): IMPORTING on to, MIGRATING on from, keys, NODE on to, from, others.
  MoveResult MoveGroup(const MoveEnds& ends, const std::vector<int>& slots, const StepControl& ctl);

  // The same for several groups, pipelined across groups while keeping every slot's order:
  // the round trip that gives group k SETSLOT NODE on the target also opens group k+1
  // (IMPORTING), and the one that gives it NODE on the source sends k+1's MIGRATING, so each
  // node pays one nodes.conf fsync per group instead of two. SETSLOT NODE on the other masters
  // runs on their own connections while the next group's keys move. The journal records of a
  // round are written while the keys before it move. `on_group_done` is called after each
  // group's NODE reached target and source. On a stop, conflict or error, result.finished holds
  // the groups that completed; at most one more group is open.
  MoveResult MoveSlots(const MoveEnds& ends, const std::vector<std::vector<int>>& groups,
                       const StepControl& ctl,
                       const std::function<void(const std::vector<int>&)>& on_group_done);

  // Moves every key of `slots` from ends.from to ends.to until GETKEYSINSLOT on ends.from
  // returns nothing (or only keys deliberately left). The slots must be open on ends.from.
  // `listed`: replies of GETKEYSINSLOT <slot> <getkeys_count> that ends.from ran after the slot
  // was MIGRATING there (sent in the same pipeline, after SETSLOT MIGRATING), used in place of
  // the first scan of those slots.
  MoveResult MoveKeys(const MoveEnds& ends, const std::vector<int>& slots, BusyKeyPolicy policy,
                      const StepControl& ctl, std::map<int, cluster::Reply> listed = {});

  // CLUSTER SETSLOT <slot> <args...> for every slot in one round trip. Returns the error
  // replies by slot (empty when all succeeded); fails on transport errors (retried until
  // ctl.deadline when one is set).
  cluster::Result<std::map<int, std::string>> SetSlots(const cluster::Endpoint& node,
                                                       const std::vector<int>& slots,
                                                       const std::vector<std::string>& args,
                                                       const StepControl& ctl);

  // Pipelined commands with the same retry rule as SetSlots. On a node that replicates SETSLOT
  // (Valkey 8), each SETSLOT gets TIMEOUT and one whose outcome is unknown (-NOREPLICAS,
  // -UNBLOCKED) is sent again (until ctl.deadline, else twice); its last reply is returned.
  cluster::Result<std::vector<cluster::Reply>> Run(const cluster::Endpoint& node,
                                                   const std::vector<cluster::Argv>& commands,
                                                   const StepControl& ctl);

  const MigratorSettings& settings() const { return settings_; }

  // Estimated bytes per key by slot (from SlotLoad), for bytes_per_migrate. Slots not listed
  // are bounded by key count only. Kept until replaced (a rollback uses the batch's).
  void SetKeyBytes(std::map<int, int64_t> per_key) { key_bytes_ = std::move(per_key); }
  // Keys per MIGRATE for `slot`: keys_per_migrate, fewer when its keys are big.
  size_t KeysPerMigrate(int slot) const;

  // Forgets the keys of the batch's MIGRATEs (call when a batch starts). Within a batch they are
  // remembered across calls, so its rollback knows which copies on the target are its own.
  void BeginBatch() {
    ours_.clear();
    unsettled_.clear();
    to_baseline_.clear();
  }

  // How `node` executes SETSLOT, probed once per node (COMMAND DOCS); a node that cannot be
  // asked counts as not replicating (a later SETSLOT to it fails on its own).
  SetSlotSupport SupportOf(const cluster::Endpoint& node);

  // True when `key` has the same type and contents on both nodes (ASKING reads).
  bool SameContent(const cluster::Endpoint& a, const cluster::Endpoint& b, const std::string& key);

 private:
  class KeyMove;   // one MoveKeys call (migrator.cc)
  class SlotMove;  // one MoveSlots call (migrator.cc)

  // Run without the SETSLOT handling: transport failures retried until ctl.deadline.
  cluster::Result<std::vector<cluster::Reply>> RunOnce(
      const cluster::Endpoint& node, const std::vector<cluster::Argv>& commands,
      const StepControl& ctl, const std::vector<std::vector<size_t>>& lanes);
  // One attempt: each lane (SplitIntoLanes) pipelined on its own connection, all sent before
  // any reply is read; the replies in the order of `commands`.
  cluster::Result<std::vector<cluster::Reply>> RunLanes(
      const cluster::Endpoint& node, const std::vector<cluster::Argv>& commands,
      const std::vector<std::vector<size_t>>& lanes);
  cluster::Argv ScanArgv(int slot, size_t skipped) const;
  cluster::Argv MigrateArgv(const cluster::Endpoint& to, bool replace,
                            const std::vector<std::string>& keys) const;
  // Keys `to` already holds in `slots` whose value differs from the one on `from`.
  cluster::Result<std::vector<std::string>> StrayConflicts(const MoveEnds& ends,
                                                           const std::vector<int>& slots,
                                                           const StepControl& ctl);
  std::string ConflictMessage(const MoveEnds& ends, const std::vector<std::string>& keys) const;
  struct EpochRead {
    std::vector<cluster::Reply> target_replies;  // of the commands sent before CLUSTER INFO
    cluster::Info source;
    cluster::Info target;
  };
  // `on_target` then CLUSTER INFO on the target, CLUSTER INFO on the source, in one round trip.
  cluster::Result<EpochRead> ReadEpochs(const MoveEnds& ends, std::vector<cluster::Argv> on_target);
  // Waits (bounded by settings.epoch_fence_timeout) until EpochFenceProblem finds nothing for
  // ends, and returns that read; fails when it does not clear in time (the group is then not
  // given to the target).
  cluster::Result<EpochRead> AwaitEpochFence(const MoveEnds& ends, const StepControl& ctl);
  // SETSLOT NODE for the group's first slot on the target (the importing path: the epoch bump),
  // then reads both nodes' config epochs back; CLUSTER BUMPEPOCH once when the target's is not
  // strictly above the source's. Fails when the claim was refused, its reply is unknown, or the
  // target's epoch cannot be seen above the source's: then no other slot of the group is claimed.
  cluster::Result<void> ClaimFirst(const MoveEnds& ends, const std::vector<int>& group);
  std::vector<std::string> NodeOnOthers(const MoveEnds& ends, const std::vector<int>& slots,
                                        const std::vector<cluster::Endpoint>& others);
  // After a failed MIGRATE of `keys`: they may now be on both nodes. BaselineUnsettled then
  // records (once no reply is in flight on the sending node) the value that MIGRATE carried.
  void NoteUnsettled(const std::vector<std::string>& keys);
  void BaselineUnsettled(const MoveEnds& ends);
  // Before a slot changes hands: a key a failed MIGRATE copied to ends.to and that has since
  // gone from ends.from (a client deleted it, or it expired) is deleted at ends.to too, unless
  // its copy there changed (a client wrote it through -ASK); otherwise handing the slot over
  // would bring the deleted key back.
  cluster::Result<void> ReconcileUnsettled(const MoveEnds& ends, const std::vector<int>& slots,
                                           const StepControl& ctl,
                                           std::vector<std::string>& warnings);
  void CountFailure(const std::string& reason, bool counted, bool ioerr);
  void Backoff(int consecutive);

  cluster::Connector& connector_;
  Clock& clock_;
  MigratorSettings settings_;
  EngineObserver& observer_;
  MigrateCounters& counters_;
  // Keys this batch's MIGRATEs carried, failed or acknowledged: a copy of one of them at the
  // receiving node is the batch's own doing, never a user's value to protect (DecideBusyKey).
  std::set<std::string> ours_;
  // Keys of failed MIGRATEs the receiving node holds: that node and its copy's DUMP as the
  // failure left it; dropped once a MIGRATE of that very key succeeds.
  std::map<std::string, std::pair<std::string, std::string>> unsettled_;
  std::vector<std::string> to_baseline_;  // noted, value not read yet
  std::map<int, int64_t> key_bytes_;      // estimated bytes per key, by slot
  std::mutex support_mutex_;              // SupportOf runs from NodeOnOthers' thread too
  std::map<cluster::Endpoint, SetSlotSupport> support_;
};

// SETSLOT NODE <target> on the target for the slots of a group after the first, in one round
// trip (the first goes alone, Migrator::ClaimFirst); with `with_first`, for every slot of the
// group, the first made STABLE before its NODE like the others (when the target's config epoch
// was read above the source's already, so no claim needs to bump it).
// SETSLOT NODE on a node that imports the slot bumps its config epoch (when it is not already
// the unique highest) and broadcasts a PONG with its slot table to every node, once per call: a
// group of 200 slots made every node of the cluster process 200 full slot tables (it slowed the
// next SETSLOT round from ~15 ms to ~130 ms for 2000 slots). So only the first slot keeps the
// importing path (the bump, before any other slot changes hands: from then on the target's
// claim outranks the source's) and the last (its PONG tells every node, replicas too, about the
// whole group); every slot between is made STABLE right before its NODE (`stable_first`; off
// where SETSLOT is replicated, Valkey 8: there each STABLE costs a replica round trip). A client
// sent to the target with ASKING between the two gets MOVED to the source, which sends it back with
// ASK. Safe only after Migrator::ClaimFirst: these claims (all but the last) carry no bump and
// would lose to the source's if the target's epoch were not above it.
std::vector<cluster::Argv> NodeOnTargetArgv(const std::vector<int>& slots,
                                            const std::string& target_id, bool stable_first = true,
                                            bool with_first = false);
// The error replies of NodeOnTargetArgv's commands, by slot.
std::map<int, std::string> NodeOnTargetErrors(const std::vector<cluster::Reply>& replies,
                                              const std::vector<int>& slots,
                                              bool stable_first = true, bool with_first = false);

// Why the target cannot be given the slots yet, from both nodes' CLUSTER INFO: the epoch bump of
// SETSLOT NODE must put the target's config epoch above the source's, which the target can only
// do once it knows the source's epoch (cluster_current_epoch >= the source's cluster_my_epoch),
// and not while both share one epoch (collision resolution may raise the source's). Otherwise a
// claim of the source gossiped before it got SETSLOT NODE would outrank the target's, and the
// target would hand the slots back and delete their keys (Redis' dirty-slot rule). A move back
// right after a move forward (rollback) meets this: the old target bumped its epoch moments ago.
std::optional<std::string> EpochFenceProblem(const cluster::Info& source_info,
                                             const cluster::Info& target_info);

// Why the target's claims would not outrank the source's, from both nodes' CLUSTER INFO read
// after the first claim: the target's own config epoch must be strictly above the source's.
std::optional<std::string> ClaimOutranksProblem(const cluster::Info& source_info,
                                                const cluster::Info& target_info);

// How a MIGRATE reply reads.
enum class MigrateOutcome { kOk, kNoKey, kBusyKey, kIoErr, kError };
MigrateOutcome ClassifyMigrateReply(const cluster::Reply& reply);

// Pure. Whether a MIGRATE error is an ACL or password refusal, from the source itself or passed
// on from the target ("ERR Target instance replied with error: NOPERM ..."): permanent.
bool IsCredentialRefusal(const std::string& error);

}  // namespace slotguard::agent
