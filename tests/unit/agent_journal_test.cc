#include "agent/journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

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
  ASSERT_NE(state.LastOpenRun(), nullptr);
  EXPECT_EQ(state.LastOpenRun()->id, "r2");
}

TEST(AgentJournal, MissingFileReadsAsEmpty) {
  auto records = Journal::Read("/nonexistent/slotguard-journal");
  ASSERT_TRUE(records);
  EXPECT_TRUE(records->empty());
}

}  // namespace
}  // namespace slotguard::agent
