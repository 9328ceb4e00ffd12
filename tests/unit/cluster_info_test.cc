#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include "cluster/info.h"
#include "tests/unit/test_data.h"

namespace slotguard::cluster {
namespace {

using ::slotguard::testing::ReadData;
using ::slotguard::testing::ReadEnv;

using ::testing::HasSubstr;

Info MustParse(std::string_view text) {
  auto info = ParseInfo(text);
  EXPECT_TRUE(info) << info.error().message;
  return info ? *info : Info{};
}

template <typename T, typename Pred>
const T* FindIf(const std::vector<T>& v, Pred pred) {
  auto it = std::find_if(v.begin(), v.end(), pred);
  return it == v.end() ? nullptr : &*it;
}

TEST(ClusterParseInfo, RealInfoAllHasSectionsAndFields) {
  const std::string text = ReadData("redis70_healthy_info_all.txt");
  ASSERT_THAT(text, HasSubstr("\r\n"));  // captured raw, as the server writes it
  Info info = MustParse(text);
  ASSERT_GT(info.fields().size(), 100u);
  EXPECT_THAT(*info.Get("redis_version"), ::testing::StartsWith("7.0"));
  EXPECT_EQ(info.Get("role"), "master");
  EXPECT_EQ(info.Get("cluster_enabled"), "1");
  ASSERT_TRUE(info.GetNumber("used_memory"));
  EXPECT_GT(*info.GetNumber("used_memory"), 0);
  EXPECT_FALSE(info.GetNumber("redis_mode"));  // "cluster" is not a number
  EXPECT_FALSE(info.Get("no_such_field"));

  auto field = [&](std::string_view key) {
    return FindIf(info.fields(), [&](const InfoField& f) { return f.key == key; });
  };
  ASSERT_NE(field("redis_version"), nullptr);
  EXPECT_EQ(field("redis_version")->section, "server");
  EXPECT_EQ(field("connected_clients")->section, "clients");
  EXPECT_EQ(field("cmdstat_migrate")->section, "commandstats");
  EXPECT_EQ(field("db0")->section, "keyspace");
  // Values keep everything after the first ':' (paths, IPv6 addresses would hold more).
  EXPECT_EQ(info.Get("executable").value_or("").front(), '/');
  for (const auto& f : info.fields()) {
    EXPECT_EQ(f.value.find('\r'), std::string::npos) << f.key;
    EXPECT_EQ(f.key.find(':'), std::string::npos) << f.key;
  }
}

TEST(ClusterParseInfo, RealClusterInfoHasNoSection) {
  Info info = MustParse(ReadData("redis70_healthy_cluster_info.txt"));
  EXPECT_EQ(info.Get("cluster_state"), "ok");
  EXPECT_EQ(info.GetNumber("cluster_slots_assigned"), 16384);
  EXPECT_EQ(info.GetNumber("cluster_known_nodes"), 6);
  EXPECT_EQ(info.GetNumber("cluster_size"), 3);
  ASSERT_TRUE(info.GetNumber("cluster_stats_messages_sent"));
  EXPECT_GT(*info.GetNumber("cluster_stats_messages_sent"), 0);
  EXPECT_TRUE(info.Get("total_cluster_links_buffer_limit_exceeded"));
  for (const auto& f : info.fields()) EXPECT_EQ(f.section, "") << f.key;
  // The field order is the server's.
  EXPECT_EQ(info.fields().front().key, "cluster_state");
}

TEST(ClusterParseInfo, FailedClusterInfo) {
  Info info = MustParse(ReadData("redis70_failed_cluster_info.txt"));
  EXPECT_EQ(info.Get("cluster_state"), "ok");  // a dead replica leaves the slots served
  EXPECT_EQ(info.GetNumber("cluster_known_nodes"), 6);
}

TEST(ClusterInfoNested, RealCommandStats) {
  auto stats = CommandStats(MustParse(ReadData("redis70_healthy_info_all.txt")));
  auto find = [&](std::string_view cmd) {
    return FindIf(stats, [&](const CommandStat& s) { return s.command == cmd; });
  };
  const CommandStat* migrate = find("migrate");
  ASSERT_NE(migrate, nullptr);
  EXPECT_EQ(migrate->calls, 1);
  EXPECT_EQ(migrate->failed_calls, 1);  // MIGRATE to a closed port
  EXPECT_EQ(migrate->rejected_calls, 0);
  const CommandStat* setslot = find("cluster|setslot");
  ASSERT_NE(setslot, nullptr);
  EXPECT_EQ(setslot->failed_calls, 1);
  const CommandStat* set = find("set");
  ASSERT_NE(set, nullptr);
  EXPECT_GT(set->calls, 0);
  EXPECT_GT(set->usec, 0);
  // An unknown command is rejected before it is a command: it has no cmdstat line.
  EXPECT_EQ(find("nosuchcommand"), nullptr);
}

TEST(ClusterInfoNested, RealErrorStats) {
  auto errors = ErrorStats(MustParse(ReadData("redis70_healthy_info_all.txt")));
  auto count = [&](std::string_view err) -> double {
    auto* e = FindIf(errors, [&](const ErrorStat& s) { return s.error == err; });
    return e == nullptr ? -1 : e->count;
  };
  EXPECT_EQ(count("IOERR"), 1);
  EXPECT_EQ(count("WRONGTYPE"), 1);
  EXPECT_EQ(count("CROSSSLOT"), 1);
  EXPECT_GE(count("ERR"), 2);
  EXPECT_GT(count("MOVED"), 0);
  EXPECT_EQ(count("ASK"), -1);
}

TEST(ClusterInfoNested, RealLatencyPercentiles) {
  auto lat = LatencyPercentiles(MustParse(ReadData("redis70_healthy_info_all.txt")));
  std::vector<std::string> get_quantiles;
  for (const auto& l : lat) {
    EXPECT_GE(l.usec, 0);
    if (l.command == "get") get_quantiles.push_back(l.quantile);
  }
  EXPECT_THAT(get_quantiles, ::testing::ElementsAre("p50", "p99", "p99.9"));
}

TEST(ClusterInfoNested, RealKeyspaceAndReplicas) {
  auto dbs = Keyspace(MustParse(ReadData("redis70_healthy_info_all.txt")));
  ASSERT_EQ(dbs.size(), 1u);
  EXPECT_EQ(dbs[0].db, 0);
  EXPECT_GT(dbs[0].keys, 0);

  Info repl = MustParse(ReadData("redis70_healthy_info_replication.txt"));
  auto replicas = Replicas(repl);
  ASSERT_EQ(replicas.size(), 1u);
  EXPECT_EQ(replicas[0].ip, "127.0.0.1");
  EXPECT_GT(replicas[0].port, 0);
  EXPECT_EQ(replicas[0].state, "online");
  EXPECT_GT(replicas[0].offset, 0);
  EXPECT_LE(replicas[0].offset, *repl.GetNumber("master_repl_offset"));
  // slave_repl_offset-like fields are not replica lines.
  EXPECT_TRUE(Replicas(MustParse("slave_read_only:1\nslave_priority:100\n")).empty());
}

TEST(ClusterInfoNested, SyntheticForms) {
  Info info = MustParse(
      "# Commandstats\r\n"
      "cmdstat_GET:calls=3,usec=20,usec_per_call=6.67\r\n"  // 6.0: no rejected/failed
      "cmdstat_cluster|setslot:calls=2,usec=4,usec_per_call=2.00,rejected_calls=1,failed_calls="
      "1\r\n"
      "cmdstat_broken:calls\r\n"
      "# Errorstats\r\n"
      "errorstat_ERR:count=7\r\n"
      "# Latencystats\r\n"
      "latency_percentiles_usec_get:p50=1.003,p99=2.007,p99.9=3.003\r\n"
      "# Keyspace\r\n"
      "db0:keys=1,expires=0,avg_ttl=0\r\n"
      "db12:keys=5,expires=2,avg_ttl=1234\r\n"
      "# Replication\r\n"
      "slave0:ip=::1,port=7003,state=online,offset=100,lag=0\r\n"
      "slave1:ip=10.0.0.2,port=7004,state=wait_bgsave,offset=0,lag=3\r\n");
  auto cmds = CommandStats(info);
  ASSERT_EQ(cmds.size(), 2u);  // the broken line is skipped, not fatal
  EXPECT_EQ(cmds[0].command, "get");
  EXPECT_EQ(cmds[0].calls, 3);
  EXPECT_EQ(cmds[0].failed_calls, 0);
  EXPECT_EQ(cmds[1].command, "cluster|setslot");
  EXPECT_EQ(cmds[1].rejected_calls, 1);
  auto errs = ErrorStats(info);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].error, "ERR");
  EXPECT_EQ(errs[0].count, 7);
  auto lat = LatencyPercentiles(info);
  ASSERT_EQ(lat.size(), 3u);
  EXPECT_EQ(lat[2].quantile, "p99.9");
  EXPECT_DOUBLE_EQ(lat[2].usec, 3.003);
  auto dbs = Keyspace(info);
  ASSERT_EQ(dbs.size(), 2u);
  EXPECT_EQ(dbs[1].db, 12);
  EXPECT_EQ(dbs[1].expires, 2);
  EXPECT_EQ(dbs[1].avg_ttl, 1234);
  auto reps = Replicas(info);
  ASSERT_EQ(reps.size(), 2u);
  EXPECT_EQ(reps[0].ip, "::1");
  EXPECT_EQ(reps[1].state, "wait_bgsave");
  EXPECT_EQ(reps[1].lag, 3);
}

