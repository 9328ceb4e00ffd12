#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cluster/credentials.h"

namespace slotguard::cluster {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A file in a private temp dir, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char tmpl[] = "/tmp/slotguard-cred-test.XXXXXX";
    int fd = mkstemp(tmpl);
    path_ = tmpl;
    if (fd >= 0) close(fd);
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A variable name of this test only, unset at the end.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const char* value) : name_(std::move(name)) {
    if (value) {
      setenv(name_.c_str(), value, 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ~ScopedEnv() { unsetenv(name_.c_str()); }

 private:
  std::string name_;
};

constexpr const char* kVar = "SLOTGUARD_UNIT_TEST_REDIS_PASSWORD";

TEST(ClusterLoadCredentials, FromFileFirstLineOnly) {
  TempFile file("pa ss:word\nsecond line\n");
  auto c = LoadCredentials(std::nullopt, file.path(), kVar);
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->password, "pa ss:word");
  EXPECT_FALSE((*c)->user);
}

TEST(ClusterLoadCredentials, CrlfAndNoTrailingNewline) {
  TempFile crlf("winpass\r\n");
  EXPECT_EQ(LoadCredentials(std::nullopt, crlf.path(), kVar)->value().password, "winpass");
  TempFile bare("bare");
  EXPECT_EQ(LoadCredentials(std::nullopt, bare.path(), kVar)->value().password, "bare");
}

TEST(ClusterLoadCredentials, UserKept) {
  TempFile file("pw\n");
  auto c = LoadCredentials(std::string("exporter"), file.path(), kVar);
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)->user, "exporter");
  EXPECT_EQ((*c)->password, "pw");
}

TEST(ClusterLoadCredentials, FileWinsOverEnvironment) {
  ScopedEnv env(kVar, "from-env");
  TempFile file("from-file\n");
  EXPECT_EQ(LoadCredentials(std::nullopt, file.path(), kVar)->value().password, "from-file");
  EXPECT_EQ(LoadCredentials(std::nullopt, "", kVar)->value().password, "from-env");
}

TEST(ClusterLoadCredentials, NothingSetMeansNoAuth) {
  ScopedEnv env(kVar, nullptr);
  auto c = LoadCredentials(std::nullopt, "", kVar);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->has_value());
  ScopedEnv empty(kVar, "");
  auto e = LoadCredentials(std::nullopt, "", kVar);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->has_value());
}

TEST(ClusterLoadCredentials, ErrorsNameTheSourceNotTheSecret) {
  auto missing = LoadCredentials(std::nullopt, "/nonexistent/slotguard/pw", kVar);
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("/nonexistent/slotguard/pw"));

  TempFile empty_first("\nsecret-on-line-two\n");
  auto empty = LoadCredentials(std::nullopt, empty_first.path(), kVar);
  ASSERT_FALSE(empty);
  EXPECT_THAT(empty.error().message, HasSubstr(empty_first.path()));
  EXPECT_THAT(empty.error().message, Not(HasSubstr("secret-on-line-two")));

  ScopedEnv env(kVar, nullptr);
  auto user_only = LoadCredentials(std::string("exporter"), "", kVar);
  ASSERT_FALSE(user_only);
  EXPECT_THAT(user_only.error().message, HasSubstr("exporter"));
  EXPECT_THAT(user_only.error().message, HasSubstr(kVar));
}

}  // namespace
}  // namespace slotguard::cluster
