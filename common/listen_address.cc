#include "common/listen_address.h"

#include <arpa/inet.h>

#include <charconv>

namespace slotguard::common {

std::string ListenAddress::ToString() const {
  const std::string p = std::to_string(port);
  if (host.empty()) return ":" + p;
  return ipv6 ? "[" + host + "]:" + p : host + ":" + p;
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  const std::string quoted = "\"" + std::string(text) + "\"";
  ListenAddress out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) {
      return MakeError(quoted + ": expected host:port, :port or [ipv6]:port");
    }
    out.host = std::string(text.substr(1, close - 1));
    out.ipv6 = true;
    port = text.substr(close + 2);
    in6_addr addr{};
    if (::inet_pton(AF_INET6, out.host.c_str(), &addr) != 1) {
      return MakeError(quoted + ": \"" + out.host + "\" is not an IPv6 address");
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return MakeError(quoted + ": expected host:port, :port or [ipv6]:port");
    }
    out.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) {
      return MakeError(quoted + ": write an IPv6 address in brackets, as [::1]:9478");
    }
    in_addr addr{};
    if (!out.host.empty() && ::inet_pton(AF_INET, out.host.c_str(), &addr) != 1) {
      return MakeError(quoted +
                       ": the host must be an IP address (or empty for every address); "
                       "names are not resolved");
    }
  }
  int value = -1;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || value < 0 ||
      value > 65535) {
    return MakeError(quoted + ": the port must be a number from 1 to 65535 (0: any free port)");
  }
  out.port = value;
  return out;
}

}  // namespace slotguard::common