TEST(ClusterParseInfo, SplitsAtFirstColonAndLowercasesSections) {
  Info info = MustParse("# CPU Stuff\nurl:redis://h:1/x\nempty:\n");
  ASSERT_EQ(info.fields().size(), 2u);
  EXPECT_EQ(info.fields()[0].section, "cpu stuff");
  EXPECT_EQ(info.Get("url"), "redis://h:1/x");
  EXPECT_EQ(info.Get("empty"), "");
}

TEST(ClusterParseInfo, HeaderOnlyIsValidAndEmpty) {
  // INFO keyspace on an empty server.
  auto info = ParseInfo("# Keyspace\r\n");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_TRUE(info->fields().empty());
}

TEST(ClusterParseInfo, NumbersAreStrict) {
  Info info = MustParse("a:12\nb:-1.5\nc:12abc\nd:inf\ne:nan\nf:\ng:1e3\n");
  EXPECT_EQ(info.GetNumber("a"), 12);
  EXPECT_EQ(info.GetNumber("b"), -1.5);
  EXPECT_FALSE(info.GetNumber("c"));
  EXPECT_FALSE(info.GetNumber("d"));
  EXPECT_FALSE(info.GetNumber("e"));
  EXPECT_FALSE(info.GetNumber("f"));
  EXPECT_EQ(info.GetNumber("g"), 1000);
}

