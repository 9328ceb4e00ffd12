#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_config.h"
#include "agent/clock.h"
#include "agent/control_api.h"
#include "agent/daemon_connector.h"
#include "agent/engine.h"
#include "agent/journal.h"
#include "agent/lease.h"
#include "agent/metrics.h"
#include "agent/queue.h"
#include "agent/webhook.h"
#include "cluster/connection_pool.h"
#include "common/http_server.h"

namespace slotguard::agent {

// `slotguard-agent run`: one HTTP server (metrics, health, control API, webhook) and one
// worker thread that recovers from the journal, then runs the queue's batches plan by plan,
// the batches of a plan through a BatchRunner (several at once when their masters differ, as
// `rebalance` runs them).
class Daemon final : public DaemonControl {
 public:
  explicit Daemon(AgentConfig config);
  ~Daemon() override;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Reads the tokens, opens (and locks) the queue, listens, starts the worker. An error here
  // is a start-up error: the caller exits 1.
  cluster::Result<void> Start();
  // Lets the running batches finish (up to shutdown_grace), then makes their engines stop at
  // their next gate (Engine::RequestStop; the journal lets the next start converge), then stops
  // serving. Idempotent.
  void Shutdown();
  int port() const;

  nlohmann::json Status() override;
  cluster::Result<nlohmann::json> Enqueue(const std::string& file,
                                          const std::string& yaml) override;
  cluster::Result<nlohmann::json> Approve(const std::string& id) override;
  cluster::Result<nlohmann::json> Pause(const std::string& reason) override;
  cluster::Result<nlohmann::json> Resume() override;
  cluster::Result<nlohmann::json> Rollback(const std::optional<std::string>& batch) override;

 private:
  class Observer;
  // The batches of one plan in flight: their engines (one per pair) and the runner.
  struct Run;
  // A batch of the run in flight that has started: its phase and progress, for status.
  struct RunningBatch {
    std::string phase;
    int slots_done = 0;
    int slots_total = 0;
  };

  // Start's steps: the engine's options from agent.yaml; the connection pools, lease, journal
  // and engine; the HTTP routes; the warnings logged before the "listening" line.
  void SetEngineOptions(const std::optional<cluster::Credentials>& credentials,
                        std::shared_ptr<const cluster::TlsContext> tls);
  cluster::Result<void> OpenEngine();
  std::vector<common::HttpRoute> Routes(const std::string& webhook_token);
  void WarnAtStart(const std::string& webhook_token);
  void WorkerLoop();
  bool RecoverOnce();
  void Reconcile(const QueueItem& item, const ClusterSnapshot& snapshot);
  // Runs `items` (RunnableItems: one plan's batches) through a BatchRunner.
  void RunItems(const std::vector<QueueItem>& items);
  // From a batch's thread as it ends: the queue learns the outcome. True when the journal may
  // hold something to converge once the run is over (a batch that did not run).
  bool OnBatchEnd(const BatchEnd& end);
  // Gives the migration lease back; its entry stays for the next holder while the journal
  // has a batch open.
  void ReleaseLease();
  // Requests a rollback of every running batch (or only `batch`) and pauses the queue.
  // Returns what it did, for the API answer and the log.
  std::string RollbackRunning(RollbackTrigger trigger, const std::string& reason,
                              const std::optional<std::string>& batch = std::nullopt);
  std::vector<std::string> RunningIds();
  std::shared_ptr<Run> CurrentRun();
  void RefreshState();
  common::HttpResponse Metrics();
  bool WaitStop(std::chrono::milliseconds timeout);

  AgentConfig config_;
  EngineOptions engine_options_;
  std::string control_token_;
  RealClock clock_;
  AgentMetrics metrics_;
  std::unique_ptr<Observer> observer_;
  std::unique_ptr<Queue> queue_;
  cluster::ConnectOptions engine_connect_;  // each pair's pool (outwaits MIGRATE)
  std::unique_ptr<cluster::ConnectionPool> engine_pool_;
  std::unique_ptr<cluster::ConnectionPool> lease_pool_;
  // One lease and one journal for every engine (the recovery one and each run's).
  std::unique_ptr<Lease> lease_;
  std::shared_ptr<Journal> journal_;
  std::unique_ptr<Engine> engine_;  // recovery (and convergence after a batch that did not run)
  std::mutex control_pool_mutex_;   // the control API's snapshots, one at a time
  std::unique_ptr<cluster::ConnectionPool> control_pool_;
  std::unique_ptr<Webhook> webhook_;
  std::unique_ptr<common::HttpServer> server_;
  std::thread worker_;

  std::mutex mutex_;  // guards the fields below and orders "start a batch" vs "roll back"
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool worker_done_ = false;
  bool recovered_ = false;
  bool had_unfinished_at_start_ = false;
  std::shared_ptr<Run> run_;                     // null between runs
  std::map<std::string, RunningBatch> running_;  // batches of run_ that started, by id
  std::string last_outcome_;                     // "rolled_back" / "failed" until the queue resumes
  bool shut_down_ = false;
  // Set when the shutdown grace ran out and the engines were asked to stop (Engine::RequestStop).
  std::atomic<bool> interrupted_{false};
};

}  // namespace slotguard::agent
