// The move protocol against an in-memory cluster: per-slot order, no SETSLOT NODE after a
// failed MIGRATE, BUSYKEY handling, cross-group pipelining.
#include "agent/migrator.h"

#include <gtest/gtest.h>

#include "agent_fake_cluster.h"
#include "cluster/info.h"

namespace slotguard::agent {
namespace {

using testing::FakeCluster;

struct Fixture {
  FakeCluster fake;
  FakeClock clock;
  NullEngineObserver observer;
  MigrateCounters counters;
  Migrator migrator{fake, clock, MigratorSettings{}, observer, counters};
  MoveEnds ends;
  StepControl ctl;
  std::vector<std::vector<std::string>> journaled;

  Fixture() {
    ends = {fake.node(0).id, fake.node(0).endpoint, fake.node(1).id, fake.node(1).endpoint};
    ctl.other_masters = {fake.node(2).endpoint};
    ctl.journal = [this](const std::vector<JournalStep>& steps) -> cluster::Result<void> {
      std::vector<std::string> names;
      for (const auto& s : steps) names.push_back(s.step);
      journaled.push_back(names);
      return {};
    };
  }
};

// Index in the log of the first command on `node` whose argv starts with `prefix`.
long Find(const std::vector<testing::LoggedCommand>& log, const std::string& node,
          const std::vector<std::string>& prefix) {
  for (size_t i = 0; i < log.size(); ++i) {
    if (log[i].node != node || log[i].argv.size() < prefix.size()) continue;
    if (std::equal(prefix.begin(), prefix.end(), log[i].argv.begin())) return static_cast<long>(i);
  }
  return -1;
}

long FindMigrateOf(const std::vector<testing::LoggedCommand>& log, int slot) {
  for (size_t i = 0; i < log.size(); ++i) {
    const auto& a = log[i].argv;
    if (a[0] != "MIGRATE") continue;
    for (size_t k = 7; k < a.size(); ++k) {
      if (cluster::KeySlot(a[k]) == slot) return static_cast<long>(i);
    }
  }
  return -1;
}

TEST(AgentMigrator, MovesEveryKeyInProtocolOrderPerSlot) {
  Fixture f;
  std::vector<int> slots{0, 1, 2, 3, 4, 5, 6, 7, 8};
  for (int s : slots) f.fake.AddKeys(s, 3);
  const auto before = f.fake.TotalKeys();
  std::vector<std::vector<int>> done;
  auto r = f.migrator.MoveSlots(f.ends, {{0, 1, 2}, {3, 4, 5}, {6, 7, 8}}, f.ctl,
                                [&](const std::vector<int>& g) { done.push_back(g); });
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.finished, slots);
  EXPECT_EQ(r.keys, 27);
  EXPECT_EQ(done.size(), 3u);
  EXPECT_EQ(f.fake.TotalKeys(), before);
  EXPECT_EQ(f.fake.node(1).keys.size(), 27u);
  for (int s : slots) {
    for (int n = 0; n < 6; ++n) EXPECT_EQ(f.fake.node(n).view[s], f.fake.node(1).id) << n;
    EXPECT_TRUE(f.fake.node(0).migrating.empty());
    EXPECT_TRUE(f.fake.node(1).importing.empty());
  }
  const auto log = f.fake.log();
  const auto& a = f.fake.node(0).id;
  const auto& b = f.fake.node(1).id;
  const auto& c = f.fake.node(2).id;
  for (int s : slots) {
    const std::string slot = std::to_string(s);
    long imp = Find(log, b, {"CLUSTER", "SETSLOT", slot, "IMPORTING"});
    long mig = Find(log, a, {"CLUSTER", "SETSLOT", slot, "MIGRATING"});
    long keys = FindMigrateOf(log, s);
    long nt = Find(log, b, {"CLUSTER", "SETSLOT", slot, "NODE"});
    long ns = Find(log, a, {"CLUSTER", "SETSLOT", slot, "NODE"});
    long no = Find(log, c, {"CLUSTER", "SETSLOT", slot, "NODE"});
    EXPECT_TRUE(imp >= 0 && imp < mig && mig < keys && keys < nt && nt < ns && ns < no)
        << "slot " << s << ": " << imp << " " << mig << " " << keys << " " << nt << " " << ns << " "
        << no;
  }
  // Every step journaled before it ran: the first round, then one record set per group.
  ASSERT_EQ(f.journaled.size(), 4u);
  EXPECT_EQ(f.journaled[0], (std::vector<std::string>{"importing", "migrating"}));
  EXPECT_EQ(f.journaled[1], (std::vector<std::string>{"node_target", "importing", "node_source",
                                                      "migrating", "node_others"}));
  EXPECT_EQ(f.journaled[3],
            (std::vector<std::string>{"node_target", "node_source", "node_others"}));
}

TEST(AgentMigrator, GroupsShareRoundTrips) {
  Fixture f;
  auto r = f.migrator.MoveSlots(f.ends, {{0, 1}, {2, 3}}, f.ctl, nullptr);
  ASSERT_TRUE(r.ok()) << r.message;
  // NODE for group 1 and IMPORTING for group 2 go to the target back to back (one pipeline).
  const auto log = f.fake.log();
  long node1 = Find(log, f.fake.node(1).id, {"CLUSTER", "SETSLOT", "1", "NODE"});
  long imp2 = Find(log, f.fake.node(1).id, {"CLUSTER", "SETSLOT", "2", "IMPORTING"});
  EXPECT_EQ(imp2, node1 + 1);
}

TEST(AgentMigrator, EachSlotIsListedOnceInTheRoundTripThatOpensIt) {
  Fixture f;
  for (int s = 0; s < 6; ++s) f.fake.AddKeys(s, 2);
  auto r = f.migrator.MoveSlots(f.ends, {{0, 1, 2}, {3, 4, 5}}, f.ctl, nullptr);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(f.fake.node(1).keys.size(), 12u);
  // Where SETSLOT is not replicated, a slot's GETKEYSINSLOT follows its MIGRATING in the same
  // pipeline (no key can appear at a MIGRATING source after it), and MoveKeys lists no slot a
  // second time: every slot's keys were listed whole.
  const auto log = f.fake.log();
  const auto& a = f.fake.node(0).id;
  for (int s = 0; s < 6; ++s) {
    const std::string slot = std::to_string(s);
    int scans = 0;
    for (const auto& c : log) {
      if (c.node == a && c.argv.size() > 2 && c.argv[1] == "GETKEYSINSLOT" && c.argv[2] == slot)
        ++scans;
    }
    EXPECT_EQ(scans, 1) << s;
    long mig = Find(log, a, {"CLUSTER", "SETSLOT", slot, "MIGRATING"});
    long scan = Find(log, a, {"CLUSTER", "GETKEYSINSLOT", slot});
    EXPECT_TRUE(mig >= 0 && mig < scan && scan < FindMigrateOf(log, s)) << s;
  }
}

TEST(AgentMigrator, TwoBroadcastsPerGroupOnTheTargetNotOnePerSlot) {
  Fixture f;
  f.fake.SetConfigEpoch(0, 5);  // the source above the target: the first claim must bump
  for (int s = 0; s < 6; ++s) f.fake.AddKeys(s, 2);
  auto r = f.migrator.MoveSlots(f.ends, {{0, 1, 2}, {3, 4, 5}}, f.ctl, nullptr);
  ASSERT_TRUE(r.ok()) << r.message;
  // SETSLOT NODE on the importing target broadcasts once per call: only a group's first slot
  // (the epoch bump, before any slot changes hands) and last (a PONG carrying the whole group)
  // keep the importing path; the slots between are made STABLE just before their NODE. Once the
  // target's epoch is read above the source's (the second group), no claim needs a bump: its
  // first slot goes STABLE and NODE with the others, one broadcast for the group.
  EXPECT_EQ(f.fake.broadcasts(), 3);
  EXPECT_EQ(f.fake.bumps(), 1);
  // The target's commands only: the other masters' NODEs run on another thread meanwhile.
  std::vector<testing::LoggedCommand> log;
  const auto& b = f.fake.node(1).id;
  for (auto& c : f.fake.log()) {
    if (c.node == b) log.push_back(std::move(c));
  }
  for (int s : {1, 3, 4}) {
    long stable = Find(log, b, {"CLUSTER", "SETSLOT", std::to_string(s), "STABLE"});
    long node = Find(log, b, {"CLUSTER", "SETSLOT", std::to_string(s), "NODE"});
    EXPECT_TRUE(stable >= 0 && node == stable + 1) << s;
  }
  for (int s : {0, 2, 5}) {
    EXPECT_EQ(Find(log, b, {"CLUSTER", "SETSLOT", std::to_string(s), "STABLE"}), -1) << s;
  }
  // Every node, replicas too, learned the whole group.
  for (int s = 0; s < 6; ++s) {
    for (int n = 0; n < 6; ++n) EXPECT_EQ(f.fake.node(n).view[s], b) << s << " " << n;
  }
}

TEST(AgentMigrator, NodeOnTargetWithFirstCoversEverySlot) {
  // The first slot made STABLE before its NODE like the rest; only the last keeps the
  // importing path.
  auto argv = NodeOnTargetArgv({7, 8, 9}, "bbbb", true, true);
  ASSERT_EQ(argv.size(), 5u);
  EXPECT_EQ(argv[0], (cluster::Argv{"CLUSTER", "SETSLOT", "7", "STABLE"}));
  EXPECT_EQ(argv[1], (cluster::Argv{"CLUSTER", "SETSLOT", "7", "NODE", "bbbb"}));
  EXPECT_EQ(argv[4], (cluster::Argv{"CLUSTER", "SETSLOT", "9", "NODE", "bbbb"}));
  std::vector<cluster::Reply> replies(5);
  replies[1].type = cluster::Reply::Type::kError;
  replies[1].str = "ERR I don't know about node bbbb";
  auto e = NodeOnTargetErrors(replies, {7, 8, 9}, true, true);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e.begin()->first, 7);
}

