// The metric families built from captured server output (tests/data/exporter_*.txt): redis-server
// 7.0 in detail, then every server users run (Redis 6.2, 7.0, 7.2, Valkey 8).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "exporter/collectors.h"
#include "exporter/version.h"
#include "tests/unit/exporter_fixtures.h"
#include "tests/unit/test_data.h"

namespace slotguard::exporter {
namespace {

using testing::CapturedResult;
using testing::CapturedScrape;
using testing::LoadCapture;

constexpr const char* kHealthy = "exporter_healthy.txt";
constexpr const char* kOpenSlot = "exporter_open_slot.txt";
constexpr const char* kFailedReplica = "exporter_failed_replica.txt";

// The text exposition, read back: series ("name{labels}" exactly as written) -> value, and
// each family's TYPE and HELP.
struct Exposition {
  std::map<std::string, double> series;
  std::map<std::string, std::string> type;
  std::map<std::string, std::string> help;
  std::vector<std::string> type_order;

  bool Has(const std::string& s) const { return series.count(s) != 0; }
  double At(const std::string& s) const {
    auto it = series.find(s);
    if (it == series.end()) ADD_FAILURE() << "no series " << s;
    return it == series.end() ? -1 : it->second;
  }
  int Count(const std::string& prefix) const {
    int n = 0;
    for (const auto& [k, v] : series) n += k.rfind(prefix, 0) == 0;
    return n;
  }
};

Exposition Parse(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream f(line.substr(7));
      std::string name, type;
      f >> name >> type;
      EXPECT_EQ(e.type.count(name), 0u) << "family twice: " << name;
      e.type[name] = type;
      e.type_order.push_back(name);
    } else if (line.rfind("# HELP ", 0) == 0) {
      auto rest = line.substr(7);
      auto space = rest.find(' ');
      e.help[rest.substr(0, space)] = space == std::string::npos ? "" : rest.substr(space + 1);
    } else if (!line.empty()) {
      auto space = line.rfind(' ');
      const std::string key = line.substr(0, space);
      EXPECT_EQ(e.series.count(key), 0u) << "series twice: " << key;
      e.series[key] = std::stod(line.substr(space + 1));
    }
  }
  return e;
}

Exposition Render(const ScrapeResult& scrape) { return Parse(RenderMetrics(scrape)); }

std::string Node(int port) { return "node=\"127.0.0.1:" + std::to_string(port) + "\""; }

// Found with tests/fuzz/exporter_scrape_fuzz under UBSan: "calls=1e300" in a node's
// commandstats went through an unchecked cast into the latency summary's _count.
TEST(ExporterCollectors, HostileCallCountsAreClampedNotCast) {
  auto nodes = testing::LoadCapture(kHealthy);
  std::vector<NodeResult> results;
  for (auto [addr, node] : nodes) {
    for (const char* calls : {"calls=1e300", "calls=-5"}) {
      auto at = node.info.find("cmdstat_info:calls=");
      ASSERT_NE(at, std::string::npos);
      node.info.replace(at + 13, node.info.find(',', at) - at - 13, calls);
      const std::string text = RenderMetrics(AssembleScrape({testing::CapturedResult(addr, node)}));
      EXPECT_NE(text.find("redis_latency_percentiles_usec_count{"), std::string::npos);
    }
    break;
  }
}

TEST(ExporterCollectors, HealthyClusterAllNodesUpAndCovered) {
  auto e = Render(CapturedScrape(kHealthy));
  for (int port = 23100; port <= 23105; ++port) {
    EXPECT_EQ(e.At("redis_up{" + Node(port) + "}"), 1) << port;
    EXPECT_EQ(e.At("redis_cluster_state{" + Node(port) + "}"), 1) << port;
  }
  EXPECT_EQ(e.At("slotguard_exporter_discovery_ok"), 1);
  EXPECT_EQ(e.At("slotguard_exporter_nodes"), 6);
  EXPECT_EQ(e.At("redis_cluster_slots_covered"), 16384);
  EXPECT_EQ(e.At("redis_cluster_slots_uncovered"), 0);
  EXPECT_EQ(e.At("redis_cluster_slots_disputed"), 0);
  EXPECT_EQ(e.At("redis_cluster_config_consistent"), 1);
  EXPECT_EQ(e.At("redis_cluster_config_epoch_collisions"), 0);
  EXPECT_EQ(e.At("redis_cluster_nodes_failing"), 0);
  EXPECT_EQ(e.At("redis_cluster_slots_open{state=\"migrating\"}"), 0);
  EXPECT_EQ(e.At("redis_cluster_slots_open{state=\"importing\"}"), 0);
  EXPECT_EQ(e.Count("redis_cluster_open_slot_keys"), 0);
}