TEST(ClusterParseInfo, ErrorsNameTheLine) {
  for (std::string_view empty : {"", "\r\n", "\n\n\n", "   \r\n"}) {
    auto r = ParseInfo(empty);
    ASSERT_FALSE(r) << "accepted " << ::testing::PrintToString(std::string(empty));
    EXPECT_THAT(r.error().message, HasSubstr("empty"));
  }
  auto no_colon = ParseInfo("# Server\r\nredis_version:7.0\r\nthis is not info\r\n");
  ASSERT_FALSE(no_colon);
  EXPECT_THAT(no_colon.error().message, HasSubstr("line 3"));
  EXPECT_THAT(no_colon.error().message, HasSubstr("this is not info"));

  auto nul = ParseInfo(std::string("a:1\nb:x\0y\n", 10));
  ASSERT_FALSE(nul);
  EXPECT_THAT(nul.error().message, HasSubstr("line 2"));
  EXPECT_THAT(nul.error().message, HasSubstr("0x00"));

  auto empty_key = ParseInfo("a:1\n:2\n");
  ASSERT_FALSE(empty_key);
  EXPECT_THAT(empty_key.error().message, HasSubstr("line 2"));

  auto long_line = ParseInfo("a:1\nb:" + std::string(70 * 1024, 'x') + "\n");
  ASSERT_FALSE(long_line);
  EXPECT_THAT(long_line.error().message, HasSubstr("line 2"));
  EXPECT_THAT(long_line.error().message, HasSubstr("64 KiB"));
}

