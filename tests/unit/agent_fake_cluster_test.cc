// The unit fake's epoch and gossip rules, checked against what Redis 7.2's src/cluster.c does
// (the engine's epoch tests are only as good as these).
#include "agent_fake_cluster.h"

#include <gtest/gtest.h>

#include "cluster/info.h"

namespace slotguard::agent {
namespace {

using testing::FakeCluster;

cluster::Reply Send(FakeCluster& fake, int node, const cluster::Argv& argv) {
  auto r = fake.Get(fake.node(node).endpoint).Command(argv);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : cluster::Reply{};
}

// cluster_my_epoch and cluster_current_epoch as `node` reports them.
std::pair<double, double> Epochs(FakeCluster& fake, int node) {
  auto info = cluster::ParseInfo(Send(fake, node, {"CLUSTER", "INFO"}).str);
  EXPECT_TRUE(info);
  return {*info->GetNumber("cluster_my_epoch"), *info->GetNumber("cluster_current_epoch")};
}

// The config epoch column of `of`'s line in `at`'s CLUSTER NODES.
std::string EpochColumn(FakeCluster& fake, int at, int of) {
  const std::string text = Send(fake, at, {"CLUSTER", "NODES"}).str;
  size_t line = text.find(fake.node(of).id);
  std::string rest = text.substr(line, text.find('\n', line) - line);
  std::vector<std::string> fields;
  for (size_t p = 0; p != std::string::npos;) {
    size_t q = rest.find(' ', p);
    fields.push_back(rest.substr(p, q == std::string::npos ? q : q - p));
    p = q == std::string::npos ? q : q + 1;
  }
  return fields.at(6);
}

TEST(FakeCluster, EachNodeReportsItsOwnEpochs) {
  FakeCluster fake;
  EXPECT_EQ(Epochs(fake, 0), std::make_pair(1.0, 3.0));
  EXPECT_EQ(Epochs(fake, 1), std::make_pair(2.0, 3.0));
  EXPECT_EQ(Epochs(fake, 4), std::make_pair(2.0, 3.0));  // a replica: its master's
  EXPECT_EQ(EpochColumn(fake, 0, 4), "2");
}

TEST(FakeCluster, BumpEpochOnlyWhenNotAlreadyTheGreatest) {
  FakeCluster fake;
  fake.SetGossip(FakeCluster::Gossip::kHeld);
  EXPECT_EQ(Send(fake, 1, {"CLUSTER", "BUMPEPOCH"}).str, "BUMPED 4");
  EXPECT_EQ(Send(fake, 1, {"CLUSTER", "BUMPEPOCH"}).str, "STILL 4");
  EXPECT_EQ(Epochs(fake, 1), std::make_pair(4.0, 4.0));
  // The others hear of it with the next ping.
  EXPECT_EQ(Epochs(fake, 0), std::make_pair(1.0, 3.0));
  EXPECT_EQ(EpochColumn(fake, 0, 1), "2");
  fake.DeliverGossip();
  EXPECT_EQ(Epochs(fake, 0), std::make_pair(1.0, 4.0));
  EXPECT_EQ(EpochColumn(fake, 0, 1), "4");
  EXPECT_EQ(EpochColumn(fake, 3, 1), "4");
  // Node 0 knows 4 now: its bump gives it 5.
  EXPECT_EQ(Send(fake, 0, {"CLUSTER", "BUMPEPOCH"}).str, "BUMPED 5");
}

TEST(FakeCluster, ImportingClaimBumpsAndBroadcastsAtOnce) {
  FakeCluster fake;
  fake.SetGossip(FakeCluster::Gossip::kHeld);
  const std::string a = fake.node(0).id;
  const std::string b = fake.node(1).id;
  Send(fake, 1, {"CLUSTER", "SETSLOT", "0", "IMPORTING", a});
  Send(fake, 0, {"CLUSTER", "SETSLOT", "0", "MIGRATING", b});
  EXPECT_TRUE(Send(fake, 1, {"CLUSTER", "SETSLOT", "0", "NODE", b}).IsOk());
  EXPECT_EQ(fake.bumps(), 1);
  EXPECT_EQ(fake.broadcasts(), 1);
  EXPECT_EQ(fake.node(1).epoch, 4u);
  EXPECT_TRUE(fake.node(1).importing.empty());
  // Without any DeliverGossip: the PONG carried the claim at epoch 4 to every node, the source
  // (which held no key of the slot) included.
  for (int n = 0; n < 6; ++n) EXPECT_EQ(fake.node(n).view[0], b) << n;
  EXPECT_TRUE(fake.dirty_slots().empty());
}

TEST(FakeCluster, AClaimWithoutABumpWaitsForGossipAndLosesToAHigherEpoch) {
  FakeCluster fake;
  fake.SetGossip(FakeCluster::Gossip::kHeld);
  fake.SetConfigEpoch(0, 5);
  const std::string a = fake.node(0).id;
  const std::string b = fake.node(1).id;
  const std::string key = FakeCluster::KeyIn(0);
  fake.node(1).keys[key] = "v";  // the target already has the slot's keys
  EXPECT_TRUE(Send(fake, 1, {"CLUSTER", "SETSLOT", "0", "NODE", b}).IsOk());
  EXPECT_EQ(fake.bumps(), 0);
  EXPECT_EQ(fake.node(1).epoch, 2u);
  EXPECT_EQ(fake.node(2).view[0], a);  // nobody heard yet
  fake.DeliverGossip();
  // The source's claim at 5 outranks the target's at 2: the target gives the slot up and
  // deletes its keys; nobody else ever took the target's claim.
  for (int n = 0; n < 6; ++n) EXPECT_EQ(fake.node(n).view[0], a) << n;
  EXPECT_EQ(fake.node(1).keys.count(key), 0u);
  auto dirty = fake.dirty_slots();
  ASSERT_EQ(dirty.size(), 1u);
  EXPECT_EQ(dirty[0].node, b);
  EXPECT_EQ(dirty[0].winner, a);
  EXPECT_EQ(dirty[0].slot, 0);
  EXPECT_EQ(dirty[0].winner_epoch, 5u);
  EXPECT_EQ(dirty[0].owner_epoch, 2u);
  EXPECT_EQ(dirty[0].keys, std::vector<std::string>{key});
}

TEST(FakeCluster, AHigherEpochClaimTakesASlotAndItsOwnerDropsTheKeys) {
  FakeCluster fake;  // gossip after every command
  const std::string b = fake.node(1).id;
  fake.AddKeys(0, 2);  // on node 0
  // Node 1 (epoch 2) claims slot 0 of node 0 (epoch 1): everyone follows, node 0 included,
  // and node 0 deletes the keys it still held.
  EXPECT_TRUE(Send(fake, 1, {"CLUSTER", "SETSLOT", "0", "NODE", b}).IsOk());
  for (int n = 0; n < 6; ++n) EXPECT_EQ(fake.node(n).view[0], b) << n;
  EXPECT_EQ(fake.node(0).keys.size(), 0u);
  EXPECT_EQ(fake.dirty_slots().size(), 1u);
}

TEST(FakeCluster, AnImportingNodeIgnoresClaimsOfTheSlot) {
  FakeCluster fake;
  fake.SetGossip(FakeCluster::Gossip::kHeld);
  const std::string a = fake.node(0).id;
  const std::string c = fake.node(2).id;
  Send(fake, 1, {"CLUSTER", "SETSLOT", "0", "IMPORTING", a});
  fake.SetConfigEpoch(2, 7);
  Send(fake, 2, {"CLUSTER", "SETSLOT", "0", "NODE", c});
  fake.DeliverGossip();
  EXPECT_EQ(fake.node(1).view[0], a);  // importing: only SETSLOT changes it
  EXPECT_EQ(fake.node(0).view[0], c);
  EXPECT_EQ(fake.node(4).view[0], c);
}

TEST(FakeCluster, AnOwnerThatStoppedClaimingLosesToAnyClaim) {
  FakeCluster fake;
  fake.SetGossip(FakeCluster::Gossip::kHeld);
  fake.SetConfigEpoch(0, 5);
  const std::string b = fake.node(1).id;
  // Node 0 hands slot 0 to node 1 (no keys), node 1 claims it without a bump, at 2 < 5.
  Send(fake, 0, {"CLUSTER", "SETSLOT", "0", "NODE", b});
  Send(fake, 1, {"CLUSTER", "SETSLOT", "0", "NODE", b});
  fake.DeliverGossipFrom(1);
  EXPECT_EQ(fake.node(2).view[0], fake.node(0).id);  // 2 does not outrank 5
  fake.DeliverGossipFrom(0);                         // node 0 no longer claims it
  fake.DeliverGossipFrom(1);
  EXPECT_EQ(fake.node(2).view[0], b);
}

}  // namespace
}  // namespace slotguard::agent
