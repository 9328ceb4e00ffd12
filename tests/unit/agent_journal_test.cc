#include "agent/journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "file_size_limit.h"

namespace slotguard::agent {
namespace {

std::string TempDir() {
  std::string tmpl = std::filesystem::temp_directory_path() / "slotguard-journal-test-XXXXXX";
  return mkdtemp(tmpl.data());
}

TEST(AgentJournal, AppendThenReadAndReplay) {
  auto dir = TempDir();
  {
    auto j = Journal::Open(dir);
    ASSERT_TRUE(j) << j.error().message;
    cluster::Endpoint a{"127.0.0.1", 7000}, b{"127.0.0.1", 7001};
    ASSERT_TRUE((*j)->Append(BatchRecord("b1", "ida", a, "idb", b, {1, 2, 3})));
    ASSERT_TRUE((*j)->AppendAll(
        {StepRecord("b1", "importing", {1, 2}), StepRecord("b1", "migrating", {1, 2})}));
    ASSERT_TRUE((*j)->Append(RollbackRecord("b1", RollbackTrigger::kGuard, "coverage")));
  }
  auto records = Journal::Read(dir);
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), 4u);
  auto state = ReplayJournal(*records);
  ASSERT_EQ(state.batches.size(), 1u);
  const auto& b = state.batches[0];
  EXPECT_EQ(b.source, (cluster::Endpoint{"127.0.0.1", 7000}));
  EXPECT_EQ(b.slots, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(b.touched, (std::set<int>{1, 2}));
  EXPECT_TRUE(b.rollback);
  EXPECT_EQ(b.trigger, "guard");
  EXPECT_TRUE(b.open());
  EXPECT_EQ(state.OpenBatches().size(), 1u);
  std::filesystem::remove_all(dir);
}

TEST(AgentJournal, EndedBatchesAreClosedUnlessFailed) {
  std::vector<nlohmann::json> r{
      BatchRecord("b1", "a", {"h", 1}, "b", {"h", 2}, {1}),
      EndRecord("b1", BatchState::kDone, ""),
      BatchRecord("b2", "a", {"h", 1}, "b", {"h", 2}, {2}),
      EndRecord("b2", BatchState::kFailed, "rollback did not finish"),
      BatchRecord("b3", "a", {"h", 1}, "b", {"h", 2}, {3}),
      EndRecord("b3", BatchState::kRolledBack, "guard"),
  };
  auto state = ReplayJournal(r);
  auto open = state.OpenBatches();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0]->id, "b2");
}

TEST(AgentJournal, ReusedBatchIdStartsANewIncarnation) {
  std::vector<nlohmann::json> r{
      BatchRecord("b1", "a", {"h", 1}, "b", {"h", 2}, {1}),
      StepRecord("b1", "importing", {1}),
      EndRecord("b1", BatchState::kDone, ""),
      BatchRecord("b1", "a", {"h", 1}, "b", {"h", 2}, {7}),
  };
  auto state = ReplayJournal(r);
  ASSERT_EQ(state.batches.size(), 1u);
  EXPECT_EQ(state.batches[0].slots, std::vector<int>{7});
  EXPECT_TRUE(state.batches[0].touched.empty());
  EXPECT_TRUE(state.batches[0].open());
}

TEST(AgentJournal, TornLastLineIsSkippedAndTheNextRecordStartsClean) {
  auto dir = TempDir();
  {
    auto j = Journal::Open(dir);
    ASSERT_TRUE(j);
    ASSERT_TRUE((*j)->Append(BatchRecord("b1", "a", {"h", 1}, "b", {"h", 2}, {1})));
  }
  {
    std::ofstream out(dir + "/journal.jsonl", std::ios::app);
    out << R"({"type":"step","batch":"b1","st)";  // kill -9 mid-write
  }
  {
    auto j = Journal::Open(dir);
    ASSERT_TRUE(j);
    ASSERT_TRUE((*j)->Append(EndRecord("b1", BatchState::kDone, "")));
  }
  int skipped = 0;
  auto records = Journal::Read(dir, &skipped);
  ASSERT_TRUE(records);
  EXPECT_EQ(skipped, 1);
  ASSERT_EQ(records->size(), 2u);
  EXPECT_FALSE(ReplayJournal(*records).batches[0].open());
  std::filesystem::remove_all(dir);
}

