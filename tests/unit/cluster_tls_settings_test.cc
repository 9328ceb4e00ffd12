// The pure parts of TLS to Redis: rediss:// seeds, merging settings from several sources, the
// decision whether a cluster is reached over TLS, and the words added to a handshake failure.
#include "cluster/tls_settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "cluster/endpoint.h"
#include "cluster/tls_context.h"
#include "cluster/transport.h"

namespace slotguard::cluster {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ClusterTlsSeed, RedissUrlForms) {
  auto tls = ParseSeedAddress("rediss://10.0.0.1:7000");
  ASSERT_TRUE(tls) << tls.error().message;
  EXPECT_TRUE(tls->tls);
  EXPECT_EQ(tls->endpoint, (Endpoint{"10.0.0.1", 7000}));

  auto user = ParseSeedAddress("rediss://exporter@[::1]:7000/");
  ASSERT_TRUE(user) << user.error().message;
  EXPECT_TRUE(user->tls);
  EXPECT_EQ(user->user, "exporter");
  EXPECT_EQ(user->endpoint, (Endpoint{"::1", 7000}));

  EXPECT_FALSE(ParseSeedAddress("redis://10.0.0.1:7000")->tls);
  EXPECT_FALSE(ParseSeedAddress("10.0.0.1:7000")->tls);
  EXPECT_FALSE(ParseSeedAddress("rediss://"));
  EXPECT_FALSE(ParseSeedAddress("rediss://host"));
  auto unknown = ParseSeedAddress("redisss://10.0.0.1:7000");
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message, HasSubstr("\"redisss://\": expected redis:// or rediss://"));

  auto password = ParseSeedAddress("rediss://admin:hunter2-secret@10.0.0.1:7000");
  ASSERT_FALSE(password);
  EXPECT_THAT(password.error().message, HasSubstr("password"));
  EXPECT_THAT(password.error().message, Not(HasSubstr("hunter2-secret")));
}

TEST(ClusterTlsSettings, MergeOverridesFieldByField) {
  TlsOverrides file;
  file.ca_file = "/etc/ca.pem";
  file.server_name = "redis.internal";
  file.insecure_skip_verify = true;
  TlsOverrides flags;
  flags.server_name = "other.internal";
  flags.insecure_skip_verify = false;
  flags.cert_file = "/etc/client.pem";

  const TlsSettings merged = MergeTls(MergeTls({}, file), flags);
  EXPECT_EQ(merged.ca_file, "/etc/ca.pem");                // only the file sets it
  EXPECT_EQ(merged.server_name, "other.internal");         // the later source wins
  EXPECT_FALSE(merged.insecure_skip_verify);               // an explicit false wins too
  EXPECT_EQ(merged.cert_file, "/etc/client.pem");          // only the flags set it
  EXPECT_EQ(merged.key_file, "");                          // nobody sets it
  EXPECT_EQ(MergeTls({}, TlsOverrides{}), TlsSettings{});  // nothing given: the defaults
}

std::vector<SeedAddress> Seeds(std::initializer_list<const char*> texts) {
  std::vector<SeedAddress> out;
  for (const char* t : texts) out.push_back(*ParseSeedAddress(t));
  return out;
}

TEST(ClusterTlsSettings, TlsForSeeds) {
  TlsSettings settings;
  settings.ca_file = "/etc/ca.pem";

  auto plain = TlsForSeeds(Seeds({"10.0.0.1:7000", "redis://10.0.0.2:7000"}), {}, false);
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_FALSE(*plain);

  auto tls =
      TlsForSeeds(Seeds({"rediss://10.0.0.1:7000", "rediss://10.0.0.2:7000"}), settings, true);
  ASSERT_TRUE(tls) << tls.error().message;
  ASSERT_TRUE(*tls);
  EXPECT_EQ((*tls)->ca_file, "/etc/ca.pem");

  // rediss:// alone: the system's trust store, certificates checked.
  auto defaults = TlsForSeeds(Seeds({"rediss://10.0.0.1:7000"}), {}, false);
  ASSERT_TRUE(defaults && *defaults);
  EXPECT_FALSE((*defaults)->insecure_skip_verify);

  auto mixed = TlsForSeeds(Seeds({"rediss://10.0.0.1:7000", "10.0.0.2:7000"}), settings, true);
  ASSERT_FALSE(mixed);
  EXPECT_THAT(mixed.error().message, HasSubstr("mix rediss://"));

  auto unused = TlsForSeeds(Seeds({"10.0.0.1:7000"}), settings, true);
  ASSERT_FALSE(unused);
  EXPECT_THAT(unused.error().message, HasSubstr("no seed is rediss://"));

  TlsSettings cert_only;
  cert_only.cert_file = "/etc/client.pem";
  auto no_key = TlsForSeeds(Seeds({"rediss://10.0.0.1:7000"}), cert_only, true);
  ASSERT_FALSE(no_key);
  EXPECT_THAT(no_key.error().message, HasSubstr("without its key file"));
  TlsSettings key_only;
  key_only.key_file = "/etc/client.key";
  auto no_cert = TlsForSeeds(Seeds({"rediss://10.0.0.1:7000"}), key_only, true);
  ASSERT_FALSE(no_cert);
  EXPECT_THAT(no_cert.error().message, HasSubstr("without a certificate file"));
}

