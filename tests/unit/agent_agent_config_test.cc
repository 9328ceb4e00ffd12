#include "agent/agent_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace slotguard::agent {
namespace {

using ::testing::HasSubstr;

const char* kMinimal = R"(redis:
  seeds: ["127.0.0.1:7000"]
journal_dir: journal
control:
  token_file: control-token
)";

std::string ErrorOf(const std::string& yaml) {
  auto r = ParseAgentConfig(yaml, "agent.yaml", "/etc/sg");
  EXPECT_FALSE(r.has_value()) << "expected an error for:\n" << yaml;
  return r ? "" : r.error().message;
}

TEST(AgentConfigTest, MinimalGetsDefaults) {
  auto c = ParseAgentConfig(kMinimal, "agent.yaml", "/etc/sg");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->seeds.size(), 1u);
  EXPECT_EQ(c->seeds[0].ToString(), "127.0.0.1:7000");
  EXPECT_EQ(c->listen_address, "127.0.0.1:9479");
  EXPECT_EQ(c->journal_dir, "/etc/sg/journal");  // relative to the config file
  EXPECT_EQ(c->control_token_file, "/etc/sg/control-token");
  EXPECT_FALSE(c->webhook.enabled);
  EXPECT_TRUE(c->queue.auto_continue);
  EXPECT_EQ(c->queue.approval_threshold_slots, 1000);
  EXPECT_TRUE(c->engine.guards_enabled);
  EXPECT_FALSE(c->engine.pipeline);
  EXPECT_EQ(c->log_format, "text");
}

TEST(AgentConfigTest, WebConfigFileIsOptionalAndResolved) {
  auto none = ParseAgentConfig(kMinimal, "agent.yaml", "/etc/sg");
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_EQ(none->web_config_file, "");  // plain HTTP
  auto c = ParseAgentConfig(std::string(kMinimal) + "web_config_file: web.yml\n", "agent.yaml",
                            "/etc/sg");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->web_config_file, "/etc/sg/web.yml");  // relative to the config file
}

TEST(AgentConfigTest, FullConfig) {
  auto c = ParseAgentConfig(std::string(kMinimal) + R"(listen_address: "0.0.0.0:19479"
webhook:
  token_file: /abs/webhook-token
  matchers: ['slotguard_action="rollback"', 'severity=~"crit.*"']
  cluster: prod
  max_body_bytes: 2048
engine:
  pipeline: 1
  migrate_timeout: 500ms
  batch_slots: 100
  throttle_per_slot: 200ms
  parallel: 2
  per_target: 3
  on_trip: rollback
  guards: {enabled: off, coverage_grace: 2m, migrate_failures: 7}
queue: {auto_continue: false, approval_threshold_slots: 50}
log: {format: json, level: debug}
shutdown_grace: 5s
)",
                            "agent.yaml", "/etc/sg");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->listen_address, "0.0.0.0:19479");
  EXPECT_TRUE(c->webhook.enabled);
  EXPECT_EQ(c->webhook.token_file, "/abs/webhook-token");
  ASSERT_EQ(c->webhook.rules.matchers.size(), 2u);
  EXPECT_EQ(c->webhook.rules.matchers[1].ToString(), "severity=~\"crit.*\"");
  EXPECT_EQ(*c->webhook.rules.cluster, "prod");
  EXPECT_EQ(c->webhook.max_body_bytes, 2048u);
  EXPECT_EQ(*c->engine.pipeline, 1);
  EXPECT_EQ(*c->engine.migrate_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(c->engine.throttle_per_slot, std::chrono::milliseconds(200));
  EXPECT_EQ(c->engine.parallel, 2);
  EXPECT_EQ(c->engine.per_target, 3);
  EXPECT_EQ(c->engine.on_trip, OnTrip::kRollback);
  EXPECT_FALSE(c->engine.guards_enabled);
  EXPECT_EQ(*c->engine.guards.coverage_grace, std::chrono::seconds(120));
  EXPECT_EQ(*c->engine.guards.migrate_failures, 7);
  EXPECT_FALSE(c->queue.auto_continue);
  EXPECT_EQ(c->queue.approval_threshold_slots, 50);
  EXPECT_EQ(c->log_format, "json");
  EXPECT_EQ(c->shutdown_grace, std::chrono::seconds(5));
}

TEST(AgentConfigTest, WebhookDefaultsToRollbackMatcher) {
  auto c =
      ParseAgentConfig(std::string(kMinimal) + "webhook:\n  token_file: t\n", "agent.yaml", "/d");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->webhook.rules.matchers.size(), 1u);
  EXPECT_EQ(c->webhook.rules.matchers[0].ToString(), "slotguard_action=\"rollback\"");
  EXPECT_EQ(c->webhook.token_file, "/d/t");
}

