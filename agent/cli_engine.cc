// check, reshard and plan: the engine in the foreground.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/check.h"
#include "agent/cli.h"
#include "agent/cluster_snapshot.h"
#include "agent/engine.h"
#include "agent/journal.h"
#include "agent/plan.h"
#include "agent/slot_load.h"
#include "agent/stray_keys.h"
#include "agent/wall_time.h"
#include "cluster/connection_pool.h"
#include "cluster/credentials.h"
#include "cluster/endpoint.h"
#include "common/file_lock.h"
#include "common/logging.h"

namespace slotguard::agent {
namespace {

struct CommonArgs {
  std::string seed;
  std::optional<std::string> user;
  std::string password_file;
};

struct ReshardArgs {
  CommonArgs common;
  std::string from;
  std::string to;
  int slots = 0;
  std::string ranges;
  int batch_slots = 200;
  int pipeline = 100;
  int timeout_ms = 2000;
  int getkeys_count = 1000;
  int group_slots = 200;
  int migrates_per_round = 8;
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

// The CLI logs text at SLOTGUARD_LOG_LEVEL (default info); the daemon takes both from agent.yaml.
void SetupLogging() {
  const char* level = std::getenv("SLOTGUARD_LOG_LEVEL");
  common::SetupLogging("slotguard-agent", "text", level ? level : "info");
}

struct Connected {
  cluster::Endpoint seed;
  std::optional<cluster::Credentials> credentials;
  std::unique_ptr<cluster::ConnectionPool> pool;
};

cluster::Result<Connected> Connect(const CommonArgs& a, std::chrono::milliseconds io_timeout) {
  auto seed = cluster::ParseSeedAddress(a.seed);
  if (!seed) return tl::unexpected(seed.error());
  std::optional<std::string> user = a.user ? a.user : seed->user;
  auto creds = cluster::LoadCredentials(user, a.password_file);
  if (!creds) return tl::unexpected(creds.error());
  Connected c;
  c.seed = seed->endpoint;
  c.credentials = *creds;
  cluster::ConnectOptions co;
  co.connect_timeout = std::chrono::milliseconds(2000);
  co.io_timeout = io_timeout;
  co.credentials = *creds;
  c.pool = std::make_unique<cluster::ConnectionPool>(co);
  return c;
}

void AddCommonOptions(CLI::App* sub, CommonArgs& a) {
  sub->add_option("address", a.seed,
                  "Any node of the cluster: HOST:PORT or redis://[user@]HOST:PORT")
      ->required();
  sub->add_option("--user", a.user, "ACL user (default: the default user)");
  sub->add_option("--password-file", a.password_file,
                  "File whose first line is the password (else $REDIS_PASSWORD)");
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
  if (!c) {
    Err(c.error().message);
    return kExitError;
  }
  auto s = TakeSnapshot(*c->pool, {c->seed});
  if (!s) {
    Err(s.error().message);
    return kExitError;
  }
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
    for (int slot = 0; slot < cluster::kSlotCount; ++slot) {
      if (s.judgement.owner[slot] == from->id) candidates.push_back(slot);
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
  void OnProgress(const std::string& /*batch_id*/, int slots_done, int /*slots_total*/) override {
    std::lock_guard<std::mutex> lock(mutex_);
    in_batch_ = slots_done;
    Draw();
  }
  void BatchEnded(int slots_in_batch, bool moved) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (moved) done_ += slots_in_batch;
    in_batch_ = 0;
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
    int now = done_ + in_batch_;
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
  int in_batch_ = 0;
  int64_t keys_ = 0;
  std::string batch_;
  std::string state_;
  bool drawn_ = false;
};

EngineOptions MakeEngineOptions(const ReshardArgs& a, const Connected& c) {
  EngineOptions o;
  o.seeds = {c.seed};
  o.credentials = c.credentials;
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

int RunPlanOrReshard(const ReshardArgs& a, bool execute) {
  SetupLogging();
  Limits limits;
  if (auto v = ValidateArgs(a, limits); !v) {
    Err(v.error().message);
    return kExitError;
  }
  if (!a.ranges.empty()) {
    if (auto r = ParseRanges(a.ranges); !r) {
      Err(r.error().message);
      return kExitError;
    }
  }
  // The engine's connection must outwait MIGRATE's own timeout.
  auto c = Connect(a.common, std::chrono::milliseconds(a.timeout_ms + 3000));
  if (!c) {
    Err(c.error().message);
    return kExitError;
  }
  auto snapshot = TakeSnapshot(*c->pool, {c->seed});
  if (!snapshot) {
    Err(snapshot.error().message);
    return kExitError;
  }

  if (!execute || a.dry_run) {
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
    auto planned = MakePlan(a, *c->pool, *snapshot, limits, "b");
    if (!planned) {
      Err(planned.error().message);
      return kExitError;
    }
    PrintPlan(*planned, limits);
    if (a.dry_run) std::printf("Dry run: nothing changed.\n");
    return kExitOk;
  }

  // A daemon's journal dir is the daemon's even while it is idle (its engine opens the journal
  // only for a batch): held for the whole run, so no daemon starts on it meanwhile either.
  auto daemon_dir = LockDaemonDir(a.journal);
  if (!daemon_dir) {
    Err(daemon_dir.error().message);
    return kExitError;
  }

  RealClock clock;
  ProgressObserver progress(0, ::isatty(STDOUT_FILENO) == 1);

  // 1. What this command does with the journal's runs, said before anything moves. The rule:
  // the same command resumes the latest unfinished run (interrupted, rolled back, failed, or
  // killed); a run that ended done is never resumed; --new-run or other arguments abandon it.
  auto before = Journal::Read(a.journal);
  if (!before) {
    Err(before.error().message);
    return kExitError;
  }
  const JournalState open_before = ReplayJournal(*before);
  nlohmann::json request;
  if (const auto* from = snapshot->FindNode(a.from), *to = snapshot->FindNode(a.to); from && to) {
    request = RequestJson(a, from->id, to->id);
  }
  std::string run_id;
  std::string abandon_id;
  if (const auto* run = open_before.LastUnfinishedRun()) {
    const bool same = !request.is_null() && run->request == request;
    if (same && !a.new_run) {
      run_id = run->id;
      std::printf(
          "Resuming run %s (%s): the same command continues an unfinished run (--new-run "
          "starts a new one instead)\n",
          run->id.c_str(), RunEnding(*run).c_str());
    } else {
      abandon_id = run->id;
      std::printf(
          "Abandoning unfinished run %s (%s; %s): its open batches are converged first, then "
          "a new run starts\n",
          run->id.c_str(), RunEnding(*run).c_str(),
          same ? "--new-run given" : "different arguments");
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

  // Named in the migration lease, so a refused agent learns which run holds it.
  const std::string new_run_id = RunId();
  EngineOptions engine_options = MakeEngineOptions(a, *c);
  engine_options.lease.run = run_id.empty() ? new_run_id : run_id;
  Engine engine(*c->pool, clock, std::move(engine_options), progress);

  // 2. Whatever an earlier run left open is converged first.
  if (!open_before.OpenBatches().empty()) {
    std::printf("Recovering unfinished batches from journal %s ...\n", a.journal.c_str());
    auto rec = engine.Recover();
    if (!rec) {
      Err(rec.error().message);
      return kExitError;
    }
    for (const auto& m : rec->messages) std::printf("recovery: %s\n", m.c_str());
    std::fflush(stdout);
    // Right after recovery the other nodes may still be learning the owners by gossip: wait
    // (bounded) until every recovered slot has an agreed owner, or preflight would refuse it.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (true) {
      snapshot = TakeSnapshot(*c->pool, {c->seed});
      if (!snapshot) {
        Err(snapshot.error().message);
        return kExitError;
      }
      bool agreed = true;
      for (const JournalBatch* b : open_before.OpenBatches()) {
        for (int slot : b->slots) agreed = agreed && !snapshot->judgement.owner[slot].empty();
      }
      if (agreed || std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  // 3. The batches of the resumed run not yet done, else a new plan.
  const auto* from = snapshot->FindNode(a.from);
  const auto* to = snapshot->FindNode(a.to);
  auto records = Journal::Read(a.journal);
  if (!records) {
    Err(records.error().message);
    return kExitError;
  }
  JournalState jstate = ReplayJournal(*records);
  std::vector<Batch> todo;
  int total_slots = 0;
  if (!abandon_id.empty()) {
    if (auto j = engine.JournalAppend(
            {{"type", "run_end"}, {"run", abandon_id}, {"state", "abandoned"}});
        !j) {
      Err("cannot journal that run " + abandon_id +
          " is abandoned, so no new run starts: " + j.error().message);
      return kExitError;
    }
  }
  if (!run_id.empty()) {
    int done_slots = 0;
    for (const auto& run : jstate.runs) {
      if (run.id != run_id) continue;
      for (const auto& [id, slots] : run.batches) {
        const auto* b = jstate.FindBatch(id);
        if (b && b->end && *b->end == BatchState::kDone) {
          done_slots += static_cast<int>(slots.size());
          continue;
        }
        todo.push_back(Batch{id, run.from, run.to, slots, std::nullopt});
        total_slots += static_cast<int>(slots.size());
      }
    }
    std::printf("Run %s: %zu batch(es), %d slots left (%d moved before)\n", run_id.c_str(),
                todo.size(), total_slots, done_slots);
  } else {
    run_id = new_run_id;
    const auto plan_started = std::chrono::steady_clock::now();
    auto planned = MakePlan(a, *c->pool, *snapshot, limits, run_id + "-b");
    spdlog::debug("planned in {:.1f} ms", std::chrono::duration<double, std::milli>(
                                              std::chrono::steady_clock::now() - plan_started)
                                              .count());
    if (!planned) {
      Err(planned.error().message);
      return kExitError;
    }
    if (planned->resolved.needs_approval && !a.yes) {
      Err("the plan moves " + std::to_string(planned->resolved.total_slots) +
          " slots, over the runbook's " + std::to_string(limits.approval_threshold_slots) +
          "-slot limit without approval: review it with `slotguard-agent plan` and rerun with "
          "--yes to approve. Nothing was changed.");
      return kExitError;
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
      Err("cannot journal the new run, so nothing was moved: " + j.error().message);
      return kExitError;
    }
    todo = planned->reshard.plan.batches;
    total_slots = planned->reshard.plan.TotalSlots();
    std::printf("Moving %d slots from %s to %s in %zu batch(es) (run %s, journal %s)\n",
                total_slots, planned->from_name.c_str(), planned->to_name.c_str(), todo.size(),
                run_id.c_str(), a.journal.c_str());
  }
  std::fflush(stdout);

  progress.SetTotal(total_slots);
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  // Polls the signal flag (a handler can only set it); woken at once when the run ends, so
  // the exit does not wait out a poll interval.
  std::mutex watcher_mutex;
  std::condition_variable watcher_wake;
  bool finished = false;
  std::thread watcher([&] {
    std::unique_lock<std::mutex> lock(watcher_mutex);
    bool rolling_back = false;
    while (!finished) {
      if (int sig = g_interrupted.load(); sig && !rolling_back) {
        rolling_back = true;
        engine.RequestRollback(RollbackTrigger::kOperator,
                               sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)");
      }
      if (g_interrupts.load() >= 2) {
        progress.Line(
            "second interrupt: stopping at the next step without finishing the rollback (again "
            "to kill at once)");
        engine.RequestStop();
        return;
      }
      watcher_wake.wait_for(lock, std::chrono::milliseconds(50));
    }
  });
  struct JoinWatcher {
    std::mutex& mutex;
    std::condition_variable& wake;
    bool& finished;
    std::thread& watcher;
    ~JoinWatcher() {
      {
        std::lock_guard<std::mutex> lock(mutex);
        finished = true;
      }
      wake.notify_all();
      watcher.join();
    }
  } join_watcher{watcher_mutex, watcher_wake, finished, watcher};
  int moved_slots = 0;
  int64_t moved_keys = 0;
  int exit = kExitOk;
  std::string run_state = "done";
  std::string last_batch;  // the batch that ended the loop early
  std::string open_batch;  // ... when the journal keeps it open for the next run
  std::optional<std::string> journal_error;
  for (const auto& batch : todo) {
    if (g_interrupted) {
      progress.Line("interrupted: no further batch started");
      exit = kExitRolledBack;
      run_state = "interrupted";
      break;
    }
    auto outcome = engine.RunBatch(batch);
    if (!outcome) {
      progress.Line("batch " + batch.id + ": not started: " + outcome.error().message);
      Err(outcome.error().message +
          " (nothing of this batch was changed; rerun the same "
          "command with the same --journal to resume)");
      // Left open on purpose: the same command resumes from this batch.
      progress.Finish();
      return kExitError;
    }
    const auto& o = *outcome;
    char line[512];
    moved_keys += o.keys_moved;
    if (o.state == BatchState::kDone) {
      moved_slots += static_cast<int>(batch.slots.size());
      progress.BatchEnded(static_cast<int>(batch.slots.size()), true);
      std::snprintf(line, sizeof line,
                    "batch %s: %zu slots moved (%d-%d), %lld keys, %.2f s  [%d/%d slots]",
                    batch.id.c_str(), batch.slots.size(), batch.slots.front(), batch.slots.back(),
                    static_cast<long long>(o.keys_moved), o.seconds, moved_slots, total_slots);
      progress.Line(line);
      continue;
    }
    progress.BatchEnded(static_cast<int>(batch.slots.size()), false);
    last_batch = batch.id;
    journal_error = o.journal_error;
    if (o.journal_error) {
      progress.Line("batch " + batch.id + ": STOPPED: " + o.reason);
      exit = kExitError;
      run_state = "failed";
      if (o.state != BatchState::kRolledBack) open_batch = batch.id;
    } else if (o.stopped) {
      progress.Line("batch " + batch.id + ": STOPPED on a second interrupt: " + o.reason);
      exit = kExitInterrupted;
      run_state = "interrupted";
      open_batch = batch.id;
    } else if (o.state == BatchState::kRolledBack) {
      progress.Line("batch " + batch.id + ": ROLLED BACK (" +
                    (o.tripped_guard ? "guard " + *o.tripped_guard
                                     : (o.trigger ? ToString(*o.trigger) : std::string("stop"))) +
                    "): " + o.reason);
      if (!o.busy_keys.empty()) {
        std::string keys;
        for (size_t i = 0; i < o.busy_keys.size() && i < 20; ++i) {
          keys += (i ? ", " : "") + o.busy_keys[i];
        }
        progress.Line("BUSYKEY: the target already holds different values for: " + keys);
      }
      exit = kExitRolledBack;
      run_state = o.trigger == RollbackTrigger::kOperator ? "interrupted" : "rolled_back";
    } else {
      progress.Line("batch " + batch.id + ": FAILED: " + o.reason);
      exit = kExitError;
      run_state = "failed";
    }
    break;
  }
  progress.Finish();
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

}  // namespace

void RegisterEngineCommands(CLI::App& app, int& exit_code) {
  auto check_args = std::make_shared<CommonArgs>();
  auto* check = app.add_subcommand(
      "check",
      "Judge the cluster like `redis-cli --cluster check`, plus keys a master holds in slots it "
      "does not own (CLUSTER COUNTKEYSINSLOT); exit 0 only when healthy");
  AddCommonOptions(check, *check_args);
  check->callback([check_args, &exit_code] { exit_code = RunCheck(*check_args); });

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
    sub->add_option("--batch-slots", args->batch_slots, "Slots per batch (1-500)")
        ->capture_default_str();
    sub->add_option("--pipeline", args->pipeline, "Keys per MIGRATE")->capture_default_str();
    sub->add_option("--timeout", args->timeout_ms, "MIGRATE timeout in ms")->capture_default_str();
    sub->add_option("--getkeys-count", args->getkeys_count, "Keys per CLUSTER GETKEYSINSLOT")
        ->capture_default_str();
    sub->add_option("--group-slots", args->group_slots,
                    "Slots in flight together (one pipelined SETSLOT round per step)")
        ->capture_default_str();
    sub->add_option("--migrates-per-round", args->migrates_per_round,
                    "MIGRATE commands in flight at once, in two pipelined rounds of half each "
                    "(each may wait --timeout on a dead target before the guards get a say)")
        ->capture_default_str();
    sub->add_option("--migrate-bytes", args->migrate_bytes,
                    "Estimated bytes per MIGRATE, from the slots' sampled key sizes: slots with "
                    "big keys get fewer keys per MIGRATE, at least 1 (0: --pipeline only)")
        ->capture_default_str();
    sub->add_flag("--replace", args->replace,
                  "On BUSYKEY overwrite the target's key even when its value differs");
    sub->add_flag("--yes", args->yes, "Approve a plan over 1000 slots");
    sub->add_option("--journal", args->journal, "Journal directory")->capture_default_str();
    sub->add_flag("--dry-run", args->dry_run, "Print the plan and change nothing");
    sub->add_option("--guard-coverage-grace", args->coverage_grace_s,
                    "Seconds coverage may stay below 16384 before rolling back")
        ->capture_default_str();
    sub->add_option("--guard-migrate-failures", args->migrate_failures,
                    "Roll back when MIGRATE failures exceed this")
        ->capture_default_str();
    sub->add_option("--guard-convergence-timeout", args->convergence_timeout_s,
                    "Seconds every node may take to agree after a batch")
        ->capture_default_str();
    sub->add_option("--rollback-timeout", args->rollback_timeout_s,
                    "Seconds a rollback keeps retrying unreachable nodes")
        ->capture_default_str();
    sub->add_option("--lease-ttl", args->lease_ttl_s,
                    "Seconds the cluster-wide migration lease outlives a holder that stopped "
                    "renewing it (renewed every third of it)")
        ->capture_default_str();
    if (execute) {
      sub->add_flag("--new-run", args->new_run,
                    "Start a new run even when the journal holds an unfinished run of the same "
                    "command (which it would otherwise resume); that run is abandoned after its "
                    "open batches are converged");
    }
    sub->callback([args, execute, &exit_code] { exit_code = RunPlanOrReshard(*args, execute); });
  }
}

}  // namespace slotguard::agent
