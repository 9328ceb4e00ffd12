#pragma once

#include <string>
#include <string_view>

#include "cluster/result.h"

namespace slotguard::agent {

// Compares two secrets in time that depends only on their lengths' maximum, never on where
// they first differ, so a caller cannot find the token byte by byte by timing 401s.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Reads a bearer token from `path`: the first line, surrounding whitespace stripped. An empty
// token is an error (it would let anyone in). Errors name the file, never its content.
cluster::Result<std::string> ReadTokenFile(const std::string& path);

// True when `authorization` is "Bearer <token>" with exactly `token` (constant time).
bool BearerMatches(std::string_view authorization, std::string_view token);

}  // namespace slotguard::agent
