#include "agent/daemon.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include "agent/cluster_snapshot.h"
#include "agent/pair_engines.h"
#include "agent/plan_file.h"
#include "agent/slot_load.h"
#include "agent/startup_checks.h"
#include "agent/token.h"
#include "cluster/tls_context.h"
#include "common/listen_address.h"

namespace slotguard::agent {

namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string Describe(const BatchOutcome& o) {
  std::string text = "moved " + std::to_string(o.slots_moved) + " slots, " +
                     std::to_string(o.keys_moved) + " keys in " +
                     std::to_string(static_cast<int64_t>(o.seconds)) + "s";
  if (!o.reason.empty()) text = o.reason + " (" + text + ")";
  if (o.trigger) text += " [trigger " + ToString(*o.trigger) + "]";
  if (o.tripped_guard) text += " [guard " + *o.tripped_guard + "]";
  if (!o.busy_keys.empty()) {
    text += " [keys differing on the target:";
    for (size_t i = 0; i < o.busy_keys.size() && i < 10; ++i) text += " " + o.busy_keys[i];
    if (o.busy_keys.size() > 10) text += " ...";
    text += "]";
  }
  return text;
}

// The one phase slotguard_agent_state shows for several running batches: a rollback first
// (it needs attention), then a batch moving slots, then the first one's.
std::string CombinedPhase(const std::vector<std::string>& phases) {
  for (const char* first : {"rolling_back", "migrating", "verifying"}) {
    for (const auto& p : phases) {
      if (p == first) return p;
    }
  }
  return phases.empty() ? std::string() : phases.front();
}

std::string JoinIds(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ", ") + id;
  return out;
}

// "batch a" / "batches a, b", for the log and the API's answers.
std::string NameBatches(const std::vector<std::string>& ids) {
  return (ids.size() == 1 ? "batch " : "batches ") + JoinIds(ids);
}

}  // namespace

struct Daemon::Run {
  Run(PairEngines e, const RunnerOptions& options) : engines(std::move(e)), runner(options) {}
  // The throttling connector of the pair that runs `batch_id` (null: not in this run).
  DaemonConnector* Connector(const std::string& batch_id) const {
    const size_t pair = engines.PairOf(batch_id);
    if (pair >= engines.connectors.size()) return nullptr;
    return static_cast<DaemonConnector*>(engines.connectors[pair].get());
  }
  PairEngines engines;
  BatchRunner runner;
  bool rollback_all = false;  // under Daemon::mutex_: batches that start now roll back too
};

// Forwards the engine's reports to the metrics and keeps the daemon's view of the running
// batch (its phase, persisted in the queue, and the throttle's direction).
class Daemon::Observer final : public EngineObserver {
 public:
  explicit Observer(Daemon& daemon) : daemon_(daemon) {}

  void OnState(const std::string& batch_id, BatchState state) override {
    const std::string phase = ToString(state);
    std::shared_ptr<Run> run;
    bool started = false, roll_back = false;
    {
      std::lock_guard<std::mutex> lock(daemon_.mutex_);
      if (daemon_.run_ && daemon_.run_->Connector(batch_id) != nullptr) {
        run = daemon_.run_;
        auto [it, inserted] = daemon_.running_.try_emplace(batch_id);
        it->second.phase = phase;
        started = inserted;
        roll_back = inserted && run->rollback_all;
      }
    }
    if (run && !Interrupted()) {
      run->Connector(batch_id)->SetForward(state == BatchState::kPreflight ||
                                           state == BatchState::kMigrating);
    }
    if (started) {
      Started(*run, batch_id, roll_back);
    } else if (IsRunning(state) && daemon_.queue_ && daemon_.queue_->Find(batch_id)) {
      auto r = daemon_.queue_->SetPhase(batch_id, state);
      if (!r) spdlog::error("queue: {}", r.error().message);
    }
    spdlog::info("batch {}: {}", batch_id, phase);
    daemon_.metrics_.OnState(batch_id, state);
    daemon_.RefreshState();
  }
  void OnProgress(const std::string& batch_id, int slots_done, int slots_total) override {
    {
      std::lock_guard<std::mutex> lock(daemon_.mutex_);
      auto it = daemon_.running_.find(batch_id);
      if (it != daemon_.running_.end()) {
        it->second.slots_done = slots_done;
        it->second.slots_total = slots_total;
      }
    }
    daemon_.metrics_.OnProgress(batch_id, slots_done, slots_total);
  }
  void OnSlotsMigrated(int slots) override { daemon_.metrics_.OnSlotsMigrated(slots); }
  void OnKeysMigrated(int64_t keys) override { daemon_.metrics_.OnKeysMigrated(keys); }
  // Once the shutdown stopped the engine, failures and rollbacks are artefacts of the
  // interruption, not of the cluster: they are neither counted nor acted on.
  bool Interrupted() const { return daemon_.interrupted_; }
  void OnMigrateFailure(const std::string& reason) override {
    if (!Interrupted()) daemon_.metrics_.OnMigrateFailure(reason);
  }
  void OnRollback(RollbackTrigger trigger) override {
    if (Interrupted()) return;
    daemon_.metrics_.OnRollback(trigger);
    spdlog::warn("rollback started (trigger {})", ToString(trigger));
  }
  void OnGuard(const std::string& guard, bool tripped) override {
    if (Interrupted()) return;
    daemon_.metrics_.OnGuard(guard, tripped);
    if (tripped) spdlog::warn("guard {} tripped", guard);
  }
  void OnBatchFinished(double seconds) override { daemon_.metrics_.OnBatchFinished(seconds); }
  // Counted even after a shutdown stopped the engine: a record lost then is still lost.
  void OnJournalWriteFailure() override { daemon_.metrics_.OnJournalWriteFailure(); }

