#pragma once

#include <optional>
#include <string>

#include "cluster/result.h"

namespace slotguard::cluster {

// AUTH credentials. The password is never printed: there is deliberately no ToString, and
// error messages name the file or variable it came from, never its content.
struct Credentials {
  std::optional<std::string> user;  // ACL user; none means the default user
  std::string password;
};

// Reads a password from `file` (first line, trailing newline stripped) when given, else from
// the environment variable `env_var` when set. Returns nullopt when neither is set.
Result<std::optional<Credentials>> LoadCredentials(const std::optional<std::string>& user,
                                                   const std::string& file,
                                                   const std::string& env_var = "REDIS_PASSWORD");

}  // namespace slotguard::cluster
