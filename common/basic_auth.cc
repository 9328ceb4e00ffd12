#include "common/basic_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cctype>
#include <memory>

namespace slotguard::common {
namespace {

// Bounds the memory a stream of distinct valid logins could take; clearing it only costs the
// next scrape of each user one bcrypt.
constexpr size_t kMaxCached = 1024;

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool DecodeBase64(std::string_view in, std::string& out) {
  out.clear();
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return false;
  unsigned bits = 0;
  int have = 0;
  for (char c : in) {
    const int v = Base64Value(c);
    if (v < 0) return false;
    bits = (bits << 6) | static_cast<unsigned>(v);
    have += 6;
    if (have >= 8) {
      have -= 8;
      out.push_back(static_cast<char>((bits >> have) & 0xff));
    }
  }
  return true;
}

// bcrypt of `password` with the salt and cost of `hash`, compared in constant time.
bool BcryptMatches(const std::string& password, const std::string& hash) {
  // crypt_data is 32 KiB: on the heap, not on the HTTP thread's stack.
  auto data = std::make_unique<crypt_data>();
  const char* out = crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  if (out == nullptr || out[0] == '*') return false;
  const std::string_view got(out);
  return got.size() == hash.size() && CRYPTO_memcmp(got.data(), hash.data(), hash.size()) == 0;
}

}  // namespace

bool ParseBasicAuthorization(std::string_view authorization, std::string& user,
                             std::string& password) {
  constexpr std::string_view kScheme = "basic ";
  if (authorization.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  std::string_view encoded = authorization.substr(kScheme.size());
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  while (!encoded.empty() && (encoded.back() == ' ' || encoded.back() == '\r')) {
    encoded.remove_suffix(1);
  }
  std::string decoded;
  if (!DecodeBase64(encoded, decoded)) return false;
  const auto colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  user = decoded.substr(0, colon);
  password = decoded.substr(colon + 1);
  // crypt() stops at a NUL: "secret\0anything" must not pass as "secret".
  return password.find('\0') == std::string::npos;
}

BasicAuth::BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {
  if (RAND_bytes(key_, sizeof key_) != 1) {
    // Without randomness the cache key is still a keyed hash, just with a guessable key; the
    // cache then only remembers what passed bcrypt. Never observed on Linux.
    for (size_t i = 0; i < sizeof key_; ++i) key_[i] = static_cast<unsigned char>(i * 131 + 7);
  }
}

std::string BasicAuth::CacheKey(const std::string& user, const std::string& hash,
                                const std::string& password) const {
  // Lengths first, so "ab"+"c" and "a"+"bc" differ.
  std::string message = std::to_string(user.size()) + ":" + user + std::to_string(hash.size()) +
                        ":" + hash + password;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key_, sizeof key_, reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), mac, &length);
  OPENSSL_cleanse(message.data(), message.size());
  return std::string(reinterpret_cast<const char*>(mac), length);
}

bool BasicAuth::Check(std::string_view authorization, std::string* user_out) const {
  std::string user;
  std::string password;
  const bool parsed = ParseBasicAuthorization(authorization, user, password);
  if (user_out) *user_out = parsed ? user : "";
  if (!parsed) return false;
  const auto it = users_.find(user);
  if (it == users_.end()) {
    // As slow as a wrong password, so the timing does not reveal which users exist.
    if (!users_.empty()) BcryptMatches(password, users_.begin()->second);
    OPENSSL_cleanse(password.data(), password.size());
    return false;
  }
  const std::string key = CacheKey(user, it->second, password);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (verified_.count(key)) {
      OPENSSL_cleanse(password.data(), password.size());
      return true;
    }
  }
  const bool ok = BcryptMatches(password, it->second);
  OPENSSL_cleanse(password.data(), password.size());
  if (!ok) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  if (verified_.size() >= kMaxCached) verified_.clear();
  verified_.insert(key);
  return true;
}

size_t BasicAuth::cached() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return verified_.size();
}

}  // namespace slotguard::common