 private:
  // A batch of the run reached its preflight: the queue marks it running. One cancelled after
  // the run was set up rolls back right after its preflight (nothing moved yet).
  void Started(Run& run, const std::string& batch_id, bool roll_back) {
    auto marked = daemon_.queue_->MarkRunning(batch_id);
    if (!marked) {
      spdlog::warn("batch {}: not moving it: {}", batch_id, marked.error().message);
      run.runner.RequestRollback(RollbackTrigger::kOperator, "cancelled before it started",
                                 batch_id);
      return;
    }
    if (auto item = daemon_.queue_->Find(batch_id)) {
      spdlog::info("batch {}: starting ({} slots {} -> {})", batch_id, item->batch.slots.size(),
                   item->batch.from, item->batch.to);
    }
    if (roll_back) {
      // A rollback of every running batch came while this one was about to start.
      auto r = daemon_.queue_->MarkRollbackRequested(batch_id);
      if (!r) spdlog::error("queue: {}", r.error().message);
    }
  }

  Daemon& daemon_;
};

Daemon::Daemon(AgentConfig config)
    : config_(std::move(config)), observer_(std::make_unique<Observer>(*this)) {}

Daemon::~Daemon() { Shutdown(); }

int Daemon::port() const { return server_ ? server_->port() : 0; }

void Daemon::SetEngineOptions(const std::optional<cluster::Credentials>& credentials,
                              std::shared_ptr<const cluster::TlsContext> tls) {
  // The engine's options: its defaults, overridden by agent.yaml.
  EngineOptions& o = engine_options_;
  o.seeds = config_.seeds;
  o.credentials = credentials;
  o.tls = tls;
  o.journal_dir = config_.journal_dir;
  const EngineSettings& e = config_.engine;
  if (e.pipeline) o.pipeline = *e.pipeline;
  if (e.migrate_bytes) o.migrate_bytes = *e.migrate_bytes;
  if (e.migrate_timeout) o.migrate_timeout = *e.migrate_timeout;
  if (e.getkeys_count) o.getkeys_count = *e.getkeys_count;
  if (e.group_slots) o.group_slots = *e.group_slots;
  if (e.replace) o.replace = *e.replace;
  o.guards = MergeGuards(o.guards, e.guards);
  // Off: the coverage and migrate-failure guards never trip; node health stays on and the
  // convergence after a batch stays bounded (see GuardSettings::enabled).
  o.guards.enabled = e.guards_enabled;
  o.limits.approval_threshold_slots = config_.queue.approval_threshold_slots;
  // A cluster run more cautiously than the runbook's 500 refuses larger batches at enqueue.
  if (e.batch_slots) o.limits.max_batch_slots = *e.batch_slots;
  if (e.lease_ttl) o.lease.ttl = *e.lease_ttl;
}

cluster::Result<void> Daemon::OpenEngine() {
  EngineOptions& o = engine_options_;
  cluster::ConnectOptions connect;
  connect.connect_timeout = config_.connect_timeout;
  connect.io_timeout = o.migrate_timeout + milliseconds(3000);  // MIGRATE must time out first
  connect.credentials = o.credentials;
  connect.tls = o.tls;
  engine_connect_ = connect;
  engine_pool_ = std::make_unique<cluster::ConnectionPool>(connect);
  connect.io_timeout = milliseconds(5000);
  control_pool_ = std::make_unique<cluster::ConnectionPool>(connect);
  // The lease renews from a thread of its own, on connections nobody else uses.
  connect.io_timeout = milliseconds(2000);
  lease_pool_ = std::make_unique<cluster::ConnectionPool>(connect);
  lease_ = std::make_unique<Lease>(*lease_pool_, o.seeds, o.lease, o.journal_dir);
  auto journal = Journal::Open(o.journal_dir);
  if (!journal) return cluster::MakeError("journal: " + journal.error().message);
  journal_ = std::move(*journal);
  o.shared = {lease_.get(), journal_};
  engine_ = std::make_unique<Engine>(*engine_pool_, clock_, engine_options_, *observer_);
  return {};
}

