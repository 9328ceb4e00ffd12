#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "cluster/endpoint.h"

namespace slotguard::cluster {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ClusterParseEndpoint, Forms) {
  auto v4 = ParseEndpoint("127.0.0.1:6379");
  ASSERT_TRUE(v4) << v4.error().message;
  EXPECT_EQ(*v4, (Endpoint{"127.0.0.1", 6379}));
  EXPECT_EQ(v4->ToString(), "127.0.0.1:6379");

  auto name = ParseEndpoint("redis-0.redis.svc:7000");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->host, "redis-0.redis.svc");

  auto v6 = ParseEndpoint("[::1]:7000");
  ASSERT_TRUE(v6);
  EXPECT_EQ(*v6, (Endpoint{"::1", 7000}));
  EXPECT_EQ(v6->ToString(), "[::1]:7000");
  // ToString output parses back to the same endpoint.
  EXPECT_EQ(*ParseEndpoint(v6->ToString()), *v6);

  auto bare_v6 = ParseEndpoint("fe80::1:7001");  // as CLUSTER NODES writes it: last ':' is the port
  ASSERT_TRUE(bare_v6);
  EXPECT_EQ(*bare_v6, (Endpoint{"fe80::1", 7001}));
}

TEST(ClusterParseEndpoint, ErrorsQuoteTheInput) {
  for (std::string_view bad : {"", "localhost", ":6379", "host:", "host:0", "host:65536",
                               "host:12ab", "host:-1", "[::1]7000", "[::1", "[::1]:"}) {
    auto r = ParseEndpoint(bad);
    ASSERT_FALSE(r) << "accepted \"" << bad << "\"";
    EXPECT_THAT(r.error().message, HasSubstr("\"" + std::string(bad) + "\"")) << bad;
  }
}

TEST(ClusterParseSeedAddress, UrlForms) {
  auto plain = ParseSeedAddress("10.0.0.1:7000");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->endpoint, (Endpoint{"10.0.0.1", 7000}));
  EXPECT_FALSE(plain->user);

  auto url = ParseSeedAddress("redis://10.0.0.1:7000");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->endpoint, (Endpoint{"10.0.0.1", 7000}));
  EXPECT_FALSE(url->user);

  auto user = ParseSeedAddress("redis://exporter@[::1]:7000/");
  ASSERT_TRUE(user) << user.error().message;
  EXPECT_EQ(user->endpoint, (Endpoint{"::1", 7000}));
  EXPECT_EQ(user->user, "exporter");

  EXPECT_FALSE(ParseSeedAddress("redis://"));
  EXPECT_FALSE(ParseSeedAddress("redis://host"));
}

TEST(ClusterParseSeedAddress, PasswordInUrlRefusedWithoutEchoingIt) {
  auto r = ParseSeedAddress("redis://admin:hunter2-secret@10.0.0.1:7000");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("password"));
  EXPECT_THAT(r.error().message, Not(HasSubstr("hunter2-secret")));
  auto empty_user = ParseSeedAddress("redis://:hunter2-secret@10.0.0.1:7000");
  ASSERT_FALSE(empty_user);
  EXPECT_THAT(empty_user.error().message, Not(HasSubstr("hunter2-secret")));
}

TEST(ClusterEndpoint, OrderedForMaps) {
  std::map<Endpoint, int> m;
  m[{"127.0.0.1", 7001}] = 1;
  m[{"127.0.0.1", 7000}] = 2;
  m[{"127.0.0.1", 7000}] = 3;
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m.begin()->second, 3);
  EXPECT_LT((Endpoint{"a", 9}), (Endpoint{"b", 1}));
}

}  // namespace
}  // namespace slotguard::cluster
