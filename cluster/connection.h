#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/credentials.h"
#include "cluster/endpoint.h"
#include "cluster/reply.h"
#include "cluster/result.h"

struct redisContext;

namespace slotguard::cluster {

using Argv = std::vector<std::string>;

struct ConnectOptions {
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds io_timeout{2000};
  std::optional<Credentials> credentials;
};

// A command channel to one node. Abstract so engines can be tested with a fake.
// A Redis error reply (-ERR, -MOVED ...) is a Reply with Type::kError, not a failed Result:
// the Result fails only when the transport does (connect, timeout, protocol).
class Connection {
 public:
  virtual ~Connection() = default;
  virtual Result<Reply> Command(const Argv& argv) = 0;
  // Sends every command before reading any reply: one round trip for the lot.
  virtual Result<std::vector<Reply>> Pipeline(const std::vector<Argv>& commands) = 0;
  virtual const Endpoint& endpoint() const = 0;
};

// Connection over hiredis. Connects lazily, AUTHs after each connect, and discards a context
// after any transport error so the next call reconnects. Not thread-safe: one user at a time.
class RedisConnection final : public Connection {
 public:
  explicit RedisConnection(Endpoint endpoint, ConnectOptions options = {});
  ~RedisConnection() override;

  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  Result<Reply> Command(const Argv& argv) override;
  Result<std::vector<Reply>> Pipeline(const std::vector<Argv>& commands) override;
  const Endpoint& endpoint() const override { return endpoint_; }

  // Changes the read/write timeout of the live context and of later reconnects.
  void SetIoTimeout(std::chrono::milliseconds timeout);

 private:
  struct ContextDeleter {
    void operator()(redisContext* context) const;
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

  Result<redisContext*> EnsureConnected();
  void Discard() { context_.reset(); }

  Endpoint endpoint_;
  ConnectOptions options_;
  ContextPtr context_;
};

// Hands out connections by endpoint. Engines borrow them; the connector owns them.
class Connector {
 public:
  virtual ~Connector() = default;
  virtual Connection& Get(const Endpoint& endpoint) = 0;
};

}  // namespace slotguard::cluster
