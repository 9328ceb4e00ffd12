#include "agent/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "agent/cluster_snapshot.h"
#include "agent/guards.h"
#include "agent/journal.h"
#include "agent/migrator.h"
#include "agent/preflight.h"
#include "agent/recovery.h"
#include "agent/setslot_support.h"
#include "agent/slot_load.h"
#include "cluster/connection_pool.h"
#include "cluster/slot_map.h"

namespace slotguard::agent {
namespace {

constexpr const char* kStoppedReason =
    "stopped on request (the agent is shutting down); the journal keeps the batch open and the "
    "next start converges it";

// How old the snapshot that verified the previous batch may be for the next batch's preflight.
// Batches of one reshard follow each other within milliseconds; a batch the daemon starts later
// (queue, approval) reads the cluster again.
constexpr std::chrono::milliseconds kVerifiedSnapshotReuse{500};

// Batch stage 4, running: as the engine moves, verifies or converges it.
// A batch as the engine works on it (from a Batch + snapshot, or from the journal).
struct BatchInfo {
  std::string id;
  std::string source_id;
  cluster::Endpoint source;
  std::string target_id;
  cluster::Endpoint target;
  std::vector<int> slots;
  FormerEnds former;                         // set by Converge after a failover of an end
  std::vector<std::string> source_replicas;  // when the batch started (see JournalBatch)
  std::vector<std::string> target_replicas;
};

std::vector<std::vector<int>> Groups(const std::vector<int>& slots, int size) {
  std::vector<std::vector<int>> out;
  size = std::max(1, size);
  for (size_t i = 0; i < slots.size(); i += size) {
    size_t end = std::min(slots.size(), i + static_cast<size_t>(size));
    out.emplace_back(slots.begin() + i, slots.begin() + end);
  }
  return out;
}

std::optional<long> ConfigNumber(const cluster::Reply& r) {
  if (r.type != cluster::Reply::Type::kArray || r.elements.size() < 2) return std::nullopt;
  try {
    return std::stol(r.elements[1].str);
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace

class EngineImpl {
 public:
  EngineImpl(cluster::Connector& connector, Clock& clock, EngineOptions options,
             EngineObserver& observer, cluster::Connector* guard_connector);

  ~EngineImpl();

  cluster::Result<BatchOutcome> RunBatch(const Batch& batch,
                                         const std::function<void()>& start_gate);
  void RequestRollback(RollbackTrigger trigger, std::string reason);
  void RequestRollback(RollbackTrigger trigger, std::string reason, const std::string& batch_id);
  void RequestStop();
  bool Halted() const;
  cluster::Result<RecoveryReport> Recover();
  cluster::Result<void> JournalAppend(const nlohmann::json& record);
  cluster::Result<void> AcquireLease();
  void ReleaseLease();

 private:
  struct ConvergeOutcome {
    bool ok = false;
    bool at_target = false;
    // A failure that another look may get past (a refused or failed SETSLOT or MIGRATE round,
    // views still settling); not a conflict that needs the operator, nor a stop.
    bool retryable = false;
    // The ends converged with: a promoted replica in place of an end that failed over.
    cluster::Endpoint source;
    cluster::Endpoint target;
    std::string source_id;
    std::string target_id;
    int forward = 0;  // slots that ended at the target
    int back = 0;     // slots that ended at the source
    // The target refused keys with -OOM: finishing forward is impossible until memory is freed.
    bool target_full = false;
    std::vector<std::string> warnings;
    std::string error;
  };

  static MigratorSettings MakeMigratorSettings(const EngineOptions& o);

  // Appends `record` (after any pending ones) with one fsync.
  cluster::Result<void> Append(nlohmann::json record);

  // Writes the pending records, then `records`, with one fsync. On failure none of them is in
  // the journal (AppendAll cuts the file back): the pending ones stay pending, as they must
  // still precede the next step, and the step `records` announce must not run. The failure is
  // logged, counted and kept in journal_error_, which stops the batch (RunBatch, Recover).
  // `fenced`: the records announce steps, which run only while the migration lease is still ours
  // with our token (checked before the write, so a lost lease stops the batch like a failed
  // write: the step does not run, nothing is rolled back, the journal keeps the batch open).
  cluster::Result<void> Write(std::vector<nlohmann::json> records, bool fenced = true);

  std::optional<std::string> JournalError();

  cluster::Result<Journal*> EnsureJournal();

  // Takes the migration lease unless held (a refusal names the holder; nothing was touched).
  // `fresh` is set when it was not held before: what was read before then is stale.
  cluster::Result<void> TakeLease(bool& fresh);

  // Earlier lease holders that never released it, for an operator facing what they left.
  std::string UnreleasedNote() const;

  std::vector<cluster::Endpoint> Seeds(const BatchInfo* info = nullptr) const;

  // Read once per node and engine: settings change rarely and preflight runs per batch.
  std::map<std::string, NodeSettings> ReadSettings(const ClusterSnapshot& s);

  // The batch's sizes (the plan's, else measured on the source: two pipelined round trips for
  // all its slots) bound each MIGRATE's bytes and must fit the target's maxmemory (one INFO).
  cluster::Result<void> SizeUp(const ResolvedBatch& b);

  void Warn(const std::string& text);

  // MIGRATE runs as the ACL user slotguard connects as, on both ends: the source's MIGRATE,
  // and on the target SELECT and RESTORE-ASKING over the source's own connection. A refusal
  // there would come only once slots are open, and then no key could move either way, so the
  // same commands are tried first where they cannot change anything (a key that does not exist,
  // a payload that is not one). Only the ACL's answer counts; nullopt when nothing is refused.
  // Once per source and target while the lease stays held (a run's credentials do not change
  // between its batches; ACLs changed between runs are probed again).
  std::optional<std::string> ProbeMigratePermissions(const ResolvedBatch& batch);

  // A named step (StepHooks). A hold there ends when a stop or rollback is asked for meanwhile,
  // so a test can hold as long as it needs and let go by asking.
  void CrashPoint(const std::string& point);

  std::optional<std::string> StopReason(GuardMonitor* monitor, const GuardSettings& gs);

  StepControl BaseControl(const BatchInfo& info, std::vector<cluster::Endpoint> others);

  std::vector<cluster::Endpoint> OtherMasters(const ClusterSnapshot& s, const BatchInfo& info);

  // The snapshot a batch starts from: the last batch's verifying one while fresh, else a new
  // read, waited on while two masters share a config epoch.
  cluster::Result<ClusterSnapshot> BatchSnapshot();
  // The engine's guard settings with the batch's own overrides.
  GuardSettings BatchGuardSettings(const Batch& batch) const;
  static BatchInfo MakeBatchInfo(const Batch& batch, const ResolvedBatch& resolved,
                                 const ClusterSnapshot& snapshot);
  // The keys in `slots` on `node` (0 when it cannot be read): the "mid_keys" test hook's total.
  int64_t CountKeys(const cluster::Endpoint& node, const std::vector<int>& slots);

  // RunBatch's stages, in the order they run.
  struct BatchRun {  // one RunBatch: its batch, its clock, the outcome its stages fill in
    const Batch& batch;
    Clock::TimePoint started;
    BatchOutcome outcome;
  };
  struct PreparedBatch {  // what preflight settled for a batch about to move
    ClusterSnapshot snapshot;
    ResolvedBatch resolved;
    std::vector<std::string> warnings;
  };
  double SecondsSince(const BatchRun& run);
  // Clears what the previous batch left and takes over a rollback asked for this one early.
  void BeginRun(const Batch& batch);
  // Journal, lease, snapshot, resolve, preflight, MIGRATE permissions, sizes: nothing touched.
  cluster::Result<PreparedBatch> PrepareBatch(const BatchRun& run);
  // The steps under the armed guards; the reason they stopped, if they did.
  std::optional<std::string> MoveBatch(BatchRun& run, const BatchInfo& info,
                                       const ClusterSnapshot& snapshot, GuardMonitor& monitor,
                                       const GuardSettings& gs);
  // Waits for every view to agree on the target; the reason it did not, if so.
  std::optional<std::string> VerifyBatch(const BatchRun& run, const BatchInfo& info,
                                         const std::vector<cluster::Endpoint>& endpoints,
                                         GuardMonitor& monitor, const GuardSettings& gs);
  cluster::Result<BatchOutcome> RollBackBatch(BatchRun& run, const BatchInfo& info,
                                              GuardMonitor& monitor,
                                              const std::string& stop_reason);
  // Stopped by RequestStop: the journal keeps the batch open for the next Recover().
  BatchOutcome Stopped(BatchRun& run);
  // A record that did not become durable (or a lost lease) stops the batch there: no later step,
  // and no rollback (its steps would need the same journal). Each step that ran is journaled and
  // leaves every key where clients find it (-ASK covers open slots), so the next Recover()
  // converges it.
  BatchOutcome JournalStopped(BatchRun& run, const std::string& error);

  cluster::Result<std::vector<SlotObservation>> ObserveSlots(const BatchInfo& info,
                                                             const std::vector<int>& slots,
                                                             const StepControl& ctl);
  // `known`: the nodes the batch's preflight read; the first look reads just those, in one
  // round trip (later looks rediscover the cluster).
  bool WaitConvergence(const BatchInfo& info, const std::string& owner_id,
                       const std::vector<cluster::Endpoint>& known, std::chrono::seconds timeout,
                       GuardMonitor* monitor, const GuardSettings& gs, std::string& why);
  std::optional<std::string> SettleAt(const BatchInfo& info, bool at_target,
                                      const std::vector<int>& slots, const StepControl& ctl,
                                      std::vector<std::string>& warnings);
  std::optional<std::string> CloseAtSource(const BatchInfo& info, const std::vector<int>& slots,
                                           const std::map<int, SlotObservation>& obs,
                                           const StepControl& ctl,
                                           std::vector<std::string>& warnings);
  // Observes, plans and acts until every slot has one owner with every key, looking again
  // after a failure that may pass (a transient -BUSY, a refused round, gossip still settling)
  // until options_.rollback_timeout. Once a plan goes back to the source, later looks do too.
  ConvergeOutcome Converge(const BatchInfo& info, ConvergeMode mode,
                           const std::function<void(const ConvergencePlan&)>& on_plan);
  ConvergeOutcome ConvergeOnce(const BatchInfo& info, ConvergeMode mode, Clock::TimePoint deadline,
                               const std::function<void(const ConvergencePlan&)>& on_plan);
  class ConvergeAttempt;  // one ConvergeOnce

  cluster::Connector& connector_;
  Clock& clock_;
  EngineOptions options_;
  EngineObserver& observer_;
  MigrateCounters counters_;
  Migrator migrator_;
  cluster::Connector* guard_connector_ = nullptr;
  std::unique_ptr<cluster::ConnectionPool> own_guard_pool_;
  std::shared_ptr<Journal> journal_;
  std::unique_ptr<GuardMonitor> monitor_;  // after the connectors: destroyed (joined) first
  std::unique_ptr<cluster::ConnectionPool> own_lease_pool_;
  std::unique_ptr<Lease> own_lease_;  // after its pool: released and joined first
  Lease* lease_ = nullptr;            // own_lease_, options_.shared.lease or none
  std::vector<nlohmann::json> pending_records_;
  std::map<std::string, NodeSettings> settings_cache_;  // written with the next fsync'd record
  // The snapshot that verified the last batch, and when: the next batch's preflight uses it
  // when it is fresh (consecutive batches of one reshard) instead of reading every node again.
  std::optional<std::pair<ClusterSnapshot, Clock::TimePoint>> verified_;

  std::atomic<bool> halt_{false};  // RequestStop: sticky

  struct PendingRollback {
    std::string batch_id;
    RollbackTrigger trigger;
    std::string reason;
  };
  std::mutex mutex_;
  std::optional<std::pair<RollbackTrigger, std::string>> requested_;
  std::optional<PendingRollback> pending_;    // for a batch not started yet
  std::optional<std::string> journal_error_;  // the first failed write of this batch/recovery
  bool fenced_ = false;  // ... and it failed because the lease was lost (not a write)
  std::optional<std::string> running_;  // the batch RunBatch is running
  std::string last_finished_;           // the batch RunBatch last returned from
  std::set<std::string> warned_;
  std::set<std::pair<std::string, std::string>> probed_;  // source, target: MIGRATE allowed
};

EngineImpl::EngineImpl(cluster::Connector& connector, Clock& clock, EngineOptions options,
                       EngineObserver& observer, cluster::Connector* guard_connector)
    : connector_(connector),
      clock_(clock),
      options_(std::move(options)),
      observer_(observer),
      migrator_(connector, clock, MakeMigratorSettings(options_), observer, counters_) {
  if (guard_connector != nullptr) {
    guard_connector_ = guard_connector;
  } else {
    cluster::ConnectOptions co;
    co.connect_timeout = std::chrono::milliseconds(500);
    co.io_timeout = options_.guard_io_timeout;
    co.credentials = options_.credentials;
    co.tls = options_.tls;
    own_guard_pool_ = std::make_unique<cluster::ConnectionPool>(co);
    guard_connector_ = own_guard_pool_.get();
  }
  monitor_ = std::make_unique<GuardMonitor>(*guard_connector_, clock_, observer_, counters_,
                                            options_.guards.interval);
  if (options_.shared.lease != nullptr) {
    lease_ = options_.shared.lease;
  } else if (options_.lease.enabled) {
    // Its renewal thread needs connections nobody else uses; an injected guard connector
    // (tests) is shared, as the fakes are thread-safe.
    cluster::Connector* lease_connector = guard_connector;
    if (lease_connector == nullptr) {
      cluster::ConnectOptions co;
      co.connect_timeout = std::chrono::milliseconds(1000);
      co.io_timeout = std::chrono::milliseconds(2000);
      co.credentials = options_.credentials;
      co.tls = options_.tls;
      own_lease_pool_ = std::make_unique<cluster::ConnectionPool>(co);
      lease_connector = own_lease_pool_.get();
    }
    own_lease_ = std::make_unique<Lease>(*lease_connector, options_.seeds, options_.lease,
                                         options_.journal_dir);
    lease_ = own_lease_.get();
  }
  if (!options_.step_hooks) options_.step_hooks = StepHooksFromEnvironment(clock_);
}

EngineImpl::~EngineImpl() {
  // A lost "done" record only makes the next recovery look at a batch that is whole at the
  // target; Write logs and counts the failure.
  if (journal_ && !pending_records_.empty()) (void)Write({}, false);
  ReleaseLease();
}

void EngineImpl::RequestRollback(RollbackTrigger trigger, std::string reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!requested_) requested_ = std::make_pair(trigger, std::move(reason));
}

void EngineImpl::RequestRollback(RollbackTrigger trigger, std::string reason,
                                 const std::string& batch_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (running_ && *running_ == batch_id) {
    if (!requested_) requested_ = std::make_pair(trigger, std::move(reason));
  } else if (running_ || batch_id != last_finished_) {
    // Not started yet: RunBatch of that batch picks it up.
    pending_ = PendingRollback{batch_id, trigger, std::move(reason)};
  }
  // Otherwise the batch has just finished: too late, dropped (the caller sees the outcome).
}

void EngineImpl::RequestStop() { halt_ = true; }

bool EngineImpl::Halted() const { return halt_.load(); }

cluster::Result<void> EngineImpl::JournalAppend(const nlohmann::json& record) {
  auto j = EnsureJournal();
  if (!j) return tl::unexpected(j.error());
  return Write({record}, false);  // a caller's record announces no step: no lease needed
}

cluster::Result<void> EngineImpl::AcquireLease() {
  auto j = EnsureJournal();
  if (!j) return tl::unexpected(j.error());
  bool fresh = false;
  return TakeLease(fresh);
}

void EngineImpl::ReleaseLease() {
  // A shared lease is the runner's to release; our pending records still go out.
  if (!own_lease_) {
    if (journal_ && !pending_records_.empty()) (void)Write({}, false);
    return;
  }
  // Clean when the journal has no open batch (pending records written first, so a batch just
  // done counts as done); otherwise the lease keeps our entry for the next holder to read.
  bool clean = true;
  if (journal_) {
    if (!pending_records_.empty()) (void)Write({}, false);
    auto records = Journal::Read(options_.journal_dir);
    clean = records && ReplayJournal(*records).OpenBatches().empty();
  }
  lease_->Release(clean);
}

MigratorSettings EngineImpl::MakeMigratorSettings(const EngineOptions& o) {
  MigratorSettings s;
  s.getkeys_count = o.getkeys_count;
  s.keys_per_migrate = o.pipeline;
  s.migrate_timeout = o.migrate_timeout;
  // Connections wait migrate_timeout + 3 s for a reply (cli_engine.cc, daemon.cc): a node
  // waiting for its replicas must answer -NOREPLICAS well before that.
  s.setslot_replica_timeout = o.migrate_timeout + std::chrono::milliseconds(1000);
  s.replace = o.replace;
  s.auth = o.credentials;
  s.migrates_per_round = o.migrates_per_round;
  s.bytes_per_migrate = o.migrate_bytes;
  return s;
}

cluster::Result<void> EngineImpl::Append(nlohmann::json record) {
  std::vector<nlohmann::json> records;
  records.push_back(std::move(record));
  return Write(std::move(records));
}

cluster::Result<void> EngineImpl::Write(std::vector<nlohmann::json> records, bool fenced) {
  if (fenced && lease_) {
    if (auto lost = lease_->Check()) {
      const std::string why = "no further step without the migration lease: " + *lost;
      spdlog::error("{}", why);
      std::lock_guard<std::mutex> lock(mutex_);
      fenced_ = true;
      if (!journal_error_) journal_error_ = why;
      return cluster::MakeError(why);
    }
  }
  std::vector<nlohmann::json> all;
  all.swap(pending_records_);
  const size_t pending = all.size();
  for (auto& r : records) all.push_back(std::move(r));
  auto w = journal_->AppendAll(all);
  if (w) return w;
  pending_records_.insert(pending_records_.begin(), all.begin(), all.begin() + pending);
  spdlog::error("journal write failed; the step it announced does not run: {}", w.error().message);
  observer_.OnJournalWriteFailure();
  std::lock_guard<std::mutex> lock(mutex_);
  if (!journal_error_) journal_error_ = w.error().message;
  return w;
}

std::optional<std::string> EngineImpl::JournalError() {
  std::lock_guard<std::mutex> lock(mutex_);
  return journal_error_;
}

cluster::Result<Journal*> EngineImpl::EnsureJournal() {
  if (!journal_ && options_.shared.journal) journal_ = options_.shared.journal;
  if (!journal_) {
    auto j = Journal::Open(options_.journal_dir);
    if (!j) return tl::unexpected(j.error());
    journal_ = std::move(*j);
  }
  return journal_.get();
}

cluster::Result<void> EngineImpl::TakeLease(bool& fresh) {
  fresh = false;
  if (!lease_ || lease_->held()) return {};
  fresh = true;
  // A holder with this journal dir on this host is dead when this journal records its token:
  // it wrote here, and we hold the journal's flock, which only a dead process gives up.
  auto proven_dead = [this](const LeaseHolder& holder) {
    auto records = Journal::Read(options_.journal_dir);
    if (!records) return false;
    for (const auto& r : *records) {
      if (r.value("type", "") == "lease" && r.value("token", int64_t{-1}) == holder.token) {
        return true;
      }
    }
    return false;
  };
  if (auto a = lease_->Acquire(proven_dead); !a) return a;
  // Durable before any step, so a restart after kill -9 can prove the holder was us.
  if (!journal_) return {};
  std::vector<nlohmann::json> record;
  record.push_back(nlohmann::json{{"type", "lease"}, {"token", lease_->token()}});
  return Write(std::move(record), false);
}

std::string EngineImpl::UnreleasedNote() const {
  if (!lease_) return "";
  std::string note;
  for (const auto& h : lease_->unreleased()) {
    note +=
        "; an earlier holder of the migration lease never released it (it died or stopped "
        "with a batch open): " +
        h.Describe() + ": rerun with --journal " + h.journal + " on " + h.host +
        " (or start the daemon whose journal_dir it is) to converge what it left";
  }
  return note;
}

std::vector<cluster::Endpoint> EngineImpl::Seeds(const BatchInfo* info) const {
  std::vector<cluster::Endpoint> seeds = options_.seeds;
  if (info) {
    seeds.push_back(info->source);
    seeds.push_back(info->target);
  }
  return seeds;
}

std::map<std::string, NodeSettings> EngineImpl::ReadSettings(const ClusterSnapshot& s) {
  std::map<std::string, NodeSettings> out;
  for (const auto* m : s.Masters()) {
    if (auto it = settings_cache_.find(m->endpoint.ToString()); it != settings_cache_.end()) {
      out[it->first] = it->second;
      continue;
    }
    auto r = connector_.Get(m->endpoint)
                 .Pipeline({{"CONFIG", "GET", "cluster-node-timeout"},
                            {"CONFIG", "GET", "cluster-require-full-coverage"},
                            {"CONFIG", "GET", "cluster-migration-barrier"},
                            {"INFO", "server"}});
    if (!r) continue;
    NodeSettings ns;
    ns.cluster_node_timeout_ms = ConfigNumber((*r)[0]);
    if ((*r)[1].type == cluster::Reply::Type::kArray && (*r)[1].elements.size() >= 2) {
      ns.cluster_require_full_coverage = (*r)[1].elements[1].str;
    }
    ns.cluster_migration_barrier = ConfigNumber((*r)[2]);
    // Read once per master and engine (this cache): logged once, as the first connection.
    if (!(*r)[3].IsError()) {
      if (auto server = cluster::ParseServerVersion((*r)[3].str)) {
        spdlog::info("node {} runs {}", m->endpoint.ToString(), server->ToString());
        ns.server = std::move(*server);
      } else {
        spdlog::warn("node {}: {}", m->endpoint.ToString(), server.error().message);
      }
    }
    out[m->endpoint.ToString()] = ns;
    settings_cache_[m->endpoint.ToString()] = ns;
  }
  return out;
}

cluster::Result<void> EngineImpl::SizeUp(const ResolvedBatch& b) {
  const std::string prefix = "preflight for batch " + b.batch.id + ": ";
  const std::string target = b.target.ToString() + " (" + b.target_id + ")";
  auto memory = ReadNodeMemory(connector_.Get(b.target));
  if (!memory) {
    return cluster::MakeError(prefix + "cannot read INFO memory of target " + target + ": " +
                              memory.error().message);
  }
  if (memory->maxmemory <= 0 && options_.migrate_bytes <= 0) return {};
  std::map<int, SlotLoad> loads;
  std::vector<int> missing;
  for (int slot : b.batch.slots) {
    if (auto it = b.batch.loads.find(slot); it != b.batch.loads.end()) {
      loads[slot] = it->second;
    } else {
      missing.push_back(slot);
    }
  }
  if (!missing.empty()) {
    auto measured = MeasureSlotLoads(connector_.Get(b.source), missing);
    if (!measured) {
      return cluster::MakeError(prefix + "cannot measure the slots on source " +
                                b.source.ToString() + ": " + measured.error().message);
    }
    loads.insert(measured->begin(), measured->end());
  }
  int64_t estimated = 0;
  std::map<int, int64_t> per_key;
  for (const auto& [slot, load] : loads) {
    estimated += load.bytes;
    if (load.keys > 0) per_key[slot] = load.bytes / load.keys;
  }
  if (auto why = HeadroomProblem(target, *memory, estimated)) {
    return cluster::MakeError(prefix + *why);
  }
  migrator_.SetKeyBytes(std::move(per_key));
  return {};
}

void EngineImpl::Warn(const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (warned_.insert(text).second) spdlog::warn("{}", text);
}

std::optional<std::string> EngineImpl::ProbeMigratePermissions(const ResolvedBatch& batch) {
  if (!options_.credentials || !options_.credentials->user) return std::nullopt;
  const auto pair = std::make_pair(batch.source.ToString(), batch.target.ToString());
  if (probed_.count(pair)) return std::nullopt;
  const std::string probe = "{slotguard}:migrate-permission-probe";
  const std::vector<std::pair<cluster::Endpoint, cluster::Argv>> tries = {
      {batch.source,
       {"MIGRATE", batch.target.host, std::to_string(batch.target.port), "", "0", "1", "KEYS",
        probe}},
      {batch.target, {"SELECT", "0"}},
      {batch.target, {"RESTORE-ASKING", probe, "0", "not-a-dump-payload"}},
  };
  for (const auto& [node, argv] : tries) {
    auto reply = connector_.Get(node).Command(argv);
    if (!reply || !reply->IsError() || reply->str.rfind("NOPERM", 0) != 0) continue;
    return "the ACL user " + *options_.credentials->user + " cannot run " + argv[0] + " on " +
           node.ToString() + ", which moving keys needs (" + reply->str +
           "): see README \"Least-privilege ACL users\". Nothing was changed.";
  }
  probed_.insert(pair);
  return std::nullopt;
}

void EngineImpl::CrashPoint(const std::string& point) {
  auto asked = [this] {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::make_pair(Halted(), requested_.has_value());
  };
  options_.step_hooks->Reached(point, [asked, before = asked()] { return asked() != before; });
}

std::optional<std::string> EngineImpl::StopReason(GuardMonitor* monitor, const GuardSettings& gs) {
  if (Halted()) return std::string(kStoppedReason);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (requested_) {
      return "rollback requested (" + ToString(requested_->first) + "): " + requested_->second;
    }
  }
  if (monitor) {
    if (gs.enabled && counters_.counted.load() > gs.migrate_failures) {
      monitor->Trip(
          {"migrate_failures", std::to_string(counters_.counted.load()) +
                                   " MIGRATE failures in this batch, over the threshold of " +
                                   std::to_string(gs.migrate_failures)});
    }
    if (auto trip = monitor->tripped()) return "guard " + trip->guard + " tripped: " + trip->reason;
  }
  return std::nullopt;
}

StepControl EngineImpl::BaseControl(const BatchInfo& info, std::vector<cluster::Endpoint> others) {
  StepControl ctl;
  ctl.journal = [this, id = info.id](const std::vector<JournalStep>& steps) {
    std::vector<nlohmann::json> records;
    for (const auto& st : steps) records.push_back(StepRecord(id, st.step, st.slots));
    return Write(std::move(records));
  };
  ctl.on_keys = [this](int64_t n) { observer_.OnKeysMigrated(n); };
  ctl.other_masters = std::move(others);
  return ctl;
}

std::vector<cluster::Endpoint> EngineImpl::OtherMasters(const ClusterSnapshot& s,
                                                        const BatchInfo& info) {
  std::vector<cluster::Endpoint> out;
  for (const auto* m : s.Masters()) {
    if (m->id == info.source_id || m->id == info.target_id) continue;
    if (m->flags.fail || m->flags.noaddr) continue;
    out.push_back(m->endpoint);
  }
  return out;
}

cluster::Result<std::vector<SlotObservation>> EngineImpl::ObserveSlots(
    const BatchInfo& info, const std::vector<int>& slots, const StepControl& ctl) {
  std::vector<cluster::Argv> cmds{{"CLUSTER", "NODES"}};
  for (int slot : slots) cmds.push_back({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)});
  auto a = migrator_.Run(info.source, cmds, ctl);
  if (!a) return tl::unexpected(a.error());
  auto b = migrator_.Run(info.target, cmds, ctl);
  if (!b) return tl::unexpected(b.error());
  auto parse = [](const cluster::Reply& r,
                  const cluster::Endpoint& e) -> cluster::Result<std::vector<cluster::NodeEntry>> {
    if (r.IsError()) return cluster::MakeError(e.ToString() + ": CLUSTER NODES: " + r.str);
    return cluster::ParseClusterNodes(r.str);
  };
  auto av = parse((*a)[0], info.source);
  if (!av) return tl::unexpected(av.error());
  auto bv = parse((*b)[0], info.target);
  if (!bv) return tl::unexpected(bv.error());
  std::vector<SlotObservation> out;
  out.reserve(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    const auto& ra = (*a)[i + 1];
    const auto& rb = (*b)[i + 1];
    if (ra.IsError() || rb.IsError()) {
      return cluster::MakeError("COUNTKEYSINSLOT " + std::to_string(slots[i]) + ": " +
                                (ra.IsError() ? ra.str : rb.str));
    }
    out.push_back(Observe(slots[i], info.source_id, *av, info.target_id, *bv, ra.integer,
                          rb.integer, info.former));
  }
  return out;
}

bool EngineImpl::WaitConvergence(const BatchInfo& info, const std::string& owner_id,
                                 const std::vector<cluster::Endpoint>& known,
                                 std::chrono::seconds timeout, GuardMonitor* monitor,
                                 const GuardSettings& gs, std::string& why) {
  const auto deadline = clock_.Now() + timeout;
  std::set<int> mine(info.slots.begin(), info.slots.end());
  // The nodes to read in one round trip: `known`, then those of the last look as long as it
  // read every node it found (a node that did not answer, or one not read, means looking
  // again from the seeds).
  std::vector<cluster::Endpoint> quick = known;
  while (true) {
    if (auto stop = StopReason(monitor, gs)) {
      why = *stop;
      return false;
    }
    auto s = !quick.empty() ? cluster::Result<ClusterSnapshot>(ReadSnapshot(connector_, quick))
                            : TakeSnapshot(connector_, Seeds(&info));
    quick.clear();
    spdlog::debug("batch {}: convergence snapshot taken", info.id);
    if (s) {
      bool whole = s->views.size() == s->reports.size();
      if (!whole) why = "not every node answered";
      for (const auto& n : s->nodes) {
        // A node the quick look did not read (it joined meanwhile): look again, all of them.
        if (whole && !n.endpoint.host.empty() && !s->ReportFor(n.endpoint)) {
          whole = false;
          why = "node " + n.endpoint.ToString() + " was not read";
        }
      }
      bool ok = whole;
      for (int slot : info.slots) {
        if (!ok) break;
        if (s->judgement.Owner(slot) != owner_id) {
          ok = false;
          why = "slot " + std::to_string(slot) + " is not yet owned by " + owner_id.substr(0, 8) +
                " in every view";
          for (const auto& v : s->views) {
            if (cluster::SlotMap(v.nodes).Owner(slot) != owner_id) {
              why += " (not in " + v.reporter.ToString() + "'s)";
              break;
            }
          }
        }
      }
      for (const auto& o : s->judgement.open_slots) {
        if (ok && mine.count(o.slot)) {
          ok = false;
          why = "slot " + std::to_string(o.slot) + " still open on " + o.node.ToString();
        }
      }
      if (ok) {
        verified_.emplace(std::move(*s), clock_.Now());
        return true;
      }
      if (whole) {
        for (const auto& r : s->reports) quick.push_back(r.endpoint);
      }
    } else {
      why = s.error().message;
    }
    spdlog::debug("batch {}: not converged yet: {}", info.id, why);
    if (clock_.Now() >= deadline) {
      why = "nodes did not converge within " + std::to_string(timeout.count()) + " s: " + why;
      return false;
    }
    clock_.SleepFor(std::chrono::milliseconds(5));
  }
}

namespace {

std::optional<std::string> CheckSetSlots(const cluster::Result<std::map<int, std::string>>& r,
                                         const std::string& what, const cluster::Endpoint& node) {
  if (!r) return what + " on " + node.ToString() + ": " + r.error().message;
  for (const auto& [slot, err] : *r) {
    if (IsReplicaReply(err)) continue;
    return what + " " + std::to_string(slot) + " on " + node.ToString() + ": " + err;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> EngineImpl::CloseAtSource(const BatchInfo& info,
                                                     const std::vector<int>& slots,
                                                     const std::map<int, SlotObservation>& obs,
                                                     const StepControl& ctl,
                                                     std::vector<std::string>& warnings) {
  if (slots.empty()) return std::nullopt;
  // A is not MIGRATING these slots and B holds none of their keys (PlanConvergence sends any
  // other slot forward first), so no client and no key can be at B: closing is enough.
  if (auto j = Append(StepRecord(info.id, "close_at_source", slots)); !j) {
    return j.error().message;
  }
  std::vector<int> b_open;
  std::vector<int> a_open;
  for (int slot : slots) {
    const auto& x = obs.at(slot);
    if (x.target_importing || x.target_migrating) b_open.push_back(slot);
    if (x.source_importing) a_open.push_back(slot);
  }
  if (auto e = CheckSetSlots(migrator_.SetSlots(info.target, b_open, {"STABLE"}, ctl),
                             "SETSLOT STABLE", info.target)) {
    return e;
  }
  if (auto e = CheckSetSlots(migrator_.SetSlots(info.source, a_open, {"STABLE"}, ctl),
                             "SETSLOT STABLE", info.source)) {
    return e;
  }
  if (auto e = CheckSetSlots(migrator_.SetSlots(info.target, slots, {"NODE", info.source_id}, ctl),
                             "SETSLOT NODE", info.target)) {
    return e;
  }
  StepControl once = ctl;
  once.deadline.reset();
  for (const auto& m : ctl.other_masters) {
    auto r = migrator_.SetSlots(m, slots, {"NODE", info.source_id}, once);
    if (auto e = CheckSetSlots(r, "SETSLOT NODE", m)) {
      warnings.push_back(*e + " (it will learn by gossip)");
    }
  }
  return std::nullopt;
}

namespace {

// SettleAt's slot lists, from one observation of its slots (W keeps the slot, O gives it up).
struct SettleLists {
  std::vector<int> blocked;         // W open while O holds keys: cannot settle (see SettleAt)
  std::vector<int> open_migrating;  // O holds keys, owns the slot, has it closed
  std::vector<int> open_importing;  // O holds keys, does not own the slot, has it closed
  std::vector<int> w_open;
  std::vector<int> o_not_owner;
  std::vector<int> w_not_owner;  // in W's own view
};

SettleLists ListForSettle(const BatchInfo& info, bool at_target,
                          const std::map<int, SlotObservation>& obs,
                          const std::vector<int>& slots) {
  auto o_owns = [&](const SlotObservation& x) {
    return at_target ? x.owner_in_source_view == info.source_id
                     : x.owner_in_target_view == info.target_id;
  };
  auto o_open = [&](const SlotObservation& x) {
    return at_target ? (x.source_migrating || x.source_importing)
                     : (x.target_migrating || x.target_importing);
  };
  auto o_keys = [&](const SlotObservation& x) { return at_target ? x.source_keys : x.target_keys; };
  auto w_open = [&](const SlotObservation& x) {
    return at_target ? (x.target_migrating || x.target_importing)
                     : (x.source_migrating || x.source_importing);
  };
  auto w_owns_own_view = [&](const SlotObservation& x) {
    return at_target ? x.owner_in_target_view == info.target_id
                     : x.owner_in_source_view == info.source_id;
  };
  SettleLists out;
  for (int slot : slots) {
    const auto& x = obs.at(slot);
    if (w_open(x) && o_keys(x) > 0) out.blocked.push_back(slot);
    if (o_keys(x) > 0 && !o_open(x)) {
      (o_owns(x) ? out.open_migrating : out.open_importing).push_back(slot);
    }
    if (w_open(x)) out.w_open.push_back(slot);
    if (!o_owns(x)) out.o_not_owner.push_back(slot);
    if (!w_owns_own_view(x)) out.w_not_owner.push_back(slot);
  }
  return out;
}

std::string LeftOpenError(const std::vector<int>& blocked, const cluster::Endpoint& o,
                          const cluster::Endpoint& w) {
  std::string list;
  for (size_t i = 0; i < blocked.size() && i < 10; ++i) {
    list += (i ? "," : "") + std::to_string(blocked[i]);
  }
  return "slot(s) " + list + " left open: " + o.ToString() + " holds keys of them and " +
         w.ToString() + " cannot take them back while it is MIGRATING (closing it first would " +
         "hide those keys from clients); every key is still reachable through -ASK. Resolve "
         "the conflicting keys and run again with the same journal";
}

}  // namespace

// W keeps the slot; O gives up what it holds. For W = target this tidies a slot whose SETSLOT
// NODE reached the target (stray keys from the source, NODE on the source and the others).
// For W = source it is the last resort when a slot cannot be finished forward (a BUSYKEY
// conflict). W must not be MIGRATING to receive keys (it would answer RESTORE with -ASK), and
// making it STABLE while O still holds keys would let clients miss them (no -ASK) and write new
// keys under their names: such a slot is left open, every key reachable, and the error names it.
std::optional<std::string> EngineImpl::SettleAt(const BatchInfo& info, bool at_target,
                                                const std::vector<int>& slots,
                                                const StepControl& ctl,
                                                std::vector<std::string>& warnings) {
  if (slots.empty()) return std::nullopt;
  auto observed = ObserveSlots(info, slots, ctl);
  if (!observed) return observed.error().message;
  std::map<int, SlotObservation> obs;
  for (const auto& o : *observed) obs[o.slot] = o;
  const MoveEnds to_w = at_target
                            ? MoveEnds{info.source_id, info.source, info.target_id, info.target}
                            : MoveEnds{info.target_id, info.target, info.source_id, info.source};
  const std::string& w_id = to_w.to_id;
  const cluster::Endpoint& w = to_w.to;
  const cluster::Endpoint& o = to_w.from;
  const std::string side = at_target ? "target" : "source";
  const SettleLists lists = ListForSettle(info, at_target, obs, slots);
  if (!lists.blocked.empty()) return LeftOpenError(lists.blocked, o, w);
  if (auto j = Append(StepRecord(info.id, "settle_at_" + side, slots)); !j) {
    return j.error().message;
  }
  // 1. W must not be MIGRATING to receive keys; O must have the slot open to send them.
  if (auto e = CheckSetSlots(migrator_.SetSlots(w, lists.w_open, {"STABLE"}, ctl), "SETSLOT STABLE",
                             w)) {
    return e;
  }
  if (auto e = CheckSetSlots(migrator_.SetSlots(w, lists.w_not_owner, {"NODE", w_id}, ctl),
                             "SETSLOT NODE", w)) {
    return e;
  }
  if (auto e = CheckSetSlots(migrator_.SetSlots(o, lists.open_migrating, {"MIGRATING", w_id}, ctl),
                             "SETSLOT MIGRATING", o)) {
    return e;
  }
  if (auto e = CheckSetSlots(migrator_.SetSlots(o, lists.open_importing, {"IMPORTING", w_id}, ctl),
                             "SETSLOT IMPORTING", o)) {
    return e;
  }
  // 2. Keys to W (W's copy wins a clash: it is the one clients read).
  auto moved = migrator_.MoveKeys(to_w, slots, BusyKeyPolicy::kToOwner, ctl);
  for (const auto& x : moved.warnings) warnings.push_back(x);
  if (!moved.ok()) return moved.message;
  // 3. O: close the slot and name W its owner; then everyone else.
  if (auto e = CheckSetSlots(migrator_.SetSlots(o, lists.o_not_owner, {"STABLE"}, ctl),
                             "SETSLOT STABLE", o)) {
    return e;
  }
  if (auto e =
          CheckSetSlots(migrator_.SetSlots(o, slots, {"NODE", w_id}, ctl), "SETSLOT NODE", o)) {
    return e;
  }
  StepControl once = ctl;
  once.deadline.reset();
  for (const auto& m : ctl.other_masters) {
    auto r = migrator_.SetSlots(m, slots, {"NODE", w_id}, once);
    if (auto e = CheckSetSlots(r, "SETSLOT NODE", m)) {
      warnings.push_back(*e + " (it will learn by gossip)");
    }
  }
  return std::nullopt;
}

EngineImpl::ConvergeOutcome EngineImpl::Converge(
    const BatchInfo& info, ConvergeMode mode,
    const std::function<void(const ConvergencePlan&)>& on_plan) {
  const auto deadline = clock_.Now() + options_.rollback_timeout;
  std::vector<std::string> warnings;
  for (int attempt = 1;; ++attempt) {
    bool back = false;
    ConvergeOutcome out = ConvergeOnce(info, mode, deadline, [&](const ConvergencePlan& plan) {
      back = !plan.to_target;
      if (on_plan) on_plan(plan);
    });
    warnings.insert(warnings.end(), out.warnings.begin(), out.warnings.end());
    const bool full_forward = out.target_full && !back && mode == ConvergeMode::kAuto;
    if (out.ok || !(out.retryable || full_forward) || Halted() || clock_.Now() >= deadline) {
      out.warnings = std::move(warnings);
      return out;
    }
    // A full target cannot take the rest of the batch: bring it back instead (that frees the
    // target's memory first, see ConvergeOnce).
    if (back || out.target_full) mode = ConvergeMode::kRollback;
    spdlog::warn("batch {}: convergence attempt {} did not finish ({}); looking again", info.id,
                 attempt, out.error);
    clock_.SleepFor(std::chrono::milliseconds(100) * std::min(attempt, 10));
  }
}

// One ConvergeOnce: the batch as it stands (an end that failed over replaced by its promoted
// replica), its plan and the outcome each step fills in. Run calls the steps in the order of the
// single function this was; a step returns false when it ended the attempt (out_ says why).
class EngineImpl::ConvergeAttempt {
 public:
  ConvergeAttempt(EngineImpl& e, const BatchInfo& info, ConvergeMode mode,
                  Clock::TimePoint deadline)
      : e_(e), info_(info), mode_(mode), deadline_(deadline) {}

  ConvergeOutcome Run(const std::function<void(const ConvergencePlan&)>& on_plan) {
    if (FollowFailovers() && Start() && MakePlan(on_plan) && CloseAndSettle() && OwnerAtTarget() &&
        FinishForward() && MoveBack(Unhandled(plan_.reverse)) && !Stopped() &&
        StableForReplicas()) {
      Verify();
    }
    return out_;
  }

 private:
  // The target failed over mid-move: open-slot state is not replicated (7.x), so the source
  // still MIGRATES towards the former target while the promoted replica imports nothing, yet
  // holds (replicated) the keys MIGRATE'd before the failover and every slot the former
  // target owned. The promoted master stands in for the target from here on, with the
  // source's open state towards the former target read as open towards it (Observe).
  // Convergence then takes the path the plan already proves for a slot left open A->B:
  // finish it forward to the new master (IMPORTING there, MIGRATING on the source again, the
  // remaining keys, SETSLOT NODE everywhere), then, when the batch goes back, move it back
  // with the forward protocol reversed. That is chosen over SETSLOT STABLE on the source and
  // pulling keys back: STABLE would make every key already at the new master unreadable
  // (clients get no -ASK) until it returns, and a node can only be MIGRATING a slot it owns,
  // so the new master could not even be set up to send them back; finishing forward keeps
  // each key reachable through -ASK at every step and never moves a key twice at once.
  // The source failing over is the mirror case: the promoted replica owns the slots with no
  // open state while the target still IMPORTS from the former source, keys on both; it
  // stands in for the source, and the plan finishes such slots forward the same way (its
  // first step, SETSLOT MIGRATING on the new source, sends clients that miss a key there
  // to the target again).
  // False when the target is dead and clients are safe without it (see DeadTargetIsSafe).
  bool FollowFailovers() {
    auto s = TakeSnapshot(e_.connector_, e_.Seeds(&info_));
    if (!s) return true;
    Follow(*s, "target", info_.target_id, info_.target, info_.former.target_id,
           info_.target_replicas);
    Follow(*s, "source", info_.source_id, info_.source, info_.former.source_id,
           info_.source_replicas);
    others_ = e_.OtherMasters(*s, info_);
    if (auto why = DeadTargetIsSafe(*s)) {
      out_.source = info_.source;
      out_.target = info_.target;
      out_.error = *why;
      return false;
    }
    return true;
  }

  void Follow(const ClusterSnapshot& s, const char* end, std::string& id,
              cluster::Endpoint& endpoint, std::string& former_id,
              const std::vector<std::string>& replicas) {
    const auto* report = s.ReportFor(endpoint);
    const bool gone = !report || !report->reachable();
    const auto* promoted = PromotedMaster(s.nodes, id, gone, replicas);
    if (!promoted) return;
    out_.warnings.push_back(std::string("the ") + end + " " + endpoint.ToString() + " (" + id +
                            ") failed over: converging with its promoted replica " +
                            promoted->endpoint.ToString() + " (" + promoted->id + ") in its place");
    spdlog::warn("batch {}: {}", info_.id, out_.warnings.back());
    former_id = id;
    id = promoted->id;
    endpoint = promoted->endpoint;
  }

  // The target does not answer (and did not fail over): when the source owns every slot of
  // the batch and is MIGRATING none, no key and no client went to the target, so clients are
  // safe; waiting out the rollback timeout on a dead node helps nobody. The batch stays open:
  // the next run with this journal clears the target's IMPORTING state once it answers.
  // The error to end with then, else nullopt.
  std::optional<std::string> DeadTargetIsSafe(const ClusterSnapshot& s) const {
    const auto* target_report = s.ReportFor(info_.target);
    const auto* source_report = s.ReportFor(info_.source);
    if ((target_report && target_report->reachable()) || !source_report ||
        !source_report->reachable()) {
      return std::nullopt;
    }
    const auto* me = cluster::FindMyself(source_report->view->nodes);
    if (!me) return std::nullopt;
    for (int slot : info_.slots) {
      bool owns = false;
      for (const auto& r : me->slots) owns = owns || (slot >= r.first && slot <= r.last);
      if (!owns) return std::nullopt;
    }
    for (const auto& open : me->open_slots) {
      if (std::find(info_.slots.begin(), info_.slots.end(), open.slot) != info_.slots.end()) {
        return std::nullopt;
      }
    }
    return "the target " + info_.target.ToString() + " does not answer (" +
           (target_report ? target_report->error : std::string("not found")) + "); the source " +
           info_.source.ToString() +
           " owns every slot of the batch and is MIGRATING none of them, so clients "
           "are safe. The target's IMPORTING state is cleared by the next run with "
           "this journal once it answers";
  }

  bool Start() {
    out_.source = info_.source;
    out_.target = info_.target;
    out_.source_id = info_.source_id;
    out_.target_id = info_.target_id;
    ctl_ = e_.BaseControl(info_, others_);
    ctl_.deadline = deadline_;
    // The move's crash points, named apart ("converge_after_target_node"): a test kills a
    // rollback or a recovery (fix) at a step, not only a forward move.
    EngineImpl* e = &e_;
    ctl_.crash_point = [e](const char* p) { e->CrashPoint(std::string("converge_") + p); };
    // Rollback and recovery are not stopped by guards or rollback requests, only by RequestStop.
    ctl_.stop = [e]() -> std::optional<std::string> {
      if (e->Halted()) return std::string(kStoppedReason);
      return std::nullopt;
    };
    forward_ = MoveEnds{info_.source_id, info_.source, info_.target_id, info_.target};
    finish_ = ctl_;
    finish_.step_prefix = "finish_";
    back_ = ctl_;
    back_.step_prefix = "reverse_";
    return !Stopped();
  }

  // RequestStop was called: the attempt ends here.
  bool Stopped() {
    if (!e_.Halted()) return false;
    out_.error = kStoppedReason;
    return true;
  }

  bool MakePlan(const std::function<void(const ConvergencePlan&)>& on_plan) {
    auto observed = e_.ObserveSlots(info_, info_.slots, ctl_);
    if (!observed) {
      out_.error = "cannot read " + info_.source.ToString() + " and " + info_.target.ToString() +
                   ": " + observed.error().message;
      out_.retryable = true;
      return false;
    }
    for (const auto& o : *observed) obs_[o.slot] = o;
    plan_ = PlanConvergence(*observed, info_.source_id, info_.target_id, mode_);
    if (on_plan) on_plan(plan_);
    spdlog::info(
        "batch {}: converging to the {} (close at source {}, settle at target {}, finish "
        "forward {}, move back {}, stuck {})",
        info_.id, plan_.to_target ? "target" : "source", plan_.close_at_source.size(),
        plan_.settle_at_target.size(), plan_.finish_forward.size(), plan_.reverse.size(),
        plan_.stuck.size());
    return true;
  }

  bool CloseAndSettle() {
    for (const auto& group : Groups(plan_.close_at_source, e_.options_.group_slots)) {
      if (Stopped()) return false;
      if (auto e = e_.CloseAtSource(info_, group, obs_, ctl_, out_.warnings)) {
        return Fail(*e, true);
      }
    }
    for (const auto& group : Groups(plan_.settle_at_target, e_.options_.group_slots)) {
      if (Stopped()) return false;
      if (auto e = e_.SettleAt(info_, true, group, ctl_, out_.warnings)) return Fail(*e, true);
    }
    return true;
  }

  bool Fail(std::string error, bool retryable) {
    out_.error = std::move(error);
    out_.retryable = retryable;
    return false;
  }

  void Warnings(const MoveResult& r) {
    for (const auto& w : r.warnings) out_.warnings.push_back(w);
  }

  // `slots` minus those already returned.
  std::vector<int> Unhandled(const std::vector<int>& slots) const {
    std::vector<int> out;
    for (int slot : slots) {
      if (!handled_.count(slot)) out.push_back(slot);
    }
    return out;
  }

  bool MoveBack(const std::vector<int>& slots) {
    if (slots.empty()) return true;
    auto r = e_.migrator_.MoveSlots(forward_.Reversed(), Groups(slots, e_.options_.group_slots),
                                    back_, nullptr);
    Warnings(r);
    if (!r.ok()) {
      return Fail("moving slots back to " + info_.source.ToString() + ": " + r.message,
                  r.retryable());
    }
    handled_.insert(slots.begin(), slots.end());
    return true;
  }

  // After a failover of the source, the target's own view may name no owner for a slot it
  // imports: it ignored the promoted replica's claim (a node importing a slot takes no claim
  // for it), then dropped the former source's slots once that turned replica. Such a node
  // answers CLUSTERDOWN even to the RESTORE-ASKING of MIGRATE, so finishing forward could never
  // deliver a key. Naming the source as the owner there says what every other node says.
  bool OwnerAtTarget() {
    std::vector<int> unowned;
    for (int slot : plan_.finish_forward) {
      if (obs_.at(slot).owner_in_target_view.empty()) unowned.push_back(slot);
    }
    if (unowned.empty()) return true;
    if (auto j = e_.Append(StepRecord(info_.id, "owner_at_target", unowned)); !j) {
      out_.error = j.error().message;
      return false;
    }
    spdlog::warn(
        "batch {}: {} names no owner for {} slot(s) it imports (first {}): SETSLOT NODE "
        "{} there, so MIGRATE can deliver to it",
        info_.id, info_.target.ToString(), unowned.size(), unowned.front(),
        info_.source.ToString());
    if (auto e = CheckSetSlots(
            e_.migrator_.SetSlots(info_.target, unowned, {"NODE", info_.source_id}, ctl_),
            "SETSLOT NODE (the source)", info_.target)) {
      return Fail(*e, true);
    }
    return true;
  }

  bool FinishForward() {
    if (plan_.finish_forward.empty()) return true;
    auto r = e_.migrator_.MoveSlots(forward_, Groups(plan_.finish_forward, e_.options_.group_slots),
                                    finish_, nullptr);
    Warnings(r);
    if (r.ok()) return true;
    std::set<int> done(r.finished.begin(), r.finished.end());
    std::vector<int> rest;
    for (int slot : plan_.finish_forward) {
      if (!done.count(slot)) rest.push_back(slot);
    }
    if (r.target_full && !plan_.to_target) return BackThroughFullTarget(r, rest);
    if (r.status != MoveResult::Status::kConflict || plan_.to_target) {
      out_.target_full = r.target_full;
      return Fail("finishing slots at " + info_.target.ToString() + ": " + r.message,
                  r.retryable());
    }
    out_.warnings.push_back(std::to_string(rest.size()) + " slot(s) cannot go forward (" +
                            r.message + "): returning their keys to the source directly");
    for (const auto& group : Groups(rest, e_.options_.group_slots)) {
      if (Stopped()) return false;
      if (auto e = e_.SettleAt(info_, false, group, ctl_, out_.warnings)) {
        out_.error = *e;
        return false;
      }
    }
    handled_.insert(rest.begin(), rest.end());
    return true;
  }

  // The target filled up (maxmemory, noeviction): open slots can only come home through
  // it (finished forward, then moved back), so the slots it owns go back first to make
  // room, then the open ones one at a time, each moved back at once, so the target holds
  // at most one slot's keys more than it does now. Not the first thing tried: a target
  // whose own view lacks an owner for a slot (after a source failover) answers
  // CLUSTERDOWN to every MIGRATE until the open slots are finished at it.
  bool BackThroughFullTarget(const MoveResult& r, const std::vector<int>& rest) {
    const std::set<int> to_finish(plan_.finish_forward.begin(), plan_.finish_forward.end());
    std::vector<int> owned;
    for (int slot : plan_.reverse) {
      if (!to_finish.count(slot)) owned.push_back(slot);
    }
    if (!MoveBack(owned)) return false;
    if (!MoveBack(r.finished)) return false;
    for (size_t i = 0; i < rest.size(); ++i) {
      if (Stopped()) return false;
      auto one = e_.migrator_.MoveSlots(forward_, {{rest[i]}}, finish_, nullptr);
      Warnings(one);
      if (!one.ok()) {
        out_.target_full = one.target_full;
        out_.retryable = one.retryable();
        out_.error = "finishing slot " + std::to_string(rest[i]) + " at " +
                     info_.target.ToString() + " to move it back: " + one.message;
        if (one.target_full) {
          out_.error += ". Slot " + std::to_string(rest[i]) +
                        " does not fit there even alone: " + std::to_string(rest.size() - i) +
                        " slot(s) stay open (MIGRATING on the source, IMPORTING on the target) "
                        "with every key reachable (-ASK); free memory on " +
                        info_.target.ToString() +
                        " or raise its maxmemory, then run again with the same journal";
        }
        return false;
      }
      if (!MoveBack({rest[i]})) return false;
    }
    return true;
  }

  // Where SETSLOT is replicated (Valkey 8), a replica may keep an open slot its master never
  // had (-NOREPLICAS): a STABLE at the master, which it replicates, clears it.
  bool StableForReplicas() {
    auto snapshot = TakeSnapshot(e_.connector_, e_.Seeds(&info_));
    if (!snapshot) return true;
    for (const auto& [master, slots] : ReplicaLeftovers(*snapshot, info_.slots)) {
      if (!e_.migrator_.SupportOf(master).replicated) continue;
      if (auto j = e_.Append(StepRecord(info_.id, "stable_for_replicas", slots)); !j) {
        out_.error = j.error().message;
        return false;
      }
      spdlog::warn(
          "batch {}: replicas of {} show {} slot(s) open that it has not (first {}): "
          "SETSLOT STABLE there, which its replicas repeat",
          info_.id, master.ToString(), slots.size(), slots.front());
      if (auto e = CheckSetSlots(e_.migrator_.SetSlots(master, slots, {"STABLE"}, ctl_),
                                 "SETSLOT STABLE", master)) {
        return Fail(*e, true);
      }
    }
    return true;
  }

  // Verify from the nodes themselves.
  void Verify() {
    auto verify = e_.ObserveSlots(info_, info_.slots, ctl_);
    if (!verify) {
      Fail("verifying: " + verify.error().message, true);
      return;
    }
    const std::string& goal = plan_.to_target ? info_.target_id : info_.source_id;
    std::string problems;
    for (const auto& o : *verify) {
      bool open =
          o.source_migrating || o.source_importing || o.target_migrating || o.target_importing;
      if (o.owner_in_source_view != goal || o.owner_in_target_view != goal || open) {
        if (problems.size() < 300) {
          problems += (problems.empty() ? "" : "; ") + std::string("slot ") +
                      std::to_string(o.slot) + (open ? " still open" : " owner not agreed");
        }
        continue;
      }
      if (plan_.to_target) {
        ++out_.forward;
      } else {
        ++out_.back;
      }
    }
    for (int slot : plan_.stuck) {
      problems += (problems.empty() ? "" : "; ") + std::string("slot ") + std::to_string(slot) +
                  " is owned by neither " + info_.source.ToString() + " nor " +
                  info_.target.ToString();
    }
    if (!problems.empty()) {
      // Views still settling are retryable; a slot nobody owns is not.
      Fail(problems, plan_.stuck.empty());
      return;
    }
    out_.ok = true;
    out_.at_target = plan_.to_target;
  }

  EngineImpl& e_;
  BatchInfo info_;
  const ConvergeMode mode_;
  const Clock::TimePoint deadline_;
  std::vector<cluster::Endpoint> others_;
  StepControl ctl_;
  StepControl finish_;  // ctl_ with the step prefix "finish_"
  StepControl back_;    // ... "reverse_"
  MoveEnds forward_;
  std::map<int, SlotObservation> obs_;
  ConvergencePlan plan_;
  std::set<int> handled_;  // slots already returned: no reverse for them at the end
  ConvergeOutcome out_;
};

EngineImpl::ConvergeOutcome EngineImpl::ConvergeOnce(
    const BatchInfo& batch_info, ConvergeMode mode, Clock::TimePoint deadline,
    const std::function<void(const ConvergencePlan&)>& on_plan) {
  return ConvergeAttempt(*this, batch_info, mode, deadline).Run(on_plan);
}

cluster::Result<ClusterSnapshot> EngineImpl::BatchSnapshot() {
  cluster::Result<ClusterSnapshot> snapshot = cluster::MakeError("no snapshot");
  if (auto last = std::exchange(verified_, std::nullopt);
      last && options_.reuse_verified_snapshot &&
      clock_.Now() - last->second <= kVerifiedSnapshotReuse) {
    snapshot = std::move(last->first);
  } else {
    snapshot = TakeSnapshot(connector_, options_.seeds);
  }
  // Two masters with one config epoch (a bump without consensus met another node's): the
  // servers resolve it themselves at their next ping exchange (the one with the lower node id
  // bumps, clusterHandleConfigEpochCollision). Wait for that rather than refuse the batch.
  const auto collision_deadline = clock_.Now() + options_.guards.convergence_timeout;
  while (snapshot && snapshot->judgement.epoch_collisions > 0 &&
         clock_.Now() < collision_deadline) {
    clock_.SleepFor(std::chrono::milliseconds(100));
    snapshot = TakeSnapshot(connector_, options_.seeds);
  }
  return snapshot;
}

GuardSettings EngineImpl::BatchGuardSettings(const Batch& batch) const {
  return MergeGuards(options_.guards, batch.guards);
}

BatchInfo EngineImpl::MakeBatchInfo(const Batch& batch, const ResolvedBatch& resolved,
                                    const ClusterSnapshot& snapshot) {
  BatchInfo info{batch.id,           resolved.source_id, resolved.source,
                 resolved.target_id, resolved.target,    resolved.batch.slots};
  for (const auto& n : snapshot.nodes) {
    if (!n.flags.replica) continue;
    if (n.master_id == info.source_id) info.source_replicas.push_back(n.id);
    if (n.master_id == info.target_id) info.target_replicas.push_back(n.id);
  }
  return info;
}

int64_t EngineImpl::CountKeys(const cluster::Endpoint& node, const std::vector<int>& slots) {
  int64_t keys = 0;
  std::vector<cluster::Argv> count;
  for (int slot : slots) count.push_back({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)});
  if (auto r = connector_.Get(node).Pipeline(count)) {
    for (const auto& x : *r) keys += x.integer;
  }
  return keys;
}

double EngineImpl::SecondsSince(const BatchRun& run) {
  return std::chrono::duration<double>(clock_.Now() - run.started).count();
}

void EngineImpl::BeginRun(const Batch& batch) {
  std::lock_guard<std::mutex> lock(mutex_);
  requested_.reset();
  journal_error_.reset();
  fenced_ = false;
  // A rollback asked for this batch before it started is honoured (after preflight).
  if (pending_ && pending_->batch_id == batch.id) {
    requested_ = std::make_pair(pending_->trigger, pending_->reason);
  }
  pending_.reset();
  running_ = batch.id;
  last_finished_.clear();
}

cluster::Result<EngineImpl::PreparedBatch> EngineImpl::PrepareBatch(const BatchRun& run) {
  const Batch& batch = run.batch;
  auto journal = EnsureJournal();
  if (!journal) return tl::unexpected(journal.error());
  if (auto c = (*journal)->CompactIfOver(); !c) {
    spdlog::warn("journal not compacted: {}", c.error().message);  // it only stays larger
  }
  // Before preflight, so no other agent can change the cluster between preflight and the steps.
  bool fresh_lease = false;
  if (auto l = TakeLease(fresh_lease); !l) return tl::unexpected(l.error());
  if (fresh_lease) {  // read before the lease was ours
    verified_.reset();
    probed_.clear();
  }
  cluster::Result<ClusterSnapshot> snapshot = BatchSnapshot();
  if (!snapshot) return tl::unexpected(snapshot.error());
  auto resolved = ResolveBatch(batch, *snapshot, options_.limits);
  if (!resolved) return tl::unexpected(resolved.error());
  auto preflight = Preflight(*snapshot, *resolved, ReadSettings(*snapshot));
  spdlog::debug("batch {}: preflight done after {:.1f} ms", batch.id, SecondsSince(run) * 1000);
  if (!preflight) {
    return tl::unexpected(cluster::Error{preflight.error().message + UnreleasedNote()});
  }
  if (auto refused = ProbeMigratePermissions(*resolved)) {
    return tl::unexpected(cluster::Error{*refused});
  }
  // A clean cluster: whatever earlier holders left open has been converged.
  if (lease_) lease_->ForgetUnreleased();
  if (auto sized = SizeUp(*resolved); !sized) return tl::unexpected(sized.error());
  spdlog::debug("batch {}: sizes and headroom checked after {:.1f} ms", batch.id,
                SecondsSince(run) * 1000);
  return PreparedBatch{std::move(*snapshot), std::move(*resolved), std::move(preflight->warnings)};
}

BatchOutcome EngineImpl::Stopped(BatchRun& run) {
  // No rollback, no end record: the journal keeps the batch open for the next Recover().
  spdlog::warn("batch {}: {}", run.batch.id, kStoppedReason);
  run.outcome.state = BatchState::kFailed;
  run.outcome.stopped = true;
  run.outcome.reason = kStoppedReason;
  run.outcome.seconds = SecondsSince(run);
  return run.outcome;
}

BatchOutcome EngineImpl::JournalStopped(BatchRun& run, const std::string& error) {
  bool fenced = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fenced = fenced_;
  }
  spdlog::error("batch {}: stopped without rolling back: {}", run.batch.id,
                fenced ? "the migration lease was lost" : "the journal could not be written");
  BatchOutcome& outcome = run.outcome;
  outcome.state = BatchState::kFailed;
  if (!fenced) outcome.journal_error = error;
  outcome.reason = fenced ? error +
                                ": stopped before its next step, nothing rolled back; the "
                                "journal keeps the batch open and the next run with it "
                                "converges it"
                          : "journal write failed (" + error +
                                "): stopped before the step it announced, nothing rolled "
                                "back; the journal keeps the batch open and the next run "
                                "converges it";
  outcome.seconds = SecondsSince(run);
  observer_.OnState(run.batch.id, BatchState::kFailed);
  observer_.OnBatchFinished(outcome.seconds);
  return outcome;
}

std::optional<std::string> EngineImpl::MoveBatch(BatchRun& run, const BatchInfo& info,
                                                 const ClusterSnapshot& snapshot,
                                                 GuardMonitor& monitor, const GuardSettings& gs) {
  // Test hook "mid_keys": die (or pause) once half of the batch's keys have moved.
  int64_t keys_seen = 0;
  const int64_t keys_expected =
      options_.step_hooks->Watches("mid_keys") ? CountKeys(info.source, info.slots) : 0;

  StepControl ctl = BaseControl(info, OtherMasters(snapshot, info));
  ctl.stop = [&]() { return StopReason(&monitor, gs); };
  ctl.crash_point = [this](const char* p) { CrashPoint(p); };
  ctl.on_keys = [&](int64_t n) {
    observer_.OnKeysMigrated(n);
    keys_seen += n;
    if (keys_expected > 0 && keys_seen * 2 >= keys_expected) CrashPoint("mid_keys");
  };

  if (auto why = StopReason(&monitor, gs)) return why;
  const MoveEnds ends{info.source_id, info.source, info.target_id, info.target};
  int done = 0;
  MoveResult r = migrator_.MoveSlots(
      ends, Groups(info.slots, options_.group_slots), ctl, [&](const std::vector<int>& group) {
        done += static_cast<int>(group.size());
        observer_.OnSlotsMigrated(static_cast<int>(group.size()));
        observer_.OnProgress(info.id, done, static_cast<int>(info.slots.size()));
        spdlog::debug("batch {}: group {}-{} after {:.1f} ms", run.batch.id, group.front(),
                      group.back(), SecondsSince(run) * 1000);
      });
  run.outcome.keys_moved += r.keys;
  for (const auto& w : r.warnings) {
    spdlog::warn("batch {}: {}", info.id, w);
    run.outcome.warnings.push_back(w);
  }
  if (r.ok()) return std::nullopt;
  if (r.status == MoveResult::Status::kConflict) run.outcome.busy_keys = r.conflict_keys;
  return r.message;
}

std::optional<std::string> EngineImpl::VerifyBatch(const BatchRun& run, const BatchInfo& info,
                                                   const std::vector<cluster::Endpoint>& endpoints,
                                                   GuardMonitor& monitor, const GuardSettings& gs) {
  observer_.OnState(run.batch.id, BatchState::kVerifying);
  std::string why;
  if (WaitConvergence(info, info.target_id, endpoints, gs.convergence_timeout, &monitor, gs, why)) {
    return std::nullopt;
  }
  if (!monitor.tripped() && !Halted()) {
    bool requested = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requested = requested_.has_value();
    }
    if (!requested) monitor.Trip({"convergence", why});
  }
  return StopReason(&monitor, gs).value_or(why);
}

cluster::Result<BatchOutcome> EngineImpl::RollBackBatch(BatchRun& run, const BatchInfo& info,
                                                        GuardMonitor& monitor,
                                                        const std::string& stop_reason) {
  BatchOutcome& outcome = run.outcome;
  RollbackTrigger trigger = RollbackTrigger::kGuard;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (requested_) trigger = requested_->first;
  }
  if (auto trip = monitor.tripped()) outcome.tripped_guard = trip->guard;
  outcome.trigger = trigger;
  outcome.reason = stop_reason;
  spdlog::warn("batch {}: rolling back: {}", info.id, stop_reason);
  observer_.OnState(run.batch.id, BatchState::kRollingBack);
  observer_.OnRollback(trigger);
  // Where a rollback starts, every key is where clients find it: without its record, stop there.
  if (auto j = Append(RollbackRecord(info.id, trigger, stop_reason)); !j) {
    return JournalStopped(run, j.error().message);
  }
  CrashPoint("before_rollback");
  ConvergeOutcome conv = Converge(info, ConvergeMode::kRollback, nullptr);
  for (const auto& w : conv.warnings) {
    spdlog::warn("batch {}: {}", info.id, w);
    outcome.warnings.push_back(w);
  }
  if (!conv.ok && Halted()) {
    // The rollback record is in the journal: the next start finishes the rollback.
    outcome.reason += "; rollback interrupted: ";
    outcome.reason += kStoppedReason;
    outcome.state = BatchState::kFailed;
    outcome.stopped = true;
    outcome.seconds = SecondsSince(run);
    return outcome;
  }
  if (conv.ok) {
    // The rollback ran; without its end record the next recovery finds the batch whole at the
    // source (Write logs and counts the failure; journal_error reports it).
    (void)Append(EndRecord(info.id, BatchState::kRolledBack, stop_reason));
    observer_.OnState(run.batch.id, BatchState::kRolledBack);
    outcome.state = BatchState::kRolledBack;
    outcome.slots_moved = conv.forward;
  } else {
    outcome.reason += "; rollback did not finish: " + conv.error +
                      " (the journal keeps the batch open: run again with the same --journal "
                      "to finish it)";
    // A failed batch stays open with or without its end record: only its reason would be lost.
    if (!JournalError()) (void)Append(EndRecord(info.id, BatchState::kFailed, outcome.reason));
    observer_.OnState(run.batch.id, BatchState::kFailed);
    outcome.state = BatchState::kFailed;
  }
  outcome.journal_error = JournalError();
  outcome.seconds = SecondsSince(run);
  observer_.OnBatchFinished(outcome.seconds);
  return outcome;
}

