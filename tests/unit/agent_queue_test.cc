#include "agent/queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

namespace slotguard::agent {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

class QueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/slotguard-queue-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Queue> Open() {
    auto q = Queue::Open(dir_, [this] { return now_ms_.load(); });
    EXPECT_TRUE(q) << (q ? "" : q.error().message);
    return q ? std::move(*q) : nullptr;
  }

  static Plan MakePlan(std::vector<std::pair<int, int>> ranges, std::string id = "") {
    Plan plan;
    for (auto [a, b] : ranges) {
      Batch batch;
      batch.id = id;
      batch.from = "127.0.0.1:7000";
      batch.to = "127.0.0.1:7001";
      for (int s = a; s <= b; ++s) batch.slots.push_back(s);
      plan.batches.push_back(batch);
    }
    return plan;
  }

  std::string dir_;
  std::atomic<int64_t> now_ms_{1'700'000'000'000};
};

TEST_F(QueueTest, EnqueueGeneratesIdsAndRunsInOrder) {
  auto q = Open();
  auto plan = q->Enqueue(MakePlan({{0, 9}, {10, 19}}), "plan.yaml", false);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(*plan, "p1");
  auto second = q->Enqueue(MakePlan({{20, 29}}), "plan2.yaml", false);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, "p2");
  auto state = q->Snapshot();
  ASSERT_EQ(state.items.size(), 3u);
  EXPECT_EQ(state.items[0].batch.id, "p1-b1");
  EXPECT_EQ(state.items[1].batch.id, "p1-b2");
  EXPECT_EQ(state.items[2].batch.id, "p2-b1");
  QueueStats stats = q->Stats();
  EXPECT_EQ(stats.batches, 3);
  EXPECT_EQ(stats.slots, 30);

  auto next = q->WaitForRunnable(milliseconds(0));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->batch.id, "p1-b1");
  ASSERT_TRUE(q->MarkRunning("p1-b1"));
  EXPECT_FALSE(q->WaitForRunnable(milliseconds(0)));  // one at a time
  ASSERT_TRUE(q->Finish("p1-b1", BatchState::kDone, "ok"));
  EXPECT_EQ(q->WaitForRunnable(milliseconds(0))->batch.id, "p1-b2");
  EXPECT_EQ(q->Stats().batches, 2);
}

TEST_F(QueueTest, OverlapsAndDuplicateIdsAreRefused) {
  auto q = Open();
  ASSERT_TRUE(q->Enqueue(MakePlan({{0, 9}}, "mine"), "a.yaml", false));
  auto dup = q->Enqueue(MakePlan({{50, 59}}, "mine"), "b.yaml", false);
  ASSERT_FALSE(dup);
  EXPECT_THAT(dup.error().message, HasSubstr("batch id 'mine' is already in the queue"));
  auto overlap = q->Enqueue(MakePlan({{5, 12}}), "c.yaml", false);
  ASSERT_FALSE(overlap);
  EXPECT_THAT(overlap.error().message, HasSubstr("slot 5 is already moved by queued batch mine"));
  EXPECT_EQ(q->Snapshot().items.size(), 1u);  // nothing of a refused plan is kept
  // Once finished, its slots are free again.
  ASSERT_TRUE(q->MarkRunning("mine"));
  ASSERT_TRUE(q->Finish("mine", BatchState::kDone, ""));
  EXPECT_TRUE(q->Enqueue(MakePlan({{5, 12}}), "c.yaml", false));
}

