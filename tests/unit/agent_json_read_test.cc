#include "agent/json_read.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "agent/control_api.h"
#include "agent/lease.h"
#include "agent/webhook.h"

namespace slotguard::agent {
namespace {

using ::testing::HasSubstr;

std::string Nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonRead, NestingIsBoundedBeforeParsing) {
  EXPECT_TRUE(ParseJson(Nested(kMaxJsonDepth)));
  auto deep = ParseJson(Nested(kMaxJsonDepth + 1));
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.error().message, "nested deeper than 64 levels");
  // Brackets inside strings, escaped quotes included, are text.
  EXPECT_TRUE(
      ParseJson("{\"a\":\"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"}"));
  EXPECT_EQ(ParseJson("{").error().message, "not valid JSON");
}

// Found while writing tests/fuzz/webhook_fuzz (its 64 KiB inputs are too short to reach it):
// nlohmann parses a 200 KB body of '[' fine, then copies it recursively (the webhook's labels)
// and the daemon dies of a stack overflow.
TEST(JsonRead, DeeplyNestedBodiesAreRefusedNotACrash) {
  const std::string body =
      R"({"version":"4","alerts":[{"status":"firing","startsAt":"t","labels":)" + Nested(500'000) +
      "}]}";
  auto webhook = ParseWebhookNotification(body);
  ASSERT_FALSE(webhook);
  EXPECT_THAT(webhook.error().message, HasSubstr("nested deeper than 64 levels"));
  auto control = ParseJsonObject(R"({"yaml":)" + Nested(500'000) + "}");
  ASSERT_FALSE(control);
  EXPECT_THAT(control.error().message, HasSubstr("nested deeper than 64 levels"));
}

TEST(JsonRead, WholeNumbers) {
  using nlohmann::json;
  EXPECT_EQ(WholeNumber(json(5)), 5);
  EXPECT_EQ(WholeNumber(json(-5)), -5);
  EXPECT_EQ(WholeNumber(json(5), 0, 4), std::nullopt);
  EXPECT_EQ(WholeNumber(json::parse("1e300")), std::nullopt);
  EXPECT_EQ(WholeNumber(json::parse("1.0")), std::nullopt);
  EXPECT_EQ(WholeNumber(json::parse("18446744073709551615")), std::nullopt);
  EXPECT_EQ(WholeNumber(json("5")), std::nullopt);
}

// The lease value is a key any client of the cluster can write: 1e300 cast to int64 was
// undefined behaviour (UBSan), now a refused value.
TEST(JsonRead, LeaseValueNumbersAreChecked) {
  EXPECT_TRUE(ParseLeaseHolder(R"({"token":3,"host":"h","pid":1,"since_ms":2})"));
  EXPECT_FALSE(ParseLeaseHolder(R"({"token":1e300,"host":"h"})"));
  EXPECT_FALSE(ParseLeaseHolder(R"({"token":1,"pid":1e300})"));
  EXPECT_FALSE(ParseLeaseHolder(R"({"token":1,"since_ms":"x"})"));
}

}  // namespace
}  // namespace slotguard::agent