std::vector<common::HttpRoute> Daemon::Routes(const std::string& webhook_token) {
  std::vector<common::HttpRoute> routes = ControlRoutes(*this, control_token_);
  routes.push_back({"GET", "/metrics", [this](const common::HttpRequest&) { return Metrics(); }});
  routes.push_back({"GET", "/healthz", [](const common::HttpRequest&) {
                      return common::HttpResponse{200, "text/plain", "ok\n"};
                    }});
  routes.push_back({"GET", "/", [](const common::HttpRequest&) {
                      return common::HttpResponse{
                          200, "text/html",
                          "<html><body><h1>slotguard-agent</h1><p><a "
                          "href=\"/metrics\">metrics</a></p></body></html>\n"};
                    }});
  if (config_.webhook.enabled) {
    Webhook::Callbacks callbacks;
    callbacks.already_seen = [this](const std::string& key) { return queue_->AlertSeen(key); };
    callbacks.act = [this](const std::string& reason, const std::vector<std::string>& keys) {
      // Remember first: if the rollback request then crashes the daemon, a repeat of the
      // notification must not act a second time after the restart.
      auto remembered = queue_->RememberAlerts(keys);
      if (!remembered) spdlog::error("webhook: {}", remembered.error().message);
      return RollbackRunning(RollbackTrigger::kAlertmanager, reason);
    };
    callbacks.count = [this](const std::string& result) { metrics_.CountWebhook(result); };
    webhook_ = std::make_unique<Webhook>(webhook_token, config_.webhook.rules, callbacks);
    routes.push_back({"POST", "/api/v1/alertmanager",
                      [this](const common::HttpRequest& r) { return webhook_->Handle(r); },
                      config_.webhook.max_body_bytes,
                      [this](const common::HttpResponse& response) {
                        metrics_.CountWebhook("rejected");
                        spdlog::warn("webhook: rejected a notification: {} (HTTP {})",
                                     response.body, response.status);
                      },
                      [this](const common::HttpRequest& r) { return webhook_->Authorize(r); }});
  }
  return routes;
}

void Daemon::WarnAtStart(const std::string& webhook_token) {
  // A wrong seed or a shared token would otherwise show only when a batch or an alert needs it.
  // Logged before the "listening" line: whoever sees that line has seen every warning.
  std::vector<SeedProbe> probes;
  for (const auto& seed : config_.seeds) {
    auto reply = control_pool_->Get(seed).Command({"PING"});
    std::string error = !reply ? reply.error().message : reply->IsError() ? reply->str : "";
    probes.push_back({seed.ToString(), std::move(error)});
  }
  for (const auto& warning : StartupWarnings(config_, control_token_, webhook_token, probes)) {
    spdlog::warn("{}", warning);
  }
}

cluster::Result<void> Daemon::Start() {
  auto token = ReadTokenFile(config_.control_token_file);
  if (!token) return cluster::MakeError("control.token_file: " + token.error().message);
  control_token_ = *token;
  std::string webhook_token;
  if (config_.webhook.enabled) {
    auto t = ReadTokenFile(config_.webhook.token_file);
    if (!t) return cluster::MakeError("webhook.token_file: " + t.error().message);
    webhook_token = *t;
  }
  auto credentials =
      cluster::LoadCredentials(config_.redis_user, config_.redis_password_file, "REDIS_PASSWORD");
  if (!credentials) return cluster::MakeError("redis: " + credentials.error().message);
  // One OpenSSL context for every connection of the daemon: files are read once, here.
  std::shared_ptr<const cluster::TlsContext> tls;
  if (config_.tls) {
    auto context = cluster::TlsContext::Create(*config_.tls);
    if (!context) return cluster::MakeError("redis.tls: " + context.error().message);
    tls = *context;
  }

  auto queue = Queue::Open(config_.journal_dir);
  if (!queue) return tl::unexpected(queue.error());
  queue_ = std::move(*queue);

  SetEngineOptions(*credentials, tls);
  if (auto opened = OpenEngine(); !opened) return opened;

  for (const auto& item : queue_->Snapshot().items) {
    had_unfinished_at_start_ = had_unfinished_at_start_ || !item.Terminal();
  }

  std::vector<common::HttpRoute> routes = Routes(webhook_token);
  auto listen = common::ParseListenAddress(config_.listen_address);
  if (!listen) return tl::unexpected(listen.error());
  // Handlers build a ClusterSnapshot (half a megabyte of slot owners) on their stack: the
  // server runs them on threads of the default size (common::HttpServerOptions).
  common::HttpServerOptions web_options;
  if (!config_.web_config_file.empty()) {
    auto web_config = common::LoadWebConfig(config_.web_config_file);
    if (!web_config) return cluster::MakeError("web_config_file: " + web_config.error().message);
    web_options.web_config = std::move(*web_config);
  }
  auto server = common::HttpServer::Start(*listen, std::move(routes), web_options);
  if (!server) return tl::unexpected(server.error());
  server_ = std::move(*server);
  RefreshState();
  WarnAtStart(webhook_token);
  spdlog::info(
      "slotguard-agent {} listening on {} ({}; journal {}, queue {}, webhook {}), redis {}",
      SLOTGUARD_VERSION, server_->address().ToString(),
      web_options.web_config ? common::DescribeWebConfig(*web_options.web_config)
                             : std::string("plain HTTP"),
      config_.journal_dir, queue_->path(), config_.webhook.enabled ? "on" : "off",
      cluster::DescribeTls(config_.tls));
  worker_ = std::thread([this] { WorkerLoop(); });
  return {};
}