TEST_F(QueueTest, ApprovalHoldsTheQueueAndSurvivesReopen) {
  {
    auto q = Open();
    ASSERT_TRUE(q->Enqueue(MakePlan({{0, 499}, {500, 999}, {1000, 1099}}), "big.yaml", true));
    ASSERT_TRUE(q->Enqueue(MakePlan({{2000, 2009}}), "small.yaml", false));
    EXPECT_FALSE(q->WaitForRunnable(milliseconds(0)));  // the big plan waits, and holds p2
    now_ms_ += 90'000;
    EXPECT_DOUBLE_EQ(q->Stats().approval_wait_seconds, 90.0);
    EXPECT_EQ(q->Snapshot().items[0].DisplayState(), "awaiting_approval");
  }
  // A new process (as after SIGKILL): the queue and the pending approval are still there.
  auto q = Open();
  auto state = q->Snapshot();
  ASSERT_EQ(state.items.size(), 4u);
  EXPECT_TRUE(state.items[0].AwaitingApproval());
  EXPECT_FALSE(q->WaitForRunnable(milliseconds(0)));
  now_ms_ += 10'000;
  EXPECT_DOUBLE_EQ(q->Stats().approval_wait_seconds, 100.0);

  auto wrong = q->Approve("nope");
  ASSERT_FALSE(wrong);
  EXPECT_THAT(wrong.error().message, HasSubstr("no batch or plan 'nope'"));
  auto approved = q->Approve("p1-b2");  // any batch id approves its whole plan
  ASSERT_TRUE(approved) << approved.error().message;
  EXPECT_EQ(approved->size(), 3u);
  EXPECT_EQ(q->Stats().approval_wait_seconds, 0.0);
  EXPECT_EQ(q->WaitForRunnable(milliseconds(0))->batch.id, "p1-b1");
  auto twice = q->Approve("p1");
  ASSERT_FALSE(twice);
  EXPECT_THAT(twice.error().message, HasSubstr("no batch waiting for approval"));
}

TEST_F(QueueTest, PauseResumeAndRunningSurviveReopen) {
  {
    auto q = Open();
    ASSERT_TRUE(q->Enqueue(MakePlan({{0, 9}, {10, 19}}), "a.yaml", false));
    ASSERT_TRUE(q->MarkRunning("p1-b1"));
    ASSERT_TRUE(q->SetPhase("p1-b1", BatchState::kMigrating));
    EXPECT_FALSE(q->SetPhase("p1-b1", BatchState::kDone));  // ends go through Finish
    ASSERT_TRUE(q->MarkRollbackRequested("p1-b1"));
    ASSERT_TRUE(q->Pause("alert"));
  }
  auto q = Open();
  auto running = q->Running();
  ASSERT_TRUE(running);
  EXPECT_EQ(running->batch.id, "p1-b1");
  EXPECT_EQ(running->DisplayState(), "migrating");
  EXPECT_TRUE(running->rollback_requested);
  EXPECT_EQ(running->attempts, 1);
  EXPECT_TRUE(q->Snapshot().paused);
  EXPECT_EQ(q->Snapshot().pause_reason, "alert");
  ASSERT_TRUE(q->Requeue("p1-b1", "recovered"));
  EXPECT_FALSE(q->WaitForRunnable(milliseconds(0)));  // paused
  ASSERT_TRUE(q->Resume());
  EXPECT_EQ(q->WaitForRunnable(milliseconds(0))->batch.id, "p1-b1");
}

TEST_F(QueueTest, CancelAndRevert) {
  auto q = Open();
  ASSERT_TRUE(q->Enqueue(MakePlan({{0, 9}, {10, 19}, {20, 29}}), "a.yaml", false));
  ASSERT_TRUE(q->MarkRunning("p1-b1"));
  ASSERT_TRUE(q->Finish("p1-b1", BatchState::kDone, ""));
  auto cancel_done = q->Cancel("p1-b1", "x");
  ASSERT_FALSE(cancel_done);
  EXPECT_THAT(cancel_done.error().message, HasSubstr("cannot be cancelled"));
  ASSERT_TRUE(q->Cancel("p1-b3", "operator"));
  auto revert = q->InsertRevert("p1-b1", {0, 1, 2});
  ASSERT_TRUE(revert) << revert.error().message;
  EXPECT_EQ(*revert, "p1-b1-revert");
  auto next = q->WaitForRunnable(milliseconds(0));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->batch.id, "p1-b1-revert");  // ahead of p1-b2
  EXPECT_EQ(next->batch.from, "127.0.0.1:7001");
  EXPECT_EQ(next->batch.to, "127.0.0.1:7000");
  EXPECT_EQ(next->batch.slots, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(*q->InsertRevert("p1-b1", {3}), "p1-b1-revert2");
}

TEST_F(QueueTest, AlertMemoryPersists) {
  {
    auto q = Open();
    EXPECT_FALSE(q->AlertSeen("fp@t"));
    ASSERT_TRUE(q->RememberAlerts({"fp@t"}));
    EXPECT_TRUE(q->AlertSeen("fp@t"));
  }
  EXPECT_TRUE(Open()->AlertSeen("fp@t"));
}

