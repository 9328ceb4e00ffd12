#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/batch_runner.h"
#include "agent/guard_settings.h"
#include "agent/webhook.h"
#include "cluster/endpoint.h"
#include "cluster/result.h"
#include "cluster/tls_settings.h"

namespace slotguard::agent {

// Engine settings from agent.yaml. Unset fields keep the engine's defaults (engine.h).
struct EngineSettings {
  std::optional<int> pipeline;           // keys per MIGRATE
  std::optional<int64_t> migrate_bytes;  // estimated bytes per MIGRATE (0: pipeline only)
  std::optional<std::chrono::milliseconds> migrate_timeout;
  std::optional<int> getkeys_count;
  std::optional<int> group_slots;
  std::optional<int> batch_slots;  // the largest batch a queued plan may ask for (<= 500)
  std::optional<bool> replace;
  bool guards_enabled = true;
  GuardOverrides guards;  // merged into the engine's defaults (MergeGuards)
  std::optional<std::chrono::milliseconds> lease_ttl;  // the cluster-wide migration lease
  // Test/demo throttle: the daemon waits this long before each slot's first SETSLOT while a
  // batch moves forward (never while rolling back). 0 = off.
  std::chrono::milliseconds throttle_per_slot{0};
  // The queue's batches of one plan run as `rebalance` runs them (agent/batch_runner.h):
  // batches of pairs with no master in common at once, at most `parallel` (0: no cap), a target
  // receiving from at most `per_target` sources at once; `on_trip` decides the other running
  // batches when one trips a guard or fails.
  int parallel = 0;
  int per_target = 1;
  OnTrip on_trip = OnTrip::kFinish;
};

struct QueueSettings {
  // After a restart: true = continue the queue once recovery converged; false = stay paused
  // until `slotguard-agent resume`.
  bool auto_continue = true;
  int approval_threshold_slots = 1000;
};

struct WebhookSettings {
  bool enabled = false;    // true when the `webhook` section is present
  std::string token_file;  // absolute (resolved against the config file's directory)
  WebhookRules rules;
  size_t max_body_bytes = 1 << 20;
};

struct AgentConfig {
  std::string file;  // where it was read from
  std::vector<cluster::Endpoint> seeds;
  std::optional<std::string> redis_user;
  std::string redis_password_file;  // "" = none (REDIS_PASSWORD env is used when set)
  // Set when the seeds are rediss://: redis.tls's files, absolute.
  std::optional<cluster::TlsSettings> tls;
  std::chrono::milliseconds connect_timeout{1000};
  std::string listen_address = "127.0.0.1:9479";
  // exporter-toolkit web config for every HTTP endpoint (TLS, basic auth); absolute, "" = none.
  std::string web_config_file;
  std::string journal_dir;
  std::string control_token_file;
  WebhookSettings webhook;
  EngineSettings engine;
  QueueSettings queue;
  std::string log_format = "text";  // text | json
  std::string log_level = "info";
  std::chrono::seconds shutdown_grace{20};  // SIGTERM waits this long for the current step
};

// Parses agent.yaml text. Relative paths are resolved against `base_dir`. Errors name the
// file, the line and the key.
cluster::Result<AgentConfig> ParseAgentConfig(const std::string& text, const std::string& file,
                                              const std::string& base_dir);
cluster::Result<AgentConfig> LoadAgentConfig(const std::string& path);

}  // namespace slotguard::agent