// One batch's life in the order the journal and the observer see it: lease and preflight
// (PrepareBatch), write-ahead record, steps (MoveBatch), verification (VerifyBatch), then done
// or rollback (RollBackBatch).
cluster::Result<BatchOutcome> EngineImpl::RunBatch(const Batch& batch,
                                                   const std::function<void()>& start_gate) {
  BatchRun run{batch, clock_.Now(), {}};
  if (Halted()) return cluster::MakeError("batch " + batch.id + " not started: " + kStoppedReason);
  BeginRun(batch);
  struct Finished {
    EngineImpl& engine;
    const std::string& id;
    ~Finished() {
      std::lock_guard<std::mutex> lock(engine.mutex_);
      engine.running_.reset();
      engine.last_finished_ = id;
    }
  } finished{*this, batch.id};
  counters_.Reset();
  migrator_.BeginBatch();
  observer_.OnState(batch.id, BatchState::kPreflight);

  auto prepared = PrepareBatch(run);
  if (!prepared) {
    observer_.OnState(batch.id, BatchState::kFailed);
    observer_.OnBatchFinished(SecondsSince(run));
    return tl::unexpected(prepared.error());
  }
  if (start_gate) start_gate();

  BatchOutcome& outcome = run.outcome;
  outcome.batch_id = batch.id;
  for (const auto& w : prepared->warnings) {
    Warn(w);
    outcome.warnings.push_back(w);
  }

  const GuardSettings gs = BatchGuardSettings(batch);
  const BatchInfo info = MakeBatchInfo(batch, prepared->resolved, prepared->snapshot);
  std::vector<cluster::Endpoint> endpoints;
  for (const auto& r : prepared->snapshot.reports) endpoints.push_back(r.endpoint);

  if (Halted()) return Stopped(run);  // nothing journaled or touched yet

  // Write-ahead: the batch record goes out with the first step records (one fsync), before any
  // slot changes.
  pending_records_.push_back(BatchRecord(info.id, info.source_id, info.source, info.target_id,
                                         info.target, info.slots, info.source_replicas,
                                         info.target_replicas));

  GuardMonitor& monitor = *monitor_;
  monitor.Arm(gs, endpoints, info.source, info.target);
  spdlog::debug("batch {}: guards armed after {:.1f} ms", batch.id, SecondsSince(run) * 1000);
  observer_.OnState(batch.id, BatchState::kMigrating);
  std::optional<std::string> stop_reason = MoveBatch(run, info, prepared->snapshot, monitor, gs);
  if (!stop_reason) stop_reason = VerifyBatch(run, info, endpoints, monitor, gs);
  monitor.Disarm();
  spdlog::debug("batch {}: verified after {:.1f} ms", batch.id, SecondsSince(run) * 1000);
  if (auto error = JournalError()) return JournalStopped(run, *error);
  if (stop_reason && Halted()) {
    // Flush what the batch journaled so far (the records of steps that ran are durable
    // already; this only adds those still pending, so a failure here is only logged).
    if (!pending_records_.empty()) (void)Write({});
    return Stopped(run);
  }

  if (!stop_reason) {
    // Not fsync'd on its own: the next record's fsync covers it, and a lost "done" only makes
    // recovery look at a batch that is already whole at the target.
    pending_records_.push_back(EndRecord(info.id, BatchState::kDone, ""));
    observer_.OnState(batch.id, BatchState::kDone);
    outcome.state = BatchState::kDone;
    outcome.slots_moved = static_cast<int>(info.slots.size());
    outcome.seconds = SecondsSince(run);
    observer_.OnBatchFinished(outcome.seconds);
    return outcome;
  }
  return RollBackBatch(run, info, monitor, *stop_reason);
}