TEST_F(QueueTest, SecondDaemonOnTheSameDirIsRefused) {
  auto q = Open();
  auto second = Queue::Open(dir_);
  ASSERT_FALSE(second);
  EXPECT_THAT(second.error().message, HasSubstr("another slotguard-agent daemon"));
  q.reset();
  EXPECT_TRUE(Queue::Open(dir_));
}

TEST_F(QueueTest, DamagedFileIsAnError) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ + "/queue.json") << "{\"version\": 1, \"items\": [";
  auto q = Queue::Open(dir_);
  ASSERT_FALSE(q);
  EXPECT_THAT(q.error().message, HasSubstr("queue.json is damaged"));
}

TEST_F(QueueTest, WriteIsAtomic) {
  auto q = Open();
  ASSERT_TRUE(q->Enqueue(MakePlan({{0, 9}}), "a.yaml", false));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/queue.json.tmp"));
  // A stale temp file from a crash mid-write is ignored and replaced.
  std::ofstream(dir_ + "/queue.json.tmp") << "garbage";
  ASSERT_TRUE(q->Pause("x"));
  q.reset();
  auto again = Open();
  EXPECT_TRUE(again->Snapshot().paused);
  EXPECT_EQ(again->Snapshot().items.size(), 1u);
}

TEST_F(QueueTest, WaitForRunnableWakesOnEnqueue) {
  auto q = Open();
  std::thread t([&] { ASSERT_TRUE(q->Enqueue(MakePlan({{0, 0}}), "a.yaml", false)); });
  std::optional<QueueItem> item;
  for (int i = 0; i < 100 && !item; ++i) item = q->WaitForRunnable(milliseconds(100));
  t.join();
  ASSERT_TRUE(item);
  EXPECT_EQ(item->batch.id, "p1-b1");
}

TEST(QueueItemJsonTest, RoundTrip) {
  QueueItem item;
  item.batch.id = "x";
  item.batch.from = "a";
  item.batch.to = "b";
  item.batch.slots = {1, 2};
  item.batch.guards = GuardOverrides{std::chrono::seconds(30), 3, std::nullopt};
  item.state = BatchState::kRolledBack;
  item.message = "m";
  auto back = ItemFromJson(ToJson(item));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->batch.slots, item.batch.slots);
  EXPECT_EQ(back->batch.guards->coverage_grace, std::chrono::seconds(30));
  EXPECT_EQ(back->batch.guards->migrate_failures, 3);
  EXPECT_FALSE(back->batch.guards->convergence_timeout);
  EXPECT_EQ(back->state, BatchState::kRolledBack);
  EXPECT_FALSE(ItemFromJson(nlohmann::json{{"id", "x"}}));
}

// queue.json as daemons before the one state vocabulary wrote it: "running" with the engine's
// state in "phase". It still loads, each item in its BatchState.
TEST(QueueFile, OldStateVocabularyStillLoads) {
  const std::string text = R"({"version":1,"paused":false,"next_plan_seq":3,"items":[
    {"id":"a","from":"n1","to":"n2","slots":[1],"state":"done","phase":"done"},
    {"id":"b","from":"n1","to":"n2","slots":[2],"state":"running","phase":"migrating"},
    {"id":"c","from":"n1","to":"n2","slots":[3],"state":"running","phase":""},
    {"id":"d","from":"n1","to":"n2","slots":[4],"state":"cancelled","phase":""},
    {"id":"e","from":"n1","to":"n2","slots":[5],"state":"queued","phase":"",
     "needs_approval":true}]})";
  auto state = ParseQueueState(text, "queue.json");
  ASSERT_TRUE(state) << state.error().message;
  ASSERT_EQ(state->items.size(), 5u);
  EXPECT_EQ(state->items[0].state, BatchState::kDone);
  EXPECT_EQ(state->items[1].state, BatchState::kMigrating);
  EXPECT_TRUE(state->items[1].Running());
  EXPECT_EQ(state->items[2].state, BatchState::kPreflight);  // running, phase unknown
  EXPECT_EQ(state->items[3].state, BatchState::kCancelled);
  EXPECT_TRUE(state->items[3].Terminal());
  EXPECT_EQ(state->items[4].DisplayState(), "awaiting_approval");
  // Written back in the one vocabulary.
  EXPECT_EQ(ToJson(state->items[1])["state"], "migrating");
  auto bad = ParseQueueState(
      R"({"version":1,"items":[{"id":"x","from":"a","to":"b","slots":[1],"state":"sleeping"}]})",
      "queue.json");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("unknown state"));
}

