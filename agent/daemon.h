#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "agent/agent_config.h"
#include "agent/clock.h"
#include "agent/control_api.h"
#include "agent/daemon_connector.h"
#include "agent/engine.h"
#include "agent/metrics.h"
#include "agent/queue.h"
#include "agent/webhook.h"
#include "cluster/connection_pool.h"
#include "common/http_server.h"

namespace slotguard::agent {

// `slotguard-agent run`: one HTTP server (metrics, health, control API, webhook) and one
// worker thread that recovers from the journal, then runs the queue's batches one at a time.
class Daemon final : public DaemonControl {
 public:
  explicit Daemon(AgentConfig config);
  ~Daemon() override;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Reads the tokens, opens (and locks) the queue, listens, starts the worker. An error here
  // is a start-up error: the caller exits 1.
  cluster::Result<void> Start();
  // Lets the running batch finish (up to shutdown_grace), then makes the engine stop at its
  // next gate (Engine::RequestStop; the journal lets the next start converge), then stops
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

  void WorkerLoop();
  bool RecoverOnce();
  void Reconcile(const QueueItem& item, const ClusterSnapshot& snapshot);
  void RunOne(const QueueItem& item);
  // Requests a rollback of the running batch (if any) and pauses the queue. Returns what it
  // did, for the API answer and the log.
  std::string RollbackRunning(RollbackTrigger trigger, const std::string& reason);
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
  std::unique_ptr<cluster::ConnectionPool> engine_pool_;
  std::unique_ptr<DaemonConnector> connector_;
  std::unique_ptr<Engine> engine_;
  std::mutex control_pool_mutex_;  // the control API's snapshots, one at a time
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
  std::string running_id_;
  std::string running_phase_;
  std::string last_outcome_;  // "rolled_back" / "failed" until the queue resumes
  bool shut_down_ = false;
  // Set when the shutdown grace ran out and the engine was asked to stop (Engine::RequestStop).
  std::atomic<bool> interrupted_{false};
};

}  // namespace slotguard::agent