TEST(AgentMigrator, NodeOnTargetErrorsNameTheSlot) {
  // The first slot is claimed alone (Migrator::ClaimFirst); these are the rest.
  auto argv = NodeOnTargetArgv({7, 8, 9}, "bbbb");
  ASSERT_EQ(argv.size(), 3u);
  EXPECT_EQ(argv[0], (cluster::Argv{"CLUSTER", "SETSLOT", "8", "STABLE"}));
  EXPECT_EQ(argv[1], (cluster::Argv{"CLUSTER", "SETSLOT", "8", "NODE", "bbbb"}));
  EXPECT_EQ(argv[2], (cluster::Argv{"CLUSTER", "SETSLOT", "9", "NODE", "bbbb"}));
  EXPECT_TRUE(NodeOnTargetArgv({7}, "bbbb").empty());
  EXPECT_EQ(NodeOnTargetArgv({7, 8}, "bbbb").size(), 1u);
  std::vector<cluster::Reply> replies(3);
  for (auto& r : replies) r.type = cluster::Reply::Type::kStatus;
  EXPECT_TRUE(NodeOnTargetErrors(replies, {7, 8, 9}).empty());
  replies[1].type = cluster::Reply::Type::kError;  // NODE of slot 8
  replies[1].str = "ERR boom";
  replies[2].type = cluster::Reply::Type::kError;
  replies[2].str = "ERR bang";
  auto e = NodeOnTargetErrors(replies, {7, 8, 9});
  EXPECT_EQ(e, (std::map<int, std::string>{{8, "ERR boom"}, {9, "ERR bang"}}));
}

