#include <gtest/gtest.h>

#include <prometheus/text_serializer.h>

#include <sstream>

#include "exporter/family_set.h"

namespace slotguard::exporter {
namespace {

std::string Text(FamilySet& set) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, set.Take());
  return out.str();
}

TEST(ExporterFamilySet, GroupsSeriesOfOneNameInFirstSeenOrder) {
  FamilySet set;
  set.Gauge("b_metric", "B.", {{"node", "x"}}, 1);
  set.Counter("a_total", "A.", {{"node", "x"}}, 2);
  set.Gauge("b_metric", "B.", {{"node", "y"}}, 3);
  auto families = set.Take();
  ASSERT_EQ(families.size(), 2u);
  EXPECT_EQ(families[0].name, "b_metric");
  EXPECT_EQ(families[0].metric.size(), 2u);
  EXPECT_EQ(families[1].type, prometheus::MetricType::Counter);
  EXPECT_EQ(families[1].metric[0].counter.value, 2);
}

TEST(ExporterFamilySet, DropsDuplicatesBadNamesAndTypeClashes) {
  FamilySet set;
  set.Gauge("m", "M.", {{"node", "x"}}, 1);
  set.Gauge("m", "M.", {{"node", "x"}}, 2);         // same series again
  set.Counter("m", "M.", {{"node", "z"}}, 3);       // same name, other type
  set.Gauge("bad-name", "?", {}, 1);                // not a metric name
  set.Gauge("ok", "?", {{"bad label", "v"}}, 1);    // not a label name
  set.Gauge("ok2", "?", {{"quantile", "0.5"}}, 1);  // reserved for summaries
  EXPECT_EQ(set.dropped(), 5);
  const std::string text = Text(set);
  EXPECT_NE(text.find("m{node=\"x\"} 1"), std::string::npos) << text;
  EXPECT_EQ(text.find("m{node=\"x\"} 2"), std::string::npos) << text;
  EXPECT_EQ(text.find("bad-name"), std::string::npos) << text;
}

TEST(ExporterFamilySet, LabelValuesAreEscaped) {
  FamilySet set;
  set.Gauge("m", "M.", {{"cmd", "we\"ird\\\n"}}, 1);
  EXPECT_NE(Text(set).find(R"(m{cmd="we\"ird\\\n"} 1)"), std::string::npos);
}

TEST(ExporterFamilySet, SummaryHasQuantilesCountAndSum) {
  FamilySet set;
  set.Summary("lat_usec", "L.", {{"cmd", "get"}}, 10, 55.5, {{0.5, 3}, {0.99, 9}});
  const std::string text = Text(set);
  EXPECT_NE(text.find("# TYPE lat_usec summary"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_usec{cmd=\"get\",quantile=\"0.5\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_usec_count{cmd=\"get\"} 10"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_usec_sum{cmd=\"get\"} 55.5"), std::string::npos) << text;
}

TEST(ExporterFamilySet, SanitizeMetricName) {
  EXPECT_EQ(SanitizeMetricName("stats_messages_ping-x_sent"), "stats_messages_ping_x_sent");
  EXPECT_EQ(SanitizeMetricName("9lives"), "_9lives");
}

}  // namespace
}  // namespace slotguard::exporter
