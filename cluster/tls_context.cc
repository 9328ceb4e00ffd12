#include "cluster/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace slotguard::cluster {
namespace {

// Refuses to ask for a passphrase: OpenSSL's default would prompt on the terminal, which a
// service has not got.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return -1; }

Result<void> Readable(const std::string& what, const std::string& path) {
  std::ifstream in(path);
  if (!in) return MakeError(what + " " + path + ": " + std::strerror(errno));
  return {};
}

}  // namespace

void TlsContext::ContextDeleter::operator()(ssl_ctx_st* ctx) const { SSL_CTX_free(ctx); }

std::string TakeOpenSslError(const std::string& fallback) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return fallback;
  const char* reason = ERR_reason_error_string(code);
  if (reason != nullptr) return reason;
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof(buffer));
  return buffer;
}

Result<std::shared_ptr<const TlsContext>> TlsContext::Create(const TlsSettings& settings) {
  ERR_clear_error();
  ContextPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return MakeError("TLS: " + TakeOpenSslError("cannot create a context"));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_default_passwd_cb(ctx.get(), NoPassphrase);
  // Writes may be resumed with another buffer address after a partial write (std::string grows).
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_AUTO_RETRY);

  if (!settings.ca_file.empty()) {
    if (auto r = Readable("TLS CA file", settings.ca_file); !r) return tl::unexpected(r.error());
    if (SSL_CTX_load_verify_locations(ctx.get(), settings.ca_file.c_str(), nullptr) != 1) {
      return MakeError("TLS CA file " + settings.ca_file + ": " +
                       TakeOpenSslError("no certificate in it"));
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
    return MakeError("TLS: the system's trust store: " + TakeOpenSslError("cannot be loaded"));
  }
  SSL_CTX_set_verify(ctx.get(), settings.insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                     nullptr);

  if (!settings.cert_file.empty()) {
    if (auto r = Readable("TLS certificate file", settings.cert_file); !r) {
      return tl::unexpected(r.error());
    }
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), settings.cert_file.c_str()) != 1) {
      return MakeError("TLS certificate file " + settings.cert_file + ": " +
                       TakeOpenSslError("no certificate in it"));
    }
  }
  if (!settings.key_file.empty()) {
    // The path only, never what is in the file.
    if (auto r = Readable("TLS key file", settings.key_file); !r) return tl::unexpected(r.error());
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), settings.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      const std::string reason = TakeOpenSslError("no usable private key in it");
      if (reason == "key values mismatch") {
        return MakeError("TLS key file " + settings.key_file +
                         " does not belong to the certificate in " + settings.cert_file);
      }
      return MakeError("TLS key file " + settings.key_file + ": " + reason +
                       " (a PEM key without a passphrase is needed)");
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
      ERR_clear_error();
      return MakeError("TLS key file " + settings.key_file +
                       " does not belong to the certificate in " + settings.cert_file);
    }
  }
  return std::shared_ptr<const TlsContext>(new TlsContext(settings, std::move(ctx)));
}

}  // namespace slotguard::cluster