TEST(ExporterCollectors, BuildInfoIsOneWithVersionRevisionAndCompiler) {
  auto e = Render(CapturedScrape(kHealthy));
  const BuildInfo& b = GetBuildInfo();
  EXPECT_EQ(b.version, SLOTGUARD_VERSION);
  // The revision is the configure-time git revision (12 hex digits), "unknown" without git.
  EXPECT_TRUE(std::regex_match(b.revision, std::regex("[0-9a-f]{12}|unknown"))) << b.revision;
  EXPECT_TRUE(std::regex_match(b.compiler, std::regex("(GNU|Clang|AppleClang) [0-9.]+")))
      << b.compiler;
  EXPECT_EQ(e.type.at("slotguard_exporter_build_info"), "gauge");
  EXPECT_EQ(e.Count("slotguard_exporter_build_info"), 1);
  EXPECT_EQ(e.At("slotguard_exporter_build_info{version=\"" + b.version + "\",revision=\"" +
                 b.revision + "\",compiler=\"" + b.compiler + "\"}"),
            1);
}

TEST(ExporterCollectors, NodeInfoRolesSlotsEpochsFromAllViews) {
  auto e = Render(CapturedScrape(kHealthy));
  const std::string m0 = "3ddad39989712a19a34eace447518ddd01d8e600";
  const std::string m1 = "f6883052c63b5b2af9f5cac95a33331e377dd245";
  EXPECT_EQ(e.At("redis_cluster_node_info{" + Node(23100) + ",node_id=\"" + m0 +
                 "\",role=\"master\",master_id=\"\"}"),
            1);
  EXPECT_EQ(e.At("redis_cluster_node_info{" + Node(23103) +
                 ",node_id=\"cea9243cb0954e7dd60d1c5554f0d8c37637b1c5\",role=\"replica\","
                 "master_id=\"" +
                 m1 + "\"}"),
            1);
  EXPECT_EQ(e.Count("redis_cluster_node_info{"), 6);
  EXPECT_EQ(e.At("redis_cluster_node_slots{" + Node(23100) + "}"), 5461);
  EXPECT_EQ(e.At("redis_cluster_node_slots{" + Node(23101) + "}"), 5462);
  EXPECT_EQ(e.At("redis_cluster_node_slots{" + Node(23103) + "}"), 0);
  EXPECT_EQ(e.At("redis_cluster_node_config_epoch{" + Node(23101) + "}"), 2);
  EXPECT_EQ(e.At("redis_cluster_node_config_epoch{" + Node(23103) + "}"), 2);  // its master's
  EXPECT_EQ(e.At("redis_cluster_node_flag{" + Node(23100) + ",flag=\"master\"}"), 1);
  EXPECT_EQ(e.At("redis_cluster_node_flag{" + Node(23100) + ",flag=\"replica\"}"), 0);
  EXPECT_EQ(e.At("redis_cluster_node_flag{" + Node(23104) + ",flag=\"replica\"}"), 1);
  EXPECT_EQ(e.At("redis_cluster_node_flag{" + Node(23104) + ",flag=\"fail\"}"), 0);
  EXPECT_EQ(e.Count("redis_cluster_node_flag{"), 6 * 7);
  EXPECT_EQ(e.At("redis_cluster_node_link_up{" + Node(23105) + "}"), 1);
}

