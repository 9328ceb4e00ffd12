#include "agent/recovery.h"

#include <gtest/gtest.h>

#include "test_data.h"

namespace slotguard::agent {
namespace {

const std::string kA = "aaaa";
const std::string kB = "bbbb";

SlotObservation Stable(int slot, const std::string& owner) {
  SlotObservation o;
  o.slot = slot;
  o.owner_in_source_view = owner;
  o.owner_in_target_view = owner;
  o.source_epoch = 1;
  o.target_epoch = 2;
  return o;
}

// After IMPORTING on the target only.
SlotObservation AfterImporting(int slot) {
  auto o = Stable(slot, kA);
  o.target_importing = true;
  o.source_keys = 10;
  return o;
}

// Halfway through the keys.
SlotObservation MidKeys(int slot) {
  auto o = AfterImporting(slot);
  o.source_migrating = true;
  o.source_keys = 4;
  o.target_keys = 6;
  return o;
}

// All keys moved, SETSLOT NODE reached the target only (its epoch was bumped).
SlotObservation AfterTargetNode(int slot) {
  auto o = MidKeys(slot);
  o.target_importing = false;
  o.owner_in_target_view = kB;
  o.target_epoch = 5;
  o.source_keys = 0;
  o.target_keys = 10;
  return o;
}

TEST(AgentRecovery, SettledOwnerPrefersTheHigherEpochWhenBothClaim) {
  auto o = AfterTargetNode(1);
  EXPECT_EQ(SettledOwner(o, kA, kB), Side::kTarget);
  o.source_epoch = 9;  // the source's claim is newer (a move back had reached it)
  EXPECT_EQ(SettledOwner(o, kA, kB), Side::kSource);
  EXPECT_EQ(SettledOwner(Stable(1, "cccc"), kA, kB), Side::kNeither);
}

TEST(AgentRecovery, AfterImportingOnlyTheTargetIsClosed) {
  auto plan = PlanConvergence({AfterImporting(1), Stable(2, kA)}, kA, kB, ConvergeMode::kAuto);
  EXPECT_FALSE(plan.to_target);
  EXPECT_EQ(plan.close_at_source, std::vector<int>{1});
  EXPECT_TRUE(plan.finish_forward.empty());
  EXPECT_TRUE(plan.reverse.empty());
}

TEST(AgentRecovery, MidKeysGoesThroughTheTargetAndBack) {
  auto plan = PlanConvergence({MidKeys(1), Stable(2, kA)}, kA, kB, ConvergeMode::kAuto);
  EXPECT_FALSE(plan.to_target);
  EXPECT_EQ(plan.finish_forward, std::vector<int>{1});
  EXPECT_EQ(plan.reverse, std::vector<int>{1});
  EXPECT_TRUE(plan.close_at_source.empty());
}

TEST(AgentRecovery, AfterTargetNodeWithOtherSlotsUntouchedRollsBack) {
  auto plan = PlanConvergence({AfterTargetNode(1), Stable(2, kA)}, kA, kB, ConvergeMode::kAuto);
  EXPECT_FALSE(plan.to_target);
  EXPECT_EQ(plan.settle_at_target, std::vector<int>{1});
  EXPECT_EQ(plan.reverse, std::vector<int>{1});
}

TEST(AgentRecovery, EverySlotForwardReadyFinishesForward) {
  auto done = Stable(3, kB);
  auto open_empty = MidKeys(2);
  open_empty.source_keys = 0;
  auto plan = PlanConvergence({AfterTargetNode(1), open_empty, done}, kA, kB, ConvergeMode::kAuto);
  EXPECT_TRUE(plan.to_target);
  EXPECT_EQ(plan.settle_at_target, std::vector<int>{1});
  EXPECT_EQ(plan.finish_forward, std::vector<int>{2});
  EXPECT_TRUE(plan.reverse.empty());
}

TEST(AgentRecovery, TargetMadeStableJustBeforeNodeFinishesForward) {
  // Killed between SETSLOT STABLE and SETSLOT NODE on the target: A MIGRATING with no key left,
  // B neither importing nor owning, every key at B.
  auto between = MidKeys(2);
  between.target_importing = false;
  between.source_keys = 0;
  between.target_keys = 10;
  EXPECT_TRUE(ForwardReady(between, kA, kB));
  auto plan = PlanConvergence({AfterTargetNode(1), between}, kA, kB, ConvergeMode::kAuto);
  EXPECT_TRUE(plan.to_target);
  EXPECT_EQ(plan.finish_forward, std::vector<int>{2});
  // Keys still at A: not ready, whatever B says.
  between.source_keys = 1;
  EXPECT_FALSE(ForwardReady(between, kA, kB));
}

TEST(AgentRecovery, RollbackModeNeverFinishesForward) {
  auto plan = PlanConvergence({AfterTargetNode(1), Stable(3, kB)}, kA, kB, ConvergeMode::kRollback);
  EXPECT_FALSE(plan.to_target);
  EXPECT_EQ(plan.reverse, (std::vector<int>{1, 3}));
}

TEST(AgentRecovery, AMoveBackUnderWayIsFinishedByTheReverse) {
  auto o = Stable(1, kB);
  o.target_migrating = true;  // B -> A had started
  o.source_importing = true;
  o.target_keys = 3;
  o.source_keys = 7;
  auto plan = PlanConvergence({o}, kA, kB, ConvergeMode::kRollback);
  EXPECT_TRUE(plan.settle_at_target.empty());  // keys cannot go to a MIGRATING node
  EXPECT_EQ(plan.reverse, std::vector<int>{1});
}

TEST(AgentRecovery, NobodysSlotIsStuck) {
  auto plan = PlanConvergence({Stable(1, "cccc")}, kA, kB, ConvergeMode::kRollback);
  EXPECT_EQ(plan.stuck, std::vector<int>{1});
}

TEST(AgentRecovery, ObserveReadsOwnersOpenSlotsAndEpochs) {
  auto a = cluster::ParseClusterNodes(
      "aaaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-10 [5->-bbbb]\n"
      "bbbb 127.0.0.1:7001@17001 master - 0 0 2 connected 11-20\n");
  auto b = cluster::ParseClusterNodes(
      "aaaa 127.0.0.1:7000@17000 master - 0 0 1 connected 0-4 6-10\n"
      "bbbb 127.0.0.1:7001@17001 myself,master - 0 0 7 connected 5 11-20\n");
  ASSERT_TRUE(a && b);
  auto o = Observe(5, kA, *a, kB, *b, 0, 12);
  EXPECT_EQ(o.owner_in_source_view, kA);
  EXPECT_EQ(o.owner_in_target_view, kB);
  EXPECT_TRUE(o.source_migrating);
  EXPECT_FALSE(o.target_importing);
  EXPECT_EQ(o.target_epoch, 7u);
  EXPECT_EQ(SettledOwner(o, kA, kB), Side::kTarget);
  EXPECT_TRUE(ForwardReady(o, kA, kB));
}

TEST(AgentRecovery, AfterATargetFailoverThePromotedReplicaStandsInForTheTarget) {
  // bbbb (the target) failed over to cccc: the source still MIGRATES slot 5 towards bbbb and
  // still names bbbb as the owner of 11-20 in a stale line; cccc imports nothing.
  auto a = cluster::ParseClusterNodes(
      "aaaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-10 [5->-bbbb]\n"
      "bbbb 127.0.0.1:7001@17001 master - 0 0 2 connected 11-20\n"
      "cccc 127.0.0.1:7002@17002 master - 0 0 3 connected\n");
  auto c = cluster::ParseClusterNodes(
      "aaaa 127.0.0.1:7000@17000 master - 0 0 1 connected 0-10\n"
      "bbbb 127.0.0.1:7001@17001 slave cccc 0 0 3 connected\n"
      "cccc 127.0.0.1:7002@17002 myself,master - 0 0 3 connected 11-20\n");
  ASSERT_TRUE(a && c);
  const std::string kC = "cccc";
  auto o = Observe(5, kA, *a, kC, *c, 4, 6, {"", kB});
  EXPECT_TRUE(o.source_migrating);
  EXPECT_FALSE(o.target_importing);
  EXPECT_EQ(SettledOwner(o, kA, kC), Side::kSource);
  EXPECT_FALSE(ForwardReady(o, kA, kC));
  auto owned = Observe(12, kA, *a, kC, *c, 0, 3, {"", kB});
  EXPECT_EQ(owned.owner_in_source_view, kC);  // bbbb's stale claim is cccc's now
  EXPECT_EQ(SettledOwner(owned, kA, kC), Side::kTarget);
  // Without the former id the open slot is invisible: the old behaviour (left stuck).
  EXPECT_FALSE(Observe(5, kA, *a, kC, *c, 4, 6).source_migrating);

  auto plan = PlanConvergence({o, owned}, kA, kC, ConvergeMode::kAuto);
  EXPECT_FALSE(plan.to_target);
  EXPECT_EQ(plan.finish_forward, std::vector<int>{5});
  EXPECT_EQ(plan.reverse, (std::vector<int>{5, 12}));
  EXPECT_TRUE(plan.stuck.empty());

  // Who took the target's place: its master once it is a replica; nobody while it is master.
  const auto* promoted = PromotedMaster(*c, kB);
  ASSERT_NE(promoted, nullptr);
  EXPECT_EQ(promoted->id, kC);
  EXPECT_EQ(PromotedMaster(*a, kB), nullptr);
}

// Hazard 2: A owns the slot and is STABLE (killed inside a settle step, or A failed over:
// MIGRATING is not replicated) while B still holds keys of it. Closing the slot would strand
// them on B (the plan used to send it to close_at_source, which only warned); the forward
// protocol brings them home, its first step making A MIGRATING again so clients find them.
TEST(AgentRecovery, KeysOnTheTargetOfAStableSourceAreNeverClosedAway) {
  auto stranded = MidKeys(1);
  stranded.source_migrating = false;
  EXPECT_FALSE(ForwardReady(stranded, kA, kB));
  for (auto mode : {ConvergeMode::kAuto, ConvergeMode::kRollback}) {
    auto plan = PlanConvergence({stranded, AfterImporting(2)}, kA, kB, mode);
    EXPECT_FALSE(plan.to_target);
    EXPECT_EQ(plan.finish_forward, std::vector<int>{1});
    EXPECT_EQ(plan.reverse, std::vector<int>{1});
    EXPECT_EQ(plan.close_at_source, std::vector<int>{2});  // B holds none of slot 2's keys
  }
  // B no longer even importing: the keys are stranded all the same.
  stranded.target_importing = false;
  EXPECT_EQ(PlanConvergence({stranded}, kA, kB, ConvergeMode::kAuto).finish_forward,
            std::vector<int>{1});
}

TEST(AgentRecovery, AfterASourceFailoverThePromotedReplicaStandsInForTheSource) {
  // aaaa (the source) failed over to dddd mid-move: dddd owns 0-10 with no open state, bbbb
  // still imports slot 5 from aaaa and, ignoring dddd's claim for an importing slot, has no
  // owner for it in its own view.
  auto d = cluster::ParseClusterNodes(
      "aaaa 127.0.0.1:7000@17000 slave dddd 0 0 4 connected\n"
      "bbbb 127.0.0.1:7001@17001 master - 0 0 2 connected 11-20\n"
      "dddd 127.0.0.1:7003@17003 myself,master - 0 0 4 connected 0-10\n");
  auto b = cluster::ParseClusterNodes(
      "aaaa 127.0.0.1:7000@17000 slave dddd 0 0 4 connected\n"
      "bbbb 127.0.0.1:7001@17001 myself,master - 0 0 2 connected 11-20 [5-<-aaaa]\n"
      "dddd 127.0.0.1:7003@17003 master - 0 0 4 connected 0-4 6-10\n");
  ASSERT_TRUE(d && b);
  const std::string kD = "dddd";
  const auto* promoted = PromotedMaster(*d, kA);
  ASSERT_NE(promoted, nullptr);
  EXPECT_EQ(promoted->id, kD);
  auto o = Observe(5, kD, *d, kB, *b, 4, 6, {kA, ""});
  EXPECT_TRUE(o.target_importing);  // from aaaa, read as from its replacement
  EXPECT_FALSE(o.source_migrating);
  EXPECT_EQ(o.owner_in_source_view, kD);
  EXPECT_EQ(SettledOwner(o, kD, kB), Side::kSource);
  auto plan = PlanConvergence({o}, kD, kB, ConvergeMode::kAuto);
  EXPECT_EQ(plan.finish_forward, std::vector<int>{5});
  EXPECT_EQ(plan.reverse, std::vector<int>{5});
  EXPECT_TRUE(plan.close_at_source.empty());
  EXPECT_TRUE(plan.stuck.empty());
}

TEST(AgentRecovery, AnEndThatNoLongerAnswersIsReplacedByItsFormerReplica) {
  // bbbb froze and its replica eeee took over: bbbb cannot say whose replica it is now; the
  // others still list it as a master.
  auto a = cluster::ParseClusterNodes(
      "aaaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-10\n"
      "bbbb 127.0.0.1:7001@17001 master,fail? - 0 0 2 connected\n"
      "eeee 127.0.0.1:7004@17004 master - 0 0 6 connected 11-20\n");
  ASSERT_TRUE(a);
  EXPECT_EQ(PromotedMaster(*a, kB), nullptr);        // answering: no guess
  EXPECT_EQ(PromotedMaster(*a, kB, true), nullptr);  // no replica known
  const auto* promoted = PromotedMaster(*a, kB, true, {"dddd", "eeee"});
  ASSERT_NE(promoted, nullptr);
  EXPECT_EQ(promoted->id, "eeee");
  // A former replica that is still a replica, or failing, stands in for nobody.
  auto b = cluster::ParseClusterNodes(
      "aaaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-10\n"
      "bbbb 127.0.0.1:7001@17001 master,fail? - 0 0 2 connected 11-20\n"
      "eeee 127.0.0.1:7004@17004 slave bbbb 0 0 2 connected\n");
  ASSERT_TRUE(b);
  EXPECT_EQ(PromotedMaster(*b, kB, true, {"eeee"}), nullptr);
}

}  // namespace
}  // namespace slotguard::agent

