#include "common/duration.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace slotguard::common {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

TEST(CommonDuration, EveryUnit) {
  EXPECT_EQ(*ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(*ParseDuration("60s"), milliseconds(60000));
  EXPECT_EQ(*ParseDuration("1.5s"), milliseconds(1500));
  EXPECT_EQ(*ParseDuration("2m"), milliseconds(120000));
  EXPECT_EQ(*ParseDuration("1h"), milliseconds(3600000));
  EXPECT_EQ(*ParseDuration("0s"), milliseconds(0));
}

TEST(CommonDuration, BareNumberIsRefused) {
  // Issue 13: `scrape.timeout: 5` was taken as seconds without a word.
  auto bare = ParseDuration("5");
  ASSERT_FALSE(bare);
  EXPECT_THAT(bare.error().message, HasSubstr("has no unit"));
  EXPECT_THAT(bare.error().message, HasSubstr("5s"));
}

TEST(CommonDuration, NonsenseIsRefused) {
  for (const char* bad : {"", "s", "ms", "abc", "-1s", "1d", "1e9s", "nan", "inf", "8 s", ".5s",
                          "1..5s", "1.2.3s", "5sec", "99999999999999999h"}) {
    EXPECT_FALSE(ParseDuration(bad)) << bad;
  }
  EXPECT_THAT(ParseDuration("1d").error().message, HasSubstr("ms, s, m, h"));
}

}  // namespace
}  // namespace slotguard::common
