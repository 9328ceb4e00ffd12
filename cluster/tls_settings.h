#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cluster/endpoint.h"
#include "cluster/result.h"

namespace slotguard::cluster {

// How to speak TLS to every node of a cluster, as redis_exporter's and redis-cli's flags say it.
// Holds file names only: a key's contents never pass through here, so they cannot reach a log.
struct TlsSettings {
  std::string ca_file;      // "" = the system's trust store
  std::string cert_file;    // client certificate for mutual TLS, with key_file
  std::string key_file;     // its private key
  std::string server_name;  // SNI and the name checked; "" = the node's own address
  bool insecure_skip_verify = false;

  bool operator==(const TlsSettings&) const = default;
};

// TLS settings as one source (flags, environment, a config file) gives them: only the ones
// present are set, so a later source overrides field by field.
struct TlsOverrides {
  std::optional<std::string> ca_file;
  std::optional<std::string> cert_file;
  std::optional<std::string> key_file;
  std::optional<std::string> server_name;
  std::optional<bool> insecure_skip_verify;

  bool Empty() const {
    return !ca_file && !cert_file && !key_file && !server_name && !insecure_skip_verify;
  }
};

// `base` with every field `over` sets replaced.
TlsSettings MergeTls(TlsSettings base, const TlsOverrides& over);

// Whether the cluster behind `seeds` is reached over TLS, and how: nullopt when every seed is
// plain. Refused, with a message naming what to change: seeds that mix rediss:// with plain
// addresses (one cluster speaks one), a certificate without its key or a key without its
// certificate, and TLS settings given (`settings_given`) while no seed is rediss:// (a CA file
// silently unused would leave the link in plain text while the operator believes otherwise).
Result<std::optional<TlsSettings>> TlsForSeeds(const std::vector<SeedAddress>& seeds,
                                               const TlsSettings& settings, bool settings_given);

// For the start-up log line: "plain text", or "TLS (CA ..., client certificate ..., ...)".
// File names only.
std::string DescribeTls(const std::optional<TlsSettings>& tls);

}  // namespace slotguard::cluster
