#include "common/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/file_lock.h"

namespace slotguard::common {
namespace {

class CommonFileIo : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/slotguard-file-io-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::string dir_;
};

TEST_F(CommonFileIo, AtomicRewriteReplacesAndLeavesNoTemporary) {
  const std::string path = dir_ + "/queue.json";
  ASSERT_TRUE(AtomicRewrite(path, "first\n"));
  ASSERT_TRUE(AtomicRewrite(path, "second\n", ".compact"));
  EXPECT_EQ(Read(path), "second\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_FALSE(std::filesystem::exists(path + ".compact"));
  auto failed = AtomicRewrite(dir_ + "/missing/dir/file", "x");
  ASSERT_FALSE(failed);
  EXPECT_THAT(failed.error().message, ::testing::HasSubstr("cannot write"));
}

TEST_F(CommonFileIo, WriteAllWritesEverything) {
  const std::string path = dir_ + "/big";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  const std::string data(1 << 20, 'x');
  EXPECT_TRUE(WriteAll(fd, data));
  ::close(fd);
  EXPECT_EQ(std::filesystem::file_size(path), data.size());
  EXPECT_FALSE(WriteAll(-1, "x"));
}

TEST_F(CommonFileIo, FileLockIsExclusiveUntilReleased) {
  const std::string path = dir_ + "/daemon.lock";
  auto first = FileLock::TryAcquire(path);
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->has_value());
  auto second = FileLock::TryAcquire(path);  // another descriptor: flock refuses it
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->has_value());
  FileLock moved = std::move(**first);
  first->reset();  // the moved-from lock releases nothing
  EXPECT_FALSE((*FileLock::TryAcquire(path)).has_value());
  { FileLock gone = std::move(moved); }
  EXPECT_TRUE((*FileLock::TryAcquire(path)).has_value());
  EXPECT_FALSE(FileLock::TryAcquire(dir_ + "/no/such/dir/lock"));
}

}  // namespace
}  // namespace slotguard::common