namespace slotguard::agent {
namespace {

// A real Valkey 8.0.1 cluster where a replica kept an open slot its master never ran:
// SETSLOT 2000 MIGRATING on the master with its replica frozen (-NOREPLICAS), the replica let
// go afterwards (tests/data/valkey80_replica_leftover*).
ClusterSnapshot ValkeyLeftover() {
  std::vector<NodeReport> reports;
  for (int i = 0; i < 6; ++i) {
    auto nodes = cluster::ParseClusterNodes(slotguard::testing::ReadData(
        "valkey80_replica_leftover_nodes_" + std::to_string(i) + ".txt"));
    EXPECT_TRUE(nodes) << i;
    const auto* me = cluster::FindMyself(*nodes);
    NodeReport r;
    r.endpoint = me->endpoint;
    r.view = cluster::NodesView{me->id, me->endpoint, *nodes};
    reports.push_back(std::move(r));
  }
  return BuildSnapshot(std::move(reports));
}

TEST(AgentRecovery, ReplicaLeftoverIsClosedAtItsMaster) {
  const auto env = slotguard::testing::ReadEnv("valkey80_replica_leftover.env");
  const int slot = std::stoi(env.at("slot"));
  auto leftovers = ReplicaLeftovers(ValkeyLeftover(), {slot - 1, slot, slot + 1});
  ASSERT_EQ(leftovers.size(), 1u);
  EXPECT_EQ(leftovers.begin()->first.ToString(), env.at("master"));
  EXPECT_EQ(leftovers.begin()->second, std::vector<int>{slot});
  // Slots outside the batch are not its business.
  EXPECT_TRUE(ReplicaLeftovers(ValkeyLeftover(), {slot + 1}).empty());
}

TEST(AgentRecovery, ASlotOpenOnTheMasterTooIsLeftToThePlan) {
  // Redis 7.0: replicas never show open slots; the masters' own are PlanConvergence's.
  std::vector<NodeReport> reports;
  for (int i = 0; i < 6; ++i) {
    auto nodes = cluster::ParseClusterNodes(
        slotguard::testing::ReadData("redis70_open_slot_nodes_" + std::to_string(i) + ".txt"));
    ASSERT_TRUE(nodes);
    const auto* me = cluster::FindMyself(*nodes);
    NodeReport r;
    r.endpoint = me->endpoint;
    r.view = cluster::NodesView{me->id, me->endpoint, *nodes};
    reports.push_back(std::move(r));
  }
  const auto env = slotguard::testing::ReadEnv("redis70_open_slot.env");
  std::vector<int> all(16384);
  for (int i = 0; i < 16384; ++i) all[i] = i;
  EXPECT_TRUE(ReplicaLeftovers(BuildSnapshot(std::move(reports)), all).empty());
}

}  // namespace
}  // namespace slotguard::agent