cluster::Result<RecoveryReport> EngineImpl::Recover() {
  verified_.reset();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    journal_error_.reset();
    fenced_ = false;
  }
  if (Halted()) return cluster::MakeError(std::string("recovery not started: ") + kStoppedReason);
  RecoveryReport report;
  int skipped = 0;
  auto records = Journal::Read(options_.journal_dir, &skipped);
  if (!records) return tl::unexpected(records.error());
  if (skipped > 0) {
    report.messages.push_back(std::to_string(skipped) +
                              " unreadable journal line(s) skipped (torn write)");
  }
  JournalState state = ReplayJournal(*records);
  auto open = state.OpenBatches();
  if (open.empty()) return report;
  auto journal = EnsureJournal();
  if (!journal) return tl::unexpected(journal.error());
  // Converging moves slots too: not while another agent works on the cluster.
  bool fresh_lease = false;
  if (auto l = TakeLease(fresh_lease); !l) {
    return cluster::MakeError("recovery not started: " + l.error().message);
  }

  std::string errors;
  for (const JournalBatch* b : open) {
    BatchInfo info{b->id, b->source_id, b->source, b->target_id, b->target, b->slots};
    info.source_replicas = b->source_replicas;
    info.target_replicas = b->target_replicas;
    RecoveryReport::BatchRecovery br;
    br.batch_id = b->id;
    bool rolling_back = b->rollback;
    observer_.OnState(b->id, BatchState::kRollingBack);
    ConvergeOutcome conv = Converge(
        info, rolling_back ? ConvergeMode::kRollback : ConvergeMode::kAuto,
        [&](const ConvergencePlan& plan) {
          if (!plan.to_target && !rolling_back) {
            rolling_back = true;  // recorded once, whatever later looks decide
            observer_.OnRollback(RollbackTrigger::kRecovery);
            auto record = RollbackRecord(
                b->id, RollbackTrigger::kRecovery,
                "recovery after a restart: not every slot could be finished at the target");
            // Not durable: kept pending, so it still precedes the first step's record, and no
            // step runs before both are written.
            if (!Append(record)) pending_records_.push_back(std::move(record));
          }
        });
    for (const auto& w : conv.warnings) report.messages.push_back("batch " + b->id + ": " + w);
    if (!conv.ok && Halted()) {
      // No end record: the batch stays open for the next start.
      errors += (errors.empty() ? "" : "; ") + std::string("batch ") + b->id + ": " + conv.error;
      break;
    }
    if (conv.ok) {
      br.state = conv.at_target ? BatchState::kDone : BatchState::kRolledBack;
      br.slots_forward = conv.forward;
      br.slots_back = conv.back;
      // Without it the next recovery finds the batch whole again (Write logs and counts).
      (void)Append(EndRecord(b->id, br.state, "recovered after a restart"));
      observer_.OnState(b->id, br.state);
      report.messages.push_back("batch " + b->id + ": " +
                                (conv.at_target
                                     ? "finished at the target " + conv.target.ToString()
                                     : "rolled back to the source " + conv.source.ToString()) +
                                " (" + std::to_string(b->slots.size()) + " slots)");
      // The two ends agree already; the other nodes learn by gossip. Whatever runs next (a
      // resumed run's preflight) must find every view agreeing, so wait for it here (bounded).
      std::string why;
      if (!WaitConvergence(info, conv.at_target ? conv.target_id : conv.source_id, {},
                           options_.guards.convergence_timeout, nullptr, GuardSettings{}, why)) {
        report.messages.push_back("batch " + b->id + ": " + why);
      }
    } else {
      br.state = BatchState::kFailed;
      if (!JournalError()) (void)Append(EndRecord(b->id, BatchState::kFailed, conv.error));
      observer_.OnState(b->id, BatchState::kFailed);
      errors += (errors.empty() ? "" : "; ") + std::string("batch ") + b->id + ": " + conv.error;
    }
    report.batches.push_back(br);
    if (auto j = JournalError()) {
      // Stop at a record that did not become durable; the next run recovers the rest.
      if (conv.ok) errors += (errors.empty() ? "" : "; ") + std::string("journal: ") + *j;
      break;
    }
  }
  if (!errors.empty()) return cluster::MakeError("recovery did not finish: " + errors);
  return report;
}

