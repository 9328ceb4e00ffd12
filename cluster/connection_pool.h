#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "cluster/connection.h"

namespace slotguard::cluster {

// A Connector that keeps one persistent RedisConnection per endpoint.
// Get() is thread-safe; using the returned connection is not (one user per connection).
class ConnectionPool final : public Connector {
 public:
  explicit ConnectionPool(ConnectOptions options);

  Connection& Get(const Endpoint& endpoint) override;
  Connection& Lane(const Endpoint& endpoint, size_t lane) override;
  // Drops connections to endpoints not in `keep` (nodes that left the cluster).
  void Retain(const std::vector<Endpoint>& keep) override;

 private:
  ConnectOptions options_;
  std::mutex mutex_;
  std::map<std::pair<Endpoint, size_t>, std::unique_ptr<RedisConnection>> connections_;
};

}  // namespace slotguard::cluster