void Daemon::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shut_down_) return;
    shut_down_ = true;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (queue_) queue_->Wake();
  // The HTTP server stays up until the worker is done: /metrics, status and the webhook keep
  // working while the current step finishes.
  if (worker_.joinable()) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (run_) run_->runner.StopNew();  // the running batches finish; no other starts
    std::vector<std::string> running;
    for (const auto& [id, batch] : running_) running.push_back(id);
    if (!running.empty()) {
      spdlog::info("shutting down: waiting up to {}s for {} to finish",
                   config_.shutdown_grace.count(), NameBatches(running));
    }
    if (!stop_cv_.wait_for(lock, config_.shutdown_grace, [&] { return worker_done_; })) {
      // Every step is journaled before it runs, so stopping here is as safe as a crash at
      // this point: the next start converges the batches. Closing the gate first makes sure no
      // further command reaches Redis while the process winds down.
      running.clear();
      for (const auto& [id, batch] : running_) running.push_back(id);
      spdlog::warn(
          "shutting down: interrupting {} where {}; the next start converges from the "
          "journal",
          NameBatches(running), running.size() == 1 ? "it is" : "they are");
      interrupted_ = true;
      if (run_) {
        for (const auto& c : run_->engines.connectors) {
          static_cast<DaemonConnector*>(c.get())->SetForward(false);  // ends a throttle wait
        }
        run_->runner.RequestStop();
      }
      engine_->RequestStop();
      // The engine stops at its next gate; a command already sent may take up to the io
      // timeout (MIGRATE's timeout + 3 s).
      const auto bound = engine_options_.migrate_timeout + seconds(5);
      if (!stop_cv_.wait_for(lock, bound, [&] { return worker_done_; })) {
        spdlog::warn(
            "an engine is still busy with {}; exiting without it (the journal has every "
            "step)",
            NameBatches(running));
        spdlog::shutdown();
        std::_Exit(0);
      }
    }
    lock.unlock();
    worker_.join();
  }
  server_.reset();
  spdlog::info("slotguard-agent stopped");
}

bool Daemon::WaitStop(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return stop_cv_.wait_for(lock, timeout, [&] { return stopping_; });
}

void Daemon::WorkerLoop() {
  while (!WaitStop(milliseconds(0))) {
    if (RecoverOnce()) break;
    if (WaitStop(seconds(5))) break;
  }
  while (!WaitStop(milliseconds(0))) {
    RefreshState();
    auto items = queue_->WaitForRunnableItems(milliseconds(500));
    if (items.empty()) continue;
    RunItems(items);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    worker_done_ = true;
  }
  stop_cv_.notify_all();
}

bool Daemon::RecoverOnce() {
  // Every batch the journal has open, not only the latest: after a kill -9 in the middle of a
  // parallel round there are several.
  auto report = engine_->Recover();
  engine_->ReleaseLease();  // its pending records written
  ReleaseLease();
  if (!report) {
    spdlog::error("recovery from the journal failed (retrying in 5s): {}", report.error().message);
    return false;
  }
  for (const auto& message : report->messages) spdlog::info("recovery: {}", message);
  for (const auto& b : report->batches) {
    spdlog::warn(
        "recovery: batch {} converged to {} ({} slots at the target, {} back at the "
        "source)",
        b.batch_id, ToString(b.state), b.slots_forward, b.slots_back);
  }
  // Batches the queue had running when the previous daemon stopped: the journal converged
  // their slots; now the queue learns where they ended up.
  std::vector<QueueItem> interrupted;
  for (const auto& item : queue_->Snapshot().items) {
    if (item.Running()) interrupted.push_back(item);
  }
  if (!interrupted.empty()) {
    std::vector<int> slots;
    for (const auto& item : interrupted) {
      slots.insert(slots.end(), item.batch.slots.begin(), item.batch.slots.end());
    }
    auto snapshot = SnapshotWhenOwnersAgree(
        [&] {
          std::lock_guard<std::mutex> lock(control_pool_mutex_);
          return TakeSnapshot(*control_pool_, config_.seeds);
        },
        slots, seconds(30), [&](milliseconds pause) { return !WaitStop(pause); });
    if (!snapshot) {
      spdlog::error("recovery: cannot read the cluster (retrying in 5s): {}",
                    snapshot.error().message);
      return false;
    }
    if (WaitStop(milliseconds(0))) return false;
    for (const auto& item : interrupted) Reconcile(item, *snapshot);
  }
  if (had_unfinished_at_start_ && !config_.queue.auto_continue && !queue_->Snapshot().paused) {
    auto r = queue_->Pause(
        "restarted with unfinished batches; queue.auto_continue is off: "
        "`slotguard-agent resume` to continue");
    if (!r) spdlog::error("queue: {}", r.error().message);
  }
  const QueueState state = queue_->Snapshot();
  spdlog::info("recovery done; queue {}{}", state.paused ? "paused: " : "running",
               state.paused ? state.pause_reason : "");
  std::lock_guard<std::mutex> lock(mutex_);
  recovered_ = true;
  return true;
}

