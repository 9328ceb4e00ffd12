#include "agent/agent_config.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/listen_address.h"
#include "common/logging.h"
#include "common/yaml_reader.h"

namespace slotguard::agent {

namespace {

using common::YamlFieldError;
using common::YamlReader;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string Resolve(const std::string& base_dir, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_absolute() || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

class ConfigParser {
 public:
  ConfigParser(std::string file, std::string base_dir)
      : reader_(std::move(file)), base_dir_(std::move(base_dir)) {}

  AgentConfig Parse(const std::string& text) {
    AgentConfig config;
    config.file = reader_.file();
    const YAML::Node root = reader_.Parse(text);
    if (!root.IsDefined() || root.IsNull()) {
      throw YamlFieldError(reader_.file() + ": the file is empty");
    }
    reader_.ExpectMap(root, "",
                      {"redis", "listen_address", "web_config_file", "journal_dir", "control",
                       "webhook", "engine", "queue", "log", "shutdown_grace"});
    Redis(Required(root, "redis", ""), config);
    if (root["listen_address"]) {
      const YAML::Node& n = root["listen_address"];
      config.listen_address = reader_.NonEmptyString(n, "listen_address");
      if (auto address = common::ParseListenAddress(config.listen_address); !address) {
        reader_.Fail(n, "listen_address", address.error().message);
      }
    }
    if (root["web_config_file"]) {
      config.web_config_file =
          Resolve(base_dir_, reader_.NonEmptyString(root["web_config_file"], "web_config_file"));
    }
    config.journal_dir = Resolve(
        base_dir_, reader_.NonEmptyString(Required(root, "journal_dir", ""), "journal_dir"));
    const YAML::Node& control = Required(root, "control", "");
    reader_.ExpectMap(control, "control", {"token_file"});
    config.control_token_file = Resolve(
        base_dir_,
        reader_.NonEmptyString(Required(control, "token_file", "control"), "control.token_file"));
    if (root["webhook"]) Webhook(root["webhook"], config.webhook);
    if (root["engine"]) Engine(root["engine"], config.engine);
    if (root["queue"]) Queue(root["queue"], config.queue);
    if (root["log"]) Log(root["log"], config);
    if (root["shutdown_grace"]) {
      config.shutdown_grace = std::chrono::duration_cast<seconds>(
          reader_.Duration(root["shutdown_grace"], "shutdown_grace", seconds(0), seconds(3600)));
    }
    return config;
  }

 private:
  const YAML::Node Required(const YAML::Node& parent, const char* key, const std::string& path) {
    const YAML::Node n = parent[key];
    if (!n) reader_.Fail(parent, path.empty() ? key : path + "." + key, "required key is missing");
    return n;
  }

  void Redis(const YAML::Node& n, AgentConfig& config) {
    reader_.ExpectMap(n, "redis", {"seeds", "user", "password_file", "connect_timeout", "tls"});
    const YAML::Node seeds = Required(n, "seeds", "redis");
    reader_.ExpectSequence(seeds, "redis.seeds");
    std::vector<cluster::SeedAddress> seed_addresses;
    if (seeds.size() == 0) reader_.Fail(seeds, "redis.seeds", "needs at least one host:port");
    for (size_t i = 0; i < seeds.size(); ++i) {
      const std::string path = "redis.seeds[" + std::to_string(i) + "]";
      const std::string text = reader_.NonEmptyString(seeds[i], path);
      auto seed = cluster::ParseSeedAddress(text);
      if (!seed) reader_.Fail(seeds[i], path, seed.error().message);
      if (seed->user) {
        if (config.redis_user && *config.redis_user != *seed->user) {
          reader_.Fail(seeds[i], path, "seeds name different users");
        }
        config.redis_user = seed->user;
      }
      config.seeds.push_back(seed->endpoint);
      seed_addresses.push_back(*seed);
    }
    cluster::TlsOverrides tls;
    if (n["tls"]) tls = Tls(n["tls"]);
    const cluster::TlsSettings tls_settings = cluster::MergeTls({}, tls);
    auto resolved =
        cluster::TlsForSeeds(seed_addresses, tls_settings, tls_settings != cluster::TlsSettings{});
    if (!resolved)
      reader_.Fail(n["tls"] ? n["tls"] : seeds, n["tls"] ? "redis.tls" : "redis.seeds",
                   resolved.error().message);
    config.tls = *resolved;
    if (n["user"]) config.redis_user = reader_.NonEmptyString(n["user"], "redis.user");
    if (n["password_file"]) {
      config.redis_password_file =
          Resolve(base_dir_, reader_.NonEmptyString(n["password_file"], "redis.password_file"));
    }
    if (n["connect_timeout"]) {
      config.connect_timeout = reader_.Duration(n["connect_timeout"], "redis.connect_timeout",
                                                milliseconds(10), milliseconds(60'000));
    }
  }

  cluster::TlsOverrides Tls(const YAML::Node& n) {
    reader_.ExpectMap(n, "redis.tls",
                      {"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"});
    cluster::TlsOverrides tls;
    auto file = [&](const char* key) -> std::optional<std::string> {
      if (!n[key]) return std::nullopt;
      return Resolve(base_dir_, reader_.NonEmptyString(n[key], std::string("redis.tls.") + key));
    };
    tls.ca_file = file("ca_file");
    tls.cert_file = file("cert_file");
    tls.key_file = file("key_file");
    if (n["server_name"]) {
      tls.server_name = reader_.NonEmptyString(n["server_name"], "redis.tls.server_name");
    }
    if (n["insecure_skip_verify"]) {
      tls.insecure_skip_verify =
          reader_.Bool(n["insecure_skip_verify"], "redis.tls.insecure_skip_verify");
    }
    return tls;
  }

  void Webhook(const YAML::Node& n, WebhookSettings& webhook) {
    reader_.ExpectMap(
        n, "webhook",
        {"enabled", "token_file", "matchers", "cluster", "cluster_label", "max_body_bytes"});
    webhook.enabled = n["enabled"] ? reader_.Bool(n["enabled"], "webhook.enabled") : true;
    if (n["token_file"]) {
      webhook.token_file =
          Resolve(base_dir_, reader_.NonEmptyString(n["token_file"], "webhook.token_file"));
    } else if (webhook.enabled) {
      reader_.Fail(n, "webhook.token_file", "required when the webhook is enabled");
    }
    if (n["matchers"]) {
      const YAML::Node& list = n["matchers"];
      reader_.ExpectSequence(list, "webhook.matchers");
      if (list.size() == 0) {
        reader_.Fail(list, "webhook.matchers",
                     "must not be empty (an empty list would act on every alert)");
      }
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string path = "webhook.matchers[" + std::to_string(i) + "]";
        auto m = LabelMatcher::Parse(reader_.String(list[i], path));
        if (!m) reader_.Fail(list[i], path, m.error().message);
        webhook.rules.matchers.push_back(std::move(*m));
      }
    } else {
      webhook.rules.matchers.push_back(LabelMatcher::Equal("slotguard_action", "rollback"));
    }
    if (n["cluster"])
      webhook.rules.cluster = reader_.NonEmptyString(n["cluster"], "webhook.cluster");
    if (n["cluster_label"]) {
      webhook.rules.cluster_label =
          reader_.NonEmptyString(n["cluster_label"], "webhook.cluster_label");
    }
    if (n["max_body_bytes"]) {
      webhook.max_body_bytes = static_cast<size_t>(
          reader_.Int(n["max_body_bytes"], "webhook.max_body_bytes", 1024, 64 << 20));
    }
  }

  void Engine(const YAML::Node& n, EngineSettings& e) {
    reader_.ExpectMap(n, "engine",
                      {"pipeline", "migrate_bytes", "migrate_timeout", "getkeys_count",
                       "group_slots", "batch_slots", "replace", "guards", "throttle_per_slot",
                       "lease_ttl", "parallel", "per_target", "on_trip"});
    if (n["parallel"]) e.parallel = reader_.Int(n["parallel"], "engine.parallel", 0, 1000);
    if (n["per_target"]) e.per_target = reader_.Int(n["per_target"], "engine.per_target", 1, 1000);
    if (n["on_trip"]) {
      auto on_trip = ParseOnTrip(reader_.NonEmptyString(n["on_trip"], "engine.on_trip"));
      if (!on_trip) reader_.Fail(n["on_trip"], "engine.on_trip", "expected finish or rollback");
      e.on_trip = *on_trip;
    }
    if (n["pipeline"]) e.pipeline = reader_.Int(n["pipeline"], "engine.pipeline", 1, 100'000);
    if (n["migrate_bytes"]) {
      e.migrate_bytes = reader_.Int(n["migrate_bytes"], "engine.migrate_bytes", 0, 1 << 30);
    }
    if (n["migrate_timeout"]) {
      e.migrate_timeout = reader_.Duration(n["migrate_timeout"], "engine.migrate_timeout",
                                           milliseconds(10), milliseconds(600'000));
    }
    if (n["getkeys_count"]) {
      e.getkeys_count = reader_.Int(n["getkeys_count"], "engine.getkeys_count", 1, 1'000'000);
    }
    if (n["group_slots"]) {
      e.group_slots = reader_.Int(n["group_slots"], "engine.group_slots", 1, 500);
    }
    if (n["batch_slots"]) {
      e.batch_slots = reader_.Int(n["batch_slots"], "engine.batch_slots", 1, 500);
    }
    if (n["replace"]) e.replace = reader_.Bool(n["replace"], "engine.replace");
    if (n["lease_ttl"]) {
      e.lease_ttl = reader_.Duration(n["lease_ttl"], "engine.lease_ttl", milliseconds(500),
                                     milliseconds(3'600'000));
    }
    if (n["throttle_per_slot"]) {
      e.throttle_per_slot = reader_.Duration(n["throttle_per_slot"], "engine.throttle_per_slot",
                                             milliseconds(0), milliseconds(60'000));
    }
    if (n["guards"]) {
      const YAML::Node& g = n["guards"];
      reader_.ExpectMap(g, "engine.guards",
                        {"enabled", "coverage_grace", "migrate_failures", "convergence_timeout"});
      if (g["enabled"]) e.guards_enabled = reader_.Bool(g["enabled"], "engine.guards.enabled");
      e.guards = ReadGuardOverrides(reader_, g, "engine.guards");
    }
  }

  void Queue(const YAML::Node& n, QueueSettings& q) {
    reader_.ExpectMap(n, "queue", {"auto_continue", "approval_threshold_slots"});
    if (n["auto_continue"])
      q.auto_continue = reader_.Bool(n["auto_continue"], "queue.auto_continue");
    if (n["approval_threshold_slots"]) {
      q.approval_threshold_slots = static_cast<int>(
          reader_.Int(n["approval_threshold_slots"], "queue.approval_threshold_slots", 0, 16384));
    }
  }

  void Log(const YAML::Node& n, AgentConfig& config) {
    reader_.ExpectMap(n, "log", {"format", "level"});
    auto checked = [this, &n](const char* key, auto check) {
      const std::string path = std::string("log.") + key;
      auto value = check(reader_.String(n[key], path));
      if (!value) reader_.Fail(n[key], path, value.error().message);
      return *value;
    };
    if (n["format"]) config.log_format = checked("format", common::CheckLogFormat);
    if (n["level"]) config.log_level = checked("level", common::CheckLogLevel);
  }

  YamlReader reader_;
  std::string base_dir_;
};

}  // namespace

cluster::Result<AgentConfig> ParseAgentConfig(const std::string& text, const std::string& file,
                                              const std::string& base_dir) {
  try {
    return ConfigParser(file, base_dir).Parse(text);
  } catch (const YamlFieldError& e) {
    return cluster::MakeError(e.what());
  } catch (const YAML::Exception& e) {
    return cluster::MakeError(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

cluster::Result<AgentConfig> LoadAgentConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return cluster::MakeError("cannot read " + path + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  const std::string dir = std::filesystem::absolute(path).parent_path().string();
  return ParseAgentConfig(text.str(), path, dir);
}

}  // namespace slotguard::agent
