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
#include "cluster/reply_reader.h"
#include "cluster/result.h"
#include "cluster/tls_context.h"
#include "cluster/transport.h"

namespace slotguard::cluster {

using Argv = std::vector<std::string>;

struct ConnectOptions {
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds io_timeout{2000};
  std::optional<Credentials> credentials;
  // Null: plain text. Shared by every connection with the same TLS settings (discovered nodes
  // inherit their seed's).
  std::shared_ptr<const TlsContext> tls;
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

  // Until cleared (nullopt), no connect, read or write waits past `deadline`, whatever the
  // connection's own timeouts: a reader's whole round ends by one deadline. Fakes ignore it.
  virtual void SetDeadline(std::optional<std::chrono::steady_clock::time_point> deadline) {
    (void)deadline;
  }

 private:
  std::deque<Argv> unsent_;  // the default Send/Receive only
};

// Connection over a Transport (a plain or TLS socket), with hiredis's command formatting and
// reply reader: hiredis 0.14, Debian bookworm's, cannot do TLS itself. Connects lazily, AUTHs
// after each connect, and drops the transport after any transport error so the next call
// reconnects. Not thread-safe: one user at a time.
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

  // Changes the read/write timeout of the live transport and of later reconnects.
  void SetIoTimeout(std::chrono::milliseconds timeout);
  void SetDeadline(std::optional<std::chrono::steady_clock::time_point> deadline) override;

 private:
  Result<void> EnsureConnected();
  // Before each blocking call: the io timeout cut to what is left before deadline_.
  Result<void> ApplyDeadline();
  // Reads the next reply; the message is the reason only.
  Result<Reply> ReadReply();
  // `why` a transport failed, with what an operator should check when the node hung up before
  // its first reply (a plain-text client on a TLS port, a refused client certificate).
  std::string Explain(const std::string& why);
  void Discard() {
    transport_.reset();
    reader_.reset();
    out_.clear();
    in_flight_.clear();
  }

  Endpoint endpoint_;
  ConnectOptions options_;
  std::unique_ptr<Transport> transport_;
  std::optional<ReplyReader> reader_;  // one per transport: a new connection starts clean
  std::string out_;                    // formatted commands not yet written
  std::deque<std::string> in_flight_;  // names of sent commands whose replies are unread
  bool answered_ = false;              // the transport has delivered a reply
  std::optional<std::chrono::steady_clock::time_point> deadline_;
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
  // Closes the connections to endpoints not in `keep` (nodes that left the cluster); a
  // connector that cannot keeps them.
  virtual void Retain(const std::vector<Endpoint>& keep) { (void)keep; }
};

}  // namespace slotguard::cluster
