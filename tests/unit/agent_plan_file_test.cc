#include "agent/plan_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace slotguard::agent {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(const std::string& yaml, int max_batch_slots = 500) {
  auto r = ParsePlanFile(yaml, "plan.yaml", max_batch_slots);
  EXPECT_FALSE(r.has_value()) << "expected an error for:\n" << yaml;
  return r ? "" : r.error().message;
}

TEST(PlanFileTest, ParsesRangesSlotsAndGuards) {
  auto r = ParsePlanFile(R"(
batches:
  - id: first
    from: 127.0.0.1:7000
    to: 127.0.0.1:7001
    ranges: ["0-3", "10", 12]
  - from: abc
    to: def
    slots: 200
    guards: {coverage_grace: 30s, migrate_failures: 3, convergence_timeout: 2m}
)",
                         "plan.yaml");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->batches.size(), 2u);
  EXPECT_EQ(r->batches[0].batch.id, "first");
  EXPECT_EQ(r->batches[0].batch.slots, (std::vector<int>{0, 1, 2, 3, 10, 12}));
  EXPECT_FALSE(r->batches[0].slot_count);
  EXPECT_EQ(r->batches[0].line, 3);
  EXPECT_EQ(r->batches[1].batch.id, "");
  EXPECT_EQ(*r->batches[1].slot_count, 200);
  EXPECT_TRUE(r->batches[1].batch.slots.empty());
  ASSERT_TRUE(r->batches[1].batch.guards);
  EXPECT_EQ(r->batches[1].batch.guards->coverage_grace, std::chrono::seconds(30));
  EXPECT_EQ(r->batches[1].batch.guards->migrate_failures, 3);
  EXPECT_EQ(r->batches[1].batch.guards->convergence_timeout, std::chrono::seconds(120));
  EXPECT_EQ(r->batches[1].line, 7);
}

