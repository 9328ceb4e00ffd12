#include "cluster/connection_pool.h"

#include <algorithm>

namespace slotguard::cluster {

ConnectionPool::ConnectionPool(ConnectOptions options) : options_(std::move(options)) {}

Connection& ConnectionPool::Get(const Endpoint& endpoint) { return Lane(endpoint, 0); }

Connection& ConnectionPool::Lane(const Endpoint& endpoint, size_t lane) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = connections_[{endpoint, lane}];
  if (!slot) slot = std::make_unique<RedisConnection>(endpoint, options_);
  return *slot;
}

void ConnectionPool::Retain(const std::vector<Endpoint>& keep) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (std::find(keep.begin(), keep.end(), it->first.first) == keep.end()) {
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace slotguard::cluster
