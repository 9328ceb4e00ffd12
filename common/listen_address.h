#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace slotguard::common {

// Where an HTTP server listens, as both binaries take it:
//   ":9478"          every IPv4 address of the host (civetweb as Debian builds it has no IPv6;
//                    where it has, IPv6 too)
//   "127.0.0.1:9478" one IPv4 address
//   "[::1]:9478"     one IPv6 address (refused when the server starts if civetweb lacks IPv6)
// Hosts are IP literals: the server binds an address, it does not resolve names. Port 0
// asks the kernel for a free port (tests); the server reports the one it got.
struct ListenAddress {
  std::string host;  // "" for every address; an IPv6 literal without brackets
  int port = 0;
  bool ipv6 = false;

  // The canonical text: ":9478", "127.0.0.1:9478", "[::1]:9478".
  std::string ToString() const;
  // civetweb's listening_ports value; `with_ipv6` says whether the library has IPv6 (then an
  // all-address listen covers both families).
  std::string CivetwebPorts(bool with_ipv6) const;
};

Result<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace slotguard::common
