#include "agent/webhook.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "agent/token.h"

namespace slotguard::agent {
namespace {

using ::testing::HasSubstr;

std::string Sample(const std::string& name) {
  std::ifstream in(std::string(SLOTGUARD_TEST_DATA) + "/alertmanager/" + name);
  EXPECT_TRUE(in) << name;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

WebhookRules DefaultRules() {
  WebhookRules rules;
  rules.matchers.push_back(LabelMatcher::Equal("slotguard_action", "rollback"));
  return rules;
}

struct Memory {
  std::set<std::string> seen;
  std::function<bool(const std::string&)> fn() {
    return [this](const std::string& k) { return seen.count(k) > 0; };
  }
  void Remember(const WebhookDecision& d) { seen.insert(d.new_keys.begin(), d.new_keys.end()); }
};

TEST(WebhookParseTest, RealAlertmanagerPayload) {
  auto n = ParseWebhookNotification(Sample("firing_slots_uncovered.json"));
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(n->version, "4");
  EXPECT_EQ(n->status, "firing");
  ASSERT_EQ(n->alerts.size(), 1u);
  EXPECT_EQ(n->alerts[0].Name(), "SlotguardSlotsUncovered");
  EXPECT_EQ(n->alerts[0].fingerprint, "481c09aa76e6a075");
  EXPECT_EQ(n->alerts[0].DedupKey(), "481c09aa76e6a075@2026-11-26T05:54:52Z");
}

TEST(WebhookParseTest, InvalidBodies) {
  EXPECT_THAT(ParseWebhookNotification("not json").error().message, HasSubstr("not valid JSON"));
  EXPECT_THAT(ParseWebhookNotification("[1]").error().message, HasSubstr("JSON object"));
  EXPECT_THAT(ParseWebhookNotification(R"({"alerts": []})").error().message,
              HasSubstr("missing \"version\""));
  EXPECT_THAT(ParseWebhookNotification(R"({"version": "3", "alerts": []})").error().message,
              HasSubstr("unsupported payload version \"3\""));
  EXPECT_THAT(ParseWebhookNotification(R"({"version": "4"})").error().message,
              HasSubstr("missing \"alerts\" array"));
  EXPECT_THAT(ParseWebhookNotification(
                  R"({"version": "4", "alerts": [{"status": "burning", "startsAt": "x"}]})")
                  .error()
                  .message,
              HasSubstr("alerts[0].status must be"));
  EXPECT_THAT(
      ParseWebhookNotification(
          R"({"version":"4","alerts":[{"status":"firing","labels":{"a":1},"startsAt":"x"}]})")
          .error()
          .message,
      HasSubstr("alerts[0].labels.a must be a string"));
  EXPECT_THAT(
      ParseWebhookNotification(R"({"version":"4","alerts":[{"status":"firing","labels":{}}]})")
          .error()
          .message,
      HasSubstr("alerts[0].startsAt must be a string"));
}

TEST(WebhookDecisionTest, FiringMatchingAlertActsOnce) {
  Memory memory;
  auto n = ParseWebhookNotification(Sample("firing_slots_uncovered.json"));
  ASSERT_TRUE(n);
  WebhookDecision d = DecideWebhook(*n, DefaultRules(), memory.fn());
  EXPECT_TRUE(d.act);
  EXPECT_THAT(d.reason, HasSubstr("SlotguardSlotsUncovered"));
  EXPECT_THAT(d.reason, HasSubstr("covers only 16383"));
  ASSERT_EQ(d.new_keys.size(), 1u);
  memory.Remember(d);
  // Alertmanager repeats the notification (repeat_interval, another replica): no second act.
  WebhookDecision again = DecideWebhook(*n, DefaultRules(), memory.fn());
  EXPECT_FALSE(again.act);
  EXPECT_THAT(again.reason, HasSubstr("already acted"));
}

TEST(WebhookDecisionTest, ResolvedDoesNotAct) {
  Memory memory;
  auto n = ParseWebhookNotification(Sample("resolved_slots_uncovered.json"));
  ASSERT_TRUE(n);
  WebhookDecision d = DecideWebhook(*n, DefaultRules(), memory.fn());
  EXPECT_FALSE(d.act);
  EXPECT_EQ(d.reason, "only resolved alerts");
}

TEST(WebhookDecisionTest, NonMatchingAlertIgnored) {
  Memory memory;
  auto n = ParseWebhookNotification(Sample("firing_other_alert.json"));
  ASSERT_TRUE(n);
  WebhookDecision d = DecideWebhook(*n, DefaultRules(), memory.fn());
  EXPECT_FALSE(d.act);
  EXPECT_EQ(d.reason, "no firing alert matches the matchers");
}

TEST(WebhookDecisionTest, NewEpisodeAfterResolutionActsAgain) {
  Memory memory;
  auto n = ParseWebhookNotification(Sample("firing_slots_uncovered.json"));
  ASSERT_TRUE(n);
  memory.Remember(DecideWebhook(*n, DefaultRules(), memory.fn()));
  n->alerts[0].starts_at = "2026-11-26T07:00:00Z";  // fired again later: a new startsAt
  EXPECT_TRUE(DecideWebhook(*n, DefaultRules(), memory.fn()).act);
}

TEST(WebhookDecisionTest, TwoAlertsOneNotificationAndClusterLabel) {
  auto n = ParseWebhookNotification(Sample("firing_two_alerts_cluster_label.json"));
  ASSERT_TRUE(n);
  Memory memory;
  WebhookRules rules = DefaultRules();
  rules.cluster = "prod-a";
  WebhookDecision d = DecideWebhook(*n, rules, memory.fn());
  EXPECT_TRUE(d.act);
  EXPECT_EQ(d.new_keys.size(), 2u);
  rules.cluster = "prod-b";
  Memory fresh;
  d = DecideWebhook(*n, rules, fresh.fn());
  EXPECT_FALSE(d.act);
  EXPECT_EQ(d.reason, "firing alerts are for another cluster");
  // One of the two already acted: the other still does.
  rules.cluster.reset();
  Memory partial;
  partial.seen.insert(n->alerts[0].DedupKey());
  d = DecideWebhook(*n, rules, partial.fn());
  EXPECT_TRUE(d.act);
  EXPECT_EQ(d.new_keys, (std::vector<std::string>{n->alerts[1].DedupKey()}));
}

TEST(WebhookDecisionTest, DedupKeyWithoutFingerprintHashesLabels) {
  WebhookAlert a;
  a.labels = {{"alertname", "X"}, {"node", "1"}};
  a.starts_at = "t";
  WebhookAlert b = a;
  b.labels["node"] = "2";
  EXPECT_NE(a.DedupKey(), b.DedupKey());
  EXPECT_EQ(a.DedupKey(), WebhookAlert(a).DedupKey());
  EXPECT_THAT(a.DedupKey(), HasSubstr("@t"));
}

TEST(LabelMatcherTest, ParsesAlertmanagerSyntax) {
  std::map<std::string, std::string> labels{{"slotguard_action", "rollback"},
                                            {"severity", "critical"}};
  EXPECT_TRUE(LabelMatcher::Parse("slotguard_action=\"rollback\"")->Matches(labels));
  EXPECT_TRUE(LabelMatcher::Parse("slotguard_action=rollback")->Matches(labels));
  EXPECT_FALSE(LabelMatcher::Parse("slotguard_action!=\"rollback\"")->Matches(labels));
  EXPECT_TRUE(LabelMatcher::Parse("severity=~\"crit.*\"")->Matches(labels));
  EXPECT_FALSE(LabelMatcher::Parse("severity=~\"crit\"")->Matches(labels));  // anchored
  EXPECT_TRUE(LabelMatcher::Parse("severity!~\"warn.*\"")->Matches(labels));
  EXPECT_TRUE(LabelMatcher::Parse("missing=\"\"")->Matches(labels));
  EXPECT_FALSE(LabelMatcher::Parse("x"));
  EXPECT_FALSE(LabelMatcher::Parse("=\"a\""));
  EXPECT_FALSE(LabelMatcher::Parse("a=~\"(\""));
  EXPECT_FALSE(LabelMatcher::Parse("a=\"b"));
}

TEST(AlertMemoryTest, BoundedInInsertionOrder) {
  AlertMemory memory(2);
  memory.Add("a");
  memory.Add("b");
  memory.Add("a");
  memory.Add("c");
  EXPECT_FALSE(memory.Contains("a"));
  EXPECT_TRUE(memory.Contains("b"));
  EXPECT_TRUE(memory.Contains("c"));
}

class WebhookHandlerTest : public ::testing::Test {
 protected:
  WebhookHandlerTest()
      : webhook_("s3cret", DefaultRules(),
                 Webhook::Callbacks{
                     [this](const std::string& k) { return memory_.seen.count(k) > 0; },
                     [this](const std::string& reason, const std::vector<std::string>& keys) {
                       acted_.push_back(reason);
                       memory_.seen.insert(keys.begin(), keys.end());
                       return std::string("rolled back");
                     },
                     [this](const std::string& result) { counts_[result]++; }}) {}

  common::HttpResponse Post(const std::string& auth, const std::string& body) {
    common::HttpRequest r;
    r.method = "POST";
    r.path = "/api/v1/alertmanager";
    r.authorization = auth;
    r.body = body;
    // As the HTTP server runs them: the auth hook first, then the handler.
    if (auto refused = webhook_.Authorize(r)) return *refused;
    return webhook_.Handle(r);
  }

  Memory memory_;
  std::vector<std::string> acted_;
  std::map<std::string, int> counts_;
  Webhook webhook_;
};

TEST_F(WebhookHandlerTest, TokenValidationAndDecisions) {
  const std::string firing = Sample("firing_slots_uncovered.json");
  EXPECT_EQ(Post("", firing).status, 401);
  EXPECT_EQ(Post("Bearer wrong", firing).status, 401);
  EXPECT_EQ(Post("Bearer s3cret-and-more", firing).status, 401);
  EXPECT_EQ(Post("Basic s3cret", firing).status, 401);
  EXPECT_TRUE(acted_.empty());
  EXPECT_EQ(counts_["rejected"], 4);

  common::HttpResponse bad = Post("Bearer s3cret", "{\"version\": \"4\"");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("not valid JSON"));
  EXPECT_EQ(counts_["rejected"], 5);

  common::HttpResponse ok = Post("Bearer s3cret", firing);
  EXPECT_EQ(ok.status, 200);
  EXPECT_THAT(ok.body, HasSubstr("accepted"));
  ASSERT_EQ(acted_.size(), 1u);
  EXPECT_EQ(counts_["accepted"], 1);

  common::HttpResponse repeat = Post("bearer s3cret", firing);  // scheme is case-insensitive
  EXPECT_EQ(repeat.status, 200);
  EXPECT_THAT(repeat.body, HasSubstr("ignored"));
  EXPECT_EQ(Post("Bearer s3cret", Sample("resolved_slots_uncovered.json")).status, 200);
  EXPECT_EQ(acted_.size(), 1u);
  EXPECT_EQ(counts_["ignored"], 2);
}

TEST(TokenTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", ""));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
  EXPECT_FALSE(ConstantTimeEquals(std::string("ab\0", 3), "ab"));  // padding is not a match
}

TEST(TokenTest, BearerMatches) {
  EXPECT_TRUE(BearerMatches("Bearer tok", "tok"));
  EXPECT_TRUE(BearerMatches("BEARER  tok ", "tok"));
  EXPECT_FALSE(BearerMatches("Bearer", "tok"));
  EXPECT_FALSE(BearerMatches("tok", "tok"));
  EXPECT_FALSE(BearerMatches("Bearer TOK", "tok"));
}

TEST(TokenTest, ReadTokenFile) {
  const std::string path = ::testing::TempDir() + "/slotguard-token-test";
  { std::ofstream(path) << "  abc123 \nsecond line\n"; }
  EXPECT_EQ(*ReadTokenFile(path), "abc123");
  { std::ofstream(path) << "\n"; }
  auto empty = ReadTokenFile(path);
  ASSERT_FALSE(empty);
  EXPECT_THAT(empty.error().message, HasSubstr("is empty"));
  auto missing = ReadTokenFile(path + "-missing");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("cannot read token file"));
}

}  // namespace
}  // namespace slotguard::agent
