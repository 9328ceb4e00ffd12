// The engine end to end against an in-memory cluster: done, guard trip and rollback, operator
// rollback, preflight refusal, and recovery from the journal after a crash.
#include "agent/engine.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "agent/journal.h"
#include "agent/step_hooks.h"
#include "agent_fake_cluster.h"
#include "file_size_limit.h"

namespace slotguard::agent {
namespace {

using testing::FakeCluster;

std::string TempDir() {
  std::string tmpl = std::filesystem::temp_directory_path() / "slotguard-engine-test-XXXXXX";
  return mkdtemp(tmpl.data());
}

class RecordingObserver : public EngineObserver {
 public:
  void OnState(const std::string&, BatchState s) override {
    std::lock_guard<std::mutex> lock(mutex_);
    states.push_back(s);
  }
  void OnRollback(RollbackTrigger t) override {
    std::lock_guard<std::mutex> lock(mutex_);
    rollbacks.push_back(t);
  }
  void OnSlotsMigrated(int n) override {
    slots += n;
    if (on_slots) on_slots();
  }
  void OnMigrateFailure(const std::string& reason) override {
    std::lock_guard<std::mutex> lock(mutex_);
    failures.push_back(reason);
  }
  void OnJournalWriteFailure() override { ++journal_failures; }
  std::mutex mutex_;
  std::vector<BatchState> states;
  std::vector<RollbackTrigger> rollbacks;
  std::vector<std::string> failures;
  std::atomic<int> slots{0};
  std::atomic<int> journal_failures{0};
  std::function<void()> on_slots;
};

struct EngineFixture {
  FakeCluster fake;
  FakeClock clock;
  RecordingObserver observer;
  std::string dir = TempDir();
  EngineOptions options;

  EngineFixture() {
    options.seeds = {fake.node(0).endpoint};
    options.journal_dir = dir;
    options.group_slots = 4;
    options.guards.migrate_failures = 2;
    options.guards.interval = std::chrono::milliseconds(20);
    options.rollback_timeout = std::chrono::seconds(5);
  }
  ~EngineFixture() { std::filesystem::remove_all(dir); }
  std::unique_ptr<Engine> MakeEngine() {
    return std::make_unique<Engine>(fake, clock, options, observer, &fake);
  }
  Batch MakeBatch(std::vector<int> slots, std::string id = "b1") {
    return Batch{std::move(id), fake.node(0).id, fake.node(1).endpoint.ToString(), std::move(slots),
                 std::nullopt};
  }
  bool OwnedEverywhereBy(int slot, int node) {
    std::lock_guard<std::mutex> lock(fake.mutex());
    for (int n = 0; n < 6; ++n) {
      if (fake.node(n).view[slot] != fake.node(node).id) return false;
    }
    return fake.node(0).migrating.empty() && fake.node(0).importing.empty() &&
           fake.node(1).migrating.empty() && fake.node(1).importing.empty();
  }
  JournalState Journal() {
    auto r = Journal::Read(dir);
    EXPECT_TRUE(r);
    return ReplayJournal(*r);
  }
};

std::vector<int> Range(int first, int last) {
  std::vector<int> out;
  for (int s = first; s <= last; ++s) out.push_back(s);
  return out;
}

TEST(AgentEngine, RunBatchMovesTheSlotsAndJournalsDone) {
  EngineFixture f;
  for (int s : Range(0, 9)) f.fake.AddKeys(s, 3);
  auto engine = f.MakeEngine();
  auto out = engine->RunBatch(f.MakeBatch(Range(0, 9)));
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->state, BatchState::kDone) << out->reason;
  EXPECT_EQ(out->slots_moved, 10);
  EXPECT_EQ(out->keys_moved, 30);
  for (int s : Range(0, 9)) EXPECT_TRUE(f.OwnedEverywhereBy(s, 1)) << s;
  EXPECT_EQ(f.observer.slots.load(), 10);
  EXPECT_EQ(f.observer.states,
            (std::vector<BatchState>{BatchState::kPreflight, BatchState::kMigrating,
                                     BatchState::kVerifying, BatchState::kDone}));
  engine.reset();  // flushes the last record
  auto j = f.Journal();
  ASSERT_EQ(j.batches.size(), 1u);
  EXPECT_EQ(j.batches[0].end, BatchState::kDone);
  EXPECT_EQ(j.batches[0].touched.size(), 10u);
}

// Records the steps the engine names; the first time it reaches `hold` it waits until released.
class RecordingHooks final : public StepHooks {
 public:
  void Reached(const std::string& point, const std::function<bool()>& released) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      points.push_back(point);
    }
    if (point != hold || released_at_hold) return;  // the engine passes mid_keys repeatedly
    while (!released()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    released_at_hold = true;
  }
  bool Watches(const std::string& point) const override { return point == "mid_keys"; }
  std::vector<std::string> Points() {
    std::lock_guard<std::mutex> lock(mutex_);
    return points;
  }
  std::string hold;
  std::atomic<bool> released_at_hold{false};