cluster::Info InfoOf(const std::string& text) {
  auto i = cluster::ParseInfo(text);
  EXPECT_TRUE(i);
  return i ? *i : cluster::Info{};
}

TEST(AgentMigrator, EpochFenceNeedsTheTargetToKnowTheSourceEpoch) {
  auto source = InfoOf("cluster_current_epoch:9\r\ncluster_my_epoch:9\r\n");
  // The target has not heard of epoch 9 yet: its bump would give it at most 9.
  auto behind = InfoOf("cluster_current_epoch:8\r\ncluster_my_epoch:8\r\n");
  auto p = EpochFenceProblem(source, behind);
  ASSERT_TRUE(p);
  EXPECT_NE(p->find("knows epochs up to 8"), std::string::npos) << *p;
  // Both masters on one epoch: collision resolution may raise the source's.
  auto same = InfoOf("cluster_current_epoch:9\r\ncluster_my_epoch:9\r\n");
  ASSERT_TRUE(EpochFenceProblem(source, same));
  // It knows 9: its bump gives it 10 (or it already has the highest).
  EXPECT_FALSE(
      EpochFenceProblem(source, InfoOf("cluster_current_epoch:9\r\ncluster_my_epoch:4\r\n")));
  EXPECT_FALSE(
      EpochFenceProblem(source, InfoOf("cluster_current_epoch:12\r\ncluster_my_epoch:12\r\n")));
  EXPECT_TRUE(EpochFenceProblem(source, InfoOf("cluster_state:ok\r\n")));  // fields missing
}

TEST(AgentMigrator, ClaimsOutrankOnlyAboveTheSourceEpoch) {
  auto source = InfoOf("cluster_current_epoch:9\r\ncluster_my_epoch:9\r\n");
  EXPECT_FALSE(
      ClaimOutranksProblem(source, InfoOf("cluster_current_epoch:10\r\ncluster_my_epoch:10\r\n")));
  // Equal is not enough: the collision rule may leave either one on top.
  auto same =
      ClaimOutranksProblem(source, InfoOf("cluster_current_epoch:9\r\ncluster_my_epoch:9\r\n"));
  ASSERT_TRUE(same);
  EXPECT_NE(same->find("epoch 9 is not above the source's 9"), std::string::npos) << *same;
  EXPECT_TRUE(
      ClaimOutranksProblem(source, InfoOf("cluster_current_epoch:12\r\ncluster_my_epoch:4\r\n")));
  EXPECT_TRUE(ClaimOutranksProblem(source, InfoOf("cluster_state:ok\r\n")));  // fields missing
}

