#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "cluster/slot_map.h"
#include "tests/unit/test_data.h"

namespace slotguard::cluster {
namespace {

using ::slotguard::testing::ReadData;
using ::slotguard::testing::ReadEnv;

using ::testing::ElementsAre;

NodesView ViewOf(std::string_view text) {
  auto nodes = ParseClusterNodes(text);
  EXPECT_TRUE(nodes) << nodes.error().message;
  NodesView view;
  if (!nodes) return view;
  view.nodes = *nodes;
  if (const NodeEntry* me = FindMyself(view.nodes)) {
    view.reporter_id = me->id;
    view.reporter = me->endpoint;
  }
  return view;
}

std::vector<NodesView> Views(const std::string& prefix, int count) {
  std::vector<NodesView> views;
  for (int i = 0; i < count; ++i)
    views.push_back(ViewOf(ReadData(prefix + std::to_string(i) + ".txt")));
  return views;
}

NodeEntry* Mutable(NodesView& view, const std::string& id) {
  for (auto& n : view.nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

// The master that owns `slot` in this view.
std::string OwnerIn(const NodesView& view, int slot) {
  return std::string(SlotMap(view.nodes).Owner(slot));
}

TEST(ClusterJudgeCluster, RealHealthyCluster) {
  auto views = Views("redis70_healthy_nodes_", 6);
  ClusterJudgement j = JudgeCluster(views);
  EXPECT_EQ(j.views, 6);
  EXPECT_EQ(j.covered, kSlotCount);
  EXPECT_EQ(j.uncovered, 0);
  EXPECT_EQ(j.disputed, 0);
  EXPECT_TRUE(j.uncovered_slots.empty());
  EXPECT_TRUE(j.disputed_slots.empty());
  EXPECT_TRUE(j.open_slots.empty());
  EXPECT_TRUE(j.consistent);
  EXPECT_EQ(j.epoch_collisions, 0);  // replicas share their master's epoch: not a collision
  EXPECT_TRUE(j.colliding_epochs.empty());
  EXPECT_TRUE(j.failing_node_ids.empty());
  EXPECT_EQ(j.Owner(0), OwnerIn(views[0], 0));
  EXPECT_FALSE(j.Owner(0).empty());
  EXPECT_EQ(j.Owner(16383), OwnerIn(views[3], 16383));
  for (const auto& v : views) EXPECT_EQ(SlotMap(v.nodes).Assigned(), kSlotCount);
}

TEST(ClusterJudgeCluster, RealOpenSlotListsBothSides) {
  auto env = ReadEnv("redis70_open_slot.env");
  const int slot = std::stoi(env.at("slot"));
  const std::string source = env.at("migrating_node");
  const std::string target = env.at("importing_node");
  auto views = Views("redis70_open_slot_nodes_", 6);
  ClusterJudgement j = JudgeCluster(views);
  EXPECT_EQ(j.covered, kSlotCount);  // the owner does not change while a slot is open
  EXPECT_EQ(j.Owner(slot), source);
  // redis-cli leaves the brackets out of the signature: an open slot is a warning, not an
  // inconsistency.
  EXPECT_TRUE(j.consistent);
  ASSERT_EQ(j.open_slots.size(), 2u);
  const OpenSlotState* migrating = nullptr;
  const OpenSlotState* importing = nullptr;
  for (const auto& o : j.open_slots) {
    EXPECT_EQ(o.slot, slot);
    (o.direction == OpenDirection::kMigrating ? migrating : importing) = &o;
  }
  ASSERT_NE(migrating, nullptr);
  ASSERT_NE(importing, nullptr);
  EXPECT_EQ(migrating->node_id, source);
  EXPECT_EQ(migrating->peer_id, target);
  EXPECT_EQ(importing->node_id, target);
  EXPECT_EQ(importing->peer_id, source);
  // The node address comes from the view that reported it.
  for (const auto& v : views) {
    if (v.reporter_id == source) {
      EXPECT_EQ(migrating->node, v.reporter);
    }
    if (v.reporter_id == target) {
      EXPECT_EQ(importing->node, v.reporter);
    }
  }
  EXPECT_NE(migrating->node, importing->node);
}

TEST(ClusterJudgeCluster, RealFailedReplica) {
  const std::string dead = ReadEnv("redis70_failed.env").at("failed_node");
  ClusterJudgement j = JudgeCluster(Views("redis70_failed_nodes_", 5));
  EXPECT_EQ(j.views, 5);
  EXPECT_THAT(j.failing_node_ids, ElementsAre(dead));
  EXPECT_EQ(j.covered, kSlotCount);
  EXPECT_TRUE(j.consistent);
}

TEST(ClusterJudgeCluster, TwoViewsDisagreeOnOneSlot) {
  auto views = Views("redis70_healthy_nodes_", 6);
  const std::string owner0 = OwnerIn(views[0], 0);
  const std::string owner_last = OwnerIn(views[0], 16383);
  ASSERT_NE(owner0, owner_last);
  // View 2 believes slot 0 moved to the owner of 16383 (as during a SETSLOT NODE rollout).
  NodeEntry* a = Mutable(views[2], owner0);
  NodeEntry* b = Mutable(views[2], owner_last);
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->slots.front().first, 0);
  a->slots.front().first = 1;
  b->slots.push_back(SlotRange{0, 0});

  ClusterJudgement j = JudgeCluster(views);
  EXPECT_EQ(j.disputed, 1);
  EXPECT_THAT(j.disputed_slots, ElementsAre(0));
  EXPECT_EQ(j.covered, kSlotCount - 1);
  EXPECT_EQ(j.uncovered, 0);
  EXPECT_EQ(j.Owner(0), "");
  EXPECT_FALSE(j.consistent);
}

TEST(ClusterJudgeCluster, UnassignedInOneViewIsDisputedInAllIsUncovered) {
  auto views = Views("redis70_healthy_nodes_", 6);
  const std::string owner = OwnerIn(views[0], 16383);
  // Every view loses slot 16383: uncovered. View 1 also loses 16382: disputed.
  for (auto& v : views) {
    NodeEntry* n = Mutable(v, owner);
    ASSERT_NE(n, nullptr);
    ASSERT_EQ(n->slots.back().last, 16383);
    n->slots.back().last = 16382;
  }
  Mutable(views[1], owner)->slots.back().last = 16381;
  ClusterJudgement j = JudgeCluster(views);
  EXPECT_EQ(j.uncovered, 1);
  EXPECT_THAT(j.uncovered_slots, ElementsAre(16383));
  EXPECT_EQ(j.disputed, 1);
  EXPECT_THAT(j.disputed_slots, ElementsAre(16382));
  EXPECT_EQ(j.covered, kSlotCount - 2);
  EXPECT_FALSE(j.consistent);
}

TEST(ClusterJudgeCluster, EpochCollisionAmongMasters) {
  auto views = Views("redis70_healthy_nodes_", 6);
  std::vector<std::string> masters;
  for (const auto& n : views[0].nodes) {
    if (n.flags.master) masters.push_back(n.id);
  }
  ASSERT_EQ(masters.size(), 3u);
  // Give masters[1] the epoch of masters[0] in every view (the replicas follow their master).
  const uint64_t epoch = [&] {
    for (const auto& n : views[0].nodes) {
      if (n.id == masters[0]) return n.config_epoch;
    }
    return uint64_t{0};
  }();
  for (auto& v : views) {
    for (auto& n : v.nodes) {
      if (n.id == masters[1] || n.master_id == masters[1]) n.config_epoch = epoch;
    }
  }
  ClusterJudgement j = JudgeCluster(views);
  EXPECT_EQ(j.epoch_collisions, 2);
  ASSERT_EQ(j.colliding_epochs.size(), 1u);
  std::vector<std::string> expected = {masters[0], masters[1]};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(j.colliding_epochs.at(epoch), expected);
  EXPECT_TRUE(j.consistent);  // epochs are not part of the signature
}

TEST(ClusterJudgeCluster, EpochFromTheMastersOwnLine) {
  // Another view still holds a stale epoch for b; b's own line is what counts.
  const std::string view_a =
      "a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191\n"
      "b 127.0.0.1:7001@17001 master - 0 0 1 connected 8192-16383\n";
  const std::string view_b =
      "a 127.0.0.1:7000@17000 master - 0 0 1 connected 0-8191\n"
      "b 127.0.0.1:7001@17001 myself,master - 0 0 2 connected 8192-16383\n";
  ClusterJudgement j = JudgeCluster({ViewOf(view_a), ViewOf(view_b)});
  EXPECT_EQ(j.epoch_collisions, 0);
  // Only view_a answered: both masters are at epoch 1 as far as anyone can tell.
  ClusterJudgement only_a = JudgeCluster({ViewOf(view_a)});
  EXPECT_EQ(only_a.epoch_collisions, 2);
  EXPECT_THAT(only_a.colliding_epochs.at(1), ElementsAre("a", "b"));
}

TEST(ClusterJudgeCluster, ReplicaListedAsMasterElsewhereIsNoCollision) {
  // c's own line says replica of a; view_a has not learned that yet and lists it as a master
  // with a's epoch (what c's pings announce).
  const std::string view_a =
      "a 127.0.0.1:7000@17000 myself,master - 0 0 8 connected 0-8191\n"
      "b 127.0.0.1:7001@17001 master - 0 0 2 connected 8192-16383\n"
      "c 127.0.0.1:7002@17002 master - 0 0 8 connected\n";
  const std::string view_c =
      "a 127.0.0.1:7000@17000 master - 0 0 8 connected 0-8191\n"
      "b 127.0.0.1:7001@17001 master - 0 0 2 connected 8192-16383\n"
      "c 127.0.0.1:7002@17002 myself,slave a 0 0 8 connected\n";
  EXPECT_EQ(JudgeCluster({ViewOf(view_a), ViewOf(view_c)}).epoch_collisions, 0);
  // Without c's own line nothing says it is a replica: a master at a's epoch.
  EXPECT_EQ(JudgeCluster({ViewOf(view_a)}).epoch_collisions, 2);
}

TEST(ClusterJudgeCluster, FailingFlagsFromAnyView) {
  const std::string view_a =
      "a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-16383\n"
      "b 127.0.0.1:7001@17001 master,fail? - 0 0 2 connected\n"
      "c :0@0 noaddr - 0 0 0 disconnected\n"
      "d 127.0.0.1:7003@17003 slave a 0 0 1 connected\n";
  const std::string view_d =
      "a 127.0.0.1:7000@17000 master - 0 0 1 connected 0-16383\n"
      "b 127.0.0.1:7001@17001 master - 0 0 2 connected\n"
      "e 127.0.0.1:7009@17009 handshake - 0 0 0 connected\n"
      "d 127.0.0.1:7003@17003 myself,slave a 0 0 1 connected\n";
  ClusterJudgement j = JudgeCluster({ViewOf(view_a), ViewOf(view_d)});
  EXPECT_THAT(j.failing_node_ids, ElementsAre("b", "c", "e"));
  EXPECT_EQ(j.covered, kSlotCount);
  EXPECT_TRUE(j.consistent);
}

TEST(ClusterJudgeCluster, NoViews) {
  ClusterJudgement j = JudgeCluster({});
  EXPECT_EQ(j.views, 0);
  EXPECT_EQ(j.covered, 0);
  EXPECT_EQ(j.uncovered, kSlotCount);
  EXPECT_EQ(j.disputed, 0);
  EXPECT_FALSE(j.consistent);  // nothing answered: nothing is known to agree
}

TEST(ClusterJudgeCluster, OpenSlotsSortedBySlotThenNode) {
  const std::string view_a =
      "a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191 [9000-<-b] [5->-b]\n"
      "b 127.0.0.1:7001@17001 master - 0 0 2 connected 8192-16383\n";
  const std::string view_b =
      "a 127.0.0.1:7000@17000 master - 0 0 1 connected 0-8191\n"
      "b 127.0.0.1:7001@17001 myself,master - 0 0 2 connected 8192-16383 [9000->-a] [5-<-a]\n";
  ClusterJudgement j = JudgeCluster({ViewOf(view_b), ViewOf(view_a), ViewOf(view_a)});
  ASSERT_EQ(j.open_slots.size(), 4u);  // the duplicate view adds nothing
  EXPECT_EQ(j.open_slots[0].slot, 5);
  EXPECT_EQ(j.open_slots[0].node_id, "a");
  EXPECT_EQ(j.open_slots[0].direction, OpenDirection::kMigrating);
  EXPECT_EQ(j.open_slots[1].slot, 5);
  EXPECT_EQ(j.open_slots[1].node_id, "b");
  EXPECT_EQ(j.open_slots[1].direction, OpenDirection::kImporting);
  EXPECT_EQ(j.open_slots[2].slot, 9000);
  EXPECT_EQ(j.open_slots[2].node_id, "a");
  EXPECT_EQ(j.open_slots[2].node, (Endpoint{"127.0.0.1", 7000}));
  EXPECT_EQ(j.open_slots[3].peer_id, "a");
  EXPECT_TRUE(j.consistent);
}

TEST(ClusterConfigSignature, MatchesRedisCli) {
  auto nodes = ParseClusterNodes(
      "bbb 127.0.0.1:7001@17001 master - 0 0 2 connected 5 10-20 100\n"
      "aaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-4 [7->-bbb]\n"
      "ccc 127.0.0.1:7002@17002 slave aaa 0 0 1 connected\n"
      "ddd 127.0.0.1:7003@17003 master - 0 0 3 connected [8-<-aaa]\n");
  ASSERT_TRUE(nodes);
  // Ranges sorted as strings (strcmp, as redis-cli's qsort does), nodes without slots left out,
  // brackets left out.
  EXPECT_EQ(ConfigSignature(*nodes), "aaa:0-4|bbb:10-20,100,5");
  EXPECT_EQ(ConfigSignature({}), "");
}

TEST(ClusterConfigSignature, RealViewsAgree) {
  auto views = Views("redis70_healthy_nodes_", 6);
  const std::string sig = ConfigSignature(views[0].nodes);
  EXPECT_EQ(std::count(sig.begin(), sig.end(), '|'), 2);
  for (const auto& v : views) EXPECT_EQ(ConfigSignature(v.nodes), sig);
}

TEST(ClusterSlotMap, OwnersAndAssigned) {
  auto nodes = ParseClusterNodes(
      "a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-9 [10->-b]\n"
      "b 127.0.0.1:7001@17001 master - 0 0 2 connected 16383\n");
  ASSERT_TRUE(nodes);
  SlotMap map(*nodes);
  EXPECT_EQ(map.Assigned(), 11);
  EXPECT_EQ(map.Owner(0), "a");
  EXPECT_EQ(map.Owner(9), "a");
  EXPECT_EQ(map.Owner(10), "");
  EXPECT_EQ(map.Owner(16383), "b");
}

TEST(ClusterSlotMap, StartsUnassigned) {
  SlotMap map;
  EXPECT_EQ(map.Assigned(), 0);
  EXPECT_EQ(map.Owner(0), "");
  EXPECT_EQ(map.Owner(16383), "");
  EXPECT_EQ(map.OwnerIndex(100), SlotMap::kUnassigned);
  EXPECT_TRUE(map.Ids().empty());
  EXPECT_EQ(map.Find("a"), SlotMap::kUnassigned);
  EXPECT_EQ(map.Count("a"), 0);
}

TEST(ClusterSlotMap, InternsEachIdOnce) {
  SlotMap map;
  const auto a = map.Intern("a");
  const auto b = map.Intern("b");
  EXPECT_NE(a, b);
  EXPECT_EQ(map.Intern("a"), a);
  EXPECT_EQ(map.Ids().size(), 2u);
  map.Assign(0, 99, a);
  map.Assign(50, 59, b);        // a later assignment wins
  map.Assign(16380, 20000, b);  // clamped to the last slot
  map.Assign(-5, -1, b);        // nothing in range: nothing changes
  EXPECT_EQ(map.Owner(49), "a");
  EXPECT_EQ(map.Owner(50), "b");
  EXPECT_EQ(map.Owner(60), "a");
  EXPECT_EQ(map.Count("a"), 90);
  EXPECT_EQ(map.Count("b"), 14);
  EXPECT_EQ(map.Assigned(), 104);
  map.Assign(0, 16383, SlotMap::kUnassigned);
  EXPECT_EQ(map.Assigned(), 0);
  EXPECT_EQ(map.Find("b"), b);  // the table keeps ids that own nothing any more
}

// `masters` masters splitting the slots evenly, each with one replica; `me` is myself.
std::string ManyNodes(int masters, int me) {
  std::string text;
  const int per = kSlotCount / masters;
  for (int m = 0; m < masters; ++m) {
    const int first = m * per;
    const int last = m == masters - 1 ? kSlotCount - 1 : first + per - 1;
    const std::string id = "m" + std::to_string(m);
    text += id + " 127.0.0.1:" + std::to_string(7000 + m) + "@1" + std::to_string(7000 + m) +
            (m == me ? " myself,master" : " master") + " - 0 0 " + std::to_string(m + 1) +
            " connected " + std::to_string(first) + "-" + std::to_string(last) + "\n";
    text += "r" + std::to_string(m) + " 127.0.0.1:" + std::to_string(8000 + m) + "@1" +
            std::to_string(8000 + m) + " slave " + id + " 0 0 " + std::to_string(m + 1) +
            " connected\n";
  }
  return text;
}

TEST(ClusterSlotMap, ManyNodes) {
  auto nodes = ParseClusterNodes(ManyNodes(300, 0));
  ASSERT_TRUE(nodes);
  SlotMap map(*nodes);
  EXPECT_EQ(map.Assigned(), kSlotCount);
  EXPECT_EQ(map.Ids().size(), 300u);  // replicas own nothing and are not interned
  const int per = kSlotCount / 300;
  EXPECT_EQ(map.Owner(0), "m0");
  EXPECT_EQ(map.Owner(per), "m1");
  EXPECT_EQ(map.Owner(299 * per), "m299");
  EXPECT_EQ(map.Owner(16383), "m299");
  EXPECT_EQ(map.Count("m1"), per);
  EXPECT_EQ(map.Count("r1"), 0);
}

TEST(ClusterJudgeCluster, ManyViewsOfManyNodes) {
  std::vector<NodesView> views;
  for (int me = 0; me < 25; ++me) views.push_back(ViewOf(ManyNodes(25, me)));
  ClusterJudgement j = JudgeCluster(views);
  EXPECT_EQ(j.views, 25);
  EXPECT_EQ(j.covered, kSlotCount);
  EXPECT_TRUE(j.consistent);
  EXPECT_EQ(j.Owner(0), "m0");
  EXPECT_EQ(j.Owner(16383), "m24");
  EXPECT_EQ(j.owners.Count("m3"), kSlotCount / 25);

  // One view moves slot 7 to m24: disputed, and no agreed owner; m0 still owns the rest.
  views[5].nodes[0].slots = {SlotRange{0, 6}, SlotRange{8, kSlotCount / 25 - 1}};
  views[5].nodes[48].slots.push_back(SlotRange{7, 7});
  ClusterJudgement moved = JudgeCluster(views);
  EXPECT_THAT(moved.disputed_slots, ElementsAre(7));
  EXPECT_EQ(moved.Owner(7), "");
  EXPECT_EQ(moved.owners.OwnerIndex(7), SlotMap::kUnassigned);
  EXPECT_EQ(moved.owners.Count("m0"), kSlotCount / 25 - 1);
  EXPECT_EQ(moved.covered, kSlotCount - 1);
  EXPECT_FALSE(moved.consistent);
}

TEST(ClusterJudgeCluster, ByPointerIsTheSame) {
  auto views = Views("redis70_open_slot_nodes_", 6);
  std::vector<const NodesView*> refs;
  for (const auto& v : views) refs.push_back(&v);
  ClusterJudgement a = JudgeCluster(views);
  ClusterJudgement b = JudgeClusterRefs(refs);
  EXPECT_EQ(a.covered, b.covered);
  EXPECT_EQ(a.open_slots.size(), b.open_slots.size());
  EXPECT_EQ(a.consistent, b.consistent);
  for (int s = 0; s < kSlotCount; ++s) ASSERT_EQ(a.Owner(s), b.Owner(s)) << s;
}

}  // namespace
}  // namespace slotguard::cluster