TEST(ExporterCollectors, ClusterInfoFieldsCountersAndGauges) {
  auto e = Render(CapturedScrape(kHealthy));
  // redis_exporter's names and types (tests/integration/test_redis_exporter_names.py).
  EXPECT_EQ(e.type.at("redis_cluster_messages_sent_total"), "counter");
  EXPECT_EQ(e.type.at("redis_cluster_messages_received_total"), "counter");
  EXPECT_EQ(e.type.at("redis_cluster_stats_messages_ping_sent"), "gauge");
  EXPECT_EQ(e.type.at("redis_cluster_stats_messages_pong_received"), "gauge");
  EXPECT_EQ(e.type.count("redis_cluster_stats_messages_sent_total"), 0u);
  EXPECT_EQ(e.type.count("redis_cluster_stats_messages_ping_sent_total"), 0u);
  EXPECT_EQ(e.type.at("redis_cluster_total_cluster_links_buffer_limit_exceeded_total"), "counter");
  for (const char* gauge :
       {"redis_cluster_slots_assigned", "redis_cluster_slots_ok", "redis_cluster_slots_pfail",
        "redis_cluster_slots_fail", "redis_cluster_known_nodes", "redis_cluster_size",
        "redis_cluster_current_epoch", "redis_cluster_my_epoch", "redis_cluster_state"}) {
    EXPECT_EQ(e.type.at(gauge), "gauge") << gauge;
  }
  EXPECT_EQ(e.At("redis_cluster_known_nodes{" + Node(23102) + "}"), 6);
  EXPECT_EQ(e.At("redis_cluster_size{" + Node(23102) + "}"), 3);
  EXPECT_GT(e.At("redis_cluster_messages_sent_total{" + Node(23100) + "}"), 0);
}

TEST(ExporterCollectors, UnknownClusterInfoFieldsAreExportedNotDropped) {
  auto capture = LoadCapture(kHealthy);
  auto& node = capture.at("127.0.0.1:23100");
  node.cluster_info +=
      "cluster_future_gauge:7\ncluster_stats_messages_gossip_sent:9\ntotal_future_things:3\n"
      "cluster_words:not-a-number\n";
  auto scrape = AssembleScrape({CapturedResult("127.0.0.1:23100", node)});
  auto e = Render(scrape);
  EXPECT_EQ(e.At("redis_cluster_future_gauge{" + Node(23100) + "}"), 7);
  EXPECT_EQ(e.type.at("redis_cluster_future_gauge"), "gauge");
  EXPECT_EQ(e.At("redis_cluster_stats_messages_gossip_sent{" + Node(23100) + "}"), 9);
  EXPECT_EQ(e.type.at("redis_cluster_stats_messages_gossip_sent"), "gauge");
  EXPECT_EQ(e.At("redis_cluster_total_future_things_total{" + Node(23100) + "}"), 3);
  EXPECT_EQ(e.type.at("redis_cluster_total_future_things_total"), "counter");
  EXPECT_EQ(e.Count("redis_cluster_words"), 0);
}

TEST(ExporterCollectors, InfoCommandstatsErrorstatsKeysAndReplication) {
  auto e = Render(CapturedScrape(kHealthy));
  const std::string set = Node(23100) + ",cmd=\"set\"";
  EXPECT_EQ(e.At("redis_commands_total{" + set + "}"), 1133);
  EXPECT_EQ(e.At("redis_commands_rejected_calls_total{" + set + "}"), 912);
  EXPECT_EQ(e.At("redis_commands_failed_calls_total{" + set + "}"), 0);
  EXPECT_DOUBLE_EQ(e.At("redis_commands_duration_seconds_total{" + set + "}"), 0.002426);
  EXPECT_EQ(e.At("redis_errors_total{" + Node(23100) + ",err=\"MOVED\"}"), 913);
  EXPECT_EQ(e.At("redis_errors_total{" + Node(23100) + ",err=\"WRONGTYPE\"}"), 1);
  EXPECT_TRUE(e.Has("redis_commands_total{" + Node(23100) + ",cmd=\"cluster|nodes\"}"));
  EXPECT_EQ(e.At("redis_db_keys{" + Node(23100) + ",db=\"db0\"}"), 1033);
  EXPECT_EQ(e.At("redis_db_keys_expiring{" + Node(23100) + ",db=\"db0\"}"), 1);
  EXPECT_EQ(e.At("redis_master_repl_offset{" + Node(23100) + "}"), 41966);
  EXPECT_EQ(e.At("redis_connected_slaves{" + Node(23100) + "}"), 1);
  // master_repl_offset 41966 minus the replica's acknowledged 41125.
  EXPECT_EQ(e.At("redis_replica_lag_bytes{" + Node(23100) + ",replica=\"127.0.0.1:23105\"}"), 841);
  EXPECT_EQ(e.Count("redis_replica_lag_bytes{" + Node(23103)), 0);  // a replica has none
  EXPECT_EQ(e.At("redis_instance_info{" + Node(23103) +
                 ",role=\"replica\",redis_version=\"7.0.15\",server_name=\"redis\","
                 "server_version=\"7.0.15\"}"),
            1);
  EXPECT_GT(e.At("redis_memory_used_bytes{" + Node(23100) + "}"), 1e6);
  EXPECT_EQ(e.At("redis_memory_max_bytes{" + Node(23100) + "}"), 0);
  EXPECT_TRUE(e.Has("redis_connected_clients{" + Node(23100) + "}"));
  EXPECT_TRUE(e.Has("redis_blocked_clients{" + Node(23100) + "}"));
  EXPECT_TRUE(e.Has("redis_uptime_in_seconds{" + Node(23100) + "}"));
  for (const auto& [name, type] : e.type) {
    const bool total = name.size() > 6 && name.substr(name.size() - 6) == "_total";
    EXPECT_EQ(type == "counter", total) << name << " is a " << type;
    EXPECT_FALSE(e.help.at(name).empty()) << name;
  }
}