// A write the filesystem refuses (past RLIMIT_FSIZE here, as on a full disk) leaves nothing of
// the failed records in the file, half a line included, and the next append starts clean.
TEST(AgentJournal, AFailedAppendIsCutBackAndTheNextOneStartsClean) {
  auto dir = TempDir();
  auto j = Journal::Open(dir);
  ASSERT_TRUE(j) << j.error().message;
  cluster::Endpoint a{"127.0.0.1", 7000}, b{"127.0.0.1", 7001};
  ASSERT_TRUE((*j)->Append(BatchRecord("b1", "ida", a, "idb", b, {1, 2})));
  const auto size = std::filesystem::file_size((*j)->path());
  {
    testing::FileSizeLimit limit(size + 10);  // room for a piece of the next line only
    auto w = (*j)->AppendAll(
        {StepRecord("b1", "importing", {1, 2}), StepRecord("b1", "migrating", {1, 2})});
    ASSERT_FALSE(w);
    EXPECT_NE(w.error().message.find("journal " + (*j)->path() + ": write: "), std::string::npos)
        << w.error().message;
  }
  EXPECT_EQ(std::filesystem::file_size((*j)->path()), size);
  ASSERT_TRUE((*j)->Append(StepRecord("b1", "importing", {1, 2})));
  int skipped = -1;
  auto records = Journal::Read(dir, &skipped);
  ASSERT_TRUE(records);
  EXPECT_EQ(skipped, 0);
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[1]["step"], "importing");
  j->reset();
  std::filesystem::remove_all(dir);
}

TEST(AgentJournal, SecondWriterIsRefused) {
  auto dir = TempDir();
  auto first = Journal::Open(dir);
  ASSERT_TRUE(first);
  auto second = Journal::Open(dir);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("in use by another slotguard-agent"), std::string::npos);
  first->reset();
  EXPECT_TRUE(Journal::Open(dir));
  std::filesystem::remove_all(dir);
}

TEST(AgentJournal, RunsAndTheirEnd) {
  std::vector<nlohmann::json> r{
      {{"type", "run"},
       {"run", "r1"},
       {"from", "a"},
       {"to", "b"},
       {"batches", {{{"id", "r1-b1"}, {"slots", {1, 2}}}}}},
      {{"type", "run_end"}, {"run", "r1"}, {"state", "done"}},
      {{"type", "run"},
       {"run", "r2"},
       {"from", "a"},
       {"to", "b"},
       {"batches", nlohmann::json::array()}},
  };
  auto state = ReplayJournal(r);
  ASSERT_EQ(state.runs.size(), 2u);
  EXPECT_EQ(state.runs[0].batches[0].second, (std::vector<int>{1, 2}));
  ASSERT_NE(state.LastUnfinishedRun(), nullptr);
  EXPECT_EQ(state.LastUnfinishedRun()->id, "r2");
}

// Only "done" and "abandoned" finish a run; any other ending leaves it to be resumed.
TEST(AgentJournal, OnlyDoneOrAbandonedFinishesARun) {
  for (const char* end : {"interrupted", "rolled_back", "failed", "done", "abandoned"}) {
    std::vector<nlohmann::json> r{
        {{"type", "run"}, {"run", "r1"}, {"batches", nlohmann::json::array()}},
        {{"type", "run_end"}, {"run", "r1"}, {"state", end}, {"ts", 1700000000123}},
    };
    auto state = ReplayJournal(r);
    ASSERT_EQ(state.runs.size(), 1u);
    EXPECT_EQ(state.runs[0].end_ms, 1700000000123);
    const bool finished = std::string(end) == "done" || std::string(end) == "abandoned";
    EXPECT_EQ(state.LastUnfinishedRun() == nullptr, finished) << end;
  }
}

