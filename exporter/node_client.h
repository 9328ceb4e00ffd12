#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "cluster/connection.h"

namespace slotguard::exporter {

// The one thing a scrape needs from a node: a pipeline that gives up after `timeout`.
// Abstract so the scrape engine is tested with fakes (slow, dead, scripted nodes).
// Not thread-safe: the engine lets one scrape at a time use a node's client.
class NodeClient {
 public:
  virtual ~NodeClient() = default;
  virtual cluster::Result<std::vector<cluster::Reply>> Pipeline(
      const std::vector<cluster::Argv>& commands, std::chrono::milliseconds timeout) = 0;
};

using NodeClientFactory = std::function<std::unique_ptr<NodeClient>(const cluster::Endpoint&)>;

// A persistent connection over cluster::RedisConnection. After a transport failure it builds a
// fresh connection whose connect timeout is the time left, so a dead node never holds a scrape
// past its deadline; a live connection just gets its read/write timeout shortened.
class RedisNodeClient final : public NodeClient {
 public:
  RedisNodeClient(cluster::Endpoint endpoint, std::optional<cluster::Credentials> credentials,
                  std::shared_ptr<const cluster::TlsContext> tls = nullptr);

  cluster::Result<std::vector<cluster::Reply>> Pipeline(const std::vector<cluster::Argv>& commands,
                                                        std::chrono::milliseconds timeout) override;

 private:
  cluster::Endpoint endpoint_;
  std::optional<cluster::Credentials> credentials_;
  std::shared_ptr<const cluster::TlsContext> tls_;  // null: plain text
  std::unique_ptr<cluster::RedisConnection> connection_;
  bool healthy_ = false;  // the last pipeline worked, so the connection is (probably) open
};

// Makes RedisNodeClients that AUTH with `credentials`, over TLS when `tls` is set: every node
// discovery finds is reached with the seeds' TLS settings.
NodeClientFactory RedisNodeClientFactory(std::optional<cluster::Credentials> credentials,
                                         std::shared_ptr<const cluster::TlsContext> tls = nullptr);

}  // namespace slotguard::exporter
