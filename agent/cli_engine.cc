// check, reshard and plan: the engine in the foreground.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/batch_runner.h"
#include "agent/check.h"
#include "agent/cli.h"
#include "agent/cluster_health.h"
#include "agent/cluster_snapshot.h"
#include "agent/engine.h"
#include "agent/forget.h"
#include "agent/journal.h"
#include "agent/pair_engines.h"
#include "agent/plan.h"
#include "agent/plan_file.h"
#include "agent/rebalance.h"
#include "agent/slot_load.h"
#include "agent/stray_keys.h"
#include "agent/wall_time.h"
#include "cluster/connection_pool.h"
#include "cluster/credentials.h"
#include "cluster/endpoint.h"
#include "cluster/tls_context.h"
#include "cluster/tls_settings.h"
#include "common/duration.h"
#include "common/file_io.h"
#include "common/file_lock.h"
#include "common/logging.h"

namespace slotguard::agent {
namespace {

struct CommonArgs {
  std::string seed;
  std::optional<std::string> user;
  std::string password_file;
  cluster::TlsOverrides tls;  // used when the address is rediss://
};

struct ReshardArgs {
  CommonArgs common;
  std::string from;
  std::string to;
  int slots = 0;
  std::string ranges;
  int batch_slots = kDefaultBatchSlots;
  int pipeline = 100;
  int timeout_ms = 2000;
  int getkeys_count = 1000;
  int group_slots = 200;
  int migrates_per_round = 16;
  int64_t migrate_bytes = 4 << 20;
  bool replace = false;
  bool yes = false;
  bool dry_run = false;
  std::string journal = "./slotguard-journal";
  int coverage_grace_s = 60;
  int migrate_failures = 5;
  int convergence_timeout_s = 30;
  int rollback_timeout_s = 300;
  bool new_run = false;
  double lease_ttl_s = 30;
  // Only converge what the journal has open, then stop (rebalance and drain plan afterwards).
  bool recover_only = false;
};

// Ctrl-C / SIGTERM during a reshard: the running batch rolls back (operator), no new batch
// starts. A second one stops the engine at its next step without finishing the rollback (the
// journal describes every step that ran: the next run converges the batch); a third kills as
// usual, which the journal covers as it covers kill -9.
std::atomic<int> g_interrupted{0};  // the first signal
std::atomic<int> g_interrupts{0};   // how many
extern "C" void OnInterrupt(int sig) {
  if (g_interrupts.fetch_add(1) == 0) {
    g_interrupted = sig;
  } else {
    std::signal(sig, SIG_DFL);
  }
}

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitRolledBack = 2;
constexpr int kExitInterrupted = 130;  // a second Ctrl-C: stopped without finishing the rollback

void Err(const std::string& text) { std::fprintf(stderr, "error: %s\n", text.c_str()); }

// Prints why a step failed; true when it did (the caller then exits with kExitError).
template <typename T>
bool Failed(const cluster::Result<T>& result) {
  if (result) return false;
  Err(result.error().message);
  return true;
}

// The CLI logs text at SLOTGUARD_LOG_LEVEL (default info); the daemon takes both from agent.yaml.
void SetupLogging() {
  const char* level = std::getenv("SLOTGUARD_LOG_LEVEL");
  common::SetupLogging("slotguard-agent", "text", level ? level : "info");
}

struct Connected {
  cluster::Endpoint seed;
  std::optional<cluster::Credentials> credentials;
  std::shared_ptr<const cluster::TlsContext> tls;  // null: plain text
  std::unique_ptr<cluster::ConnectionPool> pool;
};

cluster::Result<Connected> Connect(const CommonArgs& a, std::chrono::milliseconds io_timeout) {
  auto seed = cluster::ParseSeedAddress(a.seed);
  if (!seed) return tl::unexpected(seed.error());
  std::optional<std::string> user = a.user ? a.user : seed->user;
  auto creds = cluster::LoadCredentials(user, a.password_file);
  if (!creds) return tl::unexpected(creds.error());
  const cluster::TlsSettings tls_settings = cluster::MergeTls({}, a.tls);
  auto tls = cluster::TlsForSeeds({*seed}, tls_settings, tls_settings != cluster::TlsSettings{});
  if (!tls) return tl::unexpected(tls.error());
  Connected c;
  c.seed = seed->endpoint;
  c.credentials = *creds;
  if (*tls) {
    auto context = cluster::TlsContext::Create(**tls);
    if (!context) return tl::unexpected(context.error());
    c.tls = *context;
  }
  cluster::ConnectOptions co;
  co.connect_timeout = std::chrono::milliseconds(2000);
  co.io_timeout = io_timeout;
  co.credentials = *creds;
  co.tls = c.tls;
  c.pool = std::make_unique<cluster::ConnectionPool>(co);
  return c;
}

void AddCommonOptions(CLI::App* sub, CommonArgs& a) {
  sub->add_option("address", a.seed,
                  "Any node of the cluster: HOST:PORT, redis://[user@]HOST:PORT or "
                  "rediss://[user@]HOST:PORT (TLS, to every node)")
      ->required();
  sub->add_option("--user", a.user, "ACL user (default: the default user)");
  sub->add_option("--password-file", a.password_file,
                  "File whose first line is the password (else $REDIS_PASSWORD)");
  sub->add_option("--tls.ca-file", a.tls.ca_file,
                  "rediss://: CA certificate(s) that sign the nodes' certificates, PEM (default: "
                  "the system's trust store)")
      ->type_name("FILE");
  sub->add_option("--tls.cert-file", a.tls.cert_file,
                  "rediss://: client certificate, PEM, for tls-auth-clients (with --tls.key-file)")
      ->type_name("FILE");
  sub->add_option("--tls.key-file", a.tls.key_file,
                  "rediss://: the client certificate's private key, PEM, unencrypted")
      ->type_name("FILE");
  sub->add_option("--tls.server-name", a.tls.server_name,
                  "rediss://: name sent as SNI and checked in every node's certificate "
                  "(default: the node's own address)")
      ->type_name("NAME");
  sub->add_flag("--tls.insecure-skip-verify", a.tls.insecure_skip_verify,
                "rediss://: do not check the nodes' certificates");
}

// "0-99,200,300-310" -> slots. Errors name the piece that is wrong.
cluster::Result<std::vector<int>> ParseRanges(const std::string& text) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string piece =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (piece.empty()) return cluster::MakeError("--ranges: empty range in \"" + text + "\"");
    size_t dash = piece.find('-');
    long first = 0;
    long last = 0;
    try {
      size_t used = 0;
      first = std::stol(piece.substr(0, dash), &used);
      if (used != piece.substr(0, dash).size()) throw std::invalid_argument("x");
      last = first;
      if (dash != std::string::npos) {
        last = std::stol(piece.substr(dash + 1), &used);
        if (used != piece.substr(dash + 1).size()) throw std::invalid_argument("x");
      }
    } catch (...) {
      return cluster::MakeError("--ranges: \"" + piece + "\" is not a slot or a range like 0-99");
    }
    for (long v : {first, last}) {
      if (v < 0 || v >= cluster::kSlotCount) {
        return cluster::MakeError("--ranges: slot " + std::to_string(v) +
                                  " is out of range (0-16383)");
      }
    }
    if (last < first)
      return cluster::MakeError("--ranges: \"" + piece + "\" ends before it starts");
    for (long s = first; s <= last; ++s) out.push_back(static_cast<int>(s));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::string HumanBytes(int64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string RangesOf(const std::vector<int>& slots) {
  std::string out;
  for (size_t i = 0; i < slots.size();) {
    size_t j = i;
    while (j + 1 < slots.size() && slots[j + 1] == slots[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(slots[i]);
    if (j > i) out += "-" + std::to_string(slots[j]);
    i = j + 1;
  }
  return out;
}

// ---- check ----

int RunCheck(const CommonArgs& a) {
  SetupLogging();
  auto c = Connect(a, std::chrono::milliseconds(3000));
  if (Failed(c)) return kExitError;
  auto s = TakeSnapshot(*c->pool, {c->seed});
  if (Failed(s)) return kExitError;
  HealthReport report = JudgeHealth(*s, CountStrayKeys(*c->pool, *s));
  for (const auto& line : report.lines) std::printf("%s\n", line.ToString().c_str());
  std::fflush(stdout);
  return report.healthy ? kExitOk : kExitError;
}

// ---- plan / reshard ----

cluster::Result<void> ValidateArgs(const ReshardArgs& a, const Limits& limits) {
  if (a.slots == 0 && a.ranges.empty())
    return cluster::MakeError("give --slots N or --ranges A-B,...");
  if (a.slots != 0 && !a.ranges.empty())
    return cluster::MakeError("give --slots or --ranges, not both");
  if (a.ranges.empty() && (a.slots < 1 || a.slots > cluster::kSlotCount)) {
    return cluster::MakeError("--slots must be 1-16384, got " + std::to_string(a.slots));
  }
  if (a.batch_slots < 1 || a.batch_slots > limits.max_batch_slots) {
    return cluster::MakeError("--batch-slots must be 1-" + std::to_string(limits.max_batch_slots) +
                              " (the runbook's limit per batch), got " +
                              std::to_string(a.batch_slots));
  }
  if (a.pipeline < 1) return cluster::MakeError("--pipeline must be at least 1");
  if (a.timeout_ms < 1) return cluster::MakeError("--timeout must be at least 1 ms");
  if (a.getkeys_count < 1) return cluster::MakeError("--getkeys-count must be at least 1");
  if (a.migrates_per_round < 1 || a.migrates_per_round > 1000) {
    return cluster::MakeError("--migrates-per-round must be 1-1000");
  }
  if (a.migrate_bytes < 0) return cluster::MakeError("--migrate-bytes must be >= 0");
  if (a.group_slots < 1 || a.group_slots > 500)
    return cluster::MakeError("--group-slots must be 1-500");
  if (a.migrate_failures < 0) return cluster::MakeError("--guard-migrate-failures must be >= 0");
  if (!(a.lease_ttl_s >= 0.5 && a.lease_ttl_s <= 3600)) {
    return cluster::MakeError("--lease-ttl must be 0.5-3600 seconds");
  }
  if (a.coverage_grace_s < 0) return cluster::MakeError("--guard-coverage-grace must be >= 0");
  if (a.convergence_timeout_s < 1)
    return cluster::MakeError("--guard-convergence-timeout must be >= 1");
  return {};
}

struct Planned {
  ReshardPlan reshard;
  ResolvedPlan resolved;
  std::string from_name;
  std::string to_name;
};

cluster::Result<Planned> MakePlan(const ReshardArgs& a, cluster::Connector& connector,
                                  const ClusterSnapshot& s, const Limits& limits,
                                  const std::string& id_prefix) {
  const auto* from = s.FindNode(a.from);
  if (from == nullptr) {
    return cluster::MakeError("--from " + a.from +
                              ": not a node of this cluster (give a node id or host:port as "
                              "CLUSTER NODES shows it)");
  }
  const auto* to = s.FindNode(a.to);
  if (to == nullptr) {
    return cluster::MakeError("--to " + a.to +
                              ": not a node of this cluster (give a node id or host:port as "
                              "CLUSTER NODES shows it)");
  }
  if (!to->flags.master) {
    return cluster::MakeError("--to " + a.to + ": " + to->endpoint.ToString() +
                              " is a replica, not a master: slots can only move to a master");
  }
  if (!from->flags.master) {
    return cluster::MakeError("--from " + a.from + ": " + from->endpoint.ToString() +
                              " is a replica, not a master");
  }
  std::vector<int> candidates;
  int want = a.slots;
  if (!a.ranges.empty()) {
    auto r = ParseRanges(a.ranges);
    if (!r) return tl::unexpected(r.error());
    candidates = *r;
    want = static_cast<int>(candidates.size());
  } else {
    const auto from_index = s.judgement.owners.Find(from->id);
    for (int slot = 0; slot < cluster::kSlotCount; ++slot) {
      if (from_index != cluster::SlotMap::kUnassigned &&
          s.judgement.owners.OwnerIndex(slot) == from_index) {
        candidates.push_back(slot);
      }
    }
    if (static_cast<int>(candidates.size()) < want) {
      return cluster::MakeError("--slots " + std::to_string(want) + ": source " +
                                from->endpoint.ToString() + " owns only " +
                                std::to_string(candidates.size()) + " slots");
    }
    candidates.resize(want);
  }
  // Check ownership before measuring: a bad slot is an input error.
  Batch probe{"input", from->id, to->id, candidates, std::nullopt};
  Limits unbounded = limits;
  unbounded.max_batch_slots = cluster::kSlotCount;
  if (auto r = ResolveBatch(probe, s, unbounded); !r) {
    std::string msg = r.error().message;
    const std::string pre = "batch input: ";
    if (msg.rfind(pre, 0) == 0) msg = msg.substr(pre.size());
    return cluster::MakeError(msg);
  }
  auto& src = connector.Get(from->endpoint);
  auto loads = MeasureSlotLoads(src, candidates);
  if (!loads) return tl::unexpected(loads.error());
  auto used = UsedMemory(src);
  if (!used) return tl::unexpected(used.error());

  ReshardRequest req;
  req.from = from->id;
  req.to = to->id;
  req.slots = want;
  req.batch_slots = a.batch_slots;
  req.id_prefix = id_prefix;
  auto plan = PlanReshard(req, candidates, *loads, *used, limits);
  if (!plan) return tl::unexpected(plan.error());
  // The engine sizes its MIGRATEs and checks the target's headroom with these samples.
  for (auto& b : plan->plan.batches) {
    for (int slot : b.slots) {
      if (auto it = loads->find(slot); it != loads->end()) b.loads[slot] = it->second;
    }
  }
  auto resolved = ValidatePlan(plan->plan, s, limits);
  if (!resolved) return tl::unexpected(resolved.error());
  Planned out{std::move(*plan), std::move(*resolved),
              from->endpoint.ToString() + " (" + from->id + ")",
              to->endpoint.ToString() + " (" + to->id + ")"};
  return out;
}

void PrintPlan(const Planned& p, const Limits& limits) {
  const auto& plan = p.reshard.plan;
  int64_t keys = 0;
  int64_t bytes = 0;
  for (const auto& e : p.reshard.estimates) {
    keys += e.keys;
    bytes += e.bytes;
  }
  std::printf("Plan: move %d slots from %s to %s in %zu batch(es)\n", plan.TotalSlots(),
              p.from_name.c_str(), p.to_name.c_str(), plan.batches.size());
  std::printf("%-14s %6s  %-24s %10s %12s\n", "batch", "slots", "ranges", "keys", "est. bytes");
  for (size_t i = 0; i < plan.batches.size(); ++i) {
    const auto& b = plan.batches[i];
    const auto& e = p.reshard.estimates[i];
    std::string ranges = RangesOf(b.slots);
    if (ranges.size() > 24) ranges = ranges.substr(0, 21) + "...";
    std::printf("%-14s %6zu  %-24s %10lld %12s%s\n", b.id.c_str(), b.slots.size(), ranges.c_str(),
                static_cast<long long>(e.keys), HumanBytes(e.bytes).c_str(),
                e.hot ? "  hot slot, alone" : "");
  }
  if (!p.reshard.hot_slots.empty()) {
    std::printf("Hot slots split out (over %.0f%% of the source's memory, one batch each): %s\n",
                limits.hot_slot_fraction * 100, RangesOf(p.reshard.hot_slots).c_str());
  } else {
    std::printf("Hot slots split out: none\n");
  }
  std::printf("Total: %d slots, %lld keys, %s estimated\n", plan.TotalSlots(),
              static_cast<long long>(keys), HumanBytes(bytes).c_str());
  if (p.resolved.needs_approval) {
    std::printf("Approval: needed (over %d slots): reshard needs --yes\n",
                limits.approval_threshold_slots);
  }
  std::fflush(stdout);
}

// Progress: a bar on a terminal, a line per batch otherwise.
class ProgressObserver final : public EngineObserver {
 public:
  ProgressObserver(int total_slots, bool tty) : total_(total_slots), tty_(tty) {}
  void SetTotal(int total) {
    std::lock_guard<std::mutex> lock(mutex_);
    total_ = total;
  }
  void OnState(const std::string& batch_id, BatchState state) override {
    std::lock_guard<std::mutex> lock(mutex_);
    batch_ = batch_id;
    state_ = ToString(state);
    Draw();
  }
  void OnKeysMigrated(int64_t keys) override {
    std::lock_guard<std::mutex> lock(mutex_);
    keys_ += keys;
  }
  void OnProgress(const std::string& batch_id, int slots_done, int /*slots_total*/) override {
    std::lock_guard<std::mutex> lock(mutex_);
    in_batch_[batch_id] = slots_done;
    Draw();
  }
  void BatchEnded(const std::string& batch_id, int slots_in_batch, bool moved) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (moved) done_ += slots_in_batch;
    in_batch_.erase(batch_id);
    Draw();
  }
  void Line(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (tty_ && drawn_) std::printf("\r\033[K");
    std::printf("%s\n", text.c_str());
    drawn_ = false;
    Draw();
    std::fflush(stdout);
  }
  void Finish() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (tty_ && drawn_) std::printf("\n");
    drawn_ = false;
    std::fflush(stdout);
  }
  int64_t keys() const { return keys_; }

 private:
  void Draw() {
    if (!tty_) return;
    int now = done_;
    for (const auto& [id, slots] : in_batch_) now += slots;  // batches running in parallel
    int width = 30;
    int fill = total_ > 0 ? now * width / total_ : 0;
    std::string bar(fill, '#');
    bar += std::string(width - fill, '.');
    std::printf("\r\033[K[%s] %d/%d slots, %lld keys  %s %s", bar.c_str(), now, total_,
                static_cast<long long>(keys_), batch_.c_str(), state_.c_str());
    std::fflush(stdout);
    drawn_ = true;
  }
  std::mutex mutex_;
  int total_;
  bool tty_;
  int done_ = 0;
  std::map<std::string, int> in_batch_;
  int64_t keys_ = 0;
  std::string batch_;
  std::string state_;
  bool drawn_ = false;
};

EngineOptions MakeEngineOptions(const ReshardArgs& a, const Connected& c) {
  EngineOptions o;
  o.seeds = {c.seed};
  o.credentials = c.credentials;
  o.tls = c.tls;
  o.getkeys_count = a.getkeys_count;
  o.pipeline = a.pipeline;
  o.migrate_timeout = std::chrono::milliseconds(a.timeout_ms);
  o.group_slots = a.group_slots;
  o.migrates_per_round = a.migrates_per_round;
  o.migrate_bytes = a.migrate_bytes;
  o.replace = a.replace;
  o.journal_dir = a.journal;
  o.guards.coverage_grace = std::chrono::seconds(a.coverage_grace_s);
  o.guards.migrate_failures = a.migrate_failures;
  o.guards.convergence_timeout = std::chrono::seconds(a.convergence_timeout_s);
  o.rollback_timeout = std::chrono::seconds(a.rollback_timeout_s);
  o.lease.ttl = std::chrono::milliseconds(static_cast<int64_t>(a.lease_ttl_s * 1000));
  return o;
}

nlohmann::json RequestJson(const ReshardArgs& a, const std::string& from_id,
                           const std::string& to_id) {
  return {{"from", from_id},
          {"to", to_id},
          {"slots", a.slots},
          {"ranges", a.ranges},
          {"batch_slots", a.batch_slots}};
}

std::string RunId() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "r%Y%m%dT%H%M%S", &tm);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return std::string(buf) + std::to_string(ms);
}

// How a run ended, for the line that says what this command does with it.
std::string RunEnding(const JournalRun& run) {
  if (!run.end) return "it never ended: the agent was killed or crashed";
  return "it ended " + *run.end + (run.end_ms > 0 ? " at " + UtcText(run.end_ms) : "");
}

// The flock of DIR/daemon.lock (see Queue::Open), held while the returned lock lives; none
// when the dir never had a daemon (no lock file: nothing to hold).
cluster::Result<std::optional<common::FileLock>> LockDaemonDir(const std::string& dir) {
  const std::string path = dir + "/daemon.lock";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<common::FileLock>();
  auto lock = common::FileLock::TryAcquire(path);
  if (!lock) return tl::unexpected(lock.error());
  if (!*lock) {
    return cluster::MakeError(
        "journal dir " + dir + " belongs to a running slotguard-agent daemon (" + path +
        " is locked): reshard must not write into it. Queue the move on the daemon "
        "(slotguard-agent enqueue) or give reshard a --journal of its own. Nothing was changed.");
  }
  return lock;
}

// How the batches of a run ended, for its closing lines, its run_end record and the exit code.
struct RunTally {
  int total_slots = 0;
  int moved_slots = 0;
  int64_t moved_keys = 0;
  int exit = kExitOk;
  std::string run_state = "done";
  std::string last_batch;  // a batch that did not end done
  std::string open_batch;  // ... when the journal keeps it open for the next run
  std::optional<std::string> journal_error;
  std::optional<std::string> not_started;  // a batch that did not start: why
  size_t ended = 0;                        // batches that ran
};

void PrintRolledBack(const BatchOutcome& o, const std::string& id, ProgressObserver& progress) {
  progress.Line("batch " + id + ": ROLLED BACK (" +
                (o.tripped_guard ? "guard " + *o.tripped_guard
                                 : (o.trigger ? ToString(*o.trigger) : std::string("stop"))) +
                "): " + o.reason);
  if (o.busy_keys.empty()) return;
  std::string keys;
  for (size_t i = 0; i < o.busy_keys.size() && i < 20; ++i) {
    keys += (i ? ", " : "") + o.busy_keys[i];
  }
  progress.Line("BUSYKEY: the target already holds different values for: " + keys);
}

// Folds a batch's ending that is not done into the tally; when several batches of a parallel
// round end badly, an error outweighs a rollback.
void TallyTrouble(const BatchOutcome& o, const std::string& id, ProgressObserver& progress,
                  RunTally& t) {
  auto set = [&](int exit, const char* state) {
    if (t.exit != kExitOk && exit != kExitError) return;
    t.exit = exit;
    t.run_state = state;
  };
  t.last_batch = id;
  if (o.journal_error) {
    t.journal_error = o.journal_error;
    progress.Line("batch " + id + ": STOPPED: " + o.reason);
    set(kExitError, "failed");
    if (o.state != BatchState::kRolledBack) t.open_batch = id;
  } else if (o.stopped) {
    progress.Line("batch " + id + ": STOPPED on a second interrupt: " + o.reason);
    set(kExitInterrupted, "interrupted");
    t.open_batch = id;
  } else if (o.state == BatchState::kRolledBack) {
    PrintRolledBack(o, id, progress);
    set(kExitRolledBack, o.trigger == RollbackTrigger::kOperator ? "interrupted" : "rolled_back");
  } else {
    progress.Line("batch " + id + ": FAILED: " + o.reason);
    set(kExitError, "failed");
  }
}

// Prints one batch's end and folds it into the tally. Called from the batches' threads.
void TallyBatchEnd(const BatchEnd& end, ProgressObserver& progress, std::mutex& mutex,
                   RunTally& t) {
  std::lock_guard<std::mutex> lock(mutex);
  const Batch& batch = *end.batch;
  ++t.ended;
  if (!end.outcome) {
    progress.Line("batch " + batch.id + ": not started: " + end.outcome.error().message);
    if (!t.not_started) t.not_started = end.outcome.error().message;
    return;
  }
  const auto& o = *end.outcome;
  t.moved_keys += o.keys_moved;
  const int slots = static_cast<int>(batch.slots.size());
  progress.BatchEnded(batch.id, slots, o.state == BatchState::kDone);
  if (o.state != BatchState::kDone) return TallyTrouble(o, batch.id, progress, t);
  t.moved_slots += slots;
  char line[512];
  std::snprintf(line, sizeof line,
                "batch %s: %zu slots moved (%d-%d), %lld keys, %.2f s  [%d/%d slots]",
                batch.id.c_str(), batch.slots.size(), batch.slots.front(), batch.slots.back(),
                static_cast<long long>(o.keys_moved), o.seconds, t.moved_slots, t.total_slots);
  progress.Line(line);
}

// Ctrl-C / SIGTERM while a runner runs: polls the signal flag (a handler can only set it) and
// tells the runner; woken at once when the run ends, so the exit does not wait out a poll.
class InterruptWatcher {
 public:
  InterruptWatcher(BatchRunner& runner, ProgressObserver& progress)
      : runner_(runner), progress_(progress) {
    std::signal(SIGINT, OnInterrupt);
    std::signal(SIGTERM, OnInterrupt);
    thread_ = std::thread([this] { Watch(); });
  }
  ~InterruptWatcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void Watch() {
    std::unique_lock<std::mutex> lock(mutex_);
    bool rolling_back = false;
    while (!finished_) {
      if (int sig = g_interrupted.load(); sig && !rolling_back) {
        rolling_back = true;
        runner_.RequestRollback(RollbackTrigger::kOperator,
                                sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)");
      }
      if (g_interrupts.load() >= 2) {
        progress_.Line(
            "second interrupt: stopping at the next step without finishing the rollback (again "
            "to kill at once)");
        runner_.RequestStop();
        return;
      }
      wake_.wait_for(lock, std::chrono::milliseconds(50));
    }
  }
  BatchRunner& runner_;
  ProgressObserver& progress_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool finished_ = false;
  std::thread thread_;
};

// Runs `pairs` with a runner, Ctrl-C watched; the tally says how it ended, `ends` what each
// batch that ran gave.
RunTally RunPairsCollect(std::vector<PairMove>& pairs, const RunnerOptions& options,
                         ProgressObserver& progress, int total_slots, std::vector<BatchEnd>& ends) {
  RunTally tally;
  tally.total_slots = total_slots;
  size_t batches = 0;
  for (const auto& p : pairs) batches += p.batches.size();
  BatchRunner runner(options);
  std::mutex mutex;
  {
    InterruptWatcher watcher(runner, progress);
    ends = runner.Run(pairs, [&](const BatchEnd& e) { TallyBatchEnd(e, progress, mutex, tally); });
  }
  if (g_interrupted && tally.exit == kExitOk && !tally.not_started && tally.ended < batches) {
    progress.Line("interrupted: no further batch started");
    tally.exit = kExitRolledBack;
    tally.run_state = "interrupted";
  }
  progress.Finish();
  return tally;
}

RunTally RunPairs(std::vector<PairMove>& pairs, const RunnerOptions& options,
                  ProgressObserver& progress, int total_slots) {
  std::vector<BatchEnd> ends;
  return RunPairsCollect(pairs, options, progress, total_slots, ends);
}

// The arguments checked, the cluster connected and seen: what every reshard or plan starts
// from.
struct ReshardStart {
  Connected c;
  ClusterSnapshot snapshot;
};

cluster::Result<ReshardStart> StartReshard(const ReshardArgs& a, const Limits& limits) {
  if (auto v = ValidateArgs(a, limits); !v) return tl::unexpected(v.error());
  if (!a.ranges.empty()) {
    if (auto r = ParseRanges(a.ranges); !r) return tl::unexpected(r.error());
  }
  // The engine's connection must outwait MIGRATE's own timeout.
  auto c = Connect(a.common, std::chrono::milliseconds(a.timeout_ms + 3000));
  if (!c) return tl::unexpected(c.error());
  auto snapshot = TakeSnapshot(*c->pool, {c->seed});
  if (!snapshot) return tl::unexpected(snapshot.error());
  return ReshardStart{std::move(*c), std::move(*snapshot)};
}

// `plan`, or reshard --dry-run: the plan printed, nothing changed.
int PrintPlanOnly(const ReshardArgs& a, const ReshardStart& start, const Limits& limits) {
  auto records = Journal::Read(a.journal);
  if (records) {
    auto state = ReplayJournal(*records);
    if (!state.OpenBatches().empty()) {
      std::fprintf(stderr,
                   "warning: journal %s has %zu unfinished batch(es); reshard with that "
                   "--journal recovers them first\n",
                   a.journal.c_str(), state.OpenBatches().size());
    }
  }
  auto planned = MakePlan(a, *start.c.pool, start.snapshot, limits, "b");
  if (Failed(planned)) return kExitError;
  PrintPlan(*planned, limits);
  if (a.dry_run) std::printf("Dry run: nothing changed.\n");
  return kExitOk;
}

// What this command does with the journal's runs: resume one, abandon one, or neither.
struct RunDecision {
  std::string resume_id;   // the latest unfinished run, when the same command continues it
  std::string abandon_id;  // ... when this command starts a new run instead
};

// The rule, said before anything moves: the same command resumes the latest unfinished run
// (interrupted, rolled back, failed, or killed); a run that ended done is never resumed;
// --new-run or other arguments abandon it.
RunDecision DecideRuns(const ReshardArgs& a, const JournalState& open_before,
                       const ClusterSnapshot& snapshot) {
  nlohmann::json request;
  if (const auto* from = snapshot.FindNode(a.from), *to = snapshot.FindNode(a.to); from && to) {
    request = RequestJson(a, from->id, to->id);
  }
  RunDecision d;
  if (const auto* run = open_before.LastUnfinishedRun()) {
    const bool same = !request.is_null() && run->request == request;
    if (same && !a.new_run) {
      d.resume_id = run->id;
      std::printf(
          "Resuming run %s (%s): the same command continues an unfinished run (--new-run "
          "starts a new one instead)\n",
          run->id.c_str(), RunEnding(*run).c_str());
    } else {
      d.abandon_id = run->id;
      std::printf(
          "Abandoning unfinished run %s (%s; %s): its open batches are converged first, then "
          "a new run starts\n",
          run->id.c_str(), RunEnding(*run).c_str(),
          a.recover_only ? "a rebalance plans anew"
          : same         ? "--new-run given"
                         : "different arguments");
    }
  } else {
    for (auto it = open_before.runs.rbegin(); it != open_before.runs.rend(); ++it) {
      if (request.is_null() || it->request != request) continue;
      if (it->end == "done") {
        std::printf("Run %s with these arguments finished (%s): starting a new run\n",
                    it->id.c_str(), RunEnding(*it).c_str());
      }
      break;
    }
  }
  std::fflush(stdout);
  return d;
}

// Converges whatever an earlier run left open, then sees the cluster again once every view
// gives the recovered slots their owner (preflight would refuse them before).
cluster::Result<void> RecoverOpenBatches(const ReshardArgs& a, const JournalState& open_before,
                                         Engine& engine, ReshardStart& start) {
  std::printf("Recovering unfinished batches from journal %s ...\n", a.journal.c_str());
  auto rec = engine.Recover();
  if (!rec) return tl::unexpected(rec.error());
  for (const auto& m : rec->messages) std::printf("recovery: %s\n", m.c_str());
  std::fflush(stdout);
  std::vector<int> recovered;
  for (const JournalBatch* b : open_before.OpenBatches()) {
    recovered.insert(recovered.end(), b->slots.begin(), b->slots.end());
  }
  const Connected& c = start.c;
  auto snapshot = SnapshotWhenOwnersAgree([&] { return TakeSnapshot(*c.pool, {c.seed}); },
                                          recovered, std::chrono::seconds(30),
                                          [](auto pause) {
                                            std::this_thread::sleep_for(pause);
                                            return true;
                                          });
  if (!snapshot) return tl::unexpected(snapshot.error());
  start.snapshot = std::move(*snapshot);
  return {};
}

// The batches a run still has to move.
struct RunWork {
  std::vector<Batch> todo;
  int total_slots = 0;
};

// The batches of the resumed run not yet done.
RunWork ResumedRunWork(const JournalState& jstate, const std::string& run_id) {
  RunWork w;
  int done_slots = 0;
  for (const auto& run : jstate.runs) {
    if (run.id != run_id) continue;
    for (const auto& [id, slots] : run.batches) {
      const auto* b = jstate.FindBatch(id);
      if (b && b->end && *b->end == BatchState::kDone) {
        done_slots += static_cast<int>(slots.size());
        continue;
      }
      w.todo.push_back(Batch{id, run.from, run.to, slots, std::nullopt});
      w.total_slots += static_cast<int>(slots.size());
    }
  }
  std::printf("Run %s: %zu batch(es), %d slots left (%d moved before)\n", run_id.c_str(),
              w.todo.size(), w.total_slots, done_slots);
  return w;
}

// A new plan, approved and journaled as run `run_id`; the error is the whole message.
cluster::Result<RunWork> NewRunWork(const ReshardArgs& a, const ReshardStart& start,
                                    const Limits& limits, Engine& engine,
                                    const std::string& run_id) {
  const auto* from = start.snapshot.FindNode(a.from);
  const auto* to = start.snapshot.FindNode(a.to);
  const auto plan_started = std::chrono::steady_clock::now();
  auto planned = MakePlan(a, *start.c.pool, start.snapshot, limits, run_id + "-b");
  spdlog::debug("planned in {:.1f} ms", std::chrono::duration<double, std::milli>(
                                            std::chrono::steady_clock::now() - plan_started)
                                            .count());
  if (!planned) return tl::unexpected(planned.error());
  if (planned->resolved.needs_approval && !a.yes) {
    return cluster::MakeError(
        "the plan moves " + std::to_string(planned->resolved.total_slots) +
        " slots, over the runbook's " + std::to_string(limits.approval_threshold_slots) +
        "-slot limit without approval: review it with `slotguard-agent plan` and rerun with "
        "--yes to approve. Nothing was changed.");
  }
  nlohmann::json batches = nlohmann::json::array();
  for (const auto& b : planned->reshard.plan.batches) {
    batches.push_back({{"id", b.id}, {"slots", b.slots}});
  }
  if (auto j = engine.JournalAppend({{"type", "run"},
                                     {"run", run_id},
                                     {"from", from->id},
                                     {"to", to->id},
                                     {"request", RequestJson(a, from->id, to->id)},
                                     {"batches", batches}});
      !j) {
    return cluster::MakeError("cannot journal the new run, so nothing was moved: " +
                              j.error().message);
  }
  RunWork w;
  w.todo = planned->reshard.plan.batches;
  w.total_slots = planned->reshard.plan.TotalSlots();
  std::printf("Moving %d slots from %s to %s in %zu batch(es) (run %s, journal %s)\n",
              w.total_slots, planned->from_name.c_str(), planned->to_name.c_str(), w.todo.size(),
              run_id.c_str(), a.journal.c_str());
  return w;
}

// Journals how run `run_id` ended and says so; the exit code.
int EndReshardRun(const ReshardArgs& a, const RunTally& tally, Engine& engine,
                  const std::string& run_id) {
  if (tally.not_started) {
    Err(*tally.not_started +
        " (nothing of this batch was changed; rerun the same command with the same --journal "
        "to resume)");
    return kExitError;  // left open on purpose: the same command resumes from this batch
  }
  const int total_slots = tally.total_slots;
  const int moved_slots = tally.moved_slots;
  const int64_t moved_keys = tally.moved_keys;
  const int exit = tally.exit;
  const std::string& run_state = tally.run_state;
  const std::string& last_batch = tally.last_batch;
  const std::string& open_batch = tally.open_batch;
  const std::optional<std::string>& journal_error = tally.journal_error;
  auto ended = engine.JournalAppend({{"type", "run_end"}, {"run", run_id}, {"state", run_state}});
  if (journal_error) {
    Err("the journal " + a.journal + " could not be written (" + *journal_error + "): " +
        (open_batch.empty()
             ? "batch " + last_batch + " was rolled back, but its end is not journaled. "
             : "the agent stopped before the step whose record failed, without rolling back: "
               "batch " +
                   open_batch +
                   " is left as the journal describes it, every key where clients find it. ") +
        "Make room on the journal's filesystem (or fix it) and rerun the same command with the "
        "same --journal: it converges the batch and resumes run " +
        run_id + ".");
    std::fflush(stdout);
    return kExitError;
  }
  if (!ended) {
    // The run stays unfinished in the journal: the same command resumes it (nothing left for a
    // run whose batches are all done, so that rerun only records its end).
    Err("the end of run " + run_id + " (" + run_state +
        ") could not be journaled: " + ended.error().message);
    std::fflush(stdout);
    return kExitError;
  }
  if (exit == kExitOk) {
    std::printf("Done: %d slots moved, %lld keys.\n", moved_slots,
                static_cast<long long>(moved_keys));
  } else if (exit == kExitRolledBack) {
    std::printf(
        "Stopped: %d of %d slots moved before the rollback; the rolled-back batch is at "
        "the source again. Run %s is unfinished: the same command resumes it (--new-run "
        "starts a new one).\n",
        moved_slots, total_slots, run_id.c_str());
  } else if (exit == kExitInterrupted) {
    std::printf(
        "Stopped at once: %d of %d slots moved; batch %s is left as its journal describes it "
        "(open slots possible, every key reachable). Rerun the same command with the same "
        "--journal: it converges that batch first, then resumes run %s.\n",
        moved_slots, total_slots, open_batch.c_str(), run_id.c_str());
  }
  std::fflush(stdout);
  return exit;
}

int RunPlanOrReshard(const ReshardArgs& a, bool execute) {
  SetupLogging();
  Limits limits;
  auto start = StartReshard(a, limits);
  if (Failed(start)) return kExitError;
  if (!execute || a.dry_run) return PrintPlanOnly(a, *start, limits);

  // A daemon's journal dir is the daemon's even while it is idle (its engine opens the journal
  // only for a batch): held for the whole run, so no daemon starts on it meanwhile either.
  auto daemon_dir = LockDaemonDir(a.journal);
  if (Failed(daemon_dir)) return kExitError;

  RealClock clock;
  ProgressObserver progress(0, ::isatty(STDOUT_FILENO) == 1);

  // 1. What this command does with the journal's runs, said before anything moves.
  auto before = Journal::Read(a.journal);
  if (Failed(before)) return kExitError;
  const JournalState open_before = ReplayJournal(*before);
  const RunDecision decision = DecideRuns(a, open_before, start->snapshot);

  // Named in the migration lease, so a refused agent learns which run holds it.
  const std::string new_run_id = RunId();
  EngineOptions engine_options = MakeEngineOptions(a, start->c);
  engine_options.lease.run = decision.resume_id.empty() ? new_run_id : decision.resume_id;
  Engine engine(*start->c.pool, clock, std::move(engine_options), progress);

  // 2. Whatever an earlier run left open is converged first.
  if (!open_before.OpenBatches().empty()) {
    if (Failed(RecoverOpenBatches(a, open_before, engine, *start))) return kExitError;
  }

  // 3. The batches of the resumed run not yet done, else a new plan.
  auto records = Journal::Read(a.journal);
  if (Failed(records)) return kExitError;
  if (const std::string& abandon_id = decision.abandon_id; !abandon_id.empty()) {
    if (auto j = engine.JournalAppend(
            {{"type", "run_end"}, {"run", abandon_id}, {"state", "abandoned"}});
        !j) {
      Err("cannot journal that run " + abandon_id +
          " is abandoned, so no new run starts: " + j.error().message);
      return kExitError;
    }
  }
  if (a.recover_only) {
    std::printf("Journal %s: nothing left open\n", a.journal.c_str());
    std::fflush(stdout);
    return kExitOk;
  }
  const std::string run_id = decision.resume_id.empty() ? new_run_id : decision.resume_id;
  RunWork work;
  if (!decision.resume_id.empty()) {
    work = ResumedRunWork(ReplayJournal(*records), run_id);
  } else {
    auto planned = NewRunWork(a, *start, limits, engine, run_id);
    if (Failed(planned)) return kExitError;
    work = std::move(*planned);
  }
  std::fflush(stdout);

  // 4. The batches, through the runner; then how the run ended.
  progress.SetTotal(work.total_slots);
  std::vector<PairMove> pairs;
  if (!work.todo.empty()) {
    pairs.push_back({work.todo.front().from, work.todo.front().to, work.todo, &engine});
  }
  const RunTally tally = RunPairs(pairs, RunnerOptions{}, progress, work.total_slots);
  return EndReshardRun(a, tally, engine, run_id);
}

// ---- rebalance / drain ----

struct RebalanceArgs {
  ReshardArgs engine;                // connection, batching, MIGRATE, journal and guard settings
  std::vector<std::string> weights;  // NODE=W
  bool use_empty_masters = false;
  double threshold_pct = 2;
  std::string by = "slots";
  std::string output;
  int parallel = 0;    // most batches at once; 0: as many as disjoint pairs allow
  int per_target = 1;  // batches a target receives at once, each from another source
  std::string on_trip = "finish";
};

std::string InMeasure(BalanceMeasure by, double v) {
  if (by == BalanceMeasure::kMemory) return HumanBytes(static_cast<int64_t>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

cluster::Result<void> WritePlanFile(const std::string& path, const Plan& plan,
                                    const ClusterSnapshot& s, const std::string& header) {
  const std::string text = FormatPlanFile(plan, header, [&](const std::string& id) {
    const auto* n = s.FindById(id);
    return n ? n->endpoint.ToString() : std::string();
  });
  if (auto w = common::AtomicRewrite(path, text); !w) {
    return cluster::MakeError("--output " + path + ": " + w.error().message);
  }
  return {};
}

// The engines of a rebalance or drain: one per source -> target pair (agent/pair_engines.h).
PairEngines MakeRunEngines(const Plan& plan, const ReshardArgs& a, const Connected& c,
                           const EngineShared& shared, const std::string& run_id, Clock& clock,
                           EngineObserver& observer) {
  PairEngineSettings s;
  s.connect.connect_timeout = std::chrono::milliseconds(2000);
  s.connect.io_timeout = std::chrono::milliseconds(a.timeout_ms + 3000);  // outwaits MIGRATE
  s.connect.credentials = c.credentials;
  s.connect.tls = c.tls;
  s.engine = MakeEngineOptions(a, c);
  s.engine.lease.run = run_id;
  s.shared = shared;
  return MakePairEngines(plan.batches, s, clock, observer);
}

// Journals one run per pair (as a reshard of that pair would), so `forget` dates a drain and
// `status` names the moves.
cluster::Result<void> JournalPairRuns(const PairEngines& p, const std::string& rebalance) {
  for (size_t i = 0; i < p.pairs.size(); ++i) {
    const PairMove& m = p.pairs[i];
    nlohmann::json batches = nlohmann::json::array();
    for (const auto& b : m.batches) batches.push_back({{"id", b.id}, {"slots", b.slots}});
    auto j = m.engine->JournalAppend({{"type", "run"},
                                      {"run", p.run_ids[i]},
                                      {"from", m.source_id},
                                      {"to", m.target_id},
                                      {"request", {{"rebalance", rebalance}}},
                                      {"batches", batches}});
    if (!j) return j;
  }
  return {};
}

// The run_end of each pair: done when every batch of it is, else how the run ended.
void JournalPairEnds(const PairEngines& p, const std::vector<BatchEnd>& ends,
                     const RunTally& tally) {
  for (size_t i = 0; i < p.pairs.size(); ++i) {
    size_t done = 0;
    for (const auto& e : ends) {
      done += e.pair == i && e.outcome && e.outcome->state == BatchState::kDone;
    }
    const bool whole = done == p.pairs[i].batches.size();
    const std::string state =
        whole ? "done" : (tally.exit == kExitOk ? "interrupted" : tally.run_state);
    (void)p.pairs[i].engine->JournalAppend(
        {{"type", "run_end"}, {"run", p.run_ids[i]}, {"state", state}});
  }
}

void PrintParallelEnd(const RunTally& t, const std::string& journal) {
  if (t.not_started) Err(*t.not_started + " (nothing of that batch was changed)");
  if (t.journal_error) {
    Err("the journal " + journal + " could not be written (" + *t.journal_error +
        "): make room on its filesystem (or fix it) and rerun the same command");
  }
  if (t.exit == kExitOk && !t.not_started) {
    std::printf("Moved %d slots, %lld keys.\n", t.moved_slots,
                static_cast<long long>(t.moved_keys));
    return;
  }
  std::printf(
      "Rebalance stopped: %d of %d slots moved%s; rerun the same command to converge what is "
      "open and continue.\n",
      t.moved_slots, t.total_slots,
      t.open_batch.empty() ? "" : (", batch " + t.open_batch + " left open").c_str());
}

// Runs a rebalance/drain plan: the batches of pairs with no master in common at the same time
// (BatchRunner), each guarded and journaled on its own, under one migration lease.
int RunRebalancePlan(const RebalanceArgs& r, const Connected& c, const Plan& plan) {
  const ReshardArgs& a = r.engine;
  auto on_trip = ParseOnTrip(r.on_trip);
  if (Failed(on_trip)) return kExitError;
  auto daemon_dir = LockDaemonDir(a.journal);
  if (Failed(daemon_dir)) return kExitError;
  auto journal = Journal::Open(a.journal);
  if (Failed(journal)) return kExitError;
  const std::string run_id = RunId();
  cluster::ConnectOptions co;  // the lease renews from a thread of its own
  co.connect_timeout = std::chrono::milliseconds(1000);
  co.io_timeout = std::chrono::milliseconds(2000);
  co.credentials = c.credentials;
  co.tls = c.tls;
  cluster::ConnectionPool lease_pool(co);
  LeaseOptions lo;
  lo.ttl = std::chrono::milliseconds(static_cast<int64_t>(a.lease_ttl_s * 1000));
  lo.run = run_id;
  Lease lease(lease_pool, {c.seed}, lo, a.journal);
  RealClock clock;
  ProgressObserver progress(plan.TotalSlots(), ::isatty(STDOUT_FILENO) == 1);
  RunTally tally;
  {
    PairEngines p =
        MakeRunEngines(plan, a, c, {&lease, std::move(*journal)}, run_id, clock, progress);
    if (auto l = p.engines.front()->AcquireLease(); !l) {
      Err(l.error().message + ". Nothing was changed.");
      return kExitError;
    }
    if (auto j = JournalPairRuns(p, run_id); !j) {
      Err("cannot journal the run, so nothing was moved: " + j.error().message);
      return kExitError;
    }
    RunnerOptions ro;
    ro.limits.parallel = r.parallel;
    ro.limits.per_target = r.per_target;
    ro.on_trip = *on_trip;
    std::printf(
        "Running %zu move(s) of %d slots, batches of moves with no master in common at "
        "the same time (%s), --on-trip %s (run %s, journal %s)\n",
        p.pairs.size(), plan.TotalSlots(),
        r.parallel > 0 ? ("at most " + std::to_string(r.parallel)).c_str() : "no cap",
        r.on_trip.c_str(), run_id.c_str(), a.journal.c_str());
    std::fflush(stdout);
    std::vector<BatchEnd> ends;
    tally = RunPairsCollect(p.pairs, ro, progress, plan.TotalSlots(), ends);
    JournalPairEnds(p, ends, tally);
  }  // the engines write what they still hold pending
  auto records = Journal::Read(a.journal);
  lease.Release(records && ReplayJournal(*records).OpenBatches().empty());
  PrintParallelEnd(tally, a.journal);
  return tally.not_started ? kExitError : tally.exit;
}

// The shared settings of a rebalance or drain checked; the measure it balances by.
cluster::Result<BalanceMeasure> ValidateRebalance(const RebalanceArgs& r, const ReshardArgs& base,
                                                  const Limits& limits) {
  if (auto v = ValidateArgs(base, limits); !v) return tl::unexpected(v.error());
  auto by = ParseBalanceMeasure(r.by);
  if (!by) return tl::unexpected(by.error());
  if (!(r.threshold_pct >= 0)) return cluster::MakeError("--threshold must be >= 0 (percent)");
  return *by;
}

// Whatever the journal has open is converged before the cluster is measured: a plan made
// around open slots would name slots their recovery moves. The exit code; kExitOk to go on.
int RecoverBeforeRebalance(const ReshardArgs& base) {
  auto records = Journal::Read(base.journal);
  if (Failed(records)) return kExitError;
  if (ReplayJournal(*records).OpenBatches().empty()) return kExitOk;
  ReshardArgs recover = base;
  recover.recover_only = true;
  return RunPlanOrReshard(recover, true);
}

// The cluster connected and seen, refused unless it is settled.
cluster::Result<ReshardStart> ConnectSettled(const ReshardArgs& base) {
  auto c = Connect(base.common, std::chrono::milliseconds(base.timeout_ms + 3000));
  if (!c) return tl::unexpected(c.error());
  auto s = TakeSnapshot(*c->pool, {c->seed});
  if (!s) return tl::unexpected(s.error());
  if (auto problems = AssessHealth(*s); !problems.empty()) {
    return cluster::MakeError(
        "the cluster is not settled: " + problems.front().text +
        (problems.size() > 1 ? " (and " + std::to_string(problems.size() - 1) + " more)" : "") +
        "; see `slotguard-agent check`. Nothing was changed.");
  }
  return ReshardStart{std::move(*c), std::move(*s)};
}

// The masters with their weights (--weight, 0 for the drained one), and what the run is.
struct BalanceInput {
  std::vector<MasterShare> masters;
  std::string what;  // "rebalance by ..." / "drain of ... by ..."
};

MasterShare* FindMaster(std::vector<MasterShare>& masters, const ClusterSnapshot& s,
                        const std::string& node) {
  const auto* n = s.FindNode(node);
  if (!n) return nullptr;
  for (auto& m : masters) {
    if (m.id == n->id) return &m;
  }
  return nullptr;
}

cluster::Result<BalanceInput> BalanceMasters(const RebalanceArgs& r, const ClusterSnapshot& s,
                                             BalanceMeasure by, const std::string& drain_address) {
  BalanceInput in;
  for (const auto* n : s.Masters()) {
    MasterShare m{n->id, n->endpoint.ToString(), {}};
    for (const auto& range : n->slots) {
      for (int slot = range.first; slot <= range.last; ++slot) m.slots.push_back(slot);
    }
    in.masters.push_back(std::move(m));
  }
  for (const auto& w : r.weights) {
    const auto eq = w.rfind('=');
    double weight = -1;
    try {
      size_t used = 0;
      if (eq != std::string::npos) weight = std::stod(w.substr(eq + 1), &used);
      if (eq == std::string::npos || used != w.size() - eq - 1) weight = -1;
    } catch (...) {
      weight = -1;
    }
    if (!(weight >= 0)) {
      return cluster::MakeError("--weight " + w +
                                ": expected NODE=W with W a number >= 0 (0 empties the node)");
    }
    auto* m = FindMaster(in.masters, s, w.substr(0, eq));
    if (!m) {
      return cluster::MakeError(
          "--weight " + w + ": " + w.substr(0, eq) +
          " is not a master of this cluster (give a node id or host:port as CLUSTER NODES "
          "shows it)");
    }
    m->weight = weight;
  }
  in.what = std::string("rebalance by ") + BalanceMeasureName(by);
  if (!drain_address.empty()) {
    auto* m = FindMaster(in.masters, s, drain_address);
    if (!m) return cluster::MakeError("drain " + drain_address + ": not a master of this cluster");
    m->weight = 0;
    in.what = "drain of " + m->name + " by " + BalanceMeasureName(by);
  }
  return in;
}

// Keys and sampled bytes per slot: the measure for --by keys|memory, and for every plan the
// MIGRATE sizing and the hot-slot rule of the slots that move.
struct SlotMeasures {
  std::map<int, SlotLoad> loads;
  std::map<std::string, int64_t> used_memory;
};

// Measures `slots` of master `m`; the error names the master.
cluster::Result<void> MeasureMaster(const ReshardStart& start, const MasterShare& m,
                                    const std::vector<int>& slots, SlotMeasures& out) {
  const auto* n = start.snapshot.FindById(m.id);
  auto& conn = start.c.pool->Get(n->endpoint);
  auto l = MeasureSlotLoads(conn, slots);
  if (!l) return cluster::MakeError(m.name + ": " + l.error().message);
  out.loads.insert(l->begin(), l->end());
  auto used = UsedMemory(conn);
  if (!used) return cluster::MakeError(m.name + ": " + used.error().message);
  out.used_memory[m.id] = *used;
  return {};
}

// Plans the balance and prints each master's share; for --by slots the slots that move are
// measured afterwards.
cluster::Result<std::optional<Plan>> PlanBalance(const RebalanceArgs& r, const ReshardStart& start,
                                                 BalanceMeasure by, const BalanceInput& in,
                                                 SlotMeasures& measures) {
  if (by != BalanceMeasure::kSlots) {
    for (const auto& m : in.masters) {
      if (m.slots.empty()) continue;
      if (auto e = MeasureMaster(start, m, m.slots, measures); !e) return tl::unexpected(e.error());
    }
  }
  RebalanceOptions options;
  options.by = by;
  options.use_empty_masters = r.use_empty_masters;
  options.threshold_pct = r.threshold_pct;
  options.batch_slots = r.engine.batch_slots;
  options.id_prefix = RunId() + "-rb";
  auto planned = PlanRebalance(in.masters, measures.loads, options);
  if (!planned) return tl::unexpected(planned.error());
  std::printf("%s, threshold %.1f%%:\n", in.what.c_str(), r.threshold_pct);
  std::printf("%-22s %7s %14s %14s %14s\n", "master", "weight", "now", "share", "after plan");
  for (const auto& b : planned->masters) {
    std::printf("%-22s %7.2f %14s %14s %14s%s\n", b.name.c_str(), b.weight,
                InMeasure(by, b.before).c_str(),
                b.taking_part ? InMeasure(by, b.share).c_str() : "-",
                InMeasure(by, b.after).c_str(), b.taking_part ? "" : "  (not taking part)");
  }
  if (planned->within_threshold) {
    std::printf("Every master is within %.1f%% of its share (worst %.1f%%): nothing to move.\n",
                r.threshold_pct, planned->worst_deviation_pct);
    return std::optional<Plan>();
  }
  if (by == BalanceMeasure::kSlots) {
    std::map<std::string, std::vector<int>> giving;
    for (const auto& b : planned->plan.batches) {
      giving[b.from].insert(giving[b.from].end(), b.slots.begin(), b.slots.end());
    }
    for (const auto& m : in.masters) {
      if (!giving.count(m.id)) continue;
      if (auto e = MeasureMaster(start, m, giving[m.id], measures); !e) {
        return tl::unexpected(e.error());
      }
    }
    for (auto& b : planned->plan.batches) {
      for (int slot : b.slots) b.loads[slot] = measures.loads[slot];
    }
  }
  return std::optional<Plan>(std::move(planned->plan));
}

// The runbook's hot-slot rule, per source: a slot over its share of the source's memory goes
// alone (the reshard of each pair applies the same rule when it runs). The batches printed.
Plan SplitAndPrintBatches(const Plan& planned, const std::vector<MasterShare>& masters,
                          const SlotMeasures& measures, const ClusterSnapshot& s,
                          const Limits& limits) {
  std::vector<int> hot;
  for (const auto& [id, used] : measures.used_memory) {
    std::map<int, SlotLoad> own;
    for (const auto& m : masters) {
      if (m.id != id) continue;
      for (int slot : m.slots) {
        if (auto it = measures.loads.find(slot); it != measures.loads.end()) {
          own[slot] = it->second;
        }
      }
    }
    for (int slot : HotSlots(own, used, limits)) hot.push_back(slot);
  }
  Plan plan = SplitHotSlots(planned, hot).plan;
  std::printf("%-30s %-22s %-22s %6s  %s\n", "batch", "from", "to", "slots", "ranges");
  for (const auto& b : plan.batches) {
    std::string ranges = RangesOf(b.slots);
    if (ranges.size() > 30) ranges = ranges.substr(0, 27) + "...";
    std::printf("%-30s %-22s %-22s %6zu  %s\n", b.id.c_str(),
                s.FindById(b.from)->endpoint.ToString().c_str(),
                s.FindById(b.to)->endpoint.ToString().c_str(), b.slots.size(), ranges.c_str());
  }
  std::printf("Total: %d slots in %zu batch(es)%s\n", plan.TotalSlots(), plan.batches.size(),
              hot.empty() ? "" : (", hot slots alone: " + RangesOf(hot)).c_str());
  std::fflush(stdout);
  return plan;
}

// --output, --dry-run, or a plan over the approval limit without --yes: the exit code of a
// rebalance that stops before moving; none when it runs.
std::optional<int> StopBeforeMoving(const RebalanceArgs& r, const Plan& plan,
                                    const ClusterSnapshot& s, const std::string& what,
                                    const Limits& limits) {
  const int total = plan.TotalSlots();
  if (!r.output.empty()) {
    const std::string header = "slotguard-agent " + what + ": " + std::to_string(total) +
                               " slots in " + std::to_string(plan.batches.size()) +
                               " batch(es). Run it: slotguard-agent enqueue " + r.output;
    if (Failed(WritePlanFile(r.output, plan, s, header))) return kExitError;
    std::printf("Plan written to %s (the daemon runs it: slotguard-agent enqueue %s%s)\n",
                r.output.c_str(), r.output.c_str(),
                total > limits.approval_threshold_slots ? ", then approve it" : "");
    return kExitOk;
  }
  if (r.engine.dry_run) {
    std::printf("Dry run: nothing changed.\n");
    return kExitOk;
  }
  if (total > limits.approval_threshold_slots && !r.engine.yes) {
    Err("the plan moves " + std::to_string(total) + " slots, over the runbook's " +
        std::to_string(limits.approval_threshold_slots) +
        "-slot limit without approval: review it with --dry-run and rerun with --yes to "
        "approve. Nothing was changed.");
    return kExitError;
  }
  return std::nullopt;
}

// Where the drained master stands after the run.
void PrintDrained(const Connected& c, const std::string& drain_address) {
  auto after = TakeSnapshot(*c.pool, {c.seed});
  const auto* n = after ? after->FindNode(drain_address) : nullptr;
  if (!n) return;
  size_t owned = 0;
  for (const auto& range : n->slots) owned += range.last - range.first + 1;
  if (n->flags.replica) {
    // Redis (cluster-allow-replica-migration, the default) turns a master that gave away
    // its last slot into a replica of the node that took it.
    const auto* m = after->FindById(n->master_id);
    std::printf(
        "Drained %s: owns %zu slots; the server made it a replica of %s (a master "
        "left without slots follows the node that took its last one)\n",
        n->endpoint.ToString().c_str(), owned,
        m ? m->endpoint.ToString().c_str() : n->master_id.c_str());
    return;
  }
  auto keys = c.pool->Get(n->endpoint).Command({"DBSIZE"});
  std::printf(
      "Drained %s: owns %zu slots, holds %lld keys\n", n->endpoint.ToString().c_str(), owned,
      keys && keys->type == cluster::Reply::Type::kInteger ? static_cast<long long>(keys->integer)
                                                           : -1LL);
}

int RunRebalance(const RebalanceArgs& r, const std::string& drain_address) {
  SetupLogging();
  Limits limits;
  ReshardArgs base = r.engine;
  base.slots = 1;  // checked per pair when it runs; here only the shared settings
  auto by = ValidateRebalance(r, base, limits);
  if (Failed(by)) return kExitError;
  const bool execute = !r.engine.dry_run && r.output.empty();
  if (execute) {
    if (int rc = RecoverBeforeRebalance(base); rc != kExitOk) return rc;
  }
  auto start = ConnectSettled(base);
  if (Failed(start)) return kExitError;
  auto in = BalanceMasters(r, start->snapshot, *by, drain_address);
  if (Failed(in)) return kExitError;
  SlotMeasures measures;
  auto planned = PlanBalance(r, *start, *by, *in, measures);
  if (Failed(planned)) return kExitError;
  if (!*planned) return kExitOk;  // nothing to move
  const Plan plan = SplitAndPrintBatches(**planned, in->masters, measures, start->snapshot, limits);
  if (auto stop = StopBeforeMoving(r, plan, start->snapshot, in->what, limits)) return *stop;
  if (int rc = RunRebalancePlan(r, start->c, plan); rc != kExitOk) return rc;
  if (!drain_address.empty()) PrintDrained(start->c, drain_address);
  std::printf("Rebalance done.\n");
  return kExitOk;
}

// ---- forget ----

struct ForgetArgs {
  CommonArgs common;  // common.seed: the node to forget
  std::string journal = "./slotguard-journal";
  std::string min_age = "24h";
  bool dry_run = false;
};

// What forget judges the node by (see ForgetRefusals), but --min-age; the error is the whole
// message.
cluster::Result<ForgetFacts> FactsToForget(const ForgetArgs& a, const Connected& c,
                                           const ClusterSnapshot& s, const cluster::NodeEntry& n) {
  ForgetFacts f;
  f.node = n.endpoint.ToString() + " (" + n.id + ")";
  f.master = n.flags.master;
  for (const auto& range : n.slots) f.owned_slots += range.last - range.first + 1;
  for (const auto& other : s.nodes) {
    if (other.master_id == n.id) ++f.followers;
  }
  auto& conn = c.pool->Get(n.endpoint);
  auto keys = conn.Command({"DBSIZE"});
  auto clients = conn.Command({"CLIENT", "LIST"});
  auto own = conn.Command({"CLIENT", "ID"});
  for (const auto* r : {&keys, &clients, &own}) {
    if (!*r || (*r)->IsError()) {
      return cluster::MakeError(f.node + ": " + (*r ? (*r)->str : r->error().message));
    }
  }
  f.keys = keys->integer;
  f.clients = ParseClientList(clients->str);
  f.own_client_id = own->integer;
  f.now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  if (auto records = Journal::Read(a.journal)) {
    for (const auto& run : ReplayJournal(*records).runs) {
      if (run.from == n.id && run.end && *run.end == "done") {
        f.drained_at_ms = std::max(f.drained_at_ms.value_or(0), run.end_ms);
      }
    }
  }
  return f;
}

// CLUSTER FORGET of `n` on every other node, CLUSTER RESET HARD on it, then waits until no
// node lists it; the exit code.
int ForgetEverywhere(const Connected& c, const cluster::NodeEntry& n, const std::string& node,
                     const std::vector<const NodeReport*>& others) {
  // Every node bans the forgotten id for 60 s, so gossip cannot bring it back while the rest
  // forget it too; the reset below must come within that window.
  std::vector<std::string> failed;
  for (const auto* r : others) {
    auto reply = c.pool->Get(r->endpoint).Command({"CLUSTER", "FORGET", n.id});
    if (!reply || !reply->IsOk()) {
      failed.push_back(r->endpoint.ToString() + ": " +
                       (reply ? reply->str : reply.error().message));
    }
  }
  if (!failed.empty()) {
    for (const auto& w : failed) Err("CLUSTER FORGET on " + w);
    Err("some nodes still know " + node +
        "; within 60 s the others may learn it again by gossip: rerun forget");
    return kExitError;
  }
  auto& conn = c.pool->Get(n.endpoint);
  if (auto reset = conn.Command({"CLUSTER", "RESET", "HARD"}); !reset || !reset->IsOk()) {
    Err("CLUSTER RESET HARD on " + node + ": " + (reset ? reset->str : reset.error().message) +
        " (the others forgot it; reset it by hand before the 60-s ban ends, or it rejoins)");
    return kExitError;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    bool gone = true;
    for (const auto* r : others) {
      auto view = c.pool->Get(r->endpoint).Command({"CLUSTER", "NODES"});
      gone = gone && view && view->str.find(n.id) == std::string::npos;
    }
    if (gone) break;
    if (std::chrono::steady_clock::now() > deadline) {
      Err("a node still lists " + node + " 10 s after CLUSTER FORGET");
      return kExitError;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::printf(
      "Forgot %s: no node of the cluster knows it; it was reset and can be shut down "
      "or added again as a new node.\n",
      node.c_str());
  return kExitOk;
}

int RunForget(const ForgetArgs& a) {
  SetupLogging();
  auto min_age = common::ParseDuration(a.min_age);
  if (!min_age) {
    Err("--min-age " + a.min_age + ": " + min_age.error().message);
    return kExitError;
  }
  auto c = Connect(a.common, std::chrono::milliseconds(5000));
  if (Failed(c)) return kExitError;
  auto s = TakeSnapshot(*c->pool, {c->seed});
  if (Failed(s)) return kExitError;
  const auto* n = s->FindNode(c->seed.ToString());
  if (!n) {
    Err(c->seed.ToString() + " is not a node of the cluster it answers for");
    return kExitError;
  }
  auto f = FactsToForget(a, *c, *s, *n);
  if (Failed(f)) return kExitError;
  f->min_age = *min_age;
  if (auto why = ForgetRefusals(*f); !why.empty()) {
    for (const auto& w : why) Err(w);
    std::fprintf(stderr, "Nothing was changed.\n");
    return kExitError;
  }
  std::vector<const NodeReport*> others;
  for (const auto& r : s->reports) {
    if (!(r.endpoint == n->endpoint)) others.push_back(&r);
  }
  std::printf("Forgetting %s: CLUSTER FORGET on %zu node(s), then CLUSTER RESET HARD on it\n",
              f->node.c_str(), others.size());
  if (a.dry_run) {
    std::printf("Dry run: nothing changed.\n");
    return kExitOk;
  }
  return ForgetEverywhere(*c, *n, f->node, others);
}

// ---- fix ----

// What fix found to do, and how many problems it leaves to a human.
struct FixWork {
  // open slots per (source, target) as the masters' open states say
  std::map<std::pair<std::string, std::string>, std::vector<int>> groups;
  std::vector<int> assignable;                // no owner and no key anywhere
  const cluster::NodeEntry* least = nullptr;  // the master with the fewest slots: takes them
  int problems = 0;
};

// The open slots fix may converge, per (source, target); the others are said and counted.
// `ends` gets every open slot's pair, contradictory ones included.
void GroupOpenSlots(const ClusterSnapshot& s,
                    std::map<int, std::pair<std::string, std::string>>& ends, FixWork& w) {
  auto is_master = [&](const std::string& id) {
    const auto* n = s.FindById(id);
    return n && n->flags.master;
  };
  std::set<int> contradictory;
  for (const auto& o : s.judgement.open_slots) {
    if (!is_master(o.node_id)) continue;  // a replica's copy of its master's state (Valkey 8)
    auto pair = o.direction == cluster::OpenDirection::kMigrating
                    ? std::make_pair(o.node_id, o.peer_id)
                    : std::make_pair(o.peer_id, o.node_id);
    auto [it, fresh] = ends.emplace(o.slot, pair);
    if (!fresh && it->second != pair) contradictory.insert(o.slot);
  }
  for (const auto& [slot, pair] : ends) {
    if (contradictory.count(slot)) {
      ++w.problems;
      std::printf(
          "slot %d: open towards different nodes on different masters: not touched; "
          "decide by hand (CLUSTER NODES of each shows the [slot->-id] / [slot-<-id])\n",
          slot);
      continue;
    }
    if (!s.FindById(pair.first) || !s.FindById(pair.second)) {
      ++w.problems;
      std::printf("slot %d: open towards %s, which is not a node of this cluster: not touched\n",
                  slot, (s.FindById(pair.first) ? pair.second : pair.first).c_str());
      continue;
    }
    w.groups[pair].push_back(slot);
  }
}

// Slots without an owner (and not open) that no node holds keys of; the others are said and
// counted. False when the keys could not be counted (said on stderr).
bool FindAssignable(const Connected& c, const ClusterSnapshot& s,
                    const std::map<int, std::pair<std::string, std::string>>& ends, FixWork& w) {
  std::vector<int> unowned;
  for (int slot : s.judgement.uncovered_slots) {
    if (!ends.count(slot)) unowned.push_back(slot);
  }
  std::map<int, std::vector<std::pair<cluster::Endpoint, int64_t>>> holders;
  if (!unowned.empty()) {
    auto stray = CountStrayKeys(*c.pool, s);
    for (const auto& e : stray.errors) Err("counting keys: " + e);
    if (!stray.errors.empty()) return false;
    std::set<int> wanted(unowned.begin(), unowned.end());
    for (const auto& h : stray.slots) {
      if (wanted.count(h.slot)) holders[h.slot].push_back({h.node, h.keys});
    }
  }
  for (int slot : unowned) {
    if (!holders.count(slot)) {
      w.assignable.push_back(slot);
      continue;
    }
    ++w.problems;
    std::string who;
    for (const auto& [node, keys] : holders[slot]) {
      who += (who.empty() ? "" : ", ") + node.ToString() + " " + std::to_string(keys) + " keys";
    }
    std::printf(
        "slot %d: no owner, keys on %s: not assigned. Decide which copy is right, then "
        "CLUSTER ADDSLOTS %d on that master (and CLUSTER DELSLOTS/keys elsewhere)\n",
        slot, who.c_str(), slot);
  }
  return true;
}

// Finds what fix does and says it; none when the keys could not be counted.
std::optional<FixWork> FindRepairs(const Connected& c, const ClusterSnapshot& s) {
  FixWork w;
  std::map<int, std::pair<std::string, std::string>> ends;
  GroupOpenSlots(s, ends, w);
  if (!FindAssignable(c, s, ends, w)) return std::nullopt;
  // Unowned, keyless slots go to the master with the fewest slots.
  size_t least_slots = 0;
  for (const auto* m : s.Masters()) {
    size_t owned = 0;
    for (const auto& r : m->slots) owned += r.last - r.first + 1;
    if (!w.least || owned < least_slots) {
      w.least = m;
      least_slots = owned;
    }
  }
  for (const auto& [pair, slots] : w.groups) {
    std::printf(
        "slots %s: MIGRATING/IMPORTING left open between %s and %s: converge (every key "
        "brought to the node that will own the slot before any node is made STABLE; "
        "finished forward or moved back, whichever moves fewer keys)\n",
        RangesOf(slots).c_str(), s.FindById(pair.first)->endpoint.ToString().c_str(),
        s.FindById(pair.second)->endpoint.ToString().c_str());
  }
  if (!w.assignable.empty() && w.least) {
    std::printf("slots %s: no owner and no key anywhere: CLUSTER ADDSLOTS on %s (fewest slots)\n",
                RangesOf(w.assignable).c_str(), w.least->endpoint.ToString().c_str());
  }
  return w;
}

// Journals a batch per group of open slots (written ahead: recovery converges what the journal
// says is open, now or after a kill); slots a killed fix left open are the journal's already.
cluster::Result<void> JournalRepairs(const FixWork& w, const ClusterSnapshot& s,
                                     const JournalState& before, Engine& engine) {
  std::set<int> journaled;
  for (const JournalBatch* b : before.OpenBatches()) {
    journaled.insert(b->slots.begin(), b->slots.end());
  }
  int n = 0;
  const std::string prefix = "fix-" + RunId() + "-";
  for (const auto& [pair, all] : w.groups) {
    std::vector<int> slots;
    for (int slot : all) {
      if (!journaled.count(slot)) slots.push_back(slot);
    }
    if (slots.empty()) continue;
    const auto* src = s.FindById(pair.first);
    const auto* dst = s.FindById(pair.second);
    std::vector<std::string> src_replicas, dst_replicas;
    for (const auto& node : s.nodes) {
      if (node.master_id == src->id) src_replicas.push_back(node.id);
      if (node.master_id == dst->id) dst_replicas.push_back(node.id);
    }
    if (auto j = engine.JournalAppend(BatchRecord(prefix + std::to_string(++n), src->id,
                                                  src->endpoint, dst->id, dst->endpoint, slots,
                                                  src_replicas, dst_replicas));
        !j) {
      return cluster::MakeError("cannot journal the repair, so nothing was changed: " +
                                j.error().message);
    }
  }
  return {};
}

// Converges every journaled batch and says how each ended: kExitError when one ended neither
// done nor rolled back; the error when recovery could not run.
cluster::Result<int> ConvergeRepairs(Engine& engine) {
  auto rec = engine.Recover();
  if (!rec) return tl::unexpected(rec.error());
  for (const auto& m : rec->messages) std::printf("fix: %s\n", m.c_str());
  int exit = kExitOk;
  for (const auto& b : rec->batches) {
    std::printf("batch %s: %s (%d slot(s) finished at the target, %d moved back)\n",
                b.batch_id.c_str(), ToString(b.state).c_str(), b.slots_forward, b.slots_back);
    if (b.state != BatchState::kDone && b.state != BatchState::kRolledBack) exit = kExitError;
  }
  return exit;
}

// CLUSTER ADDSLOTS of the keyless unowned slots on the least-loaded master, journaled first:
// false when the server refused it (said), the error when it could not be journaled (not sent).
cluster::Result<bool> AssignSlots(const FixWork& w, const Connected& c, Engine& engine) {
  if (w.assignable.empty() || !w.least) return true;
  cluster::Argv add{"CLUSTER", "ADDSLOTS"};
  for (int slot : w.assignable) add.push_back(std::to_string(slot));
  if (auto j = engine.JournalAppend(
          {{"type", "fix_addslots"}, {"node", w.least->id}, {"slots", w.assignable}});
      !j) {
    return cluster::MakeError("cannot journal CLUSTER ADDSLOTS, so it was not sent: " +
                              j.error().message);
  }
  auto r = c.pool->Get(w.least->endpoint).Command(add);
  if (!r || !r->IsOk()) {
    Err("CLUSTER ADDSLOTS on " + w.least->endpoint.ToString() + ": " +
        (r ? r->str : r.error().message));
    return false;
  }
  std::printf("slots %s assigned to %s\n", RangesOf(w.assignable).c_str(),
              w.least->endpoint.ToString().c_str());
  return true;
}

// Repairs what another tool left: every open slot becomes a journaled batch (source: the
// MIGRATING node or the one the importer names; target: the importer) that the engine's
// recovery converges, so a killed fix resumes with the same --journal; slots without an owner
// are assigned only where no node holds keys of them.
int RunFix(const ReshardArgs& a) {
  SetupLogging();
  auto c = Connect(a.common, std::chrono::milliseconds(a.timeout_ms + 3000));
  if (Failed(c)) return kExitError;
  auto s = TakeSnapshot(*c->pool, {c->seed});
  if (Failed(s)) return kExitError;
  const auto work = FindRepairs(*c, *s);
  if (!work) return kExitError;
  auto records = Journal::Read(a.journal);
  if (Failed(records)) return kExitError;
  const bool resume = !ReplayJournal(*records).OpenBatches().empty();
  if (work->groups.empty() && work->assignable.empty() && !resume) {
    std::printf(work->problems ? "Nothing fix may do on its own.\n" : "Nothing to fix.\n");
    return work->problems ? kExitError : kExitOk;
  }
  if (a.dry_run) {
    if (resume)
      std::printf("The journal %s has open batches: they are converged first.\n",
                  a.journal.c_str());
    std::printf("Dry run: nothing changed.\n");
    return work->problems ? kExitError : kExitOk;
  }
  auto daemon_dir = LockDaemonDir(a.journal);
  if (Failed(daemon_dir)) return kExitError;
  RealClock clock;
  ProgressObserver progress(0, false);
  EngineOptions options = MakeEngineOptions(a, *c);
  options.lease.run = "fix-" + RunId();
  Engine engine(*c->pool, clock, std::move(options), progress);
  if (Failed(JournalRepairs(*work, *s, ReplayJournal(*records), engine))) return kExitError;
  auto converged = ConvergeRepairs(engine);
  if (Failed(converged)) return kExitError;
  auto assigned = AssignSlots(*work, *c, engine);
  if (Failed(assigned)) return kExitError;
  const int exit = *converged == kExitOk && *assigned && !work->problems ? kExitOk : kExitError;
  std::printf(exit == kExitOk ? "Fixed.\n"
                              : "Not everything was fixed (see above); `slotguard-agent check` "
                                "shows the rest.\n");
  return exit;
}

// Batching, MIGRATE, journal and guard options: reshard, plan, rebalance and drain alike.
void AddEngineOptions(CLI::App* sub, ReshardArgs& a) {
  sub->add_option("--batch-slots", a.batch_slots, "Slots per batch (1-500)")->capture_default_str();
  sub->add_option("--pipeline", a.pipeline, "Keys per MIGRATE")->capture_default_str();
  sub->add_option("--timeout", a.timeout_ms, "MIGRATE timeout in ms")->capture_default_str();
  sub->add_option("--getkeys-count", a.getkeys_count, "Keys per CLUSTER GETKEYSINSLOT")
      ->capture_default_str();
  sub->add_option("--group-slots", a.group_slots,
                  "Slots in flight together (one pipelined SETSLOT round per step)")
      ->capture_default_str();
  sub->add_option("--migrates-per-round", a.migrates_per_round,
                  "MIGRATE commands in flight at once, in two pipelined rounds of half each "
                  "(each may wait --timeout on a dead target before the guards get a say)")
      ->capture_default_str();
  sub->add_option("--migrate-bytes", a.migrate_bytes,
                  "Estimated bytes per MIGRATE, from the slots' sampled key sizes: slots with "
                  "big keys get fewer keys per MIGRATE, at least 1 (0: --pipeline only)")
      ->capture_default_str();
  sub->add_flag("--replace", a.replace,
                "On BUSYKEY overwrite the target's key even when its value differs");
  sub->add_flag("--yes", a.yes, "Approve a plan over 1000 slots");
  sub->add_option("--journal", a.journal, "Journal directory")->capture_default_str();
  sub->add_flag("--dry-run", a.dry_run, "Print the plan and change nothing");
  sub->add_option("--guard-coverage-grace", a.coverage_grace_s,
                  "Seconds coverage may stay below 16384 before rolling back")
      ->capture_default_str();
  sub->add_option("--guard-migrate-failures", a.migrate_failures,
                  "Roll back when MIGRATE failures exceed this")
      ->capture_default_str();
  sub->add_option("--guard-convergence-timeout", a.convergence_timeout_s,
                  "Seconds every node may take to agree after a batch")
      ->capture_default_str();
  sub->add_option("--rollback-timeout", a.rollback_timeout_s,
                  "Seconds a rollback keeps retrying unreachable nodes")
      ->capture_default_str();
  sub->add_option("--lease-ttl", a.lease_ttl_s,
                  "Seconds the cluster-wide migration lease outlives a holder that stopped "
                  "renewing it (renewed every third of it)")
      ->capture_default_str();
}

}  // namespace

namespace {

// `check`
void AddCheckCommand(CLI::App& app, int& exit_code) {
  auto check_args = std::make_shared<CommonArgs>();
  auto* check = app.add_subcommand(
      "check",
      "Judge the cluster like `redis-cli --cluster check`, plus keys a master holds in slots it "
      "does not own (CLUSTER COUNTKEYSINSLOT); exit 0 only when healthy");
  AddCommonOptions(check, *check_args);
  check->callback([check_args, &exit_code] { exit_code = RunCheck(*check_args); });
}

// `reshard` and `plan`
void AddReshardCommands(CLI::App& app, int& exit_code) {
  for (const bool execute : {true, false}) {
    auto args = std::make_shared<ReshardArgs>();
    auto* sub = execute
                    ? app.add_subcommand("reshard",
                                         "Move slots between two masters in guarded, journaled "
                                         "batches; exit 0 done, 2 rolled back, 1 error")
                    : app.add_subcommand("plan",
                                         "Print the batches `reshard` would run (keys and bytes "
                                         "per batch, hot slots); changes nothing");
    AddCommonOptions(sub, args->common);
    sub->add_option("--from", args->from, "Source master: node id or host:port")->required();
    sub->add_option("--to", args->to, "Target master: node id or host:port")->required();
    sub->add_option("--slots", args->slots, "How many slots to move (the source's lowest)");
    sub->add_option("--ranges", args->ranges, "Exactly these slots: A-B,C,...");
    AddEngineOptions(sub, *args);
    if (execute) {
      sub->add_flag("--new-run", args->new_run,
                    "Start a new run even when the journal holds an unfinished run of the same "
                    "command (which it would otherwise resume); that run is abandoned after its "
                    "open batches are converged");
    }
    sub->callback([args, execute, &exit_code] { exit_code = RunPlanOrReshard(*args, execute); });
  }
}

// `rebalance` and `drain`
void AddRebalanceCommands(CLI::App& app, int& exit_code) {
  for (const bool drain : {false, true}) {
    auto args = std::make_shared<RebalanceArgs>();
    auto address = std::make_shared<std::string>();
    auto* sub =
        drain ? app.add_subcommand("drain",
                                   "Move every slot of a master to the other masters (balanced "
                                   "by --by), for decommissioning; exit 0 when it owns nothing")
              : app.add_subcommand("rebalance",
                                   "Even out the masters by slots, keys or memory (weights, "
                                   "empty masters) in guarded, journaled batches");
    if (drain) {
      sub->add_option("node", *address, "The master to empty, HOST:PORT (also the seed)")
          ->required();
      args->engine.common.seed.clear();
      sub->add_option("--user", args->engine.common.user, "ACL user (default: the default user)");
      sub->add_option("--password-file", args->engine.common.password_file,
                      "File whose first line is the password (else $REDIS_PASSWORD)");
    } else {
      AddCommonOptions(sub, args->engine.common);
      sub->add_option("--weight", args->weights,
                      "NODE=W: a master's share relative to the others (default 1; 0 empties "
                      "it); repeatable");
      sub->add_option("--threshold", args->threshold_pct,
                      "Do nothing when every master is within this many percent of its share")
          ->capture_default_str();
    }
    sub->add_flag("--use-empty-masters", args->use_empty_masters,
                  "Masters without slots take part (a new master is empty)");
    sub->add_option("--by", args->by,
                    "What to even out: slots (as redis-cli), keys, or memory (sampled bytes)")
        ->capture_default_str();
    sub->add_option("--output", args->output,
                    "Write the plan as a plan file for the daemon (`enqueue`) instead of running "
                    "it");
    sub->add_option("--parallel", args->parallel,
                    "Most batches running at once (moves with no master in common run side by "
                    "side: a source sends one batch at a time, a target receives --per-target); "
                    "0: as many as such moves allow")
        ->check(CLI::Range(0, 1024))
        ->capture_default_str();
    sub->add_option("--per-target", args->per_target,
                    "Batches a target receives at once, each from another source (default 1, "
                    "the runbook's one at a time; 3 lets three old masters fill one new master "
                    "together; each batch's memory headroom check then sees only itself)")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    sub->add_option("--on-trip", args->on_trip,
                    "When a batch trips a guard (it rolls back and no new batch starts), the "
                    "other running batches: finish (default: their own guards watch their own "
                    "masters, so a trip elsewhere says nothing against them, and rolling a "
                    "healthy batch back keeps its slots open longer) or rollback")
        ->check(CLI::IsMember({"finish", "rollback"}))
        ->capture_default_str();
    AddEngineOptions(sub, args->engine);
    sub->callback([args, address, drain, &exit_code] {
      if (drain) args->engine.common.seed = *address;
      exit_code = RunRebalance(*args, drain ? *address : std::string());
    });
  }
}

// `forget`
void AddForgetCommand(CLI::App& app, int& exit_code) {
  auto forget_args = std::make_shared<ForgetArgs>();
  auto* forget = app.add_subcommand(
      "forget",
      "Remove a drained node from the cluster (CLUSTER FORGET everywhere, then CLUSTER RESET "
      "HARD on it); refused while it owns a slot, holds a key, has clients or replicas, or was "
      "drained less than --min-age ago");
  AddCommonOptions(forget, forget_args->common);
  forget
      ->add_option("--journal", forget_args->journal,
                   "Journal directory of the drain (when it ended)")
      ->capture_default_str();
  forget
      ->add_option("--min-age", forget_args->min_age,
                   "Observation window after the drain, e.g. 24h, 30m (0s: none)")
      ->capture_default_str();
  forget->add_flag("--dry-run", forget_args->dry_run, "Check and say what would be done");
  forget->callback([forget_args, &exit_code] { exit_code = RunForget(*forget_args); });
}

// `fix`
void AddFixCommand(CLI::App& app, int& exit_code) {
  auto fix_args = std::make_shared<ReshardArgs>();
  auto* fix = app.add_subcommand(
      "fix",
      "Repair open slots and unowned slots another tool left (every key to the node that will "
      "own the slot before any node is made STABLE); journaled, so a killed fix resumes");
  AddCommonOptions(fix, fix_args->common);
  AddEngineOptions(fix, *fix_args);
  fix->callback([fix_args, &exit_code] { exit_code = RunFix(*fix_args); });
}

}  // namespace

// Subcommands in the order `--help` lists them.
void RegisterEngineCommands(CLI::App& app, int& exit_code) {
  AddCheckCommand(app, exit_code);
  AddReshardCommands(app, exit_code);
  AddRebalanceCommands(app, exit_code);
  AddForgetCommand(app, exit_code);
  AddFixCommand(app, exit_code);
}

}  // namespace slotguard::agent
