// The cluster-wide migration lease: its record, the fencing verdict, and the engine taking it
// (a second mover refused naming the holder, a dead holder named by the next refusal).
#include "agent/lease.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "agent/engine.h"
#include "agent_fake_cluster.h"

namespace slotguard::agent {
namespace {

using testing::FakeCluster;

std::string TempDir() {
  std::string tmpl = std::filesystem::temp_directory_path() / "slotguard-lease-test-XXXXXX";
  return mkdtemp(tmpl.data());
}

int SetSlots(FakeCluster& fake) {
  int n = 0;
  for (const auto& c : fake.log()) n += c.argv.size() > 1 && c.argv[1] == "SETSLOT" ? 1 : 0;
  return n;
}

TEST(AgentLease, RecordRoundTripsAndTheScriptsConcatenationIsValidJson) {
  LeaseHolder h{42, "db-host-1", 4711, "r20261126T065248261", "/var/lib/slotguard", 1764140000123};
  // The acquire script writes '{"token":' .. token .. ',' .. tail.
  const std::string stored = "{\"token\":42," + LeaseHolderTail(h);
  EXPECT_EQ(stored, FormatLeaseHolder(h));
  auto back = ParseLeaseHolder(stored);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->token, 42);
  EXPECT_EQ(back->host, "db-host-1");
  EXPECT_EQ(back->pid, 4711);
  EXPECT_EQ(back->run, "r20261126T065248261");
  EXPECT_EQ(back->journal, "/var/lib/slotguard");
  EXPECT_EQ(back->since_ms, 1764140000123);
  EXPECT_EQ(back->Describe(),
            "host db-host-1, pid 4711, run r20261126T065248261, journal /var/lib/slotguard, since "
            "2025-11-26 06:53:20 UTC (token 42)");
  EXPECT_FALSE(ParseLeaseHolder("not json"));
  EXPECT_FALSE(ParseLeaseHolder("{\"host\":\"x\"}"));  // no token
}

TEST(AgentLease, FenceTrustsARecentRenewalOnlyAndNeverOnePastThreeQuartersOfTheTtl) {
  using std::chrono::milliseconds;
  const milliseconds ttl(30000);
  EXPECT_EQ(JudgeFence(milliseconds(0), ttl), FenceVerdict::kHeld);
  EXPECT_EQ(JudgeFence(milliseconds(9999), ttl), FenceVerdict::kHeld);
  EXPECT_EQ(JudgeFence(milliseconds(10000), ttl), FenceVerdict::kRenewNow);
  EXPECT_EQ(JudgeFence(milliseconds(22499), ttl), FenceVerdict::kRenewNow);
  EXPECT_EQ(JudgeFence(milliseconds(22500), ttl), FenceVerdict::kExpired);
  EXPECT_EQ(JudgeFence(milliseconds(60000), ttl), FenceVerdict::kExpired);
}

TEST(AgentLease, ASecondHolderIsRefusedAndALostLeaseFailsTheCheckNamingTheNewHolder) {
  FakeCluster fake;
  LeaseOptions short_ttl;
  short_ttl.ttl = std::chrono::milliseconds(90);
  short_ttl.run = "first";
  Lease a(fake, {fake.node(0).endpoint}, short_ttl, "/journals/a");
  ASSERT_TRUE(a.Acquire());
  EXPECT_FALSE(a.Check());
  LeaseOptions other;
  other.run = "second";
  Lease b(fake, {fake.node(1).endpoint}, other, "/journals/b");
  auto refused = b.Acquire();
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("run first, journal /journals/a"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("pid " + std::to_string(::getpid())), std::string::npos);

  // a's TTL ran out (the fake's does not on its own) and b took it: a's next renewal finds out.
  fake.ExpireLease();
  ASSERT_TRUE(b.Acquire());
  std::optional<std::string> lost;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!(lost = a.Check()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(lost);
  EXPECT_NE(lost->find("now held by"), std::string::npos) << *lost;
  EXPECT_NE(lost->find("run second"), std::string::npos) << *lost;
  EXPECT_TRUE(a.Check());  // sticky
  a.Release();             // not ours: b keeps it
  EXPECT_NE(fake.LeaseValue().find("\"run\":\"second\""), std::string::npos);
}

struct Agent {
  Agent(FakeCluster& fake, FakeClock& clock, const std::string& run) : dir(TempDir()) {
    options.seeds = {fake.node(0).endpoint};
    options.journal_dir = dir;
    options.group_slots = 4;
    options.guards.interval = std::chrono::milliseconds(20);
    options.rollback_timeout = std::chrono::seconds(5);
    options.lease.run = run;
    engine = std::make_unique<Engine>(fake, clock, options, observer, &fake);
  }
  ~Agent() {
    engine.reset();
    std::filesystem::remove_all(dir);
  }
  std::string dir;
  EngineOptions options;
  EngineObserver observer;
  std::unique_ptr<Engine> engine;
};

Batch MakeBatch(FakeCluster& fake, std::vector<int> slots, std::string id) {
  return Batch{std::move(id), fake.node(0).id, fake.node(1).endpoint.ToString(), std::move(slots),
               std::nullopt};
}

TEST(AgentLease, ASecondEngineWithAnotherJournalChangesNothingWhileTheFirstHoldsTheLease) {
  FakeCluster fake;
  FakeClock clock;
  Agent first(fake, clock, "run-one");
  Agent second(fake, clock, "run-two");
  auto done = first.engine->RunBatch(MakeBatch(fake, {0, 1, 2, 3}, "one-b1"));
  ASSERT_TRUE(done) << done.error().message;
  ASSERT_EQ(done->state, BatchState::kDone);

  // The first still holds it (a reshard run keeps it across its batches).
  const int setslots = SetSlots(fake);
  auto refused = second.engine->RunBatch(MakeBatch(fake, {4, 5, 6, 7}, "two-b1"));
  ASSERT_FALSE(refused);
  const std::string& msg = refused.error().message;
  EXPECT_NE(msg.find("held by host "), std::string::npos) << msg;
  EXPECT_NE(msg.find("pid " + std::to_string(::getpid()) + ", run run-one, journal " +
                     std::filesystem::path(first.dir).lexically_normal().string() + ", since "),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("Nothing was changed"), std::string::npos) << msg;
  EXPECT_EQ(SetSlots(fake), setslots);
  auto recovered = second.engine->Recover();  // nothing open in its journal: no lease needed
  EXPECT_TRUE(recovered);

  first.engine->ReleaseLease();
  EXPECT_EQ(fake.LeaseValue(), "");
  auto now = second.engine->RunBatch(MakeBatch(fake, {4, 5, 6, 7}, "two-b1"));
  ASSERT_TRUE(now) << now.error().message;
  EXPECT_EQ(now->state, BatchState::kDone);
  EXPECT_GT(SetSlots(fake), setslots);
}

TEST(AgentLease, AHolderThatDiedIsNamedWhenItsOpenSlotsRefuseTheNextBatch) {
  FakeCluster fake;
  FakeClock clock;
  // A holder on another host took the lease, opened slot 10 and died: its TTL ran out.
  LeaseHolder dead{0, "other-host", 999, "r-dead", "/srv/dead-journal", 1764140000000};
  auto took = fake.Handle(fake.node(2).endpoint,
                          {"EVAL", kLeaseAcquireScript, "3", kLeaseKey, kLeaseTokenKey,
                           kLeaseUnreleasedKey, LeaseHolderTail(dead), "30000"});
  ASSERT_TRUE(took);
  ASSERT_EQ(took->elements[0].integer, 1);
  fake.ExpireLease();
  {
    std::lock_guard<std::mutex> lock(fake.mutex());
    fake.node(0).migrating[10] = fake.node(1).id;
    fake.node(1).importing[10] = fake.node(0).id;
  }
  Agent next(fake, clock, "run-next");
  const int setslots = SetSlots(fake);
  auto refused = next.engine->RunBatch(MakeBatch(fake, {20, 21}, "next-b1"));
  ASSERT_FALSE(refused);
  const std::string& msg = refused.error().message;
  EXPECT_NE(msg.find("slot 10 is open"), std::string::npos) << msg;
  EXPECT_NE(msg.find("never released it"), std::string::npos) << msg;
  EXPECT_NE(msg.find("host other-host, pid 999, run r-dead, journal /srv/dead-journal"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("rerun with --journal /srv/dead-journal on other-host"), std::string::npos)
      << msg;
  EXPECT_EQ(SetSlots(fake), setslots);
  next.engine->ReleaseLease();
  EXPECT_EQ(fake.LeaseUnreleased().size(), 1u);  // still the dead one's

  // Once its slot is converged (here by hand), the next batch runs and forgets the dead holder.
  {
    std::lock_guard<std::mutex> lock(fake.mutex());
    fake.node(0).migrating.clear();
    fake.node(1).importing.clear();
  }
  auto ran = next.engine->RunBatch(MakeBatch(fake, {20, 21}, "next-b1"));
  ASSERT_TRUE(ran) << ran.error().message;
  EXPECT_EQ(ran->state, BatchState::kDone);
  next.engine->ReleaseLease();
  EXPECT_TRUE(fake.LeaseUnreleased().empty());
}

}  // namespace
}  // namespace slotguard::agent
