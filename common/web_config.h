#pragma once

#include <map>
#include <optional>
#include <string>

#include "common/error.h"

namespace slotguard::common {

// The Prometheus exporter-toolkit web config (the file of --web.config.file), the subset
// slotguard serves: TLS with optional client certificates, and basic auth with bcrypt hashes.
//
//   tls_server_config:
//     cert_file: server.crt
//     key_file: server.key
//     client_auth_type: RequireAndVerifyClientCert
//     client_ca_file: ca.crt
//     min_version: TLS12
//   basic_auth_users:
//     prometheus: $2y$10$...
enum class ClientAuthType {
  kNoClientCert,
  kRequestClientCert,
  kRequireAnyClientCert,
  kVerifyClientCertIfGiven,
  kRequireAndVerifyClientCert,
};

enum class TlsVersion { kTls10, kTls11, kTls12, kTls13 };

struct TlsServerConfig {
  std::string cert_file;       // absolute (relative paths resolve against the config's folder)
  std::string key_file;        // absolute
  std::string client_ca_file;  // absolute; "" when not given
  ClientAuthType client_auth_type = ClientAuthType::kNoClientCert;
  TlsVersion min_version = TlsVersion::kTls12;  // exporter-toolkit's default
};

struct WebConfig {
  std::optional<TlsServerConfig> tls;
  std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash
};

// Pure: parses the text of the web config `file` (named in errors as file:line), resolving
// relative paths against the file's folder. Unknown keys, a missing cert or key, a client CA
// without a client auth type that uses it (and the reverse), and hashes that are not bcrypt
// are errors. An empty file is an empty config (no TLS, no auth), as in exporter-toolkit.
Result<WebConfig> ParseWebConfig(const std::string& text, const std::string& file);

// Reads and parses `path`, then checks that the files it names can be read.
Result<WebConfig> LoadWebConfig(const std::string& path);

// For logs: "TLS (client certificates: RequireAndVerifyClientCert), basic auth (2 users)".
std::string DescribeWebConfig(const WebConfig& config);

}  // namespace slotguard::common
