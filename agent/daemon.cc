#include "agent/daemon.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>
#include <set>

#include "agent/cluster_snapshot.h"
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

}  // namespace

// Forwards the engine's reports to the metrics and keeps the daemon's view of the running
// batch (its phase, persisted in the queue, and the throttle's direction).
class Daemon::Observer final : public EngineObserver {
 public:
  explicit Observer(Daemon& daemon) : daemon_(daemon) {}

  void OnState(const std::string& batch_id, BatchState state) override {
    const std::string phase = ToString(state);
    {
      std::lock_guard<std::mutex> lock(daemon_.mutex_);
      if (daemon_.running_id_ == batch_id) daemon_.running_phase_ = phase;
    }
    if (daemon_.connector_ && !Interrupted()) {
      daemon_.connector_->SetForward(state == BatchState::kPreflight ||
                                     state == BatchState::kMigrating);
    }
    if (daemon_.queue_ && daemon_.queue_->Find(batch_id)) {
      auto r = daemon_.queue_->SetPhase(batch_id, phase);
      if (!r) spdlog::error("queue: {}", r.error().message);
    }
    spdlog::info("batch {}: {}", batch_id, phase);
    daemon_.metrics_.OnState(batch_id, state);
    daemon_.RefreshState();
  }
  void OnProgress(const std::string& batch_id, int slots_done, int slots_total) override {
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
    if (daemon_.connector_) daemon_.connector_->SetForward(false);
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
  Daemon& daemon_;
};

Daemon::Daemon(AgentConfig config)
    : config_(std::move(config)), observer_(std::make_unique<Observer>(*this)) {}

Daemon::~Daemon() { Shutdown(); }

int Daemon::port() const { return server_ ? server_->port() : 0; }

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

  // The engine's options: its defaults, overridden by agent.yaml.
  EngineOptions& o = engine_options_;
  o.seeds = config_.seeds;
  o.credentials = *credentials;
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
  if (e.lease_ttl) o.lease.ttl = *e.lease_ttl;

  cluster::ConnectOptions connect;
  connect.connect_timeout = config_.connect_timeout;
  connect.io_timeout = o.migrate_timeout + milliseconds(3000);  // MIGRATE must time out first
  connect.credentials = *credentials;
  connect.tls = tls;
  engine_pool_ = std::make_unique<cluster::ConnectionPool>(connect);
  connect.io_timeout = milliseconds(5000);
  control_pool_ = std::make_unique<cluster::ConnectionPool>(connect);
  connector_ =
      std::make_unique<DaemonConnector>(*engine_pool_, clock_, config_.engine.throttle_per_slot);
  engine_ = std::make_unique<Engine>(*connector_, clock_, engine_options_, *observer_);