TEST(PlanFileTest, YamlGarbageNamesFileAndLine) {
  const std::string e = ErrorOf("batches:\n  - from: a\n    to: [b\n    slots: 3\n");
  EXPECT_THAT(e, HasSubstr("plan.yaml:"));
  EXPECT_THAT(e, HasSubstr("not valid YAML"));
  EXPECT_THAT(ErrorOf("{{{{ ::: ]]"), HasSubstr("plan.yaml:1: not valid YAML"));
  EXPECT_THAT(ErrorOf("just a string"), HasSubstr("plan.yaml:1: expected a map"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("plan.yaml: the plan is empty"));
}

TEST(PlanFileTest, UnknownAndDuplicateKeysAreErrors) {
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n    slots: 3\n    form: c\n"),
              HasSubstr("plan.yaml:5: batches[0].form: unknown key"));
  EXPECT_THAT(ErrorOf("batches: []\nextra: 1\n"), HasSubstr("plan.yaml:2: extra: unknown key"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    from: c\n    to: b\n    slots: 3\n"),
              HasSubstr("plan.yaml:3: batches[0].from: duplicate key"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n    slots: 3\n    guards: {grace: 3}\n"),
              HasSubstr("plan.yaml:5: batches[0].guards.grace: unknown key"));
}

TEST(PlanFileTest, MissingAndMistypedFields) {
  EXPECT_THAT(ErrorOf("batches:\n  - to: b\n    slots: 3\n"),
              HasSubstr("plan.yaml:2: batches[0].from: required key is missing"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n"),
              HasSubstr("batches[0]: give exactly one of `slots: N` or `ranges: [...]`"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n    slots: 3\n    ranges: [1]\n"),
              HasSubstr("give exactly one"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n    slots: many\n"),
              HasSubstr("plan.yaml:4: batches[0].slots: expected an integer, got 'many'"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: a\n    slots: 3\n"),
              HasSubstr("plan.yaml:3: batches[0].to: is the same node as `from`"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: [a]\n    to: b\n    slots: 3\n"),
              HasSubstr("batches[0].from: expected a string"));
  EXPECT_THAT(ErrorOf("batches:\n  - id: 'bad id'\n    from: a\n    to: b\n    slots: 3\n"),
              HasSubstr("plan.yaml:2: batches[0].id: 'bad id' is not a valid id"));
  EXPECT_THAT(
      ErrorOf("batches:\n  - from: a\n    to: b\n    slots: 3\n    guards: {coverage_grace: 5x}\n"),
      HasSubstr("plan.yaml:5: batches[0].guards.coverage_grace: \"5x\" is not a duration like "
                "250ms, 8s, 5m or 1h (units: ms, s, m, h)"));
  EXPECT_THAT(ErrorOf("batches: {}\n"), HasSubstr("plan.yaml:1: batches: expected a list"));
  EXPECT_THAT(ErrorOf("batches: []\n"), HasSubstr("the plan has no batches"));
}

TEST(PlanFileTest, SlotRangesAreChecked) {
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n    ranges: ['16384']\n"),
              HasSubstr("plan.yaml:4: batches[0].ranges[0]: slot 16384 is out of range"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n    ranges: ['5-16400']\n"),
              HasSubstr("out of range (0..16383)"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n    ranges: ['-1']\n"),
              HasSubstr("expected a slot N or a range A-B"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n    ranges: ['9-3']\n"),
              HasSubstr("range 9-3 is reversed (write 3-9)"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n    ranges: ['1-5', '5']\n"),
              HasSubstr("batches[0].ranges[1]: slot 5 is named twice"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n    ranges: []\n"),
              HasSubstr("names no slots"));
}

TEST(PlanFileTest, OverlappingBatchesNameBothLines) {
  const std::string e = ErrorOf(
      "batches:\n"
      "  - from: a\n    to: b\n    ranges: ['0-10']\n"
      "  - from: a\n    to: c\n    ranges: ['20', '10-12']\n");
  EXPECT_THAT(e, HasSubstr("plan.yaml:7: batches[1].ranges[1]: slot 10 is also in batches[0] "
                           "(line 2): batches overlap"));
}

TEST(PlanFileTest, BatchOverLimit) {
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n    ranges: ['0-500']\n"),
              HasSubstr("plan.yaml:4: batches[0].ranges: more than 500 slots in one batch"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n    slots: 501\n"),
              HasSubstr("plan.yaml:4: batches[0].slots: 501 slots in one batch; at most 500"));
  EXPECT_TRUE(ParsePlanFile("batches:\n  - from: a\n    to: b\n    ranges: ['0-499']\n", "p"));
  EXPECT_THAT(ErrorOf("batches:\n  - from: a\n    to: b\n    slots: 20\n", 10),
              HasSubstr("at most 10"));
}

TEST(PlanFileTest, DuplicateIds) {
  EXPECT_THAT(ErrorOf("batches:\n  - {id: x, from: a, to: b, slots: 1}\n"
                      "  - {id: x, from: a, to: b, slots: 1}\n"),
              HasSubstr("plan.yaml:3: batches[1].id: 'x' is used by another batch"));
}

TEST(PlanFileTest, ShippedExampleParses) {
  const std::string path = std::string(SLOTGUARD_TEST_DATA) + "/../../config/plan.example.yaml";
  auto r = LoadPlanFile(path);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->batches.size(), 2u);
  EXPECT_EQ(r->batches[0].batch.slots.size(), 101u);
  EXPECT_EQ(*r->batches[1].slot_count, 200);
}

TEST(PlanFileTest, MissingFile) {
  auto r = LoadPlanFile("/nonexistent/plan.yaml");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("cannot read /nonexistent/plan.yaml"));
}

}  // namespace
}  // namespace slotguard::agent

namespace slotguard::agent {
namespace {

// Three masters: A owns 0-99, B 100-199, C 200-16383.
ClusterSnapshot ThreeMasters() {
  const std::string text =
      "aaaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-99\n"
      "bbbb 127.0.0.1:7001@17001 master - 0 0 2 connected 100-199\n"
      "cccc 127.0.0.1:7002@17002 master - 0 0 3 connected 200-16383\n";
  auto nodes = cluster::ParseClusterNodes(text);
  EXPECT_TRUE(nodes);
  std::vector<NodeReport> reports;
  for (const auto& self : *nodes) {
    NodeReport report;
    report.endpoint = self.endpoint;
    cluster::NodesView view;
    view.reporter_id = self.id;
    view.reporter = self.endpoint;
    view.nodes = *nodes;
    for (auto& n : view.nodes) n.flags.myself = n.id == self.id;
    report.view = view;
    reports.push_back(report);
  }
  return BuildSnapshot(reports);
}

TEST(PlanFileResolveTest, SlotCountPicksLowestFreeSlotsOfTheSource) {
  auto file = ParsePlanFile(
      "batches:\n"
      "  - {from: 127.0.0.1:7000, to: 127.0.0.1:7001, slots: 5}\n"
      "  - {from: aaaa, to: cccc, ranges: ['2-3']}\n"
      "  - {from: 127.0.0.1:7000, to: 127.0.0.1:7002, slots: 2}\n",
      "plan.yaml");
  ASSERT_TRUE(file) << file.error().message;
  auto plan = ResolvePlanFile(*file, ThreeMasters());
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->batches[0].slots, (std::vector<int>{0, 1, 4, 5, 6}));
  EXPECT_EQ(plan->batches[1].slots, (std::vector<int>{2, 3}));
  EXPECT_EQ(plan->batches[2].slots, (std::vector<int>{7, 8}));
}

TEST(PlanFileResolveTest, TooFewSlotsAndUnknownNode) {
  auto file =
      ParsePlanFile("batches:\n  - {from: 127.0.0.1:7001, to: aaaa, slots: 101}\n", "p.yaml");
  ASSERT_TRUE(file);
  auto plan = ResolvePlanFile(*file, ThreeMasters());
  ASSERT_FALSE(plan);
  EXPECT_THAT(plan.error().message,
              HasSubstr("p.yaml:2: batches[0].slots: node 127.0.0.1:7001 has only 100 slots"));
  file = ParsePlanFile("batches:\n  - {from: 10.0.0.1:1, to: aaaa, slots: 1}\n", "p.yaml");
  ASSERT_TRUE(file);
  plan = ResolvePlanFile(*file, ThreeMasters());
  ASSERT_FALSE(plan);
  EXPECT_THAT(plan.error().message, HasSubstr("unknown node '10.0.0.1:1'"));
}

}  // namespace
}  // namespace slotguard::agent

namespace slotguard::agent {
namespace {

TEST(PlanFileFormatTest, ReadsBackAsTheSameBatches) {
  Plan plan;
  plan.batches.push_back(Batch{"r1-rb1", "aaaa", "bbbb", {0, 1, 2, 5, 7, 8}, std::nullopt});
  plan.batches.push_back(Batch{"r1-rb2", "cccc", "bbbb", {16383}, std::nullopt});
  const std::string text = FormatPlanFile(plan, "made by a test", [](const std::string& id) {
    return id == "aaaa" ? std::string("127.0.0.1:7000") : std::string();
  });
  EXPECT_THAT(text, HasSubstr("# made by a test\n"));
  EXPECT_THAT(text, HasSubstr("from: aaaa  # 127.0.0.1:7000\n"));
  EXPECT_THAT(text, HasSubstr("ranges: [\"0-2\", \"5\", \"7-8\"]"));
  auto parsed = ParsePlanFile(text, "rebalance.yaml");
  ASSERT_TRUE(parsed) << parsed.error().message << "\n" << text;
  ASSERT_EQ(parsed->batches.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(parsed->batches[i].batch.id, plan.batches[i].id);
    EXPECT_EQ(parsed->batches[i].batch.from, plan.batches[i].from);
    EXPECT_EQ(parsed->batches[i].batch.to, plan.batches[i].to);
    EXPECT_EQ(parsed->batches[i].batch.slots, plan.batches[i].slots);
    EXPECT_FALSE(parsed->batches[i].slot_count);
  }
}

}  // namespace
}  // namespace slotguard::agent