TEST(ExporterCollectors, LatencyPercentilesAreASummaryWithQuantileLabels) {
  auto e = Render(CapturedScrape(kHealthy));
  EXPECT_EQ(e.type.at("redis_latency_percentiles_usec"), "summary");
  const std::string set = Node(23100) + ",cmd=\"set\"";
  EXPECT_TRUE(e.Has("redis_latency_percentiles_usec{" + set + ",quantile=\"0.5\"}"));
  EXPECT_TRUE(e.Has("redis_latency_percentiles_usec{" + set + ",quantile=\"0.99\"}"));
  EXPECT_TRUE(e.Has("redis_latency_percentiles_usec{" + set + ",quantile=\"0.999\"}"));
  EXPECT_EQ(e.At("redis_latency_percentiles_usec_count{" + set + "}"), 1133);
  EXPECT_EQ(e.At("redis_latency_percentiles_usec_sum{" + set + "}"), 2426);
}

TEST(ExporterCollectors, OpenSlotsBothDirectionsWithKeyCounts) {
  auto scrape = CapturedScrape(kOpenSlot);
  // Key counts come from CLUSTER COUNTKEYSINSLOT on the node with the slot open.
  for (auto& node : scrape.nodes) {
    if (node.label == "127.0.0.1:23100") {
      node.open_slot_keys = {{3300, cluster::OpenDirection::kMigrating, 26},
                             {7365, cluster::OpenDirection::kImporting, 0}};
    } else if (node.label == "127.0.0.1:23101") {
      node.open_slot_keys = {{3300, cluster::OpenDirection::kImporting, 0},
                             {7365, cluster::OpenDirection::kMigrating, 0}};
    }
  }
  auto e = Render(scrape);
  EXPECT_EQ(e.At("redis_cluster_slots_open{state=\"migrating\"}"), 2);
  EXPECT_EQ(e.At("redis_cluster_slots_open{state=\"importing\"}"), 2);
  EXPECT_EQ(
      e.At("redis_cluster_open_slot_keys{slot=\"3300\",state=\"migrating\"," + Node(23100) + "}"),
      26);
  EXPECT_EQ(
      e.At("redis_cluster_open_slot_keys{slot=\"3300\",state=\"importing\"," + Node(23101) + "}"),
      0);
  EXPECT_TRUE(
      e.Has("redis_cluster_open_slot_keys{slot=\"7365\",state=\"migrating\"," + Node(23101) + "}"));
  EXPECT_EQ(e.Count("redis_cluster_open_slot_keys"), 4);
  // redis-cli --cluster check on this state: "[OK] All nodes agree about slots configuration",
  // "[WARNING] ... open", "[OK] All 16384 slots covered".
  EXPECT_EQ(e.At("redis_cluster_config_consistent"), 1);
  EXPECT_EQ(e.At("redis_cluster_slots_covered"), 16384);
}

TEST(ExporterCollectors, StrayKeysPerMasterOnlyWhenCounted) {
  auto scrape = CapturedScrape(kHealthy);
  EXPECT_EQ(Render(scrape).Count("redis_cluster_stray_keys"), 0);  // not asked for: absent
  for (auto& node : scrape.nodes) {
    if (node.label == "127.0.0.1:23100") node.stray_keys = 0;
    if (node.label == "127.0.0.1:23101") node.stray_keys = 12;
    // 23102's count failed: no series rather than a false 0.
  }
  auto e = Render(scrape);
  EXPECT_EQ(e.type.at("redis_cluster_stray_keys"), "gauge");
  EXPECT_EQ(e.At("redis_cluster_stray_keys{" + Node(23100) + "}"), 0);
  EXPECT_EQ(e.At("redis_cluster_stray_keys{" + Node(23101) + "}"), 12);
  EXPECT_EQ(e.Count("redis_cluster_stray_keys"), 2);
}