  for (const auto& item : queue_->Snapshot().items) {
    had_unfinished_at_start_ = had_unfinished_at_start_ || !item.Terminal();
  }

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
    if (!running_id_.empty()) {
      spdlog::info("shutting down: waiting up to {}s for batch {} to finish",
                   config_.shutdown_grace.count(), running_id_);
    }
    if (!stop_cv_.wait_for(lock, config_.shutdown_grace, [&] { return worker_done_; })) {
      // Every step is journaled before it runs, so stopping here is as safe as a crash at
      // this point: the next start converges the batch. Closing the gate first makes sure no
      // further command reaches Redis while the process winds down.
      spdlog::warn(
          "shutting down: interrupting batch {} where it is; the next start "
          "converges it from the journal",
          running_id_);
      interrupted_ = true;
      connector_->SetForward(false);  // ends a throttle wait
      engine_->RequestStop();
      // The engine stops at its next gate; a command already sent may take up to the io
      // timeout (MIGRATE's timeout + 3 s).
      const auto bound = engine_options_.migrate_timeout + seconds(5);
      if (!stop_cv_.wait_for(lock, bound, [&] { return worker_done_; })) {
        spdlog::warn(
            "the engine is still busy with batch {}; exiting without it (the journal "
            "has every step)",
            running_id_);
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
    auto item = queue_->WaitForRunnable(milliseconds(500));
    if (!item) continue;
    RunOne(*item);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    worker_done_ = true;
  }
  stop_cv_.notify_all();
}

bool Daemon::RecoverOnce() {
  auto report = engine_->Recover();
  engine_->ReleaseLease();
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
    if (item.state == ItemState::kRunning) interrupted.push_back(item);
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
    r = queue_->Finish(id, ItemState::kDone, "finished (completed by recovery after a restart)");
  } else if (at_source == total) {
    if (item.rollback_requested) {
      r = queue_->Finish(id, ItemState::kRolledBack,
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
    r = queue_->Finish(id, ItemState::kFailed,
                       "rollback interrupted by a restart: " + std::to_string(at_target) +
                           " slots are still at the target; `slotguard-agent rollback " + id +
                           "` moves them back");
    if (r) r = queue_->Pause("batch " + id + " was rolling back when the agent stopped");
  } else {
    r = queue_->Finish(id, ItemState::kFailed,
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

void Daemon::RunOne(const QueueItem& item) {
  const std::string id = item.batch.id;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Re-checked under the lock that RollbackRunning takes, so a pause (from the webhook)
    // either lands before this batch starts or finds it running.
    if (stopping_ || queue_->Snapshot().paused) return;
    auto r = queue_->MarkRunning(id);
    if (!r) {
      spdlog::error("queue: cannot start batch {}: {}", id, r.error().message);
      return;
    }
    running_id_ = id;
    running_phase_ = "preflight";
    last_outcome_.clear();
  }
  spdlog::info("batch {}: starting ({} slots {} -> {})", id, item.batch.slots.size(),
               item.batch.from, item.batch.to);
  RefreshState();
  connector_->SetForward(true);
  auto outcome = engine_->RunBatch(item.batch);
  connector_->SetForward(false);
  // The lease is held for one batch (and its recovery below): between batches a reshard or
  // another agent may work. A refused batch (lease held elsewhere) is requeued, like any batch
  // that did not run.
  struct ReleaseLease {
    Engine& engine;
    ~ReleaseLease() { engine.ReleaseLease(); }
  } release_lease{*engine_};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    running_id_.clear();
    running_phase_.clear();
  }
  if (interrupted_ || (outcome && outcome->stopped)) {
    spdlog::warn("batch {}: interrupted by the shutdown; the next start converges it", id);
    return;
  }
  cluster::Result<void> r;
  std::string outcome_state;
  if (!outcome) {
    // A preflight failure touched nothing; anything else is converged through the journal.
    spdlog::error("batch {}: did not run: {}", id, outcome.error().message);
    auto recovered = engine_->Recover();
    if (!recovered) spdlog::error("recovery: {}", recovered.error().message);
    r = queue_->Requeue(id, "did not run: " + outcome.error().message);
    if (r) r = queue_->Pause("batch " + id + " did not run: " + outcome.error().message);
  } else if (outcome->state == BatchState::kDone) {
    const bool asked = queue_->Find(id) && queue_->Find(id)->rollback_requested;
    r = queue_->Finish(
        id, ItemState::kDone,
        Describe(*outcome) + (asked ? " (a rollback was requested but the batch had finished: "
                                      "`slotguard-agent rollback " +
                                          id + "` reverts it)"
                                    : ""));
    spdlog::info("batch {}: done: {}", id, Describe(*outcome));
  } else {
    const bool rolled_back = outcome->state == BatchState::kRolledBack;
    outcome_state = rolled_back ? "rolled_back" : "failed";
    r = queue_->Finish(id, rolled_back ? ItemState::kRolledBack : ItemState::kFailed,
                       Describe(*outcome));
    if (r) {
      r = queue_->Pause("batch " + id + " " + (rolled_back ? "rolled back" : "failed") + ": " +
                        (outcome->reason.empty() ? outcome_state : outcome->reason));
    }
    spdlog::warn("batch {}: {}: {}; queue paused", id, outcome_state, Describe(*outcome));
  }
  if (!r) spdlog::error("queue: {}", r.error().message);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    last_outcome_ = outcome_state;
  }
  RefreshState();
}

std::string Daemon::RollbackRunning(RollbackTrigger trigger, const std::string& reason) {
  std::string running;
  {
    // Under the lock RunOne takes to start a batch: once paused here, no new batch starts, so
    // `running` is the only batch the request can be about.
    std::lock_guard<std::mutex> lock(mutex_);
    auto paused = queue_->Pause(reason);
    if (!paused) spdlog::error("queue: {}", paused.error().message);
    running = running_id_;
    if (!running.empty()) {
      auto marked = queue_->MarkRollbackRequested(running);
      if (!marked) spdlog::error("queue: {}", marked.error().message);
    }
  }
  std::string done;
  if (!running.empty()) {
    connector_->SetForward(false);
    // Names the batch: the engine keeps the request if RunBatch has not started it yet.
    engine_->RequestRollback(trigger, reason, running);
    done = "rolling back batch " + running + " and pausing the queue";
  } else {
    done = "no batch running; queue paused";
  }
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
    running_phase = running_phase_;
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
  std::string running;
  bool recovered = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    running = running_id_;
    recovered = recovered_;
  }
  return json{{"state", metrics_.State()},
              {"paused", state.paused},
              {"pause_reason", state.pause_reason},
              {"recovered", recovered},
              {"running", running.empty() ? json() : json(running)},
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
  RefreshState();
  bool running = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    running = !running_id_.empty();
  }
  return json{{"paused", true},
              {"note", !running ? "no batch is running"
                                : "the running batch finishes; no new batch starts until resume"}};
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
  std::string running;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    running = running_id_;
  }
  if (!batch || *batch == running) {
    if (running.empty()) {
      return cluster::MakeError(
          "no batch is running; name a batch to cancel a queued one or "
          "revert a finished one");
    }
    const std::string done = RollbackRunning(RollbackTrigger::kOperator,
                                             "rollback of batch " + running + " by an operator");
    return json{{"action", "rollback"}, {"batch", running}, {"result", done}};
  }
  auto item = queue_->Find(*batch);
  if (!item) return cluster::MakeError("no batch '" + *batch + "' in the queue");
  if (item->state == ItemState::kQueued) {
    auto r = queue_->Cancel(*batch, "cancelled by an operator (rollback before it started)");
    if (!r) return tl::unexpected(r.error());
    spdlog::info("batch {} cancelled by an operator", *batch);
    RefreshState();
    return json{{"action", "cancel"}, {"batch", *batch}};
  }
  if (item->state == ItemState::kCancelled) {
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