// Found while writing tests/fuzz/queue_fuzz: nlohmann casts 1e300 to int unchecked (undefined
// behaviour, UBSan aborts), and a slot out of 0-16383 indexed recovery's per-slot tables.
TEST(QueueFile, NumbersOutOfRangeAreDamageNotUndefinedBehaviour) {
  // A queue.json of one item with `fields` added.
  const auto queue = [](const std::string& fields) {
    return R"({"version":1,"items":[{"id":"b","from":"a","to":"c","state":"queued")" + fields +
           "}]}";
  };
  const auto parse = [](const std::string& text) { return ParseQueueState(text, "queue.json"); };
  EXPECT_TRUE(parse(queue(R"(,"slots":[0,16383])")));
  const std::vector<std::string> bad = {
      queue(R"(,"slots":[16384])"),
      queue(R"(,"slots":[-1])"),
      queue(R"(,"slots":[1e300])"),
      queue(R"(,"slots":7)"),
      queue(R"(,"slots":[1],"attempts":1e300)"),
      queue(R"(,"slots":[1],"started_at_ms":1.5e19)"),
      queue(R"(,"slots":[1],"guards":{"coverage_grace_s":9e18})"),
      queue(R"(,"slots":[1],"guards":{"migrate_failures":-1})"),
      R"({"version":1e300,"items":[]})",
      R"({"version":1,"next_plan_seq":1e300,"items":[]})",
  };
  for (const auto& text : bad) {
    auto state = parse(text);
    ASSERT_FALSE(state) << text;
    EXPECT_THAT(state.error().message, HasSubstr("queue.json")) << text;
  }
  EXPECT_THAT(parse(queue(R"(,"slots":[1],"attempts":1e300)")).error().message,
              HasSubstr("attempts must be a whole number"));
}

// The worker's runs: the head's plan, its batches in order, never two plans, nothing while the
// head runs, waits for approval or the queue is paused.
TEST(RunnableItemsTest, OnePlanAtATimeFromTheHead) {
  auto item = [](std::string id, std::string plan, BatchState state = BatchState::kQueued) {
    QueueItem i;
    i.batch.id = std::move(id);
    i.plan_id = std::move(plan);
    i.state = state;
    return i;
  };
  auto ids = [](const std::vector<QueueItem>& items) {
    std::vector<std::string> out;
    for (const auto& i : items) out.push_back(i.batch.id);
    return out;
  };
  QueueState s;
  s.items = {item("old", "p0", BatchState::kDone),    item("a", "p1"), item("b", "p1"),
             item("x", "p1", BatchState::kCancelled), item("c", "p1"), item("d", "p2")};
  EXPECT_EQ(ids(RunnableItems(s)), (std::vector<std::string>{"a", "b", "c"}));

  s.paused = true;
  EXPECT_TRUE(RunnableItems(s).empty());
  s.paused = false;

  s.items[1].state = BatchState::kMigrating;  // the head runs: the rest waits for its run to end
  EXPECT_TRUE(RunnableItems(s).empty());
  s.items[1].state = BatchState::kDone;
  EXPECT_EQ(ids(RunnableItems(s)), (std::vector<std::string>{"b", "c"}));

  s.items[2].needs_approval = true;  // the head waits for approval: nothing runs
  EXPECT_TRUE(RunnableItems(s).empty());
  s.items[2].approved = true;
  s.items[4].needs_approval = true;  // a later batch of the plan waits: the run stops before it
  EXPECT_EQ(ids(RunnableItems(s)), (std::vector<std::string>{"b"}));
}

TEST_F(QueueTest, MarkRunningRefusesACancelledBatch) {
  auto q = Open();
  ASSERT_TRUE(q->Enqueue(MakePlan({{0, 9}, {10, 19}}), "plan.yaml", false));
  ASSERT_EQ(q->WaitForRunnableItems(milliseconds(0)).size(), 2u);
  ASSERT_TRUE(q->Cancel("p1-b2", "by a test"));
  auto r = q->MarkRunning("p1-b2");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("p1-b2 is cancelled, not queued"));
  EXPECT_EQ(q->Find("p1-b2")->state, BatchState::kCancelled);
}

}  // namespace
}  // namespace slotguard::agent