TEST(ExporterCollectors, FailedReplicaIsDownFlaggedAndStillListed) {
  auto e = Render(CapturedScrape(kFailedReplica, {"127.0.0.1:23105"}));
  EXPECT_EQ(e.At("redis_up{" + Node(23105) + "}"), 0);
  EXPECT_EQ(e.At("redis_up{" + Node(23100) + "}"), 1);
  EXPECT_EQ(e.At("redis_cluster_node_flag{" + Node(23105) + ",flag=\"fail\"}"), 1);
  EXPECT_EQ(e.At("redis_cluster_node_flag{" + Node(23105) + ",flag=\"replica\"}"), 1);
  EXPECT_EQ(e.At("redis_cluster_node_link_up{" + Node(23105) + "}"), 0);
  EXPECT_EQ(e.At("redis_cluster_nodes_failing"), 1);
  EXPECT_EQ(e.Count("redis_cluster_node_info{" + Node(23105)), 1);
  EXPECT_EQ(e.At("redis_cluster_slots_covered"), 16384);
  // A node that did not answer has no per-node INFO series at all (not zeros).
  EXPECT_EQ(e.Count("redis_memory_used_bytes{" + Node(23105)), 0);
  EXPECT_EQ(e.Count("redis_cluster_state{" + Node(23105)), 0);
}

TEST(ExporterCollectors, DownMasterKeepsTheSlotsAllViewsGiveIt) {
  auto e = Render(CapturedScrape(kHealthy, {"127.0.0.1:23100"}));
  EXPECT_EQ(e.At("redis_up{" + Node(23100) + "}"), 0);
  EXPECT_EQ(e.At("redis_cluster_node_slots{" + Node(23100) + "}"), 5461);
  EXPECT_EQ(e.At("redis_cluster_node_config_epoch{" + Node(23100) + "}"), 1);
  EXPECT_EQ(e.At("redis_cluster_slots_covered"), 16384);
}

TEST(ExporterCollectors, DisagreeingViewIsDisputedAndInconsistent) {
  auto capture = LoadCapture(kHealthy);
  auto& nodes = capture.at("127.0.0.1:23102").cluster_nodes;
  auto at = nodes.find(" 0-5460");
  ASSERT_NE(at, std::string::npos);
  nodes.replace(at, 7, " 0-5459");  // 23102 thinks slot 5460 has no owner
  std::vector<NodeResult> results;
  for (const auto& [addr, node] : capture) results.push_back(CapturedResult(addr, node));
  auto e = Render(AssembleScrape(std::move(results)));
  EXPECT_EQ(e.At("redis_cluster_slots_disputed"), 1);
  EXPECT_EQ(e.At("redis_cluster_slots_covered"), 16383);
  EXPECT_EQ(e.At("redis_cluster_config_consistent"), 0);
}

TEST(ExporterCollectors, NodeResetOutOfTheClusterDoesNotPolluteTheJudgement) {
  auto capture = LoadCapture(kHealthy);
  std::vector<NodeResult> results;
  for (const auto& [addr, node] : capture) results.push_back(CapturedResult(addr, node));
  // A node removed with del-node: nobody lists it, it lists only itself.
  testing::CapturedNode reset = capture.at("127.0.0.1:23100");
  reset.cluster_nodes =
      "1111111111111111111111111111111111111111 127.0.0.1:23999@33999 myself,master - 0 0 0 "
      "connected\n";
  results.push_back(CapturedResult("127.0.0.1:23999", reset));
  auto e = Render(AssembleScrape(std::move(results)));
  EXPECT_EQ(e.At("redis_cluster_slots_covered"), 16384);
  EXPECT_EQ(e.At("redis_cluster_config_consistent"), 1);
  EXPECT_EQ(e.Count("redis_cluster_node_info{node=\"127.0.0.1:23999\""), 0);
}

