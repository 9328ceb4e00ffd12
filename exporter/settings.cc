#include "exporter/settings.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "cluster/endpoint.h"

namespace slotguard::exporter {
namespace {

using cluster::MakeError;
using cluster::Result;

std::string Quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

// Where a YAML node is, as "FILE:LINE" (yaml-cpp's lines are 0-based).
std::string Where(const std::string& source, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0) return source;
  return source + ":" + std::to_string(mark.line + 1);
}

// Thrown inside ParseConfigYaml only, turned into an error value before it returns.
struct FieldError {
  std::string message;
};

[[noreturn]] void Fail(const std::string& source, const YAML::Node& at, const std::string& key,
                       const std::string& what) {
  throw FieldError{Where(source, at) + ": " + key + ": " + what};
}

std::string Scalar(const std::string& source, const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar()) Fail(source, node, key, "expected a single value");
  return node.Scalar();
}

template <typename Check>
std::string Checked(const std::string& source, const YAML::Node& node, const std::string& key,
                    Check check) {
  auto value = check(Scalar(source, node, key));
  if (!value) Fail(source, node, key, value.error().message);
  return *value;
}

// A mapping whose keys are all in `allowed`, none twice; returns (key, value) pairs.
std::vector<std::pair<YAML::Node, YAML::Node>> Entries(const std::string& source,
                                                       const YAML::Node& map,
                                                       const std::string& prefix,
                                                       const std::set<std::string>& allowed) {
  if (!map.IsMap()) {
    Fail(source, map, prefix.empty() ? "(top level)" : prefix,
         "expected a mapping of keys to values");
  }
  std::vector<std::pair<YAML::Node, YAML::Node>> out;
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const std::string name = it->first.IsScalar() ? it->first.Scalar() : "?";
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    if (allowed.count(name) == 0) {
      std::string known;
      for (const auto& a : allowed) known += (known.empty() ? "" : ", ") + a;
      Fail(source, it->first, key, "unknown key (known here: " + known + ")");
    }
    if (!seen.insert(name).second) Fail(source, it->first, key, "given twice");
    out.emplace_back(it->first, it->second);
  }
  return out;
}

void ParseRedis(const std::string& source, const YAML::Node& map, FileSettings& out) {
  for (const auto& [k, v] : Entries(source, map, "redis", {"addr", "user", "password_file"})) {
    const std::string name = k.Scalar();
    const std::string key = "redis." + name;
    if (name == "addr") {
      std::vector<std::string> addrs;
      if (v.IsSequence()) {
        if (v.size() == 0) Fail(source, v, key, "the list is empty");
        for (size_t i = 0; i < v.size(); ++i) {
          addrs.push_back(
              Checked(source, v[i], key + "[" + std::to_string(i) + "]", CheckRedisAddr));
        }
      } else {
        addrs.push_back(Checked(source, v, key, CheckRedisAddr));
      }
      out.redis_addrs = std::move(addrs);
    } else if (name == "user") {
      std::string user = Scalar(source, v, key);
      if (user.empty()) Fail(source, v, key, "empty user name");
      out.redis_user = user;
    } else {
      std::string file = Scalar(source, v, key);
      if (file.empty()) Fail(source, v, key, "empty file name");
      out.password_file = file;
    }
  }
}

void ParseWeb(const std::string& source, const YAML::Node& map, FileSettings& out) {
  for (const auto& [k, v] : Entries(source, map, "web", {"listen_address", "telemetry_path"})) {
    const std::string name = k.Scalar();
    if (name == "listen_address") {
      out.listen_address = Checked(source, v, "web." + name, CheckListenAddress);
    } else {
      out.telemetry_path = Checked(source, v, "web." + name, CheckTelemetryPath);
    }
  }
}

void ParseScrape(const std::string& source, const YAML::Node& map, FileSettings& out) {
  for (const auto& [k, v] : Entries(source, map, "scrape", {"timeout", "stray_keys"})) {
    if (k.Scalar() == "stray_keys") {
      bool value = false;
      if (!v.IsScalar() || !YAML::convert<bool>::decode(v, value)) {
        Fail(source, v, "scrape.stray_keys", "expected true or false");
      }
      out.scrape_stray_keys = value;
      continue;
    }
    auto timeout = ParseScrapeTimeout(Scalar(source, v, "scrape.timeout"));
    if (!timeout) Fail(source, v, "scrape.timeout", timeout.error().message);
    out.scrape_timeout = *timeout;
  }
}