void Daemon::Reconcile(const QueueItem& item, const ClusterSnapshot& snapshot) {
  const std::string& id = item.batch.id;
  const cluster::NodeEntry* source = snapshot.FindNode(item.batch.from);
  const cluster::NodeEntry* target = snapshot.FindNode(item.batch.to);
  int at_source = 0, at_target = 0;
  std::vector<int> left;
  for (int slot : item.batch.slots) {
    const std::string_view owner = snapshot.judgement.Owner(slot);
    if (source && owner == source->id) {
      ++at_source;
      left.push_back(slot);
    } else if (target && owner == target->id) {
      ++at_target;
    }
  }
  const int total = static_cast<int>(item.batch.slots.size());
  cluster::Result<void> r;
  if (at_target == total) {
    r = queue_->Finish(id, BatchState::kDone, "finished (completed by recovery after a restart)");
  } else if (at_source == total) {
    if (item.rollback_requested) {
      r = queue_->Finish(id, BatchState::kRolledBack,
                         "rolled back (completed by recovery after a restart)");
    } else {
      r = queue_->Requeue(id,
                          "interrupted by a restart; its slots are back at the source and it "
                          "runs again");
    }
  } else if (at_source + at_target == total && !item.rollback_requested) {
    // Some slots were finished before the stop, the rest never left the source: the batch
    // resumes with the slots still to move.
    r = queue_->Requeue(id,
                        "interrupted by a restart with " + std::to_string(at_target) +
                            " slots already at the target; resumes with the " +
                            std::to_string(at_source) + " left",
                        left);
  } else if (at_source + at_target == total) {
    r = queue_->Finish(id, BatchState::kFailed,
                       "rollback interrupted by a restart: " + std::to_string(at_target) +
                           " slots are still at the target; `slotguard-agent rollback " + id +
                           "` moves them back");
    if (r) r = queue_->Pause("batch " + id + " was rolling back when the agent stopped");
  } else {
    r = queue_->Finish(id, BatchState::kFailed,
                       "after recovery " + std::to_string(at_target) +
                           " slots are at the target, " + std::to_string(at_source) +
                           " at the source and " + std::to_string(total - at_source - at_target) +
                           " elsewhere or without an agreed owner: check the cluster");
    if (r) r = queue_->Pause("batch " + id + " needs an operator after recovery");
  }
  if (!r) spdlog::error("queue: {}", r.error().message);
  if (auto after = queue_->Find(id)) {
    spdlog::warn("recovery: batch {} is now {}: {}", id, after->DisplayState(), after->message);
  }
}

void Daemon::RunItems(const std::vector<QueueItem>& items) {
  std::vector<Batch> batches;
  for (const auto& item : items) batches.push_back(item.batch);
  PairEngineSettings settings;
  settings.engine = engine_options_;
  settings.shared = {lease_.get(), journal_};
  settings.connect = engine_connect_;
  settings.wrap = [this](cluster::Connector& inner) -> std::unique_ptr<cluster::Connector> {
    return std::make_unique<DaemonConnector>(inner, clock_, config_.engine.throttle_per_slot);
  };
  RunnerOptions options;
  options.limits.parallel = config_.engine.parallel;
  options.limits.per_target = config_.engine.per_target;
  options.on_trip = config_.engine.on_trip;
  auto run = std::make_shared<Run>(MakePairEngines(batches, settings, clock_, *observer_), options);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Re-checked under the lock that RollbackRunning takes, so a pause (from the webhook)
    // either lands before this run starts or finds it in flight (and stops it).
    if (stopping_ || queue_->Snapshot().paused) return;
    run_ = run;
    last_outcome_.clear();
  }
  if (run->engines.pairs.size() > 1) {
    spdlog::info(
        "plan {}: {} batch(es) of {} move(s); batches of moves with no master in common "
        "run at the same time",
        items.front().plan_id, items.size(), run->engines.pairs.size());
  }
  RefreshState();
  std::atomic<bool> converge{false};
  if (auto lease = run->engines.engines.front()->AcquireLease(); !lease) {
    // Another agent works on the cluster: nothing ran; the queue waits for an operator.
    const std::string& id = items.front().batch.id;
    spdlog::error("batch {}: did not run: {}", id, lease.error().message);
    auto r = queue_->Requeue(id, "did not run: " + lease.error().message);
    if (r) r = queue_->Pause("batch " + id + " did not run: " + lease.error().message);
    if (!r) spdlog::error("queue: {}", r.error().message);
  } else {
    run->runner.Run(run->engines.pairs, [&](const BatchEnd& end) {
      if (OnBatchEnd(end)) converge = true;
    });
  }
  for (auto& engine : run->engines.engines) engine->ReleaseLease();  // pending records written
  {
    std::lock_guard<std::mutex> lock(mutex_);
    run_.reset();
    running_.clear();
  }
  if (converge && !interrupted_) {
    // A batch that did not run touched nothing in preflight; anything later is converged
    // through the journal, now that no sibling batch is open.
    auto recovered = engine_->Recover();
    if (!recovered) spdlog::error("recovery: {}", recovered.error().message);
    engine_->ReleaseLease();
  }
  // The lease is held for one run (and its recovery above): between runs a reshard or another
  // agent may work.
  ReleaseLease();
  RefreshState();
}