TEST(ExporterCollectors, NoNodeAnsweringGivesNoClusterWideSeries) {
  NodeResult down;
  down.endpoint = {"127.0.0.1", 1};
  down.label = "127.0.0.1:1";
  down.error = "connection refused";
  auto e = Render(AssembleScrape({down}));
  EXPECT_EQ(e.At("redis_up{node=\"127.0.0.1:1\"}"), 0);
  EXPECT_EQ(e.At("slotguard_exporter_discovery_ok"), 0);
  EXPECT_EQ(e.Count("redis_cluster_slots_covered"), 0);
  EXPECT_EQ(e.Count("redis_cluster_node_info"), 0);
}

TEST(ExporterCollectors, FamiliesComeOutOncePerName) {
  auto families = BuildMetricFamilies(CapturedScrape(kOpenSlot));
  std::set<std::string> names;
  for (const auto& f : families) {
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_FALSE(f.metric.empty()) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
  }
  EXPECT_TRUE(names.count("redis_up"));
  EXPECT_TRUE(names.count("slotguard_exporter_scrape_duration_seconds"));
}

// --- Every server users run, from scripts/capture-server-testdata.sh: a 3+3 cluster with one
// slot migrating from one master to another (tests/data/exporter_<prefix>.txt, <prefix>.env).

struct ServerCapture {
  const char* prefix;
  const char* server_name;
  const char* server_version;
  const char* redis_version;
  bool latency_stats;  // INFO latencystats (7.0+)
  bool links_field;    // CLUSTER INFO total_cluster_links_buffer_limit_exceeded (7.0+)
  bool subcommands;    // commandstats per subcommand ("cluster|setslot", 7.0+) or one "cluster"
};

void PrintTo(const ServerCapture& c, std::ostream* os) { *os << c.prefix; }

class EveryServer : public ::testing::TestWithParam<ServerCapture> {
 protected:
  std::string capture() const { return std::string("exporter_") + GetParam().prefix + ".txt"; }
  std::map<std::string, std::string> env() const {
    return ::slotguard::testing::ReadEnv(std::string(GetParam().prefix) + ".env");
  }
  std::vector<std::string> Ports(const std::string& key) const {
    std::istringstream in(env().at(key));
    std::vector<std::string> out;
    for (std::string p; in >> p;) out.push_back("127.0.0.1:" + p);
    return out;
  }
};

TEST_P(EveryServer, EveryNodeUpWithoutErrorAndLabelledWithItsServer) {
  const ServerCapture& want = GetParam();
  auto scrape = CapturedScrape(capture());
  ASSERT_EQ(scrape.nodes.size(), 6u);
  for (const auto& n : scrape.nodes) {
    EXPECT_TRUE(n.up) << n.label << ": " << n.error;
    EXPECT_EQ(n.error, "") << n.label;
    ASSERT_TRUE(n.server) << n.label;
    EXPECT_EQ(n.server->name(), want.server_name);
  }
  auto e = Render(scrape);
  const auto masters = Ports("masters");
  const auto replicas = Ports("replicas");
  const std::string versions = std::string(",redis_version=\"") + want.redis_version +
                               "\",server_name=\"" + want.server_name + "\",server_version=\"" +
                               want.server_version + "\"}";
  for (const auto& m : masters) {
    EXPECT_EQ(e.At("redis_instance_info{node=\"" + m + "\",role=\"master\"" + versions), 1);
  }
  for (const auto& r : replicas) {
    EXPECT_EQ(e.At("redis_instance_info{node=\"" + r + "\",role=\"replica\"" + versions), 1);
  }
  EXPECT_EQ(e.Count("redis_instance_info{"), 6);
  EXPECT_EQ(e.At("slotguard_exporter_discovery_ok"), 1);
  EXPECT_EQ(e.At("redis_cluster_slots_covered"), 16384);
  EXPECT_EQ(e.At("redis_cluster_config_consistent"), 1);
}