 private:
  std::mutex mutex_;
  std::vector<std::string> points;
};

TEST(AgentEngine, StepHooksHearEveryNamedStepOfABatch) {
  EngineFixture f;
  for (int s : Range(0, 9)) f.fake.AddKeys(s, 4);
  auto hooks = std::make_shared<RecordingHooks>();
  f.options.step_hooks = hooks;
  auto out = f.MakeEngine()->RunBatch(f.MakeBatch(Range(0, 9)));
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->state, BatchState::kDone) << out->reason;
  const auto points = hooks->Points();
  for (const char* want : {"after_importing", "mid_keys", "after_target_node"}) {
    EXPECT_NE(std::find(points.begin(), points.end(), want), points.end()) << want;
  }
  EXPECT_EQ(std::find(points.begin(), points.end(), "before_rollback"), points.end());
}

TEST(AgentEngine, AHoldAtAStepEndsWhenARollbackIsAsked) {
  EngineFixture f;
  for (int s : Range(0, 9)) f.fake.AddKeys(s, 4);
  auto hooks = std::make_shared<RecordingHooks>();
  hooks->hold = "mid_keys";
  f.options.step_hooks = hooks;
  auto engine = f.MakeEngine();
  std::thread asker([&] {
    while (true) {
      auto p = hooks->Points();
      if (std::find(p.begin(), p.end(), "mid_keys") != p.end()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    engine->RequestRollback(RollbackTrigger::kOperator, "test");
  });
  auto out = engine->RunBatch(f.MakeBatch(Range(0, 9)));
  asker.join();
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_TRUE(hooks->released_at_hold);
  EXPECT_EQ(out->state, BatchState::kRolledBack) << out->reason;
  for (int s : Range(0, 9)) EXPECT_TRUE(f.OwnedEverywhereBy(s, 0)) << s;
}

TEST(AgentStepHooks, PauseSpecsParseAndBadItemsAreSkipped) {
  auto p = ParseStepPauses("mid_keys:500,after_importing@3:20,bad,:5,x:0,y@0:9");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].point, "mid_keys");
  EXPECT_EQ(p[0].nth, 1);
  EXPECT_EQ(p[0].ms, 500);
  EXPECT_EQ(p[1].point, "after_importing");
  EXPECT_EQ(p[1].nth, 3);
  EXPECT_EQ(p[1].ms, 20);
  EXPECT_TRUE(ParseStepPauses("").empty());
}

// CLUSTER INFO read from replicas: only cluster snapshots do that (the guards read CLUSTER
// NODES, the epoch fence reads CLUSTER INFO of the source and the target, both masters).
int SnapshotReadsOfReplicas(FakeCluster& fake) {
  std::set<std::string> replicas;
  for (int n = 3; n < 6; ++n) replicas.insert(fake.node(n).id);
  int count = 0;
  for (const auto& c : fake.log()) {
    count += replicas.count(c.node) && c.argv.size() >= 2 && c.argv[0] == "CLUSTER" &&
             c.argv[1] == "INFO";
  }
  return count;
}