void ParseLog(const std::string& source, const YAML::Node& map, FileSettings& out) {
  for (const auto& [k, v] : Entries(source, map, "log", {"format", "level"})) {
    const std::string name = k.Scalar();
    if (name == "format") {
      out.log_format = Checked(source, v, "log.format", CheckLogFormat);
    } else {
      out.log_level = Checked(source, v, "log.level", CheckLogLevel);
    }
  }
}

}  // namespace

Result<std::chrono::milliseconds> ParseScrapeTimeout(std::string_view text) {
  const std::string bad = Quote(text) + " is not a duration like \"8s\" or \"500ms\"";
  std::string_view number = text;
  double scale = 1000.0;  // a bare number is seconds
  if (number.size() > 2 && number.substr(number.size() - 2) == "ms") {
    number.remove_suffix(2);
    scale = 1.0;
  } else if (number.size() > 1 && number.back() == 's') {
    number.remove_suffix(1);
  }
  if (number.empty() || !(std::isdigit(static_cast<unsigned char>(number.front())))) {
    return MakeError(bad);
  }
  double value = 0;
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || ptr != number.data() + number.size() || !std::isfinite(value)) {
    return MakeError(bad);
  }
  const auto ms = std::chrono::milliseconds(static_cast<int64_t>(std::llround(value * scale)));
  if (ms.count() <= 0) return MakeError(Quote(text) + " must be above 0");
  if (ms >= kMaxScrapeTimeout) {
    return MakeError(Quote(text) +
                     " must be below 10s (Prometheus' default scrape_timeout), so the exporter "
                     "answers before Prometheus gives up");
  }
  return ms;
}

Result<std::string> CheckRedisAddr(std::string_view text) {
  auto seed = cluster::ParseSeedAddress(text);
  if (!seed) return MakeError(seed.error().message);
  return std::string(text);
}

Result<std::string> CheckListenAddress(std::string_view text) {
  // ":9478" listens on every interface; "host:9478" on one address (an IP, as civetweb binds).
  std::string_view port = text;
  std::string_view host;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find("]:");
    if (close == std::string_view::npos) {
      return MakeError(Quote(text) + ": expected \":port\", \"ip:port\" or \"[ipv6]:port\"");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return MakeError(Quote(text) + ": expected \":port\" or \"ip:port\"");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return MakeError(Quote(text) + ": write an IPv6 address as \"[addr]:port\"");
    }
    for (char c : host) {
      if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.')) {
        return MakeError(Quote(text) + ": the host must be an IP address (or empty for all)");
      }
    }
  }
  int value = -1;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || ptr != port.data() + port.size() || value < 1 || value > 65535) {
    return MakeError(Quote(text) + ": port must be 1-65535");
  }
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

Result<std::string> CheckLogFormat(std::string_view text) {
  if (text == "text" || text == "json") return std::string(text);
  return MakeError(Quote(text) + ": must be text or json");
}

Result<std::string> CheckLogLevel(std::string_view text) {
  static const std::set<std::string, std::less<>> kLevels = {"trace", "debug", "info",
                                                             "warn",  "error", "off"};
  if (kLevels.count(text) != 0) return std::string(text);
  return MakeError(Quote(text) + ": must be one of trace, debug, info, warn, error, off");
}

Result<FileSettings> ParseConfigYaml(std::string_view text, const std::string& source) {
  FileSettings out;
  try {
    YAML::Node root = YAML::Load(std::string(text));
    if (root.IsNull()) return out;  // an empty file sets nothing
    for (const auto& [k, v] : Entries(source, root, "", {"redis", "web", "scrape", "log"})) {
      const std::string name = k.Scalar();
      if (name == "redis") {
        ParseRedis(source, v, out);
      } else if (name == "web") {
        ParseWeb(source, v, out);
      } else if (name == "scrape") {
        ParseScrape(source, v, out);
      } else {
        ParseLog(source, v, out);
      }
    }
  } catch (const FieldError& e) {
    return MakeError(e.message);
  } catch (const YAML::Exception& e) {
    // ParserException carries the mark of the offending character.
    std::string where = source;
    if (e.mark.line >= 0) where += ":" + std::to_string(e.mark.line + 1);
    return MakeError(where + ": not valid YAML: " + e.msg);
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

std::string CivetwebListeningPorts(std::string_view listen_address) {
  if (!listen_address.empty() && listen_address.front() == ':') {
    return std::string(listen_address.substr(1));
  }
  return std::string(listen_address);
}

}  // namespace slotguard::exporter
