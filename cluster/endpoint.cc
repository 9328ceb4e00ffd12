#include "cluster/endpoint.h"

#include <charconv>

namespace slotguard::cluster {

std::string Endpoint::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<Endpoint> ParseEndpoint(std::string_view text) {
  // Built by appending: GCC 12 at -O3 reports a false -Wrestrict on `"\"" + std::string(...)`
  // (operator+(const char*, string&&) inserts at the front).
  std::string quoted;
  quoted.reserve(text.size() + 2);
  quoted.append(1, '"').append(text).append(1, '"');
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return MakeError("address " + quoted + ": expected [ipv6]:port");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return MakeError("address " + quoted + ": expected host:port");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) return MakeError("address " + quoted + ": empty host");
  int value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || ptr != port.data() + port.size() || value < 1 || value > 65535) {
    return MakeError("address " + quoted + ": port must be 1-65535");
  }
  return Endpoint{std::string(host), value};
}

Result<SeedAddress> ParseSeedAddress(std::string_view text) {
  constexpr std::string_view kScheme = "redis://";
  constexpr std::string_view kTlsScheme = "rediss://";
  SeedAddress seed;
  const bool plain_url = text.substr(0, kScheme.size()) == kScheme;
  seed.tls = text.substr(0, kTlsScheme.size()) == kTlsScheme;
  if (plain_url || seed.tls) {
    text.remove_prefix(plain_url ? kScheme.size() : kTlsScheme.size());
    if (!text.empty() && text.back() == '/') text.remove_suffix(1);
    auto at = text.rfind('@');
    if (at != std::string_view::npos) {
      std::string_view userinfo = text.substr(0, at);
      if (userinfo.find(':') != std::string_view::npos) {
        // Deliberately not echoing the text: it holds a password.
        return MakeError(
            "a password in a redis:// or rediss:// address is refused (it would show in ps "
            "output); use "
            "--redis.password-file or REDIS_PASSWORD");
      }
      if (!userinfo.empty()) seed.user = std::string(userinfo);
      text.remove_prefix(at + 1);
    }
  }
  if (!plain_url && !seed.tls) {
    if (auto scheme = text.find("://"); scheme != std::string_view::npos) {
      // Only the scheme is quoted: the rest may hold a password.
      return MakeError("address scheme \"" + std::string(text.substr(0, scheme)) +
                       "://\": expected redis:// or rediss:// (TLS)");
    }
  }
  auto endpoint = ParseEndpoint(text);
  if (!endpoint) return tl::unexpected(endpoint.error());
  seed.endpoint = *endpoint;
  return seed;
}

}  // namespace slotguard::cluster
