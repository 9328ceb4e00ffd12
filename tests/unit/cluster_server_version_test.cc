// ServerVersion from the INFO output of every server users run (tests/data/<prefix>_info_*.txt,
// captured by scripts/capture-server-testdata.sh).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "cluster/server_version.h"
#include "tests/unit/test_data.h"

namespace slotguard::cluster {
namespace {

using ::slotguard::testing::ReadData;
using ::testing::HasSubstr;

ServerVersion MustParse(const std::string& text) {
  auto v = ParseServerVersion(text);
  EXPECT_TRUE(v) << v.error().message;
  return v ? *v : ServerVersion{};
}

struct Expected {
  const char* prefix;
  const char* name;
  const char* version;
  const char* redis_version;
  int rdb_version;
  bool latency_stats;
  const char* log_line;
};

// ctest names the parameterised tests after this.
void PrintTo(const Expected& e, std::ostream* os) { *os << e.prefix; }

class RealServers : public ::testing::TestWithParam<Expected> {};

TEST_P(RealServers, InfoServerAndInfoAllAgree) {
  const Expected& want = GetParam();
  for (const char* section : {"_info_server.txt", "_info_all.txt"}) {
    SCOPED_TRACE(std::string(want.prefix) + section);
    const std::string text = ReadData(std::string(want.prefix) + section);
    ASSERT_THAT(text, HasSubstr("\r\n"));  // captured raw, as the server writes it
    ServerVersion v = MustParse(text);
    EXPECT_EQ(v.name(), want.name);
    EXPECT_EQ(v.version(), want.version);
    EXPECT_EQ(v.redis_version(), want.redis_version);
    EXPECT_EQ(v.IsValkey(), std::string(want.name) == "valkey");
    EXPECT_EQ(v.RdbVersion(), want.rdb_version);
    EXPECT_EQ(v.HasLatencyStats(), want.latency_stats);
    EXPECT_EQ(v.HasClusterLinks(), want.latency_stats);  // both came with 7.0
    EXPECT_EQ(v.ToString(), want.log_line);
  }
}

// What each capability predicate promises is what the captured server output shows.
TEST_P(RealServers, PredicatesMatchWhatTheServerWrites) {
  const Expected& want = GetParam();
  const std::string all = ReadData(std::string(want.prefix) + "_info_all.txt");
  ServerVersion v = MustParse(all);
  EXPECT_EQ(v.HasLatencyStats(), all.find("latency_percentiles_usec_") != std::string::npos);
  const std::string cluster_info = ReadData(std::string(want.prefix) + "_cluster_info.txt");
  EXPECT_EQ(v.HasClusterLinks(),
            cluster_info.find("total_cluster_links_buffer_limit_exceeded") != std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Captured, RealServers,
    ::testing::Values(Expected{"redis62", "redis", "6.2.16", "6.2.16", 9, false, "redis 6.2.16"},
                      Expected{"redis70", "redis", "7.0.15", "7.0.15", 10, true, "redis 7.0.15"},
                      Expected{"redis72", "redis", "7.2.6", "7.2.6", 11, true, "redis 7.2.6"},
                      Expected{"valkey80", "valkey", "8.0.1", "7.2.4", 11, true,
                               "valkey 8.0.1 (redis_version 7.2.4)"}),
    [](const ::testing::TestParamInfo<Expected>& info) { return std::string(info.param.prefix); });

TEST(ClusterServerVersion, Numbers) {
  ServerVersion v = MustParse("# Server\r\nredis_version:6.2.16\r\n");
  EXPECT_EQ(v.number().major, 6);
  EXPECT_EQ(v.number().minor, 2);
  EXPECT_EQ(v.number().patch, 16);
  EXPECT_TRUE(v.number().AtLeast(6, 2));
  EXPECT_TRUE(v.number().AtLeast(6, 2, 16));
  EXPECT_FALSE(v.number().AtLeast(6, 2, 17));
  EXPECT_FALSE(v.number().AtLeast(7, 0));
  EXPECT_TRUE(v.number().AtLeast(5, 99));

  EXPECT_EQ(MustParse("redis_version:7.2\n").number().patch, 0);
  EXPECT_EQ(MustParse("redis_version:255.255.255\n").number().major, 255);  // unstable
  auto rc = MustParse("server_name:valkey\nredis_version:7.2.4\nvalkey_version:8.0.0-rc1\n");
  EXPECT_EQ(rc.version(), "8.0.0-rc1");
  EXPECT_EQ(rc.RdbVersion(), 11);
}

TEST(ClusterServerVersion, ValkeyIsToldByServerNameNotByRedisVersion) {
  // Valkey 7.2 (the first release) has no SETSLOT replication; its redis_version is 7.2.4 too.
  auto v72 = MustParse("server_name:valkey\r\nredis_version:7.2.4\r\nvalkey_version:7.2.7\r\n");
  EXPECT_TRUE(v72.IsValkey());
  EXPECT_TRUE(v72.HasLatencyStats());
  auto v81 = MustParse("server_name:valkey\r\nredis_version:7.2.4\r\nvalkey_version:8.1.0\r\n");
  EXPECT_EQ(v81.RdbVersion(), 11);
  EXPECT_EQ(MustParse("redis_version:7.4.1\r\n").RdbVersion(), 12);
  // server_name in any case; an empty one is Redis.
  EXPECT_EQ(MustParse("server_name:Valkey\nredis_version:7.2.4\nvalkey_version:8.0.1\n").name(),
            "valkey");
  EXPECT_EQ(MustParse("server_name:\nredis_version:7.0.15\n").name(), "redis");
  // Valkey without valkey_version: its own version is all it gave.
  auto bare = MustParse("server_name:valkey\nredis_version:7.2.4\n");
  EXPECT_EQ(bare.version(), "7.2.4");
  EXPECT_EQ(bare.ToString(), "valkey 7.2.4");
}

TEST(ClusterServerVersion, ErrorsSayWhatWasWrong) {
  auto none = ParseServerVersion("# Clients\r\nconnected_clients:1\r\n");
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message, HasSubstr("no redis_version"));
  for (const char* bad :
       {"redis_version:\n", "redis_version:seven\n", "redis_version:7\n", "redis_version:7..1\n",
        "redis_version:7.2.x\n", "redis_version:1.2.3.4\n", "redis_version:-7.2\n"}) {
    auto v = ParseServerVersion(bad);
    ASSERT_FALSE(v) << bad;
    EXPECT_THAT(v.error().message, HasSubstr("redis_version")) << bad;
  }
  auto bad_own = ParseServerVersion("server_name:valkey\nredis_version:7.2.4\nvalkey_version:x\n");
  ASSERT_FALSE(bad_own);
  EXPECT_THAT(bad_own.error().message, HasSubstr("valkey_version"));
  EXPECT_FALSE(ParseServerVersion(""));  // not INFO at all: ParseInfo's error
}

}  // namespace
}  // namespace slotguard::cluster
