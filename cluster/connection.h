#pragma once

#include <chrono>
#include <deque>
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

  // Split pipelining, so a caller keeps one batch in flight while it handles the replies of
  // the one before: Send writes commands without reading; Receive(n) reads the replies of the
  // next n commands sent. After a failed Send or Receive every reply in flight is lost (the
  // connection starts over). This default runs Pipeline on the commands at Receive, for
  // connections that cannot do better (test fakes).
  virtual Result<void> Send(const std::vector<Argv>& commands);
  virtual Result<std::vector<Reply>> Receive(size_t count);

 private:
  std::deque<Argv> unsent_;  // the default Send/Receive only
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
  Result<void> Send(const std::vector<Argv>& commands) override;
  Result<std::vector<Reply>> Receive(size_t count) override;

  // Changes the read/write timeout of the live context and of later reconnects.
  void SetIoTimeout(std::chrono::milliseconds timeout);

 private:
  struct ContextDeleter {
    void operator()(redisContext* context) const;
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

  Result<redisContext*> EnsureConnected();
  void Discard() {
    context_.reset();
    in_flight_.clear();
  }

  Endpoint endpoint_;
  ConnectOptions options_;
  ContextPtr context_;
  std::deque<std::string> in_flight_;  // names of sent commands whose replies are unread
};

// Hands out connections by endpoint. Engines borrow them; the connector owns them.
class Connector {
 public:
  virtual ~Connector() = default;
  virtual Connection& Get(const Endpoint& endpoint) = 0;
  // The `lane`th connection to `endpoint`, for commands that should run side by side on one
  // node (lane 0 is Get's). A connector that keeps one connection per node returns that one for
  // every lane: the commands then run one after another, which is correct, only slower.
  virtual Connection& Lane(const Endpoint& endpoint, size_t lane) {
    (void)lane;
    return Get(endpoint);
  }
};

}  // namespace slotguard::cluster