TEST(ClusterTlsSettings, DescribeNamesFilesOnly) {
  EXPECT_EQ(DescribeTls(std::nullopt), "plain text");
  TlsSettings s;
  EXPECT_EQ(DescribeTls(s), "TLS (CA the system's trust store, certificates checked)");
  s.ca_file = "/etc/ca.pem";
  s.cert_file = "/etc/client.pem";
  s.key_file = "/etc/client.key";
  s.server_name = "redis.internal";
  s.insecure_skip_verify = true;
  EXPECT_EQ(DescribeTls(s),
            "TLS (CA /etc/ca.pem, client certificate /etc/client.pem, server name "
            "redis.internal, certificates NOT checked)");
}

TEST(ClusterTlsFailureHint, NamesWhatToChange) {
  EXPECT_THAT(TlsFailureHint("wrong version number", "10.0.0.1"), HasSubstr("use redis://"));
  EXPECT_THAT(TlsFailureHint("packet length too long", "10.0.0.1"), HasSubstr("plain-text port"));
  EXPECT_THAT(TlsFailureHint("tlsv13 alert certificate required", ""),
              HasSubstr("tls.cert-file and tls.key-file"));
  EXPECT_THAT(TlsFailureHint("certificate verify failed: certificate has expired", "10.0.0.1"),
              HasSubstr("has expired"));
  EXPECT_THAT(
      TlsFailureHint("certificate verify failed: self-signed certificate in certificate chain",
                     "10.0.0.1"),
      HasSubstr("not signed by a CA in tls.ca-file"));
  EXPECT_THAT(TlsFailureHint("certificate verify failed: unable to get local issuer certificate",
                             "10.0.0.1"),
              HasSubstr("not signed by a CA in tls.ca-file"));
  EXPECT_THAT(TlsFailureHint("certificate verify failed: IP address mismatch", "10.0.0.1"),
              HasSubstr("does not name 10.0.0.1: tls.server-name"));
  EXPECT_THAT(TlsFailureHint("sslv3 alert bad certificate", ""),
              HasSubstr("refused the client certificate"));
  EXPECT_EQ(TlsFailureHint("timed out", "10.0.0.1"), "");
}

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/slotguard-tls-test-XXXXXX";
    int fd = mkstemp(name);
    path_ = name;
    ::close(fd);
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ClusterTlsContext, BadFilesNameThePathNeverTheContents) {
  TlsSettings missing;
  missing.ca_file = "/nonexistent/ca.pem";
  auto no_ca = TlsContext::Create(missing);
  ASSERT_FALSE(no_ca);
  EXPECT_THAT(no_ca.error().message, HasSubstr("TLS CA file /nonexistent/ca.pem"));
  EXPECT_THAT(no_ca.error().message, HasSubstr("No such file"));

  TempFile not_a_ca("just text, no certificate\n");
  TlsSettings bad_ca;
  bad_ca.ca_file = not_a_ca.path();
  auto refused_ca = TlsContext::Create(bad_ca);
  ASSERT_FALSE(refused_ca);
  EXPECT_THAT(refused_ca.error().message, HasSubstr("TLS CA file " + not_a_ca.path()));

  // A key file whose text is a secret but not a key: the message names the file, not the text.
  const std::string secret = "s3cret-key-material-never-logged";
  TempFile key(secret + "\n");
  TempFile cert("not a certificate either\n");
  TlsSettings bad_pair;
  bad_pair.cert_file = cert.path();
  bad_pair.key_file = key.path();
  auto refused = TlsContext::Create(bad_pair);
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr(cert.path()));
  EXPECT_THAT(refused.error().message, Not(HasSubstr(secret)));

  // Without any file: the system's store, which always loads.
  EXPECT_TRUE(TlsContext::Create(TlsSettings{}));
}

}  // namespace
}  // namespace slotguard::cluster
