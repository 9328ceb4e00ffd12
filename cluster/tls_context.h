#pragma once

#include <memory>
#include <string>

#include "cluster/result.h"
#include "cluster/tls_settings.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace slotguard::cluster {

// The OpenSSL client context for one set of TLS settings: the CA and the client certificate are
// read once, at start, and every connection that uses these settings (discovered nodes too)
// shares it. Sharing across threads is safe: connections only create sessions from it.
class TlsContext {
 public:
  // Fails with a message naming the file and OpenSSL's reason (never a key's contents).
  static Result<std::shared_ptr<const TlsContext>> Create(const TlsSettings& settings);

  const TlsSettings& settings() const { return settings_; }
  ssl_ctx_st* native() const { return ctx_.get(); }

 private:
  struct ContextDeleter {
    void operator()(ssl_ctx_st* ctx) const;
  };
  using ContextPtr = std::unique_ptr<ssl_ctx_st, ContextDeleter>;

  TlsContext(TlsSettings settings, ContextPtr ctx)
      : settings_(std::move(settings)), ctx_(std::move(ctx)) {}

  TlsSettings settings_;
  ContextPtr ctx_;
};

// OpenSSL's reason for the oldest error queued on this thread ("certificate verify failed"),
// or `fallback` when none is; clears the queue so the next failure starts clean.
std::string TakeOpenSslError(const std::string& fallback);

}  // namespace slotguard::cluster