TEST(AgentEngine, ABatchRightAfterAnotherReusesTheSnapshotThatVerifiedIt) {
  EngineFixture f;
  auto engine = f.MakeEngine();
  ASSERT_TRUE(engine->RunBatch(f.MakeBatch(Range(0, 3), "b1")));
  f.fake.ClearLog();
  auto b2 = engine->RunBatch(f.MakeBatch(Range(4, 7), "b2"));
  ASSERT_TRUE(b2) << b2.error().message;
  EXPECT_EQ(b2->state, BatchState::kDone) << b2->reason;
  // Preflight took b1's verifying snapshot; only the verification read the nodes.
  EXPECT_EQ(SnapshotReadsOfReplicas(f.fake), 3);
  f.fake.ClearLog();
  f.clock.Advance(std::chrono::seconds(1));  // too old: preflight reads the cluster again
  auto b3 = engine->RunBatch(f.MakeBatch(Range(8, 11), "b3"));
  ASSERT_TRUE(b3) << b3.error().message;
  EXPECT_EQ(b3->state, BatchState::kDone) << b3->reason;
  EXPECT_EQ(SnapshotReadsOfReplicas(f.fake), 3 + 3);
}

// An ACL user's MIGRATE permissions are probed before the first batch of a source and target,
// not before every batch: the run's credentials do not change between them.
TEST(AgentEngine, MigratePermissionsAreProbedOncePerSourceAndTarget) {
  EngineFixture f;
  f.options.credentials = cluster::Credentials{"mover", "secret"};
  auto engine = f.MakeEngine();
  auto probes = [&] {
    int n = 0;
    for (const auto& c : f.fake.log()) {
      if (c.argv[0] == "MIGRATE" && c.argv.back() == "{slotguard}:migrate-permission-probe") ++n;
    }
    return n;
  };
  auto b1 = engine->RunBatch(f.MakeBatch(Range(0, 3), "b1"));
  ASSERT_TRUE(b1) << b1.error().message;
  EXPECT_EQ(b1->state, BatchState::kDone) << b1->reason;
  EXPECT_EQ(probes(), 1);
  auto b2 = engine->RunBatch(f.MakeBatch(Range(4, 7), "b2"));
  ASSERT_TRUE(b2) << b2.error().message;
  EXPECT_EQ(b2->state, BatchState::kDone) << b2->reason;
  EXPECT_EQ(probes(), 1);
}

// Each master's server is read (INFO server, with its settings) and logged once per engine,
// however many batches it runs.
TEST(AgentEngine, EachMastersServerIsReadAndLoggedOnce) {
  auto previous = spdlog::default_logger();
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  sink->set_pattern("%v");
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink));
  {
    EngineFixture f;
    auto engine = f.MakeEngine();
    ASSERT_TRUE(engine->RunBatch(f.MakeBatch(Range(0, 3), "b1")));
    f.clock.Advance(std::chrono::seconds(1));  // b2 reads the cluster again
    ASSERT_TRUE(engine->RunBatch(f.MakeBatch(Range(4, 7), "b2")));
    std::map<std::string, int> info_server;
    for (const auto& c : f.fake.log()) {
      if (c.argv.size() == 2 && c.argv[0] == "INFO" && c.argv[1] == "server") ++info_server[c.node];
    }
    EXPECT_EQ(info_server.size(), 3u);  // the masters
    for (const auto& [node, n] : info_server) EXPECT_EQ(n, 1) << node;
    for (int n = 0; n < 3; ++n) {
      const std::string line =
          "node " + f.fake.node(n).endpoint.ToString() + " runs redis 7.0.15\n";
      size_t count = 0;
      for (size_t at = log.str().find(line); at != std::string::npos;
           at = log.str().find(line, at + 1)) {
        ++count;
      }
      EXPECT_EQ(count, 1u) << log.str();
    }
  }
  spdlog::set_default_logger(previous);
}

