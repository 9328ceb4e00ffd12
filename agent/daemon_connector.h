#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "agent/clock.h"
#include "cluster/connection.h"

namespace slotguard::agent {

// The connector the daemon hands to the engine. It passes every command through to `inner`,
// with a throttle (engine.throttle_per_slot, for tests and demos): waits before each
// `CLUSTER SETSLOT n IMPORTING` while the batch moves forward, never while it rolls back.
// (A shutdown stops the engine with Engine::RequestStop, not through the connector.)
class DaemonConnector final : public cluster::Connector {
 public:
  DaemonConnector(cluster::Connector& inner, Clock& clock, std::chrono::milliseconds throttle);
  ~DaemonConnector() override;

  cluster::Connection& Get(const cluster::Endpoint& endpoint) override;
  cluster::Connection& Lane(const cluster::Endpoint& endpoint, size_t lane) override;

  void SetForward(bool forward) { forward_ = forward; }

 private:
  class GatedConnection;
  friend class GatedConnection;
  void BeforeCommands(const std::vector<cluster::Argv>& commands);

  cluster::Connector& inner_;
  Clock& clock_;
  std::chrono::milliseconds throttle_;
  std::atomic<bool> forward_{false};
  std::mutex mutex_;
  std::map<std::pair<cluster::Endpoint, size_t>, std::unique_ptr<GatedConnection>> connections_;
};

}  // namespace slotguard::agent