void Daemon::ReleaseLease() {
  auto records = Journal::Read(config_.journal_dir);
  lease_->Release(records && ReplayJournal(*records).OpenBatches().empty());
}

bool Daemon::OnBatchEnd(const BatchEnd& end) {
  const std::string id = end.batch->id;
  const auto& outcome = end.outcome;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    running_.erase(id);
  }
  if (interrupted_ || (outcome && outcome->stopped)) {
    spdlog::warn("batch {}: interrupted by the shutdown; the next start converges it", id);
    return false;
  }
  const auto item = queue_->Find(id);
  if (item && item->state == BatchState::kCancelled) {
    spdlog::info("batch {}: cancelled before it moved anything", id);
    return !outcome;
  }
  cluster::Result<void> r;
  std::string outcome_state;
  if (!outcome) {
    spdlog::error("batch {}: did not run: {}", id, outcome.error().message);
    r = queue_->Requeue(id, "did not run: " + outcome.error().message);
    if (r) r = queue_->Pause("batch " + id + " did not run: " + outcome.error().message);
  } else if (outcome->state == BatchState::kDone) {
    const bool asked = item && item->rollback_requested;
    r = queue_->Finish(
        id, BatchState::kDone,
        Describe(*outcome) + (asked ? " (a rollback was requested but the batch had finished: "
                                      "`slotguard-agent rollback " +
                                          id + "` reverts it)"
                                    : ""));
    spdlog::info("batch {}: done: {}", id, Describe(*outcome));
  } else {
    const bool rolled_back = outcome->state == BatchState::kRolledBack;
    outcome_state = rolled_back ? "rolled_back" : "failed";
    r = queue_->Finish(id, rolled_back ? BatchState::kRolledBack : BatchState::kFailed,
                       Describe(*outcome));
    if (r) {
      r = queue_->Pause("batch " + id + " " + (rolled_back ? "rolled back" : "failed") + ": " +
                        (outcome->reason.empty() ? outcome_state : outcome->reason));
    }
    spdlog::warn("batch {}: {}: {}; queue paused", id, outcome_state, Describe(*outcome));
  }
  if (!r) spdlog::error("queue: {}", r.error().message);
  if (!outcome_state.empty()) {
    std::lock_guard<std::mutex> lock(mutex_);
    last_outcome_ = outcome_state;
  }
  RefreshState();
  return !outcome;
}

std::vector<std::string> Daemon::RunningIds() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> ids;
  for (const auto& [id, batch] : running_) ids.push_back(id);
  return ids;
}

std::shared_ptr<Daemon::Run> Daemon::CurrentRun() {
  std::lock_guard<std::mutex> lock(mutex_);
  return run_;
}

std::string Daemon::RollbackRunning(RollbackTrigger trigger, const std::string& reason,
                                    const std::optional<std::string>& batch) {
  std::vector<std::string> running;
  std::shared_ptr<Run> run;
  {
    // Under the lock RunItems takes to start a run: once paused here, no new run starts, and
    // the runner of the one in flight starts no further batch.
    std::lock_guard<std::mutex> lock(mutex_);
    auto paused = queue_->Pause(reason);
    if (!paused) spdlog::error("queue: {}", paused.error().message);
    run = run_;
    for (const auto& [id, b] : running_) {
      if (!batch || *batch == id) running.push_back(id);
    }
    for (const auto& id : running) {
      auto marked = queue_->MarkRollbackRequested(id);
      if (!marked) spdlog::error("queue: {}", marked.error().message);
    }
    if (run && !batch) run->rollback_all = true;
  }
  if (run) {
    for (const auto& id : running) {
      if (auto* c = run->Connector(id)) c->SetForward(false);
    }
    // The runner names each batch: an engine keeps the request if it has not started it yet.
    if (batch) {
      run->runner.RequestRollback(trigger, reason, *batch);
    } else {
      run->runner.RequestRollback(trigger, reason);
    }
  }
  const std::string done = running.empty()
                               ? "no batch running; queue paused"
                               : "rolling back " + NameBatches(running) + " and pausing the queue";
  spdlog::warn("{} (trigger {}): {}", done, ToString(trigger), reason);
  RefreshState();
  return done;
}

void Daemon::RefreshState() {
  if (!queue_) return;
  const QueueState state = queue_->Snapshot();
  const QueueStats stats = queue_->Stats();
  metrics_.SetQueue(stats.batches, stats.slots, stats.approval_wait_seconds);
  std::string running_phase, last_outcome;
  bool recovered = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> phases;
    for (const auto& [id, batch] : running_) phases.push_back(batch.phase);
    running_phase = CombinedPhase(phases);
    last_outcome = last_outcome_;
    recovered = recovered_;
  }
  std::string display;
  const QueueItem* head = nullptr;
  for (const auto& item : state.items) {
    if (!item.Terminal()) {
      head = &item;
      break;
    }
  }
  if (!running_phase.empty()) {
    display = running_phase;
  } else if (state.paused && !last_outcome.empty()) {
    display = last_outcome;
  } else if (state.paused || !recovered) {
    display = "paused";
  } else if (head && head->AwaitingApproval()) {
    display = "awaiting_approval";
  } else if (head) {
    display = "queued";
  } else {
    display = "idle";
  }
  metrics_.SetState(display);
}