TEST(ClusterParseInfo, TruncatedAtEveryByteNeverCrashes) {
  const std::string text = ReadData("redis70_healthy_info_all.txt");
  ASSERT_FALSE(text.empty());
  const Info full = MustParse(text);
  for (size_t n = 0; n <= text.size(); ++n) {
    auto r = ParseInfo(std::string_view(text).substr(0, n));
    if (!r) {
      EXPECT_FALSE(r.error().message.empty());
      continue;
    }
    // Whatever was parsed is a prefix of the full parse.
    ASSERT_LE(r->fields().size(), full.fields().size());
    for (size_t i = 0; i + 1 < r->fields().size(); ++i) {
      EXPECT_EQ(r->fields()[i].key, full.fields()[i].key);
      EXPECT_EQ(r->fields()[i].value, full.fields()[i].value);
    }
  }
  // Cut inside a key ("redis_ver"): not INFO any more.
  size_t at = text.find("redis_version") + 9;
  EXPECT_FALSE(ParseInfo(std::string_view(text).substr(0, at)));
}

TEST(ClusterParseInfo, RandomGarbageNeverCrashes) {
  std::mt19937 rng(12345);
  int accepted = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 512, '\0');
    for (auto& c : junk) c = static_cast<char>(rng() % 256);
    auto r = ParseInfo(junk);
    if (r) {
      ++accepted;
    } else {
      EXPECT_FALSE(r.error().message.empty());
    }
  }
  EXPECT_LT(accepted, 10);  // random bytes are almost never INFO
  // Printable garbage without separators is refused too.
  EXPECT_FALSE(ParseInfo("lorem ipsum dolor sit amet\r\nconsectetur"));
}

TEST(ClusterParseInfo, HugeInputs) {
  std::string many;
  many.reserve(11 << 20);
  int lines = 0;
  while (many.size() < (10u << 20)) {
    many += "key_" + std::to_string(lines) + ":value_" + std::to_string(lines) + "\r\n";
    ++lines;
  }
  auto r = ParseInfo(many);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->fields().size(), static_cast<size_t>(lines));
  EXPECT_EQ(r->Get("key_" + std::to_string(lines - 1)), "value_" + std::to_string(lines - 1));

  auto one_line = ParseInfo("k:" + std::string(10 << 20, 'v'));
  ASSERT_FALSE(one_line);
  EXPECT_THAT(one_line.error().message, HasSubstr("line 1"));

  std::string binary(10 << 20, '\x01');
  EXPECT_FALSE(ParseInfo(binary));
}

TEST(ClusterParseNestedValue, PairsAndErrors) {
  auto pairs = ParseNestedValue("calls=3,usec=20,usec_per_call=6.67");
  ASSERT_TRUE(pairs);
  ASSERT_EQ(pairs->size(), 3u);
  EXPECT_EQ((*pairs)[2], (std::pair<std::string, std::string>{"usec_per_call", "6.67"}));
  auto eq_in_value = ParseNestedValue("a=b=c");
  ASSERT_TRUE(eq_in_value);
  EXPECT_EQ((*eq_in_value)[0].second, "b=c");
  EXPECT_FALSE(ParseNestedValue(""));
  EXPECT_FALSE(ParseNestedValue("calls"));
  EXPECT_FALSE(ParseNestedValue("a=1,,b=2"));
  EXPECT_FALSE(ParseNestedValue("=1"));
  EXPECT_FALSE(ParseNestedValue("a=1,"));
}

}  // namespace
}  // namespace slotguard::cluster
