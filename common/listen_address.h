#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace slotguard::common {

// Where an HTTP server listens, as both binaries take it:
//   ":9478"          every IPv4 address of the host
//   "127.0.0.1:9478" one IPv4 address
//   "[::1]:9478"     one IPv6 address (IPv6 only)
// Hosts are IP literals: the server binds an address, it does not resolve names. Port 0
// asks the kernel for a free port (tests); the server reports the one it got.
struct ListenAddress {
  std::string host;  // "" for every address; an IPv6 literal without brackets
  int port = 0;
  bool ipv6 = false;

  // The canonical text: ":9478", "127.0.0.1:9478", "[::1]:9478".
  std::string ToString() const;
};

Result<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace slotguard::common
