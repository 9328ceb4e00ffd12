#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "cluster/endpoint.h"
#include "cluster/result.h"

struct ssl_st;  // OpenSSL's SSL

namespace slotguard::cluster {

class TlsContext;

// A connected TCP socket to one node, in plain text or TLS: the byte stream under a
// RedisConnection. Blocking with SO_RCVTIMEO/SO_SNDTIMEO, as hiredis's blocking contexts are, so
// a plain read or write is one system call. Errors are values whose message is the reason only
// ("timed out", "Connection refused", "certificate has expired ..."); the caller names the node.
class Transport {
 public:
  // Resolves and connects within `connect_timeout`; with `tls`, the handshake and the check of
  // the node's certificate (against the CA, and the node's address or the configured server
  // name) happen within it too.
  static Result<std::unique_ptr<Transport>> Connect(const Endpoint& endpoint,
                                                    std::chrono::milliseconds connect_timeout,
                                                    const TlsContext* tls);
  ~Transport();

  // Why a node over TLS closed a connection before answering anything: a node with
  // tls-auth-clients yes verifies the client certificate after the client has finished its
  // handshake, sends an alert naming the reason and closes, and a command written meanwhile
  // makes the close a reset that loses the alert. This connects once more, writes nothing and
  // reads the node's verdict for up to `wait`. Returns OpenSSL's reason for the alert, or "".
  static std::string ProbeTlsRefusal(const Endpoint& endpoint, std::chrono::milliseconds wait,
                                     const TlsContext& tls);

  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // The longest a single read or write may wait from now on.
  Result<void> SetIoTimeout(std::chrono::milliseconds timeout);
  Result<void> Write(std::string_view data);
  // Reads at least one byte (up to `size`); a peer that closed the connection is an error.
  Result<size_t> Read(char* buffer, size_t size);
  bool tls() const { return ssl_ != nullptr; }

 private:
  struct SslDeleter {
    void operator()(ssl_st* ssl) const;
  };

  explicit Transport(int fd) : fd_(fd) {}
  Result<void> Handshake(const Endpoint& endpoint, const TlsContext& tls);
  std::string TlsFailure(int ret, const std::string& during);

  int fd_;                                   // closed by the destructor, after ssl_ is freed
  std::unique_ptr<ssl_st, SslDeleter> ssl_;  // null: plain text
};

// Words added to a TLS failure that tell the operator what to change, from OpenSSL's reason and
// the certificate check's result; "" when there is nothing to add. `host` is the name or address
// the certificate was checked against.
std::string TlsFailureHint(std::string_view reason, std::string_view host);

}  // namespace slotguard::cluster
