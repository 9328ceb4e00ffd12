// BatchRunner against an in-memory cluster of four masters: two pairs with no master in common
// run side by side; a batch that does not end done stops new batches, and the other running
// batch finishes or rolls back as --on-trip says.
#include "agent/batch_runner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "agent/journal.h"
#include "agent_fake_cluster.h"

namespace slotguard::agent {
namespace {

using testing::FakeCluster;

std::vector<int> Range(int first, int last) {
  std::vector<int> out;
  for (int s = first; s <= last; ++s) out.push_back(s);
  return out;
}

// Holds its engine after the first group of slots until released: the test decides what the
// other batch does meanwhile.
class HoldingObserver final : public EngineObserver {
 public:
  void OnSlotsMigrated(int /*slots*/) override {
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait(lock, [this] { return released_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    wake_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool released_ = false;
};

struct RunnerFixture {
  FakeCluster fake{4};
  FakeClock clock;
  NullEngineObserver quiet;
  HoldingObserver holding;
  std::string dir;
  std::shared_ptr<Journal> journal;
  std::vector<std::unique_ptr<Engine>> engines;
  std::vector<PairMove> pairs;  // BatchEnd::batch points into it

  RunnerFixture() {
    std::string tmpl = std::filesystem::temp_directory_path() / "slotguard-runner-test-XXXXXX";
    dir = mkdtemp(tmpl.data());
    journal = std::move(*Journal::Open(dir));
  }
  ~RunnerFixture() {
    engines.clear();
    journal.reset();
    std::filesystem::remove_all(dir);
  }
  Engine* MakeEngine(EngineObserver& observer) {
    EngineOptions o;
    o.seeds = {fake.node(0).endpoint};
    o.journal_dir = dir;
    o.group_slots = 4;
    o.guards.interval = std::chrono::milliseconds(20);
    o.rollback_timeout = std::chrono::seconds(5);
    o.lease.enabled = false;
    o.shared.journal = journal;
    o.reuse_verified_snapshot = false;
    engines.push_back(std::make_unique<Engine>(fake, clock, o, observer, &fake));
    return engines.back().get();
  }
  Batch MakeBatch(const std::string& id, int from, int to, std::vector<int> slots) {
    return Batch{id, fake.node(from).id, fake.node(to).endpoint.ToString(), std::move(slots),
                 std::nullopt};
  }
  PairMove Pair(int from, int to, std::vector<Batch> batches, Engine* engine) {
    return PairMove{fake.node(from).id, fake.node(to).id, std::move(batches), engine};
  }
  bool Owns(int node, int slot) {
    std::lock_guard<std::mutex> lock(fake.mutex());
    return fake.node(0).view[slot] == fake.node(node).id;
  }
};

const BatchEnd* Find(const std::vector<BatchEnd>& ends, const std::string& id) {
  for (const auto& e : ends) {
    if (e.batch->id == id) return &e;
  }
  return nullptr;
}

TEST(BatchRunner, AFailedPreflightStopsNewBatchesWhileTheOtherFinishes) {
  RunnerFixture f;
  // Masters 0..3 own 4096 slots each: 0 -> 1 moves its own slots; 2 -> 3 names a slot of 0.
  std::vector<PairMove> pairs = {
      f.Pair(0, 1, {f.MakeBatch("a1", 0, 1, Range(0, 9)), f.MakeBatch("a2", 0, 1, Range(10, 19))},
             f.MakeEngine(f.quiet)),
      f.Pair(2, 3, {f.MakeBatch("b1", 2, 3, {0})}, f.MakeEngine(f.quiet))};
  BatchRunner runner(RunnerOptions{});
  auto ends = runner.Run(pairs, nullptr);
  ASSERT_EQ(ends.size(), 2u);  // a1 and b1 ran together; a2 never started
  const BatchEnd* a1 = Find(ends, "a1");
  const BatchEnd* b1 = Find(ends, "b1");
  ASSERT_TRUE(a1 && b1);
  ASSERT_TRUE(a1->outcome) << a1->outcome.error().message;
  EXPECT_EQ(a1->outcome->state, BatchState::kDone) << a1->outcome->reason;
  EXPECT_FALSE(b1->outcome);
  EXPECT_TRUE(runner.stopped_new());
  for (int s : Range(0, 9)) EXPECT_TRUE(f.Owns(1, s)) << s;
  for (int s : Range(10, 19)) EXPECT_TRUE(f.Owns(0, s)) << s;
}

// b1 is rolled back (asked before it starts) while a1 is held after its first group; a1 then
// goes on, and ends as `on_trip` says.
std::vector<BatchEnd> RunWithOneRollback(RunnerFixture& f, OnTrip on_trip) {
  Engine* b_engine = f.MakeEngine(f.quiet);
  f.pairs = {f.Pair(0, 1, {f.MakeBatch("a1", 0, 1, Range(0, 39))}, f.MakeEngine(f.holding)),
             f.Pair(2, 3, {f.MakeBatch("b1", 2, 3, Range(8192, 8201))}, b_engine)};
  b_engine->RequestRollback(RollbackTrigger::kOperator, "test", "b1");
  RunnerOptions options;
  options.on_trip = on_trip;
  BatchRunner runner(options);
  return runner.Run(f.pairs, [&](const BatchEnd& e) {
    if (e.batch->id == "b1") f.holding.Release();
  });
}

TEST(BatchRunner, OnTripFinishLetsTheOtherBatchFinish) {
  RunnerFixture f;
  auto ends = RunWithOneRollback(f, OnTrip::kFinish);
  ASSERT_EQ(ends.size(), 2u);
  ASSERT_TRUE(Find(ends, "b1")->outcome);
  EXPECT_EQ(Find(ends, "b1")->outcome->state, BatchState::kRolledBack);
  ASSERT_TRUE(Find(ends, "a1")->outcome);
  EXPECT_EQ(Find(ends, "a1")->outcome->state, BatchState::kDone);
  for (int s : Range(0, 39)) EXPECT_TRUE(f.Owns(1, s)) << s;
  for (int s : Range(8192, 8201)) EXPECT_TRUE(f.Owns(2, s)) << s;
}

TEST(BatchRunner, OnTripRollbackRollsTheOtherBatchBack) {
  RunnerFixture f;
  auto ends = RunWithOneRollback(f, OnTrip::kRollback);
  ASSERT_EQ(ends.size(), 2u);
  ASSERT_TRUE(Find(ends, "a1")->outcome);
  const BatchOutcome& a1 = *Find(ends, "a1")->outcome;
  EXPECT_EQ(a1.state, BatchState::kRolledBack) << a1.reason;
  EXPECT_NE(a1.reason.find("batch b1 of the same run did not finish"), std::string::npos)
      << a1.reason;
  for (int s : Range(0, 39)) EXPECT_TRUE(f.Owns(0, s)) << s;
  for (int s : Range(8192, 8201)) EXPECT_TRUE(f.Owns(2, s)) << s;
}

TEST(ParseOnTrip, KnowsBothAndNamesTheFlag) {
  EXPECT_EQ(*ParseOnTrip("finish"), OnTrip::kFinish);
  EXPECT_EQ(*ParseOnTrip("rollback"), OnTrip::kRollback);
  auto bad = ParseOnTrip("abort");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("--on-trip"), std::string::npos);
}

}  // namespace
}  // namespace slotguard::agent