common::HttpResponse Daemon::Metrics() {
  RefreshState();
  return common::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                              metrics_.Serialize()};
}

json Daemon::Status() {
  RefreshState();
  const QueueState state = queue_->Snapshot();
  const QueueStats stats = queue_->Stats();
  json items = json::array();
  for (const auto& item : state.items) items.push_back(ToJson(item));
  std::map<std::string, RunningBatch> batches;
  bool recovered = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batches = running_;
    recovered = recovered_;
  }
  // Every running batch, in queue order.
  json running = json::array();
  for (const auto& item : state.items) {
    auto it = batches.find(item.batch.id);
    if (it == batches.end()) continue;
    running.push_back({{"id", item.batch.id},
                       {"state", it->second.phase},
                       {"from", item.batch.from},
                       {"to", item.batch.to},
                       {"slots", item.batch.slots.size()},
                       {"slots_done", it->second.slots_done}});
  }
  return json{{"state", metrics_.State()},
              {"paused", state.paused},
              {"pause_reason", state.pause_reason},
              {"recovered", recovered},
              {"running", running},
              {"queue",
               {{"batches", stats.batches},
                {"slots", stats.slots},
                {"approval_wait_seconds", stats.approval_wait_seconds}}},
              {"approval_threshold_slots", config_.queue.approval_threshold_slots},
              {"items", items},
              {"version", SLOTGUARD_VERSION}};
}

cluster::Result<json> Daemon::Enqueue(const std::string& file, const std::string& yaml) {
  auto parsed = ParsePlanFile(yaml, file, engine_options_.limits.max_batch_slots);
  if (!parsed) return tl::unexpected(parsed.error());
  cluster::Result<ClusterSnapshot> snapshot = cluster::MakeError("not taken");
  {
    std::lock_guard<std::mutex> lock(control_pool_mutex_);
    snapshot = TakeSnapshot(*control_pool_, config_.seeds);
  }
  if (!snapshot) {
    return cluster::MakeError("cannot read the cluster to check " + file + ": " +
                              snapshot.error().message);
  }
  auto plan = ResolvePlanFile(*parsed, *snapshot);
  if (!plan) return tl::unexpected(plan.error());
  // Batch by batch first, so an error names the line of the batch in the file.
  for (size_t i = 0; i < plan->batches.size(); ++i) {
    Batch probe = plan->batches[i];
    if (probe.id.empty()) probe.id = "#" + std::to_string(i + 1);
    auto resolved = ResolveBatch(probe, *snapshot, engine_options_.limits);
    if (!resolved) {
      return cluster::MakeError(file + ":" + std::to_string(parsed->batches[i].line) + ": " +
                                resolved.error().message);
    }
  }
  auto validated = ValidatePlan(*plan, *snapshot, engine_options_.limits);
  if (!validated) return cluster::MakeError(file + ": " + validated.error().message);
  // The runbook's hot-slot limit, as `reshard`/`plan` apply it: a slot holding over 15% of its
  // node's memory goes alone in its batch. Measured on each source (one-slot batches need not).
  std::map<cluster::Endpoint, std::vector<int>> by_source;
  for (const auto& rb : validated->batches) {
    if (rb.batch.slots.size() < 2) continue;
    auto& slots = by_source[rb.source];
    slots.insert(slots.end(), rb.batch.slots.begin(), rb.batch.slots.end());
  }
  std::vector<int> hot;
  {
    std::lock_guard<std::mutex> lock(control_pool_mutex_);
    for (const auto& [source, slots] : by_source) {
      auto& conn = control_pool_->Get(source);
      auto loads = MeasureSlotLoads(conn, slots);
      auto used = loads ? UsedMemory(conn) : cluster::Result<int64_t>(0);
      if (!loads || !used) {
        return cluster::MakeError(
            "cannot measure the slots of " + file + " on " + source.ToString() +
            " (hot-slot check): " + (!loads ? loads.error().message : used.error().message));
      }
      for (int slot : HotSlots(*loads, *used, engine_options_.limits)) hot.push_back(slot);
    }
  }
  SplitPlan split = SplitHotSlots(*plan, hot);
  const int total = split.plan.TotalSlots();
  const bool needs_approval = total > config_.queue.approval_threshold_slots;
  auto plan_id = queue_->Enqueue(split.plan, file, needs_approval);
  if (!plan_id) return tl::unexpected(plan_id.error());
  json batches = json::array();
  for (const auto& item : queue_->Snapshot().items) {
    if (item.plan_id == *plan_id) batches.push_back(item.batch.id);
  }
  // Ids as the queue gave them (it names batches the file left without an id).
  json hot_slots = json::array();
  for (const auto& h : split.splits) {
    const std::string from_batch =
        h.batch_index < batches.size() ? batches[h.batch_index].get<std::string>() : h.batch_id;
    const std::string alone = h.hot_batch_index < batches.size()
                                  ? batches[h.hot_batch_index].get<std::string>()
                                  : h.hot_batch_id;
    hot_slots.push_back({{"slot", h.slot}, {"from_batch", from_batch}, {"batch", alone}});
    spdlog::info(
        "plan {}: hot slot {} (over {:.0f}% of its node's memory) split out of batch {} "
        "into batch {}",
        *plan_id, h.slot, engine_options_.limits.hot_slot_fraction * 100, from_batch, alone);
  }
  spdlog::info("enqueued plan {} from {}: {} batches, {} slots{}", *plan_id, file, batches.size(),
               total, needs_approval ? " (waits for approval)" : "");
  RefreshState();
  return json{
      {"plan_id", *plan_id},    {"batches", batches},
      {"slots", total},         {"needs_approval", needs_approval},
      {"hot_slots", hot_slots}, {"hot_slot_fraction", engine_options_.limits.hot_slot_fraction}};
}

