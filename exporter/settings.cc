#include "exporter/settings.h"

#include <cctype>
#include <fstream>
#include <sstream>

#include "cluster/endpoint.h"
#include "common/duration.h"
#include "common/listen_address.h"
#include "common/logging.h"
#include "common/yaml_reader.h"

namespace slotguard::exporter {
namespace {

using cluster::MakeError;
using cluster::Result;
using common::YamlFieldError;
using common::YamlReader;

std::string Quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

// A scalar passed through one of the validators below; its message follows "FILE:LINE: KEY: ".
template <typename Check>
std::string Checked(const YamlReader& reader, const YAML::Node& node, const std::string& key,
                    Check check) {
  auto value = check(reader.String(node, key));
  if (!value) reader.Fail(node, key, value.error().message);
  return *value;
}

void ParseRedis(const YamlReader& reader, const YAML::Node& map, FileSettings& out) {
  reader.ExpectMap(map, "redis", {"addr", "user", "password_file", "tls"});
  if (const YAML::Node v = map["addr"]) {
    std::vector<std::string> addrs;
    if (v.IsSequence()) {
      if (v.size() == 0) reader.Fail(v, "redis.addr", "the list is empty");
      for (size_t i = 0; i < v.size(); ++i) {
        addrs.push_back(
            Checked(reader, v[i], "redis.addr[" + std::to_string(i) + "]", CheckRedisAddr));
      }
    } else {
      addrs.push_back(Checked(reader, v, "redis.addr", CheckRedisAddr));
    }
    out.redis_addrs = std::move(addrs);
  }
  if (const YAML::Node v = map["user"]) out.redis_user = reader.NonEmptyString(v, "redis.user");
  if (const YAML::Node v = map["password_file"]) {
    out.password_file = reader.NonEmptyString(v, "redis.password_file");
  }
  if (const YAML::Node tls = map["tls"]) {
    reader.ExpectMap(tls, "redis.tls",
                     {"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"});
    if (const YAML::Node v = tls["ca_file"]) {
      out.tls.ca_file = reader.NonEmptyString(v, "redis.tls.ca_file");
    }
    if (const YAML::Node v = tls["cert_file"]) {
      out.tls.cert_file = reader.NonEmptyString(v, "redis.tls.cert_file");
    }
    if (const YAML::Node v = tls["key_file"]) {
      out.tls.key_file = reader.NonEmptyString(v, "redis.tls.key_file");
    }
    if (const YAML::Node v = tls["server_name"]) {
      out.tls.server_name = reader.NonEmptyString(v, "redis.tls.server_name");
    }
    if (const YAML::Node v = tls["insecure_skip_verify"]) {
      out.tls.insecure_skip_verify = reader.Bool(v, "redis.tls.insecure_skip_verify");
    }
  }
}

void ParseWeb(const YamlReader& reader, const YAML::Node& map, FileSettings& out) {
  reader.ExpectMap(map, "web", {"listen_address", "telemetry_path", "config_file"});
  if (const YAML::Node v = map["listen_address"]) {
    out.listen_address = Checked(reader, v, "web.listen_address", CheckListenAddress);
  }
  if (const YAML::Node v = map["telemetry_path"]) {
    out.telemetry_path = Checked(reader, v, "web.telemetry_path", CheckTelemetryPath);
  }
  if (const YAML::Node v = map["config_file"]) {
    out.web_config_file = reader.NonEmptyString(v, "web.config_file");
  }
}

void ParseScrape(const YamlReader& reader, const YAML::Node& map, FileSettings& out) {
  reader.ExpectMap(map, "scrape", {"timeout", "stray_keys"});
  if (const YAML::Node v = map["stray_keys"])
    out.scrape_stray_keys = reader.Bool(v, "scrape.stray_keys");
  if (const YAML::Node v = map["timeout"]) {
    auto timeout = ParseScrapeTimeout(reader.String(v, "scrape.timeout"));
    if (!timeout) reader.Fail(v, "scrape.timeout", timeout.error().message);
    out.scrape_timeout = *timeout;
  }
}

void ParseLog(const YamlReader& reader, const YAML::Node& map, FileSettings& out) {
  reader.ExpectMap(map, "log", {"format", "level"});
  if (const YAML::Node v = map["format"]) {
    out.log_format = Checked(reader, v, "log.format", common::CheckLogFormat);
  }
  if (const YAML::Node v = map["level"]) {
    out.log_level = Checked(reader, v, "log.level", common::CheckLogLevel);
  }
}

}  // namespace

Result<std::chrono::milliseconds> ParseScrapeTimeout(std::string_view text) {
  auto ms = common::ParseDuration(text);
  if (!ms) return tl::unexpected(ms.error());
  if (ms->count() <= 0) return MakeError(Quote(text) + " must be above 0");
  if (*ms >= kMaxScrapeTimeout) {
    return MakeError(Quote(text) +
                     " must be below 10s (Prometheus' default scrape_timeout), so the exporter "
                     "answers before Prometheus gives up");
  }
  return *ms;
}

Result<std::string> CheckRedisAddr(std::string_view text) {
  auto seed = cluster::ParseSeedAddress(text);
  if (!seed) return MakeError(seed.error().message);
  return std::string(text);
}

Result<std::string> CheckListenAddress(std::string_view text) {
  auto address = common::ParseListenAddress(text);
  if (!address) return tl::unexpected(address.error());
  // Prometheus is configured with the exporter's port: a random one would be useless.
  if (address->port == 0) return MakeError(Quote(text) + ": the port must be from 1 to 65535");
  return std::string(text);
}

Result<std::string> CheckTelemetryPath(std::string_view text) {
  if (text.empty() || text.front() != '/') {
    return MakeError(Quote(text) + ": must start with \"/\"");
  }
  if (text == "/" || text == "/healthz") {
    return MakeError(Quote(text) + ": taken by the landing page or the health check");
  }
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '?' || c == '#') {
      return MakeError(Quote(text) + ": a plain path without spaces, '?' or '#'");
    }
  }
  return std::string(text);
}

Result<FileSettings> ParseConfigYaml(std::string_view text, const std::string& source) {
  FileSettings out;
  const YamlReader reader(source);
  try {
    const YAML::Node root = reader.Parse(std::string(text));
    if (root.IsNull()) return out;  // an empty file sets nothing
    reader.ExpectMap(root, "", {"redis", "web", "scrape", "log"});
    if (root["redis"]) ParseRedis(reader, root["redis"], out);
    if (root["web"]) ParseWeb(reader, root["web"], out);
    if (root["scrape"]) ParseScrape(reader, root["scrape"], out);
    if (root["log"]) ParseLog(reader, root["log"], out);
  } catch (const YamlFieldError& e) {
    return MakeError(e.what());
  }
  return out;
}

Result<FileSettings> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return MakeError(path + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return ParseConfigYaml(text.str(), path);
}

}  // namespace slotguard::exporter
