#include "common/web_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace slotguard::common {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// "s3cret" at cost 4 (fast in tests), made with python3's crypt module.
constexpr const char* kHash = "$2y$04$abcdefghijklmnopqrstuuLZYjhNQAOdpbzt4WxWlUHjv1wsyH5DG";

std::string Error(const std::string& text) {
  auto config = ParseWebConfig(text, "/etc/slotguard/web.yml");
  EXPECT_FALSE(config) << "parsed: " << text;
  return config ? "" : config.error().message;
}

TEST(CommonWebConfig, ReadsTheExporterToolkitFormat) {
  auto config = ParseWebConfig(std::string("tls_server_config:\n"
                                           "  cert_file: server.crt\n"
                                           "  key_file: /keys/server.key\n"
                                           "  client_auth_type: RequireAndVerifyClientCert\n"
                                           "  client_ca_file: ca.crt\n"
                                           "  min_version: TLS13\n"
                                           "basic_auth_users:\n"
                                           "  prometheus: ") +
                                   kHash + "\n  'other user': " + kHash + "\n",
                               "/etc/slotguard/web.yml");
  ASSERT_TRUE(config) << config.error().message;
  ASSERT_TRUE(config->tls);
  EXPECT_EQ(config->tls->cert_file, "/etc/slotguard/server.crt");  // next to the config
  EXPECT_EQ(config->tls->key_file, "/keys/server.key");
  EXPECT_EQ(config->tls->client_ca_file, "/etc/slotguard/ca.crt");
  EXPECT_EQ(config->tls->client_auth_type, ClientAuthType::kRequireAndVerifyClientCert);
  EXPECT_EQ(config->tls->min_version, TlsVersion::kTls13);
  EXPECT_EQ(config->basic_auth_users.size(), 2u);
  EXPECT_EQ(config->basic_auth_users.at("prometheus"), kHash);
  EXPECT_EQ(DescribeWebConfig(*config),
            "TLS (client certificates: RequireAndVerifyClientCert), basic auth (2 users)");
}

TEST(CommonWebConfig, DefaultsAsExporterToolkit) {
  auto config = ParseWebConfig("tls_server_config:\n  cert_file: a\n  key_file: b\n", "w.yml");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->tls->client_auth_type, ClientAuthType::kNoClientCert);
  EXPECT_EQ(config->tls->min_version, TlsVersion::kTls12);
  EXPECT_EQ(config->tls->cert_file, "a");  // no folder in the name: as given
  EXPECT_TRUE(config->basic_auth_users.empty());

  auto empty = ParseWebConfig("", "w.yml");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->tls);
  EXPECT_EQ(DescribeWebConfig(*empty), "no TLS, no auth");
  auto users_only = ParseWebConfig(std::string("basic_auth_users:\n  u: ") + kHash, "w.yml");
  ASSERT_TRUE(users_only);
  EXPECT_EQ(DescribeWebConfig(*users_only), "basic auth (1 user)");
}

TEST(CommonWebConfig, UnknownKeysAreRefusedWithFileAndLine) {
  EXPECT_EQ(Error("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: []\n"),
            "/etc/slotguard/web.yml:4: tls_server_config.cipher_suites: unknown key (allowed "
            "here: cert_file, key_file, client_auth_type, client_ca_file, min_version)");
  EXPECT_THAT(Error("http_server_config:\n  http2: false\n"),
              HasSubstr("web.yml:1: http_server_config: unknown key"));
  EXPECT_THAT(Error("tls_server_config:\n  cert_file: a\n  key_file: b\n  cert_file: c\n"),
              HasSubstr(":4: tls_server_config.cert_file: duplicate key"));
}

TEST(CommonWebConfig, TlsSettingsAreChecked) {
  EXPECT_THAT(Error("tls_server_config:\n  cert_file: a\n"),
              HasSubstr("tls_server_config.key_file: required"));
  EXPECT_THAT(Error("tls_server_config:\n  key_file: a\n"),
              HasSubstr("tls_server_config.cert_file: required"));
  EXPECT_THAT(Error("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                    "  client_auth_type: RequireAndVerify\n"),
              HasSubstr("web.yml:4: tls_server_config.client_auth_type: 'RequireAndVerify' is "
                        "not one of NoClientCert, RequestClientCert"));
  EXPECT_THAT(Error("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                    "  client_auth_type: VerifyClientCertIfGiven\n"),
              HasSubstr("tls_server_config.client_ca_file: required with client_auth_type "
                        "VerifyClientCertIfGiven"));
  EXPECT_THAT(Error("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n"),
              HasSubstr("web.yml:4: tls_server_config.client_ca_file: given, but"));
  EXPECT_THAT(Error("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS1.2\n"),
              HasSubstr("web.yml:4: tls_server_config.min_version: 'TLS1.2' is not one of TLS10"));
  EXPECT_THAT(Error("tls_server_config: yes\n"), HasSubstr("expected a map"));
}

TEST(CommonWebConfig, BasicAuthUsersNeedBcryptHashes) {
  // A plain-text password where a hash belongs: refused, and not echoed.
  const std::string message = Error("basic_auth_users:\n  prometheus: hunter2\n");
  EXPECT_THAT(message, HasSubstr("web.yml:2: basic_auth_users.prometheus: not a bcrypt hash"));
  EXPECT_THAT(message, Not(HasSubstr("hunter2")));
  // SHA-512 crypt is a hash, but not one exporter-toolkit accepts.
  EXPECT_THAT(Error("basic_auth_users:\n  u: $6$salt$abcdefghijklmnopqrstuvwxyz\n"),
              HasSubstr("not a bcrypt hash"));
  std::string truncated(kHash);
  truncated.pop_back();
  EXPECT_THAT(Error("basic_auth_users:\n  u: " + truncated + "\n"), HasSubstr("not a bcrypt"));
  std::string cost_99(kHash);
  cost_99[4] = '9';
  cost_99[5] = '9';
  EXPECT_THAT(Error("basic_auth_users:\n  u: " + cost_99 + "\n"), HasSubstr("not a bcrypt"));
  EXPECT_THAT(Error(std::string("basic_auth_users:\n  'a:b': ") + kHash + "\n"),
              HasSubstr("basic_auth_users.a:b: must not contain ':'"));
  EXPECT_THAT(Error(std::string("basic_auth_users:\n  u: ") + kHash + "\n  u: " + kHash + "\n"),
              HasSubstr("web.yml:3: basic_auth_users.u: duplicate user"));
  EXPECT_THAT(Error("basic_auth_users: [a, b]\n"),
              HasSubstr("basic_auth_users: expected a map of user: bcrypt hash"));
}

TEST(CommonWebConfig, LoadNamesAMissingFile) {
  auto missing = LoadWebConfig("/nonexistent/web.yml");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("cannot read web config /nonexistent/web.yml"));
}

}  // namespace
}  // namespace slotguard::common