cluster::Result<json> Daemon::Approve(const std::string& id) {
  auto approved = queue_->Approve(id);
  if (!approved) return tl::unexpected(approved.error());
  spdlog::info("approved {} ({} batches)", id, approved->size());
  RefreshState();
  return json{{"approved", *approved}};
}

cluster::Result<json> Daemon::Pause(const std::string& reason) {
  auto r = queue_->Pause(reason);
  if (!r) return tl::unexpected(r.error());
  spdlog::info("queue paused: {}", reason);
  if (auto run = CurrentRun()) run->runner.StopNew();
  RefreshState();
  const bool running = !RunningIds().empty();
  return json{{"paused", true},
              {"note", !running ? "no batch is running"
                                : "the running batches finish; no new batch starts until resume"}};
}

cluster::Result<json> Daemon::Resume() {
  auto r = queue_->Resume();
  if (!r) return tl::unexpected(r.error());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    last_outcome_.clear();
  }
  spdlog::info("queue resumed");
  RefreshState();
  return json{{"paused", false}};
}

cluster::Result<json> Daemon::Rollback(const std::optional<std::string>& batch) {
  const std::vector<std::string> running = RunningIds();
  if (!batch) {
    if (running.empty()) {
      return cluster::MakeError(
          "no batch is running; name a batch to cancel a queued one or "
          "revert a finished one");
    }
    const std::string done = RollbackRunning(
        RollbackTrigger::kOperator, "rollback of " + NameBatches(running) + " by an operator");
    return json{{"action", "rollback"}, {"batches", running}, {"result", done}};
  }
  if (std::find(running.begin(), running.end(), *batch) != running.end()) {
    // Only this batch: the others running beside it finish.
    const std::string done = RollbackRunning(
        RollbackTrigger::kOperator, "rollback of batch " + *batch + " by an operator", batch);
    return json{{"action", "rollback"}, {"batches", {*batch}}, {"result", done}};
  }
  auto item = queue_->Find(*batch);
  if (!item) return cluster::MakeError("no batch '" + *batch + "' in the queue");
  if (item->state == BatchState::kQueued) {
    auto r = queue_->Cancel(*batch, "cancelled by an operator (rollback before it started)");
    if (!r) return tl::unexpected(r.error());
    spdlog::info("batch {} cancelled by an operator", *batch);
    RefreshState();
    return json{{"action", "cancel"}, {"batch", *batch}};
  }
  if (item->state == BatchState::kCancelled) {
    return cluster::MakeError("batch " + *batch + " was cancelled; nothing to roll back");
  }
  // Finished (done, failed, rolled back half-way): move back what sits at the target now.
  cluster::Result<ClusterSnapshot> snapshot = cluster::MakeError("not taken");
  {
    std::lock_guard<std::mutex> lock(control_pool_mutex_);
    snapshot = TakeSnapshot(*control_pool_, config_.seeds);
  }
  if (!snapshot) return cluster::MakeError("cannot read the cluster: " + snapshot.error().message);
  const cluster::NodeEntry* target = snapshot->FindNode(item->batch.to);
  if (target == nullptr) {
    return cluster::MakeError("batch " + *batch + ": its target " + item->batch.to +
                              " is not in the cluster any more");
  }
  std::vector<int> slots;
  for (int slot : item->batch.slots) {
    if (snapshot->judgement.Owner(slot) == target->id) slots.push_back(slot);
  }
  if (slots.empty()) {
    return cluster::MakeError("batch " + *batch + " has no slot at its target " + item->batch.to +
                              ": nothing to roll back");
  }
  auto id = queue_->InsertRevert(*batch, slots);
  if (!id) return tl::unexpected(id.error());
  spdlog::info("batch {}: revert batch {} queued ({} slots back to {})", *batch, *id, slots.size(),
               item->batch.from);
  RefreshState();
  const bool paused = queue_->Snapshot().paused;
  return json{{"action", "revert"},
              {"batch", *batch},
              {"revert_batch", *id},
              {"slots", slots.size()},
              {"note", paused ? "the queue is paused: `slotguard-agent resume` runs the revert"
                              : "runs next"}};
}

}  // namespace slotguard::agent