TEST(AgentEngine, MigrateFailuresTripTheGuardAndRollBack) {
  EngineFixture f;
  for (int s : Range(0, 11)) f.fake.AddKeys(s, 2);
  const auto keys_before = f.fake.TotalKeys();
  // The second group's MIGRATEs fail.
  f.fake.before_command = nullptr;
  auto engine = f.MakeEngine();
  f.observer.on_slots = [&] { f.fake.FailMigrates(1000000); };
  auto out = engine->RunBatch(f.MakeBatch(Range(0, 11)));
  ASSERT_TRUE(out) << out.error().message;
  f.fake.FailMigrates(0);
  EXPECT_EQ(out->state, BatchState::kFailed) << out->reason;  // the rollback needs MIGRATE too
  // Let MIGRATE work again and recover: everything goes back to the source.
  auto rec = engine->Recover();
  ASSERT_TRUE(rec) << rec.error().message;
  ASSERT_EQ(rec->batches.size(), 1u);
  EXPECT_EQ(rec->batches[0].state, BatchState::kRolledBack);
  for (int s : Range(0, 11)) EXPECT_TRUE(f.OwnedEverywhereBy(s, 0)) << s;
  EXPECT_EQ(f.fake.TotalKeys(), keys_before);
  EXPECT_EQ(f.fake.node(0).keys.size(), static_cast<size_t>(keys_before));
}

TEST(AgentEngine, GuardTripRollsBackFinishedGroupsWithTheReverseProtocol) {
  EngineFixture f;
  for (int s : Range(0, 11)) f.fake.AddKeys(s, 2);
  const auto keys_before = f.fake.TotalKeys();
  auto engine = f.MakeEngine();
  int failures_left = 3;  // three IOERRs in the second group, then MIGRATE works again
  f.observer.on_slots = [&] {
    if (failures_left > 0) f.fake.FailMigrates(std::exchange(failures_left, 0));
  };
  auto out = engine->RunBatch(f.MakeBatch(Range(0, 11)));
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->state, BatchState::kRolledBack) << out->reason;
  EXPECT_EQ(out->tripped_guard, "migrate_failures");
  EXPECT_EQ(out->trigger, RollbackTrigger::kGuard);
  ASSERT_EQ(f.observer.rollbacks.size(), 1u);
  EXPECT_EQ(f.observer.failures.size(), 3u);
  for (int s : Range(0, 11)) EXPECT_TRUE(f.OwnedEverywhereBy(s, 0)) << s;
  EXPECT_EQ(f.fake.node(0).keys.size(), static_cast<size_t>(keys_before));
  // The first group went to the target and came back with IMPORTING on the source.
  bool reversed = false;
  for (const auto& c : f.fake.log()) {
    if (c.node == f.fake.node(0).id && c.argv.size() > 4 && c.argv[3] == "IMPORTING")
      reversed = true;
  }
  EXPECT_TRUE(reversed);
  engine.reset();
  auto j = f.Journal();
  EXPECT_EQ(j.batches[0].end, BatchState::kRolledBack);
  EXPECT_TRUE(j.batches[0].rollback);
}

TEST(AgentEngine, OperatorRollbackFromAnotherThread) {
  EngineFixture f;
  for (int s : Range(0, 7)) f.fake.AddKeys(s, 1);
  auto engine = f.MakeEngine();
  f.observer.on_slots = [&] {
    std::thread([&] { engine->RequestRollback(RollbackTrigger::kOperator, "stop it"); }).join();
  };
  auto out = engine->RunBatch(f.MakeBatch(Range(0, 7)));
  ASSERT_TRUE(out);
  EXPECT_EQ(out->state, BatchState::kRolledBack);
  EXPECT_EQ(out->trigger, RollbackTrigger::kOperator);
  EXPECT_NE(out->reason.find("stop it"), std::string::npos);
  for (int s : Range(0, 7)) EXPECT_TRUE(f.OwnedEverywhereBy(s, 0)) << s;
}

