#include "exporter/node_client.h"

#include <algorithm>

namespace slotguard::exporter {

RedisNodeClient::RedisNodeClient(cluster::Endpoint endpoint,
                                 std::optional<cluster::Credentials> credentials,
                                 std::shared_ptr<const cluster::TlsContext> tls)
    : endpoint_(std::move(endpoint)), credentials_(std::move(credentials)), tls_(std::move(tls)) {}

cluster::Result<std::vector<cluster::Reply>> RedisNodeClient::Pipeline(
    const std::vector<cluster::Argv>& commands, std::chrono::milliseconds timeout) {
  // A zero socket timeout would block forever.
  timeout = std::max(timeout, std::chrono::milliseconds(1));
  if (!healthy_ || !connection_) {
    cluster::ConnectOptions options;
    options.connect_timeout = timeout;
    options.io_timeout = timeout;
    options.credentials = credentials_;
    options.tls = tls_;
    connection_ = std::make_unique<cluster::RedisConnection>(endpoint_, std::move(options));
  } else {
    connection_->SetIoTimeout(timeout);
  }
  auto replies = connection_->Pipeline(commands);
  healthy_ = replies.has_value();
  return replies;
}

NodeClientFactory RedisNodeClientFactory(std::optional<cluster::Credentials> credentials,
                                         std::shared_ptr<const cluster::TlsContext> tls) {
  return [credentials = std::move(credentials),
          tls = std::move(tls)](const cluster::Endpoint& endpoint) {
    return std::make_unique<RedisNodeClient>(endpoint, credentials, tls);
  };
}

}  // namespace slotguard::exporter
