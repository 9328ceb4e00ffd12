#include "common/basic_auth.h"

#include <gtest/gtest.h>

namespace slotguard::common {
namespace {

// "s3cret" at cost 4, in both spellings libcrypt verifies ($2y$ from htpasswd, $2b$ from
// python's bcrypt); made with python3's crypt module.
constexpr const char* kHash2y = "$2y$04$abcdefghijklmnopqrstuuLZYjhNQAOdpbzt4WxWlUHjv1wsyH5DG";
constexpr const char* kHash2b = "$2b$04$abcdefghijklmnopqrstuuLZYjhNQAOdpbzt4WxWlUHjv1wsyH5DG";

// "Basic " + base64(credential)
std::string Basic(const std::string& credential) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < credential.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(credential[i]) << 16) |
                       (static_cast<unsigned char>(credential[i + 1]) << 8) |
                       static_cast<unsigned char>(credential[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(v >> shift) & 63];
  }
  const size_t rest = credential.size() - i;
  if (rest > 0) {
    unsigned v = static_cast<unsigned char>(credential[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(credential[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return "Basic " + out;
}

TEST(CommonBasicAuth, ParsesTheHeader) {
  std::string user;
  std::string password;
  ASSERT_TRUE(ParseBasicAuthorization("Basic dXNlcjpwYTpzcw==", user, password));
  EXPECT_EQ(user, "user");
  EXPECT_EQ(password, "pa:ss");  // only the first colon separates
  ASSERT_TRUE(ParseBasicAuthorization("basic   dXNlcjpwYTpzcw", user, password));  // no padding
  EXPECT_FALSE(ParseBasicAuthorization("Bearer dXNlcjpwYTpzcw==", user, password));
  EXPECT_FALSE(ParseBasicAuthorization("Basic dXNlcg==", user, password));  // "user", no colon
  EXPECT_FALSE(ParseBasicAuthorization("Basic !!!!", user, password));
  EXPECT_FALSE(ParseBasicAuthorization("", user, password));
  EXPECT_FALSE(ParseBasicAuthorization(Basic(std::string("u:s3cret\0x", 10)), user, password));
}

TEST(CommonBasicAuth, ChecksBcryptAndRemembersOnlySuccess) {
  BasicAuth auth({{"prometheus", kHash2y}, {"other", kHash2b}});
  std::string user;
  EXPECT_FALSE(auth.Check(Basic("prometheus:wrong"), &user));
  EXPECT_EQ(user, "prometheus");
  EXPECT_EQ(auth.cached(), 0u);
  EXPECT_FALSE(auth.Check(Basic("nobody:s3cret")));
  EXPECT_FALSE(auth.Check(""));
  EXPECT_TRUE(auth.Check(Basic("prometheus:s3cret")));
  EXPECT_TRUE(auth.Check(Basic("other:s3cret")));
  EXPECT_EQ(auth.cached(), 2u);
  EXPECT_TRUE(auth.Check(Basic("prometheus:s3cret")));  // from the cache
  EXPECT_EQ(auth.cached(), 2u);
  // The cache is keyed by the password too: a wrong one after a right one still fails.
  EXPECT_FALSE(auth.Check(Basic("prometheus:s3cre")));
  EXPECT_FALSE(auth.Check(Basic("prometheus:s3cret ")));
  // One user's password is not another's, even though both hashes say "s3cret".
  EXPECT_FALSE(auth.Check(Basic("nobody:s3cret")));
}

TEST(CommonBasicAuth, NoUsersRefusesEveryone) {
  BasicAuth auth({});
  EXPECT_FALSE(auth.Check(Basic("u:p")));
}

}  // namespace
}  // namespace slotguard::common
