#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/result.h"
#include "cluster/tls_settings.h"

namespace slotguard::exporter {

inline constexpr std::string_view kDefaultListenAddress = ":9478";
inline constexpr std::string_view kDefaultTelemetryPath = "/metrics";
inline constexpr std::chrono::milliseconds kDefaultScrapeTimeout{8000};
// Prometheus' default scrape_timeout: the exporter must answer before it.
inline constexpr std::chrono::milliseconds kMaxScrapeTimeout{10000};

// Everything the exporter is told, from flags and/or the YAML file. No secret lives here: only
// the name of the file holding the password.
struct Settings {
  std::vector<std::string> redis_addrs;  // seeds, "host:port" or "redis[s]://[user@]host:port"
  std::optional<std::string> redis_user;
  std::string password_file;
  cluster::TlsOverrides tls;  // file names only; used when the seeds are rediss://
  std::string listen_address = std::string(kDefaultListenAddress);
  std::string telemetry_path = std::string(kDefaultTelemetryPath);
  std::string web_config_file;  // exporter-toolkit web config (TLS, basic auth); "" = none
  std::chrono::milliseconds scrape_timeout = kDefaultScrapeTimeout;
  bool scrape_stray_keys = false;  // count keys masters hold in slots they do not own
  std::string log_format = "text";
  std::string log_level = "info";
};

// Settings as read from a YAML file: only the keys present are set.
struct FileSettings {
  std::optional<std::vector<std::string>> redis_addrs;
  std::optional<std::string> redis_user;
  std::optional<std::string> password_file;
  cluster::TlsOverrides tls;
  std::optional<std::string> listen_address;
  std::optional<std::string> telemetry_path;
  std::optional<std::string> web_config_file;
  std::optional<std::chrono::milliseconds> scrape_timeout;
  std::optional<bool> scrape_stray_keys;
  std::optional<std::string> log_format;
  std::optional<std::string> log_level;
};

// Validators shared by the command line and the file (the log ones are common::CheckLog*); the
// message names no flag or key (the caller adds "--scrape.timeout" or "config.yaml:7:
// scrape.timeout").
cluster::Result<std::chrono::milliseconds> ParseScrapeTimeout(std::string_view text);
cluster::Result<std::string> CheckRedisAddr(std::string_view text);
cluster::Result<std::string> CheckListenAddress(std::string_view text);
cluster::Result<std::string> CheckTelemetryPath(std::string_view text);

// Parses the YAML text of a config file. `source` names the file in error messages, which read
// "FILE:LINE: KEY: what is wrong".
cluster::Result<FileSettings> ParseConfigYaml(std::string_view text, const std::string& source);
cluster::Result<FileSettings> LoadConfigFile(const std::string& path);

}  // namespace slotguard::exporter