std::vector<nlohmann::json> LongHistory() {
  cluster::Endpoint a{"127.0.0.1", 7000}, b{"127.0.0.1", 7001};
  std::vector<nlohmann::json> r;
  r.push_back({{"type", "run"},
               {"run", "r1"},
               {"from", "ida"},
               {"to", "idb"},
               {"batches", {{{"id", "old"}, {"slots", {1}}}}}});
  // An incarnation of "old" that a later batch record with the same id replaced.
  r.push_back(BatchRecord("old", "ida", a, "idb", b, {1}));
  r.push_back(StepRecord("old", "importing", {1}));
  for (int i = 0; i < 50; ++i) {
    const std::string id = "done" + std::to_string(i);
    r.push_back(BatchRecord(id, "ida", a, "idb", b, {i, i + 100}));
    r.push_back(StepRecord(id, "importing", {i, i + 100}));
    r.push_back(StepRecord(id, "migrating", {i, i + 100}));
    r.push_back(StepRecord(id, "node_target", {i, i + 100}));
    if (i % 10 == 0) r.push_back(RollbackRecord(id, RollbackTrigger::kGuard, "coverage"));
    r.push_back(EndRecord(id, i % 10 == 0 ? BatchState::kRolledBack : BatchState::kDone, ""));
  }
  r.push_back(BatchRecord("old", "ida", a, "idb", b, {2}));
  r.push_back(EndRecord("old", BatchState::kDone, ""));
  r.push_back({{"type", "run_end"}, {"run", "r1"}, {"state", "done"}});
  r.push_back(StepRecord("orphan", "importing", {9}));  // its batch record was never written
  r.push_back(BatchRecord("failed", "ida", a, "idb", b, {3}));
  r.push_back(StepRecord("failed", "importing", {3}));
  r.push_back(EndRecord("failed", BatchState::kFailed, "rollback did not finish"));
  r.push_back(BatchRecord("open", "ida", a, "idb", b, {4, 5}));
  r.push_back(StepRecord("open", "importing", {4, 5}));
  r.push_back(StepRecord("open", "migrating", {4}));
  return r;
}

TEST(AgentJournal, CompactionKeepsWhatReplayNeeds) {
  const auto records = LongHistory();
  const auto compact = CompactRecords(records);
  // 50 ended batches lose their 150 step records; the replaced incarnation and the orphan go.
  EXPECT_EQ(compact.size(), records.size() - 150 - 2 - 1);
  const auto before = ReplayJournal(records);
  const auto after = ReplayJournal(compact);
  ASSERT_EQ(after.batches.size(), before.batches.size());
  for (const auto& x : before.batches) {
    // A replaced incarnation's batch now appears where its latest record is: compare by id.
    ASSERT_NE(after.FindBatch(x.id), nullptr) << x.id;
    const auto& y = *after.FindBatch(x.id);
    EXPECT_EQ(y.slots, x.slots) << x.id;
    EXPECT_EQ(y.source, x.source) << x.id;
    EXPECT_EQ(y.target_id, x.target_id) << x.id;
    EXPECT_EQ(y.end, x.end) << x.id;
    EXPECT_EQ(y.rollback, x.rollback) << x.id;
    EXPECT_EQ(y.trigger, x.trigger) << x.id;
    EXPECT_EQ(y.reason, x.reason) << x.id;
    // What recovery reads of a batch still open is all there.
    if (x.open()) {
      EXPECT_EQ(y.steps, x.steps) << x.id;
      EXPECT_EQ(y.touched, x.touched) << x.id;
    }
  }
  EXPECT_EQ(after.FindBatch("old")->slots, std::vector<int>{2});
  ASSERT_EQ(after.OpenBatches().size(), 2u);  // "failed" and "open"
  ASSERT_EQ(after.runs.size(), 1u);
  EXPECT_EQ(after.runs[0].end, "done");
  EXPECT_EQ(CompactRecords(compact).size(), compact.size());  // already compact
}

// Appends LongHistory() to the journal of `dir`; returns the file's size then.
std::uintmax_t AppendLongHistory(Journal& journal, const std::string& dir) {
  EXPECT_TRUE(journal.AppendAll(LongHistory()));
  return std::filesystem::file_size(dir + "/journal.jsonl");
}