TEST(AgentEngine, GuardsOffIgnoreMigrateFailures) {
  EngineFixture f;
  f.options.guards.enabled = false;
  for (int s : Range(0, 11)) f.fake.AddKeys(s, 2);
  auto engine = f.MakeEngine();
  int failures_left = 3;  // over the threshold of 2, then MIGRATE works again
  f.observer.on_slots = [&] {
    if (failures_left > 0) f.fake.FailMigrates(std::exchange(failures_left, 0));
  };
  auto out = engine->RunBatch(f.MakeBatch(Range(0, 11)));
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->state, BatchState::kDone) << out->reason;
  EXPECT_FALSE(out->tripped_guard);
  EXPECT_EQ(f.observer.failures.size(), 3u);
  for (int s : Range(0, 11)) EXPECT_TRUE(f.OwnedEverywhereBy(s, 1)) << s;
}

TEST(AgentEngine, RollbackRequestedBeforeTheBatchStartsIsKeptForIt) {
  EngineFixture f;
  for (int s : Range(0, 7)) f.fake.AddKeys(s, 1);
  auto engine = f.MakeEngine();
  engine->RequestRollback(RollbackTrigger::kAlertmanager, "alert fired", "b1");
  auto out = engine->RunBatch(f.MakeBatch(Range(0, 7), "b1"));
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->state, BatchState::kRolledBack) << out->reason;
  EXPECT_EQ(out->trigger, RollbackTrigger::kAlertmanager);
  EXPECT_NE(out->reason.find("alert fired"), std::string::npos);
  EXPECT_EQ(f.observer.slots.load(), 0);
  for (int s : Range(0, 7)) EXPECT_TRUE(f.OwnedEverywhereBy(s, 0)) << s;
}

TEST(AgentEngine, PendingRollbackForAnotherOrAFinishedBatchIsDropped) {
  EngineFixture f;
  for (int s : Range(0, 7)) f.fake.AddKeys(s, 1);
  auto engine = f.MakeEngine();
  engine->RequestRollback(RollbackTrigger::kOperator, "for b0", "b0");
  auto out = engine->RunBatch(f.MakeBatch(Range(0, 3), "b1"));
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->state, BatchState::kDone) << out->reason;
  // Too late for b1 (it returned): not kept for a later run of the same id.
  engine->RequestRollback(RollbackTrigger::kOperator, "late", "b1");
  out = engine->RunBatch(f.MakeBatch(Range(4, 7), "b1"));
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->state, BatchState::kDone) << out->reason;
  for (int s : Range(0, 7)) EXPECT_TRUE(f.OwnedEverywhereBy(s, 1)) << s;
}

TEST(AgentEngine, RequestStopLeavesTheJournalOpenAndRecoveryConverges) {
  EngineFixture f;
  for (int s : Range(0, 11)) f.fake.AddKeys(s, 2);
  const auto keys_before = f.fake.TotalKeys();
  auto engine = f.MakeEngine();
  f.observer.on_slots = [&] { std::thread([&] { engine->RequestStop(); }).join(); };
  auto out = engine->RunBatch(f.MakeBatch(Range(0, 11)));
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_TRUE(out->stopped);
  EXPECT_EQ(out->state, BatchState::kFailed);
  EXPECT_NE(out->reason.find("stopped on request"), std::string::npos) << out->reason;
  EXPECT_TRUE(f.observer.rollbacks.empty());  // nothing rolled back
  EXPECT_LT(f.observer.slots.load(), 12);     // it stopped before the end
  // Sticky: nothing else runs on this engine.
  EXPECT_FALSE(engine->RunBatch(f.MakeBatch(Range(100, 101), "b2")));
  EXPECT_FALSE(engine->Recover());
  engine.reset();
  auto j = f.Journal();
  ASSERT_EQ(j.batches.size(), 1u);
  EXPECT_FALSE(j.batches[0].end);  // open: the next start converges it
  auto rec = f.MakeEngine()->Recover();
  ASSERT_TRUE(rec) << rec.error().message;
  ASSERT_EQ(rec->batches.size(), 1u);
  EXPECT_EQ(f.fake.TotalKeys(), keys_before);
  const int owner = rec->batches[0].state == BatchState::kDone ? 1 : 0;
  for (int s : Range(0, 11)) EXPECT_TRUE(f.OwnedEverywhereBy(s, owner)) << s;
}

