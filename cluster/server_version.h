#pragma once

#include <string>
#include <string_view>

#include "cluster/info.h"
#include "cluster/result.h"

namespace slotguard::cluster {

// Which server a node runs, from its INFO server section (INFO all holds it too):
//   Redis 6.2/7.x   redis_version:7.2.6, no server_name
//   Valkey 8        server_name:valkey, valkey_version:8.0.1, and redis_version:7.2.4 (the
//                   Redis version whose behaviour it keeps, not its own)
// Behaviour that differs between servers is asked of the predicates below, never of the
// version strings at the call site.
class ServerVersion {
 public:
  // A dotted version as the server writes it: "7.2.6", "8.0.1", "255.255.255" (unstable).
  struct Number {
    int major = 0;
    int minor = 0;
    int patch = 0;
    bool AtLeast(int want_major, int want_minor, int want_patch = 0) const;
  };

  ServerVersion() = default;

  // "redis" when the server does not say (Redis writes no server_name), else its server_name
  // in lower case ("valkey").
  const std::string& name() const { return name_; }
  // The server's own version: valkey_version on Valkey, redis_version on Redis.
  const std::string& version() const { return version_; }
  // The Redis version it declares compatibility with (redis_version; on Redis its own).
  const std::string& redis_version() const { return redis_version_; }
  const Number& number() const { return number_; }
  const Number& redis_number() const { return redis_number_; }

  bool IsValkey() const { return name_ == "valkey"; }

  // Capabilities.
  // The RDB format version its DUMP/MIGRATE payloads carry: 9 (6.x), 10 (7.0), 11 (7.2 and
  // Valkey 8, whose redis_version is 7.2.4), 12 (7.4+). A node refuses RESTORE of a payload
  // newer than its own ("DUMP payload version or checksum are wrong"), so MIGRATE cannot move
  // keys to a node whose format is older. Not probed: only a write (RESTORE) would tell.
  int RdbVersion() const;
  // INFO latencystats (latency_percentiles_usec_<cmd>) exists (Redis >= 7.0, so Valkey).
  bool HasLatencyStats() const;
  // CLUSTER INFO writes total_cluster_links_buffer_limit_exceeded and CLUSTER LINKS exists
  // (Redis >= 7.0).
  bool HasClusterLinks() const;

  // "redis 6.2.16", "valkey 8.0.1 (redis_version 7.2.4)": for logs.
  std::string ToString() const;

 private:
  friend Result<ServerVersion> ServerVersionFromInfo(const Info& info);

  std::string name_ = "redis";
  std::string version_;
  std::string redis_version_;
  Number number_;
  Number redis_number_;
};

// Pure. Fails when redis_version is absent (not INFO server output) or a version is not
// dotted numbers.
Result<ServerVersion> ServerVersionFromInfo(const Info& info);
// The same from the raw text of INFO server or INFO all.
Result<ServerVersion> ParseServerVersion(std::string_view info_text);

}  // namespace slotguard::cluster
