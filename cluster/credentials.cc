#include "cluster/credentials.h"

#include <cstdlib>
#include <fstream>

namespace slotguard::cluster {

Result<std::optional<Credentials>> LoadCredentials(const std::optional<std::string>& user,
                                                   const std::string& file,
                                                   const std::string& env_var) {
  Credentials creds;
  creds.user = user;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) return MakeError("password file " + file + ": cannot be read");
    std::getline(in, creds.password);
    if (!creds.password.empty() && creds.password.back() == '\r') creds.password.pop_back();
    if (creds.password.empty()) return MakeError("password file " + file + ": first line is empty");
    return creds;
  }
  if (const char* env = std::getenv(env_var.c_str()); env != nullptr && *env != '\0') {
    creds.password = env;
    return creds;
  }
  if (user) return MakeError("user " + *user + " given without a password file or " + env_var);
  return std::optional<Credentials>{};
}

}  // namespace slotguard::cluster