// SETSLOT commands sent for any of `slots` from the fake's log position `from` on.
int SetSlotsAfter(FakeCluster& fake, size_t from, const std::set<int>& slots) {
  auto log = fake.log();
  int n = 0;
  for (size_t i = from; i < log.size(); ++i) {
    const auto& argv = log[i].argv;
    if (argv.size() > 3 && argv[1] == "SETSLOT" && slots.count(std::stoi(argv[2]))) ++n;
  }
  return n;
}

// Hazard 4: the journal refuses the records of the second group's SETSLOT NODE round (as a full
// disk would). The keys of that group already moved under its durable "migrating" record; its
// SETSLOT NODE and everything after it do not run, nothing is rolled back (the rollback would
// need the journal too), the failure is counted, and recovery converges the batch later.
TEST(AgentEngine, AJournalRecordThatFailsStopsTheBatchBeforeItsStep) {
  EngineFixture f;
  for (int s : Range(0, 11)) f.fake.AddKeys(s, 2);
  const auto keys_before = f.fake.TotalKeys();
  auto engine = f.MakeEngine();
  std::unique_ptr<testing::FileSizeLimit> full;
  size_t mark = 0;
  f.observer.on_slots = [&] {
    if (full) return;
    mark = f.fake.log().size();
    full = std::make_unique<testing::FileSizeLimit>(
        std::filesystem::file_size(f.dir + "/journal.jsonl"));
  };
  auto out = engine->RunBatch(f.MakeBatch(Range(0, 11)));
  ASSERT_TRUE(full);
  full->Lift();
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->state, BatchState::kFailed);
  ASSERT_TRUE(out->journal_error);
  EXPECT_NE(out->journal_error->find(f.dir + "/journal.jsonl: write: "), std::string::npos)
      << *out->journal_error;
  EXPECT_NE(out->reason.find("journal write failed"), std::string::npos) << out->reason;
  EXPECT_FALSE(out->stopped);
  EXPECT_EQ(f.observer.journal_failures.load(), 1);
  EXPECT_TRUE(f.observer.rollbacks.empty());
  EXPECT_EQ(f.observer.slots.load(), 4);  // the first group only
  // Not one SETSLOT for the second or third group after the failure, and the third group was
  // never opened.
  EXPECT_EQ(SetSlotsAfter(f.fake, mark, {4, 5, 6, 7, 8, 9, 10, 11}), 0);
  {
    std::lock_guard<std::mutex> lock(f.fake.mutex());
    for (int s : Range(8, 11)) EXPECT_FALSE(f.fake.node(1).importing.count(s)) << s;
  }
  engine.reset();
  auto j = f.Journal();
  ASSERT_EQ(j.batches.size(), 1u);
  EXPECT_FALSE(j.batches[0].end);  // open: the next run converges it
  EXPECT_FALSE(j.batches[0].rollback);
  EXPECT_FALSE(j.batches[0].steps.count("node_target") &&
               j.batches[0].steps.at("node_target").count(4));

  auto rec = f.MakeEngine()->Recover();
  ASSERT_TRUE(rec) << rec.error().message;
  ASSERT_EQ(rec->batches.size(), 1u);
  EXPECT_EQ(f.fake.TotalKeys(), keys_before);
  const int owner = rec->batches[0].state == BatchState::kDone ? 1 : 0;
  for (int s : Range(0, 11)) EXPECT_TRUE(f.OwnedEverywhereBy(s, owner)) << s;
}