TEST(AgentConfigTest, ErrorsNameKeyAndLine) {
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "engine:\n  pipelin: 3\n"),
              HasSubstr("agent.yaml:7: engine.pipelin: unknown key"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "engine:\n  pipeline: 0\n"),
              HasSubstr("agent.yaml:7: engine.pipeline: must be between 1 and 100000, got 0"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "engine:\n  on_trip: stop\n"),
              HasSubstr("agent.yaml:7: engine.on_trip: expected finish or rollback"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "engine:\n  per_target: 0\n"),
              HasSubstr("agent.yaml:7: engine.per_target: must be between 1 and 1000, got 0"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "engine:\n  guards: {enabled: maybe}\n"),
              HasSubstr("agent.yaml:7: engine.guards.enabled: expected true or false"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "queue:\n  auto_continue: sometimes\n"),
              HasSubstr("agent.yaml:7: queue.auto_continue"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "listen_address: nowhere\n"),
              HasSubstr("agent.yaml:6: listen_address: \"nowhere\": expected host:port"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "log: {format: xml}\n"),
              HasSubstr("agent.yaml:6: log.format: \"xml\": must be text or json"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "webhook: {matchers: ['x=\"y\"']}\n"),
              HasSubstr("webhook.token_file: required when the webhook is enabled"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "webhook: {token_file: t, matchers: ['=y']}\n"),
              HasSubstr("agent.yaml:6: webhook.matchers[0]: matcher '=y': expected a label name"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "webhook: {token_file: t, matchers: []}\n"),
              HasSubstr("webhook.matchers: must not be empty"));
  EXPECT_THAT(ErrorOf("redis:\n  seeds: []\njournal_dir: j\ncontrol: {token_file: t}\n"),
              HasSubstr("agent.yaml:2: redis.seeds: needs at least one"));
  EXPECT_THAT(ErrorOf("redis:\n  seeds: ['h:0']\njournal_dir: j\ncontrol: {token_file: t}\n"),
              HasSubstr("agent.yaml:2: redis.seeds[0]"));
  EXPECT_THAT(ErrorOf("redis:\n  seeds: ['h:1']\ncontrol: {token_file: t}\n"),
              HasSubstr("agent.yaml:1: journal_dir: required key is missing"));
  EXPECT_THAT(ErrorOf("redis: {seeds: ['h:1']}\njournal_dir: j\n"),
              HasSubstr("control: required key is missing"));
  EXPECT_THAT(ErrorOf("redis: {seeds: ['h:1']\n"), HasSubstr("agent.yaml:"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("agent.yaml: the file is empty"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "shutdown_grace: soon\n"),
              HasSubstr("agent.yaml:6: shutdown_grace: \"soon\" is not a duration"));
}

TEST(AgentConfigTest, TlsFromRedissSeeds) {
  auto plain = ParseAgentConfig(kMinimal, "agent.yaml", "/etc/sg");
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_FALSE(plain->tls);

  auto c = ParseAgentConfig(R"(redis:
  seeds: ["rediss://agent@10.0.0.1:7000", "rediss://10.0.0.2:7000"]
  tls:
    ca_file: tls/ca.pem
    cert_file: /etc/tls/client.pem
    key_file: tls/client.key
    server_name: redis.internal
journal_dir: journal
control:
  token_file: control-token
)",
                            "agent.yaml", "/etc/sg");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c->tls);
  EXPECT_EQ(c->tls->ca_file, "/etc/sg/tls/ca.pem");  // relative to the config file
  EXPECT_EQ(c->tls->cert_file, "/etc/tls/client.pem");
  EXPECT_EQ(c->tls->key_file, "/etc/sg/tls/client.key");
  EXPECT_EQ(c->tls->server_name, "redis.internal");
  EXPECT_FALSE(c->tls->insecure_skip_verify);
  EXPECT_EQ(c->redis_user, "agent");

  auto bare = ParseAgentConfig(
      "redis:\n  seeds: [\"rediss://10.0.0.1:7000\"]\njournal_dir: j\ncontrol: {token_file: t}\n",
      "agent.yaml", "/etc/sg");
  ASSERT_TRUE(bare) << bare.error().message;
  ASSERT_TRUE(bare->tls);
  EXPECT_EQ(bare->tls->ca_file, "");  // the system's trust store

  EXPECT_THAT(
      ErrorOf("redis:\n  seeds: ['h:1']\n  tls: {ca_file: ca.pem}\njournal_dir: j\n"
              "control: {token_file: t}\n"),
      HasSubstr("agent.yaml:3: redis.tls: TLS settings are given but no seed is rediss://"));
  EXPECT_THAT(ErrorOf("redis:\n  seeds: ['rediss://h:1', 'h:2']\njournal_dir: j\n"
                      "control: {token_file: t}\n"),
              HasSubstr("agent.yaml:2: redis.seeds: seeds mix rediss://"));
  EXPECT_THAT(
      ErrorOf("redis:\n  seeds: ['rediss://h:1']\n  tls: {cert_file: c.pem}\n"
              "journal_dir: j\ncontrol: {token_file: t}\n"),
      HasSubstr("agent.yaml:3: redis.tls: a TLS certificate file is given without its key"));
  EXPECT_THAT(ErrorOf("redis:\n  seeds: ['rediss://h:1']\n  tls: {ca: c.pem}\n"
                      "journal_dir: j\ncontrol: {token_file: t}\n"),
              HasSubstr("agent.yaml:3: redis.tls.ca: unknown key"));
}

TEST(AgentConfigTest, ShippedConfigParses) {
  const std::string path = std::string(SLOTGUARD_TEST_DATA) + "/../../config/agent.yaml";
  auto c = LoadAgentConfig(path);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->listen_address, "127.0.0.1:9479");
  EXPECT_TRUE(c->webhook.enabled);
  EXPECT_EQ(c->queue.approval_threshold_slots, 1000);
}

TEST(AgentConfigTest, ComposeConfigParses) {
  const std::string path = std::string(SLOTGUARD_TEST_DATA) + "/../../config/compose/agent.yaml";
  auto c = LoadAgentConfig(path);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->listen_address, "0.0.0.0:9479");
}

}  // namespace
}  // namespace slotguard::agent
