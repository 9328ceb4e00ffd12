#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "cluster/nodes.h"
#include "tests/unit/test_data.h"

namespace slotguard::cluster {
namespace {

using ::slotguard::testing::ReadData;
using ::slotguard::testing::ReadEnv;

using ::testing::HasSubstr;

std::vector<NodeEntry> MustParse(std::string_view text) {
  auto nodes = ParseClusterNodes(text);
  EXPECT_TRUE(nodes) << nodes.error().message;
  return nodes ? *nodes : std::vector<NodeEntry>{};
}

const NodeEntry* ById(const std::vector<NodeEntry>& nodes, const std::string& id) {
  for (const auto& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

TEST(ClusterParseClusterNodes, RealHealthyViews) {
  std::set<std::string> myself_ids;
  for (int i = 0; i < 6; ++i) {
    SCOPED_TRACE("view " + std::to_string(i));
    auto nodes = MustParse(ReadData("redis70_healthy_nodes_" + std::to_string(i) + ".txt"));
    ASSERT_EQ(nodes.size(), 6u);
    const NodeEntry* me = FindMyself(nodes);
    ASSERT_NE(me, nullptr);
    myself_ids.insert(me->id);
    // Files 0-2 come from masters, 3-5 from replicas.
    EXPECT_EQ(me->flags.master, i < 3);
    EXPECT_EQ(me->flags.replica, i >= 3);
    int masters = 0;
    int total_slots = 0;
    for (const auto& n : nodes) {
      EXPECT_EQ(n.id.size(), 40u);
      EXPECT_EQ(n.endpoint.host, "127.0.0.1");
      EXPECT_GT(n.endpoint.port, 0);
      EXPECT_EQ(n.cluster_port, n.endpoint.port + 10000);
      EXPECT_TRUE(n.hostname.empty());
      EXPECT_TRUE(n.link_connected);
      EXPECT_FALSE(n.flags.fail || n.flags.pfail || n.flags.handshake || n.flags.noaddr);
      EXPECT_TRUE(n.open_slots.empty());
      EXPECT_NE(n.flags.master, n.flags.replica);
      if (n.flags.master) {
        ++masters;
        EXPECT_TRUE(n.master_id.empty());
        EXPECT_THAT(n.SlotCount(), ::testing::AnyOf(5461, 5462));
        EXPECT_GT(n.config_epoch, 0u);
      } else {
        const NodeEntry* master = ById(nodes, n.master_id);
        ASSERT_NE(master, nullptr) << n.master_id;
        EXPECT_TRUE(master->flags.master);
        EXPECT_EQ(n.SlotCount(), 0);
        EXPECT_EQ(n.config_epoch, master->config_epoch);  // a replica shows its master's epoch
      }
      total_slots += n.SlotCount();
    }
    EXPECT_EQ(masters, 3);
    EXPECT_EQ(total_slots, kSlotCount);
  }
  EXPECT_EQ(myself_ids.size(), 6u);
}

TEST(ClusterParseClusterNodes, RealOpenSlotBothDirections) {
  auto env = ReadEnv("redis70_open_slot.env");
  const int slot = std::stoi(env.at("slot"));
  const std::string source = env.at("migrating_node");
  const std::string target = env.at("importing_node");
  int seen = 0;
  for (int i = 0; i < 6; ++i) {
    auto nodes = MustParse(ReadData("redis70_open_slot_nodes_" + std::to_string(i) + ".txt"));
    const NodeEntry* me = FindMyself(nodes);
    ASSERT_NE(me, nullptr);
    for (const auto& n : nodes) {
      if (&n != me) {
        EXPECT_TRUE(n.open_slots.empty()) << "only the myself line has brackets";
      }
    }
    if (me->id == source) {
      ASSERT_EQ(me->open_slots.size(), 1u);
      EXPECT_EQ(me->open_slots[0], (OpenSlot{slot, OpenDirection::kMigrating, target}));
      ++seen;
    } else if (me->id == target) {
      ASSERT_EQ(me->open_slots.size(), 1u);
      EXPECT_EQ(me->open_slots[0], (OpenSlot{slot, OpenDirection::kImporting, source}));
      ++seen;
    } else {
      EXPECT_TRUE(me->open_slots.empty());
    }
    // The bracket is not a slot the node owns.
    int total = 0;
    for (const auto& n : nodes) total += n.SlotCount();
    EXPECT_EQ(total, kSlotCount);
  }
  EXPECT_EQ(seen, 2);
}

TEST(ClusterParseClusterNodes, RealFailedReplica) {
  const std::string dead = ReadEnv("redis70_failed.env").at("failed_node");
  for (int i = 0; i < 5; ++i) {
    auto nodes = MustParse(ReadData("redis70_failed_nodes_" + std::to_string(i) + ".txt"));
    const NodeEntry* n = ById(nodes, dead);
    ASSERT_NE(n, nullptr);
    EXPECT_TRUE(n->flags.fail);
    EXPECT_FALSE(n->flags.pfail);
    EXPECT_TRUE(n->flags.replica);
    EXPECT_FALSE(n->link_connected);
    EXPECT_THAT(n->raw_flags, ::testing::Contains("fail"));
    EXPECT_NE(FindMyself(nodes)->id, dead);
  }
}

TEST(ClusterParseClusterNodes, RealHostname) {
  auto self = MustParse(ReadData("redis70_hostname_nodes_self.txt"));
  const NodeEntry* me = FindMyself(self);
  ASSERT_NE(me, nullptr);
  EXPECT_EQ(me->hostname, "redis-b.example.internal");
  EXPECT_EQ(me->endpoint.host, "127.0.0.1");  // the address stays the IP
  EXPECT_EQ(me->cluster_port, me->endpoint.port + 10000);

  auto peer = MustParse(ReadData("redis70_hostname_nodes_peer.txt"));
  const NodeEntry* seen = ById(peer, me->id);
  ASSERT_NE(seen, nullptr);
  EXPECT_FALSE(seen->flags.myself);
  EXPECT_EQ(seen->hostname, "redis-b.example.internal");
  EXPECT_EQ(seen->endpoint, me->endpoint);
  for (const auto& n : peer) {
    if (n.id != me->id) {
      EXPECT_TRUE(n.hostname.empty());
    }
  }
}

TEST(ClusterParseClusterNodes, AddressForms) {
  auto nodes = MustParse(
      "a [::1]:7000@17000 myself,master - 0 0 1 connected 0-10\r\n"
      "b ::1:7001@17001 slave a 0 0 1 connected\r\n"
      "c :0@0 noaddr,fail? - 1 2 0 disconnected\r\n"
      "d 127.0.0.1:7003@17003,host.example handshake - 0 0 0 disconnected\r\n"
      "e 127.0.0.1:7004 master,nofailover - 0 0 5 connected\r\n"  // pre-4.0: no bus port
      "f 127.0.0.1:7005@17005,,shard-id=abc master - 0 0 6 connected\r\n"
      "g 10.0.0.7:7006@17006 noflags - 0 0 0 connected\r\n");
  ASSERT_EQ(nodes.size(), 7u);
  EXPECT_EQ(nodes[0].endpoint, (Endpoint{"::1", 7000}));
  EXPECT_EQ(nodes[0].endpoint.ToString(), "[::1]:7000");
  EXPECT_EQ(nodes[0].cluster_port, 17000);
  EXPECT_EQ(nodes[1].endpoint, (Endpoint{"::1", 7001}));
  EXPECT_EQ(nodes[1].master_id, "a");
  EXPECT_EQ(nodes[2].endpoint, (Endpoint{"", 0}));
  EXPECT_TRUE(nodes[2].flags.noaddr);
  EXPECT_TRUE(nodes[2].flags.pfail);
  EXPECT_FALSE(nodes[2].flags.fail);
  EXPECT_EQ(nodes[2].ping_sent, 1);
  EXPECT_EQ(nodes[2].pong_recv, 2);
  EXPECT_FALSE(nodes[2].link_connected);
  EXPECT_TRUE(nodes[3].flags.handshake);
  EXPECT_EQ(nodes[3].hostname, "host.example");
  EXPECT_EQ(nodes[4].cluster_port, 0);
  EXPECT_TRUE(nodes[4].flags.nofailover);
  EXPECT_EQ(nodes[4].config_epoch, 5u);
  EXPECT_EQ(nodes[5].hostname, "");
  EXPECT_EQ(nodes[5].endpoint.port, 7005);
  EXPECT_THAT(nodes[6].raw_flags, ::testing::ElementsAre("noflags"));
  EXPECT_FALSE(nodes[6].flags.master || nodes[6].flags.replica);
}

TEST(ClusterParseClusterNodes, SlotForms) {
  auto nodes = MustParse(
      "a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0 2-5 16383 [7->-b] [8-<-c] "
      "[16383->-b]\n");
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_THAT(nodes[0].slots,
              ::testing::ElementsAre(SlotRange{0, 0}, SlotRange{2, 5}, SlotRange{16383, 16383}));
  EXPECT_EQ(nodes[0].SlotCount(), 6);
  EXPECT_THAT(nodes[0].open_slots,
              ::testing::ElementsAre(OpenSlot{7, OpenDirection::kMigrating, "b"},
                                     OpenSlot{8, OpenDirection::kImporting, "c"},
                                     OpenSlot{16383, OpenDirection::kMigrating, "b"}));
}

TEST(ClusterNodeEntry, SlotsNotOwnedIsTheComplement) {
  auto nodes = MustParse(
      "a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0 2-5 16383 [7->-b] [8-<-c]\n");
  auto not_owned = nodes[0].SlotsNotOwned();
  EXPECT_EQ(not_owned.size(), static_cast<size_t>(kSlotCount - 6));
  EXPECT_EQ(not_owned.front(), 1);
  EXPECT_EQ(not_owned[1], 6);
  EXPECT_EQ(not_owned.back(), 16382);
  // An importing slot (the bracket) is not owned.
  EXPECT_TRUE(std::binary_search(not_owned.begin(), not_owned.end(), 8));
  auto empty = MustParse("b 127.0.0.1:7001@17001 myself,master - 0 0 2 connected\n");
  EXPECT_EQ(empty[0].SlotsNotOwned().size(), static_cast<size_t>(kSlotCount));
}

TEST(ClusterParseClusterNodes, ErrorsNameLineAndField) {
  struct Case {
    std::string text;
    std::vector<std::string> expect;
  };
  static constexpr char kWithNul[] = "a 127.0.0.1:7000@17000 master - 0 0 1 connected\0 1\n";
  const std::string ok = "a 127.0.0.1:7000@17000 master - 0 0 1 connected 0-100\n";
  const std::vector<Case> cases = {
      {"", {"empty"}},
      {"\n\r\n\n", {"empty"}},
      {ok + "b 127.0.0.1:7001@17001 master - 0 0\n", {"line 2", "8 fields"}},
      {ok + ok + "c 127.0.0.1:7002@17002 master - 0 0 1 connected 16384\n", {"line 3", "slot"}},
      {"a 127.0.0.1:7000@17000 master - 0 0 1 connected 10-5\n", {"line 1", "reversed"}},
      {"a 127.0.0.1:7000@17000 master - 0 0 1 connected -1\n", {"slot"}},
      {"a 127.0.0.1:7000@17000 master - 0 0 1 connected 1-\n", {"slot"}},
      {"a 127.0.0.1:7000@17000 master - 0 0 1 connected abc\n", {"slot"}},
      {"a 127.0.0.1:7000@17000 master - 0 0 1 connected [5->-]\n", {"open slot"}},
      {"a 127.0.0.1:7000@17000 master - 0 0 1 connected [5=>-b]\n", {"open slot"}},
      {"a 127.0.0.1:7000@17000 master - 0 0 1 connected [99999->-b]\n", {"open slot"}},
      {"a 127.0.0.1:7000@17000 master - 0 0 x connected\n", {"config_epoch"}},
      {"a 127.0.0.1:7000@17000 master - 0 0 -1 connected\n", {"config_epoch"}},
      {"a 127.0.0.1:7000@17000 master - zero 0 1 connected\n", {"ping_sent"}},
      {"a 127.0.0.1:7000@17000 master - 0 ? 1 connected\n", {"pong_recv"}},
      {"a 127.0.0.1:7000@17000 master - 0 0 1 linked\n", {"link_state"}},
      {"a 127.0.0.1@17000 master - 0 0 1 connected\n", {"addr"}},
      {"a 127.0.0.1:99999@17000 master - 0 0 1 connected\n", {"addr", "port"}},
      {"a 127.0.0.1:7000@x master - 0 0 1 connected\n", {"addr", "bus port"}},
      {"a [::1:7000@17000 master - 0 0 1 connected\n", {"addr"}},
      {"a 127.0.0.1:7000@17000 master,,slave - 0 0 1 connected\n", {"flags"}},
      {std::string(kWithNul, sizeof(kWithNul) - 1), {"line 1", "binary"}},
  };
  for (const auto& c : cases) {
    auto r = ParseClusterNodes(c.text);
    ASSERT_FALSE(r) << "accepted: " << c.text;
    for (const auto& e : c.expect) EXPECT_THAT(r.error().message, HasSubstr(e)) << c.text;
  }
}

TEST(ClusterParseClusterNodes, CrlfAndTrailingLinesTolerated) {
  auto lf = MustParse(ReadData("redis70_healthy_nodes_0.txt"));
  std::string crlf;
  for (char c : ReadData("redis70_healthy_nodes_0.txt")) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  auto r = MustParse(crlf + "\r\n");
  ASSERT_EQ(r.size(), lf.size());
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].id, lf[i].id);
    EXPECT_EQ(r[i].slots, lf[i].slots);
    EXPECT_EQ(r[i].link_connected, lf[i].link_connected);
  }
  // No trailing newline at all is fine too.
  std::string text = ReadData("redis70_healthy_nodes_0.txt");
  text.pop_back();
  EXPECT_EQ(MustParse(text).size(), lf.size());
}

TEST(ClusterParseClusterNodes, TruncatedAtEveryByteNeverCrashes) {
  for (const std::string name : {"redis70_healthy_nodes_0.txt", "redis70_open_slot_nodes_0.txt",
                                 "redis70_hostname_nodes_self.txt"}) {
    const std::string text = ReadData(name);
    const auto full = MustParse(text);
    for (size_t n = 0; n <= text.size(); ++n) {
      auto r = ParseClusterNodes(std::string_view(text).substr(0, n));
      if (!r) {
        EXPECT_FALSE(r.error().message.empty());
        continue;
      }
      ASSERT_LE(r->size(), full.size());
      for (size_t i = 0; i + 1 < r->size(); ++i) EXPECT_EQ((*r)[i].id, full[i].id);
    }
  }
}

TEST(ClusterParseClusterNodes, RandomGarbageNeverCrashes) {
  std::mt19937 rng(777);
  const std::string alphabet = "0123456789abcdef:@,[]<->-  \n?.";
  for (int i = 0; i < 3000; ++i) {
    std::string junk(rng() % 400, '\0');
    const bool printable = i % 2 == 0;
    for (auto& c : junk) {
      c = printable ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng() % 256);
    }
    auto r = ParseClusterNodes(junk);
    if (r) {
      for (const auto& n : *r) {
        for (const auto& s : n.slots) {
          EXPECT_TRUE(s.first >= 0 && s.first <= s.last && s.last < kSlotCount);
        }
      }
    } else {
      EXPECT_FALSE(r.error().message.empty());
    }
  }
}