TEST(AgentMigrator, NoSlotGoesToATargetThatSharesTheSourceEpoch) {
  Fixture f;
  for (int s = 0; s < 3; ++s) f.fake.AddKeys(s, 2);
  {
    std::lock_guard<std::mutex> lock(f.fake.mutex());
    f.fake.node(1).epoch = f.fake.node(0).epoch;  // a collision that does not resolve
  }
  auto r = f.migrator.MoveSlots(f.ends, {{0, 1, 2}}, f.ctl, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message.find("share config epoch"), std::string::npos) << r.message;
  EXPECT_TRUE(r.finished.empty());
  // The keys moved (the slots stay open for recovery), but SETSLOT NODE went nowhere.
  for (const auto& c : f.fake.log()) {
    ASSERT_FALSE(c.argv.size() > 3 && c.argv[1] == "SETSLOT" && c.argv[3] == "NODE")
        << "SETSLOT NODE despite the epoch collision";
  }
}

TEST(AgentMigrator, ALostRoundWithTheNextInFlightIsRetriedAndNothingStaleRuns) {
  Fixture f;
  for (int s = 0; s < 8; ++s) f.fake.AddKeys(s, 2);
  const auto before = f.fake.TotalKeys();
  // Eight one-slot chunks go out as two rounds of four, both in flight. The connection dies on
  // the first MIGRATE: neither round's replies come back.
  int migrates = 0;
  f.fake.before_command = [&](const testing::FakeNode&, const cluster::Argv& argv) {
    return argv[0] == "MIGRATE" && ++migrates == 1;
  };
  auto r = f.migrator.MoveSlots(f.ends, {{0, 1, 2, 3, 4, 5, 6, 7}}, f.ctl, nullptr);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(f.counters.failed, 1);
  EXPECT_EQ(r.keys, 16);  // every key acknowledged once, by the pass after the loss
  EXPECT_EQ(f.fake.TotalKeys(), before);
  EXPECT_EQ(f.fake.node(1).keys.size(), 16u);
  // The lost second round never ran later in place of another: after the failed one, one
  // MIGRATE per slot, in the order they were sent.
  std::vector<int> order;
  for (const auto& c : f.fake.log()) {
    if (c.argv[0] == "MIGRATE") order.push_back(cluster::KeySlot(c.argv[7]));
  }
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(AgentMigrator, NoSetSlotNodeAfterAFailedMigrate) {
  Fixture f;
  for (int s : {10, 11, 12}) f.fake.AddKeys(s, 2);
  f.fake.FailMigrates(1000);
  f.ctl.stop = [&]() -> std::optional<std::string> {
    if (f.counters.counted > 3) return "too many failures";
    return std::nullopt;
  };
  auto r = f.migrator.MoveSlots(f.ends, {{10, 11, 12}}, f.ctl, nullptr);
  EXPECT_EQ(r.status, MoveResult::Status::kStopped);
  EXPECT_TRUE(r.finished.empty());
  EXPECT_GT(f.counters.counted.load(), 3);
  EXPECT_EQ(f.counters.ioerr.load(), f.counters.counted.load());
  for (const auto& c : f.fake.log()) {
    ASSERT_FALSE(c.argv.size() > 3 && c.argv[1] == "SETSLOT" && c.argv[3] == "NODE")
        << "SETSLOT NODE after a failed MIGRATE";
  }
  EXPECT_EQ(f.fake.node(0).keys.size(), 6u);  // nothing lost, nothing moved
}

TEST(AgentMigrator, DifferentStrayOnTheTargetStopsBeforeAnyKeyMoves) {
  Fixture f;
  for (int s : {20, 21, 22, 23}) f.fake.AddKeys(s, 2);
  const std::string key = FakeCluster::KeyIn(22);
  f.fake.node(0).keys[key] = "source";
  f.fake.node(1).keys[key] = "target";  // a stray in a slot the target does not own
  auto r = f.migrator.MoveSlots(f.ends, {{20, 21}, {22, 23}}, f.ctl, nullptr);
  EXPECT_EQ(r.status, MoveResult::Status::kConflict);
  EXPECT_EQ(r.conflict_keys, std::vector<std::string>{key});
  EXPECT_NE(r.message.find(key), std::string::npos);
  EXPECT_EQ(r.finished, (std::vector<int>{20, 21}));
  EXPECT_EQ(f.fake.node(0).keys[key], "source");
  EXPECT_EQ(f.fake.node(1).keys[key], "target");
  EXPECT_EQ(Find(f.fake.log(), f.fake.node(0).id, {"CLUSTER", "SETSLOT", "22", "MIGRATING"}), -1);
}

TEST(AgentMigrator, EqualStrayIsReplacedAndTheMoveGoesOn) {
  Fixture f;
  f.fake.AddKeys(30, 2);
  const std::string key = FakeCluster::KeyIn(30);
  f.fake.node(0).keys[key] = "same";
  f.fake.node(1).keys[key] = "same";
  auto r = f.migrator.MoveSlots(f.ends, {{30}}, f.ctl, nullptr);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(f.fake.node(1).keys[key], "same");
  EXPECT_EQ(f.fake.node(0).keys.count(key), 0u);
}

TEST(AgentMigrator, ReplaceOverwritesADifferentStray) {
  FakeCluster fake;
  FakeClock clock;
  NullEngineObserver observer;
  MigrateCounters counters;
  MigratorSettings settings;
  settings.replace = true;
  Migrator m(fake, clock, settings, observer, counters);
  const std::string key = FakeCluster::KeyIn(40);
  fake.node(0).keys[key] = "source";
  fake.node(1).keys[key] = "target";
  MoveEnds ends{fake.node(0).id, fake.node(0).endpoint, fake.node(1).id, fake.node(1).endpoint};
  auto r = m.MoveGroup(ends, {40}, StepControl{});
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(fake.node(1).keys[key], "source");
}

TEST(AgentMigrator, MigrateArgumentsCarryAuth2ForAnAclUser) {
  FakeCluster fake;
  FakeClock clock;
  NullEngineObserver observer;
  MigrateCounters counters;
  MigratorSettings settings;
  settings.auth = cluster::Credentials{std::string("mover"), "pw"};
  settings.keys_per_migrate = 2;
  Migrator m(fake, clock, settings, observer, counters);
  fake.AddKeys(50, 3);
  MoveEnds ends{fake.node(0).id, fake.node(0).endpoint, fake.node(1).id, fake.node(1).endpoint};
  ASSERT_TRUE(m.MoveGroup(ends, {50}, StepControl{}).ok());
  int migrates = 0;
  for (const auto& c : fake.log()) {
    if (c.argv[0] != "MIGRATE") continue;
    ++migrates;
    ASSERT_GE(c.argv.size(), 10u);
    EXPECT_EQ(c.argv[3], "");
    EXPECT_EQ(c.argv[6], "AUTH2");
    EXPECT_EQ(c.argv[7], "mover");
    EXPECT_EQ(c.argv[9], "KEYS");
    EXPECT_LE(c.argv.size() - 10, 2u);  // --pipeline keys per MIGRATE
  }
  EXPECT_EQ(migrates, 2);
}

// Captured from Redis 7.0 (MIGRATE ... AUTH2 with a user lacking +select on the target, and
// with a wrong password) and from the source itself (user without +migrate).
TEST(AgentMigrateReply, CredentialRefusalsArePermanent) {
  EXPECT_TRUE(IsCredentialRefusal(
      "ERR Target instance replied with error: NOPERM this user has no permissions to run the "
      "'select' command"));
  EXPECT_TRUE(IsCredentialRefusal(
      "ERR Target instance replied with error: WRONGPASS invalid username-password pair or user "
      "is disabled."));
  EXPECT_TRUE(
      IsCredentialRefusal("NOPERM this user has no permissions to run the 'migrate' command"));
  EXPECT_TRUE(
      IsCredentialRefusal("ERR Target instance replied with error: NOAUTH Authentication "
                          "required."));
  // Transient or other failures are not: a key named NOPERM, a timeout, OOM.
  EXPECT_FALSE(IsCredentialRefusal("IOERR error or timeout reading to target instance"));
  EXPECT_FALSE(IsCredentialRefusal(
      "ERR Target instance replied with error: OOM command not allowed when used memory > "
      "'maxmemory'."));
  EXPECT_FALSE(IsCredentialRefusal("ERR something about key NOPERM"));
  // The code 19 characters in, with no "replied with error: " before it (the old offset
  // arithmetic wrapped around to exactly 19 there).
  EXPECT_FALSE(IsCredentialRefusal("ERR unknown reply: NOPERM"));
}

}  // namespace
}  // namespace slotguard::agent
