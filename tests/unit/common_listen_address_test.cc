#include "common/listen_address.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace slotguard::common {
namespace {

using ::testing::HasSubstr;

TEST(CommonListenAddress, TheThreeForms) {
  auto all = ParseListenAddress(":9478");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->host, "");
  EXPECT_EQ(all->port, 9478);
  EXPECT_EQ(all->ToString(), ":9478");
  auto one = ParseListenAddress("127.0.0.1:9601");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->host, "127.0.0.1");
  EXPECT_FALSE(one->ipv6);
  EXPECT_EQ(one->ToString(), "127.0.0.1:9601");
  auto v6 = ParseListenAddress("[::1]:9601");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(v6->ipv6);
  EXPECT_EQ(v6->ToString(), "[::1]:9601");
  EXPECT_EQ(ParseListenAddress("127.0.0.1:0")->port, 0);  // the kernel picks
}

TEST(CommonListenAddress, Refused) {
  EXPECT_THAT(ParseListenAddress("nowhere").error().message, HasSubstr("expected host:port"));
  EXPECT_THAT(ParseListenAddress("9478").error().message, HasSubstr("expected host:port"));
  EXPECT_THAT(ParseListenAddress("::1:9478").error().message, HasSubstr("in brackets"));
  EXPECT_THAT(ParseListenAddress("localhost:9478").error().message, HasSubstr("IP address"));
  EXPECT_THAT(ParseListenAddress("[nope]:9478").error().message, HasSubstr("not an IPv6"));
  for (const char* bad : {":70000", ":abc", ":", "[::1]", "[::1]9478", "1.2.3.4.5:1", ":-1"}) {
    EXPECT_FALSE(ParseListenAddress(bad)) << bad;
  }
}

}  // namespace
}  // namespace slotguard::common