TEST(ClusterParseClusterNodes, HugeInputs) {
  // 10 MB of well-formed lines: parsed, every line.
  std::string many;
  int lines = 0;
  while (many.size() < (10u << 20)) {
    many += std::to_string(lines) + " 127.0.0.1:7000@17000 master - 0 0 1 connected 0-16383\n";
    ++lines;
  }
  auto r = ParseClusterNodes(many);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->size(), static_cast<size_t>(lines));

  // One line with 10 MB of slot entries: every entry checked, none out of range.
  std::string wide = "a 127.0.0.1:7000@17000 master - 0 0 1 connected";
  size_t entries = 0;
  while (wide.size() < (10u << 20)) {
    wide += " 16383";
    ++entries;
  }
  auto w = ParseClusterNodes(wide);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ((*w)[0].slots.size(), entries);
  wide += " 16384";
  EXPECT_FALSE(ParseClusterNodes(wide));

  EXPECT_FALSE(ParseClusterNodes(std::string(10u << 20, 'x')));
  EXPECT_FALSE(ParseClusterNodes(std::string(10u << 20, '\xff')));
}

TEST(ClusterFindMyself, NoneWhenAbsent) {
  auto nodes = MustParse("a 127.0.0.1:7000@17000 master - 0 0 1 connected\n");
  EXPECT_EQ(FindMyself(nodes), nullptr);
  EXPECT_EQ(FindMyself({}), nullptr);
}

}  // namespace
}  // namespace slotguard::cluster