// The rollback record itself cannot be written: the rollback does not start (every key is where
// clients find it at that point), the batch stays open, and recovery converges it.
TEST(AgentEngine, ARollbackRecordThatFailsStopsBeforeTheRollback) {
  EngineFixture f;
  for (int s : Range(0, 11)) f.fake.AddKeys(s, 2);
  const auto keys_before = f.fake.TotalKeys();
  // OnRollback runs right before the rollback record is written: the disk fills there.
  class FullOnRollback : public RecordingObserver {
   public:
    std::function<void()> hook;
    void OnRollback(RollbackTrigger t) override {
      RecordingObserver::OnRollback(t);
      hook();
    }
  } observer;
  std::unique_ptr<testing::FileSizeLimit> full;
  size_t mark = 0;
  observer.hook = [&] {
    mark = f.fake.log().size();
    full = std::make_unique<testing::FileSizeLimit>(
        std::filesystem::file_size(f.dir + "/journal.jsonl"));
  };
  observer.on_slots = [&] { f.fake.FailMigrates(1000000); };  // the guard trips
  auto engine = std::make_unique<Engine>(f.fake, f.clock, f.options, observer, &f.fake);
  auto out = engine->RunBatch(f.MakeBatch(Range(0, 11)));
  ASSERT_TRUE(full);
  full->Lift();
  f.fake.FailMigrates(0);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->state, BatchState::kFailed);
  ASSERT_TRUE(out->journal_error);
  EXPECT_EQ(observer.journal_failures.load(), 1);
  EXPECT_EQ(observer.rollbacks.size(), 1u);
  EXPECT_EQ(SetSlotsAfter(f.fake, mark, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}), 0);
  engine.reset();
  auto j = f.Journal();
  ASSERT_EQ(j.batches.size(), 1u);
  EXPECT_FALSE(j.batches[0].end);
  EXPECT_FALSE(j.batches[0].rollback);

  auto rec = f.MakeEngine()->Recover();
  ASSERT_TRUE(rec) << rec.error().message;
  EXPECT_EQ(f.fake.TotalKeys(), keys_before);
  const int owner = rec->batches[0].state == BatchState::kDone ? 1 : 0;
  for (int s : Range(0, 11)) EXPECT_TRUE(f.OwnedEverywhereBy(s, owner)) << s;
}

TEST(AgentEngine, PreflightRefusesAnOpenSlotAndTouchesNothing) {
  EngineFixture f;
  f.fake.node(0).migrating[100] = f.fake.node(1).id;
  auto engine = f.MakeEngine();
  auto out = engine->RunBatch(f.MakeBatch(Range(0, 3)));
  ASSERT_FALSE(out);
  EXPECT_NE(out.error().message.find("slot 100 is open"), std::string::npos) << out.error().message;
  for (const auto& c : f.fake.log()) EXPECT_NE(c.argv[1], "SETSLOT");
}

TEST(AgentEngine, PreflightRefusesASlotTheSourceDoesNotOwn) {
  EngineFixture f;
  auto engine = f.MakeEngine();
  auto out = engine->RunBatch(f.MakeBatch({0, 16000}));
  ASSERT_FALSE(out);
  EXPECT_NE(out.error().message.find("slot 16000 is not owned by source"), std::string::npos);
}