TEST_P(EveryServer, WhatTheServerLacksIsAbsentNotZero) {
  const ServerCapture& want = GetParam();
  auto e = Render(CapturedScrape(capture()));
  // Present on every server.
  for (const char* family : {"redis_up",
                             "redis_cluster_state",
                             "redis_cluster_known_nodes",
                             "redis_cluster_size",
                             "redis_cluster_current_epoch",
                             "redis_cluster_messages_sent_total",
                             "redis_cluster_node_info",
                             "redis_cluster_node_slots",
                             "redis_commands_total",
                             "redis_commands_duration_seconds_total",
                             "redis_commands_failed_calls_total",
                             "redis_commands_rejected_calls_total",
                             "redis_errors_total",
                             "redis_memory_used_bytes",
                             "redis_connected_clients",
                             "redis_db_keys",
                             "redis_master_repl_offset",
                             "redis_connected_slaves",
                             "redis_replica_lag_bytes",
                             "redis_uptime_in_seconds",
                             "redis_instance_info"}) {
    EXPECT_TRUE(e.type.count(family)) << family;
  }
  EXPECT_EQ(e.type.count("redis_latency_percentiles_usec"), want.latency_stats ? 1u : 0u);
  EXPECT_EQ(e.Count("redis_latency_percentiles_usec") > 0, want.latency_stats);
  EXPECT_EQ(e.type.count("redis_cluster_total_cluster_links_buffer_limit_exceeded_total"),
            want.links_field ? 1u : 0u);
  // Every family a server has is well formed, whatever it lacks.
  for (const auto& [name, type] : e.type) {
    const bool total = name.size() > 6 && name.substr(name.size() - 6) == "_total";
    EXPECT_EQ(type == "counter", total) << name << " is a " << type;
    EXPECT_FALSE(e.help.at(name).empty()) << name;
  }
  const std::string m0 = "node=\"" + Ports("masters")[0] + "\"";
  EXPECT_EQ(e.At("redis_commands_failed_calls_total{" + m0 + ",cmd=\"migrate\"}"), 1);
  EXPECT_EQ(e.At("redis_errors_total{" + m0 + ",err=\"IOERR\"}"), 1);
  EXPECT_EQ(e.Has("redis_commands_total{" + m0 + ",cmd=\"cluster|setslot\"}"), want.subcommands);
  EXPECT_EQ(e.Has("redis_commands_total{" + m0 + ",cmd=\"cluster\"}"), !want.subcommands);
}

TEST_P(EveryServer, TheOpenSlotIsSeenOnBothMasters) {
  const auto env = this->env();
  auto e = Render(CapturedScrape(capture()));
  EXPECT_EQ(e.At("redis_cluster_slots_open{state=\"migrating\"}"), 1);
  EXPECT_EQ(e.At("redis_cluster_slots_open{state=\"importing\"}"), 1);
  const auto masters = Ports("masters");
  EXPECT_EQ(env.at("migrating_node"), masters[0]);
  EXPECT_EQ(env.at("importing_node"), masters[1]);
}

// Valkey 8 replicates CLUSTER SETSLOT: each replica shows its primary's open slot in its own
// line. Still one slot open each way; the replicas' own lines are visible per node.
TEST(ExporterCollectors, ValkeyReplicasShowTheirPrimarysOpenSlot) {
  const auto env = ::slotguard::testing::ReadEnv("valkey80.env");
  auto scrape = CapturedScrape("exporter_valkey80.txt");
  ASSERT_TRUE(scrape.judgement);
  int on_replicas = 0;
  for (const auto& open : scrape.judgement->open_slots) {
    EXPECT_EQ(std::to_string(open.slot), env.at("slot"));
    on_replicas += env.at("replicas").find(std::to_string(open.node.port)) != std::string::npos;
  }
  EXPECT_EQ(scrape.judgement->open_slots.size(), 4u);  // two masters and their two replicas
  EXPECT_EQ(on_replicas, 2);
  auto e = Render(scrape);
  EXPECT_EQ(e.At("redis_cluster_slots_open{state=\"migrating\"}"), 1);
  EXPECT_EQ(e.At("redis_cluster_slots_open{state=\"importing\"}"), 1);
}

INSTANTIATE_TEST_SUITE_P(
    Captured, EveryServer,
    ::testing::Values(ServerCapture{"redis62", "redis", "6.2.16", "6.2.16", false, false, false},
                      ServerCapture{"redis70", "redis", "7.0.15", "7.0.15", true, true, true},
                      ServerCapture{"redis72", "redis", "7.2.6", "7.2.6", true, true, true},
                      ServerCapture{"valkey80", "valkey", "8.0.1", "7.2.4", true, true, true}),
    [](const ::testing::TestParamInfo<ServerCapture>& info) {
      return std::string(info.param.prefix);
    });

}  // namespace
}  // namespace slotguard::exporter
