#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace slotguard::common {

// Checks "Authorization: Basic ..." against bcrypt hashes (libcrypt's crypt_rn: $2y$, $2b$,
// $2a$). bcrypt costs tens of milliseconds by design, so a successful check is remembered:
// as an HMAC-SHA256, under a key made at random for this object, of user, hash and password;
// the password itself is never kept. Scrapes every few seconds then cost one HMAC. A wrong
// password or an unknown user always costs a full bcrypt (a dummy one for unknown users), so
// the answer's timing says nothing about which users exist. Thread-safe.
class BasicAuth {
 public:
  explicit BasicAuth(std::map<std::string, std::string> users);

  // True when `authorization` is a Basic credential of a configured user with the right
  // password. `user_out`, when given, receives the user name it claimed (for logs).
  bool Check(std::string_view authorization, std::string* user_out = nullptr) const;

  // Successful checks remembered so far (tests).
  size_t cached() const;

 private:
  std::string CacheKey(const std::string& user, const std::string& hash,
                       const std::string& password) const;

  std::map<std::string, std::string> users_;
  unsigned char key_[32];
  mutable std::mutex mutex_;
  mutable std::set<std::string> verified_;  // CacheKey()s of credentials that passed bcrypt
};

// Decodes the credential of "Basic <base64 of user:password>"; false when the header is not
// that. The scheme is case-insensitive (RFC 7617).
bool ParseBasicAuthorization(std::string_view authorization, std::string& user,
                             std::string& password);

}  // namespace slotguard::common
