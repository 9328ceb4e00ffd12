#pragma once

#include <compare>
#include <optional>
#include <string>
#include <string_view>

#include "cluster/result.h"

namespace slotguard::cluster {

// A node's client address. Ordered and comparable so it can key maps.
struct Endpoint {
  std::string host;
  int port = 0;

  std::string ToString() const;  // "host:port" ("[::1]:port" for IPv6)
  auto operator<=>(const Endpoint&) const = default;
};

// A seed as users write it: "host:port", "[v6]:port", "redis://[user@]host:port" or
// "rediss://[user@]host:port" (TLS). A user in the URL is returned separately; a password in
// the URL is refused so it never lands in `ps` output.
struct SeedAddress {
  Endpoint endpoint;
  std::optional<std::string> user;
  bool tls = false;  // rediss://
};

Result<SeedAddress> ParseSeedAddress(std::string_view text);
Result<Endpoint> ParseEndpoint(std::string_view text);

}  // namespace slotguard::cluster