// A crash mid-keys: the journal says the first group was opened, the cluster has its keys on
// both sides. Recovery takes the batch back to the source.
TEST(AgentEngine, RecoverAfterACrashMidKeysRollsBack) {
  EngineFixture f;
  for (int s : Range(0, 7)) f.fake.AddKeys(s, 4);
  const auto keys_before = f.fake.TotalKeys();
  auto& a = f.fake.node(0);
  auto& b = f.fake.node(1);
  {
    auto j = Journal::Open(f.dir);
    ASSERT_TRUE(j);
    ASSERT_TRUE((*j)->Append(BatchRecord("b1", a.id, a.endpoint, b.id, b.endpoint, Range(0, 7))));
    ASSERT_TRUE((*j)->AppendAll(
        {StepRecord("b1", "importing", Range(0, 3)), StepRecord("b1", "migrating", Range(0, 3))}));
  }
  for (int s : Range(0, 3)) {
    b.importing[s] = a.id;
    a.migrating[s] = b.id;
  }
  // Half the keys of slots 0-3 already moved.
  int moved = 0;
  for (auto it = a.keys.begin(); it != a.keys.end();) {
    if (cluster::KeySlot(it->first) <= 3 && (moved++ % 2) == 0) {
      b.keys[it->first] = it->second;
      it = a.keys.erase(it);
    } else {
      ++it;
    }
  }
  auto engine = f.MakeEngine();
  auto rec = engine->Recover();
  ASSERT_TRUE(rec) << rec.error().message;
  ASSERT_EQ(rec->batches.size(), 1u);
  EXPECT_EQ(rec->batches[0].state, BatchState::kRolledBack);
  EXPECT_EQ(rec->batches[0].slots_back, 8);
  for (int s : Range(0, 7)) EXPECT_TRUE(f.OwnedEverywhereBy(s, 0)) << s;
  EXPECT_EQ(a.keys.size(), static_cast<size_t>(keys_before));
  EXPECT_TRUE(b.keys.empty());
  ASSERT_EQ(f.observer.rollbacks, std::vector<RollbackTrigger>{RollbackTrigger::kRecovery});
  engine.reset();
  auto j = f.Journal();
  EXPECT_EQ(j.batches[0].end, BatchState::kRolledBack);
  EXPECT_EQ(j.batches[0].trigger, "recovery");
  // Idempotent: nothing open any more.
  auto again = f.MakeEngine()->Recover();
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->batches.empty());
}

// A crash after the last group's SETSLOT NODE reached the target: every slot can be finished
// forward, so recovery finishes the batch.
TEST(AgentEngine, RecoverFinishesForwardWhenEverySlotIsReady) {
  EngineFixture f;
  for (int s : Range(0, 3)) f.fake.AddKeys(s, 2);
  auto& a = f.fake.node(0);
  auto& b = f.fake.node(1);
  {
    auto j = Journal::Open(f.dir);
    ASSERT_TRUE(j);
    ASSERT_TRUE((*j)->Append(BatchRecord("b1", a.id, a.endpoint, b.id, b.endpoint, Range(0, 3))));
    ASSERT_TRUE((*j)->Append(StepRecord("b1", "node_target", Range(0, 3))));
  }
  for (int s : Range(0, 3)) {
    a.migrating[s] = b.id;
    b.view[s] = b.id;  // NODE reached the target only
  }
  for (auto it = a.keys.begin(); it != a.keys.end();) {
    b.keys[it->first] = it->second;
    it = a.keys.erase(it);
  }
  b.epoch = 10;
  auto rec = f.MakeEngine()->Recover();
  ASSERT_TRUE(rec) << rec.error().message;
  ASSERT_EQ(rec->batches.size(), 1u);
  EXPECT_EQ(rec->batches[0].state, BatchState::kDone);
  EXPECT_EQ(rec->batches[0].slots_forward, 4);
  for (int s : Range(0, 3)) EXPECT_TRUE(f.OwnedEverywhereBy(s, 1)) << s;
  EXPECT_EQ(b.keys.size(), 8u);
  EXPECT_TRUE(f.observer.rollbacks.empty());
}

}  // namespace
}  // namespace slotguard::agent