TEST(AgentJournal, OpenCompactsALargeFileInPlace) {
  auto dir = TempDir();
  const auto path = dir + "/journal.jsonl";
  std::uintmax_t big = 0;
  {
    auto j = Journal::Open(dir);
    ASSERT_TRUE(j) << j.error().message;
    big = AppendLongHistory(**j, dir);
  }
  {
    auto j = Journal::Open(dir);  // under the threshold: untouched
    ASSERT_TRUE(j) << j.error().message;
  }
  EXPECT_EQ(std::filesystem::file_size(path), big);
  {
    auto j = Journal::Open(dir, /*compact_above_bytes=*/1024);
    ASSERT_TRUE(j) << j.error().message;
    // Appending after the compaction goes on at the end of the compacted file.
    ASSERT_TRUE((*j)->Append(EndRecord("open", BatchState::kRolledBack, "operator")));
  }
  EXPECT_LT(std::filesystem::file_size(path), big * 3 / 5);
  EXPECT_FALSE(std::filesystem::exists(path + ".compact"));
  auto records = Journal::Read(dir);
  ASSERT_TRUE(records);
  auto state = ReplayJournal(*records);
  EXPECT_EQ(state.batches.size(), 53u);  // old, done0..49, failed, open
  EXPECT_EQ(state.FindBatch("open")->end, BatchState::kRolledBack);
  EXPECT_EQ(state.OpenBatches().size(), 1u);  // "failed"
  std::filesystem::remove_all(dir);
}

TEST(AgentJournal, AnOpenJournalCompactsInPlaceAndKeepsAppending) {
  auto dir = TempDir();
  const auto path = dir + "/journal.jsonl";
  auto j = Journal::Open(dir);
  ASSERT_TRUE(j) << j.error().message;
  const auto big = AppendLongHistory(**j, dir);
  ASSERT_TRUE((*j)->CompactIfOver(big));  // not over: nothing happens
  EXPECT_EQ(std::filesystem::file_size(path), big);
  ASSERT_TRUE((*j)->CompactIfOver(1024));
  EXPECT_LT(std::filesystem::file_size(path), big * 3 / 5);
  ASSERT_TRUE((*j)->Append(StepRecord("open", "node_target", {4})));
  auto records = Journal::Read(dir);
  ASSERT_TRUE(records);
  auto state = ReplayJournal(*records);
  EXPECT_EQ(state.FindBatch("open")->steps.at("node_target"), std::set<int>{4});
  EXPECT_EQ(state.FindBatch("open")->steps.at("importing"), (std::set<int>{4, 5}));
  j->reset();
  std::filesystem::remove_all(dir);
}

TEST(AgentJournal, MissingFileReadsAsEmpty) {
  auto records = Journal::Read("/nonexistent/slotguard-journal");
  ASSERT_TRUE(records);
  EXPECT_TRUE(records->empty());
}

// A damaged line's slot numbers never reach recovery, which indexes per-slot tables with them.
TEST(AgentJournal, SlotsOutsideTheClusterAreDropped) {
  const auto records = Journal::ParseRecords(
      R"({"type":"batch","batch":"b","slots":[-1,0,16383,16384,1e300,1.5,"7",18446744073709551615]})"
      "\n"
      R"({"type":"step","batch":"b","step":"importing","slots":[5,99999]})"
      "\n");
  const JournalState state = ReplayJournal(records);
  ASSERT_EQ(state.batches.size(), 1u);
  EXPECT_EQ(state.batches[0].slots, (std::vector<int>{0, 16383}));
  EXPECT_EQ(state.batches[0].touched, (std::set<int>{5}));
}

TEST(AgentJournal, ParseRecordsSkipsWhatIsNotARecord) {
  int skipped = 0;
  const auto records =
      Journal::ParseRecords("{\"type\":\"run\"}\n\n[1]\n{\"no\":\"type\"}\n{\"type\":", &skipped);
  EXPECT_EQ(records.size(), 1u);
  EXPECT_EQ(skipped, 3);
}

}  // namespace
}  // namespace slotguard::agent