Engine::Engine(cluster::Connector& connector, Clock& clock, EngineOptions options,
               EngineObserver& observer)
    : Engine(connector, clock, std::move(options), observer, nullptr) {}

Engine::Engine(cluster::Connector& connector, Clock& clock, EngineOptions options,
               EngineObserver& observer, cluster::Connector* guard_connector)
    : impl_(std::make_unique<EngineImpl>(connector, clock, std::move(options), observer,
                                         guard_connector)) {}

Engine::~Engine() = default;

cluster::Result<BatchOutcome> Engine::RunBatch(const Batch& batch) {
  return impl_->RunBatch(batch, nullptr);
}

cluster::Result<BatchOutcome> Engine::RunBatch(const Batch& batch,
                                               const std::function<void()>& start_gate) {
  return impl_->RunBatch(batch, start_gate);
}

cluster::Result<void> Engine::AcquireLease() { return impl_->AcquireLease(); }

void Engine::RequestRollback(RollbackTrigger trigger, std::string reason) {
  impl_->RequestRollback(trigger, std::move(reason));
}

void Engine::RequestRollback(RollbackTrigger trigger, std::string reason,
                             const std::string& batch_id) {
  impl_->RequestRollback(trigger, std::move(reason), batch_id);
}

void Engine::RequestStop() { impl_->RequestStop(); }

void Engine::ReleaseLease() { impl_->ReleaseLease(); }

cluster::Result<RecoveryReport> Engine::Recover() { return impl_->Recover(); }

cluster::Result<void> Engine::JournalAppend(const nlohmann::json& record) {
  return impl_->JournalAppend(record);
}

}  // namespace slotguard::agent
