// Flags, the YAML config file, and how they combine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/logging.h"
#include "exporter/command_line.h"
#include "exporter/settings.h"

namespace slotguard::exporter {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

TEST(ExporterSettings, ScrapeTimeoutAcceptsSecondsAndMilliseconds) {
  EXPECT_EQ(*ParseScrapeTimeout("8s"), milliseconds(8000));
  EXPECT_EQ(*ParseScrapeTimeout("500ms"), milliseconds(500));
  EXPECT_EQ(*ParseScrapeTimeout("1.5s"), milliseconds(1500));
  EXPECT_EQ(*ParseScrapeTimeout("9999ms"), milliseconds(9999));
}

TEST(ExporterSettings, ScrapeTimeoutRefusesNonsenseAndTenSecondsOrMore) {
  for (const char* bad : {"", "s", "ms", "abc", "8m", "-1s", "0s", "0ms", "10s", "10000ms", "1e9s",
                          "nan", "8 s", "2"}) {
    EXPECT_FALSE(ParseScrapeTimeout(bad)) << bad;
  }
  EXPECT_THAT(ParseScrapeTimeout("12s").error().message, HasSubstr("below 10s"));
  // Issue 13: a bare number was taken as seconds; it needs a unit now.
  EXPECT_THAT(ParseScrapeTimeout("5").error().message, HasSubstr("has no unit"));
}

TEST(ExporterSettings, ListenAddress) {
  EXPECT_TRUE(CheckListenAddress(":9478"));
  EXPECT_TRUE(CheckListenAddress("127.0.0.1:9478"));
  EXPECT_TRUE(CheckListenAddress("[::1]:9478"));
  for (const char* bad : {"9478", ":0", ":70000", "localhost:9478", "::1:9478", ":abc"}) {
    EXPECT_FALSE(CheckListenAddress(bad)) << bad;
  }
}

TEST(ExporterSettings, TelemetryPathLogFormatAndLevel) {
  EXPECT_TRUE(CheckTelemetryPath("/metrics"));
  EXPECT_TRUE(CheckTelemetryPath("/redis/metrics"));
  for (const char* bad : {"", "metrics", "/", "/healthz", "/a b", "/m?x=1"}) {
    EXPECT_FALSE(CheckTelemetryPath(bad)) << bad;
  }
  EXPECT_TRUE(common::CheckLogFormat("json"));
  EXPECT_FALSE(common::CheckLogFormat("logfmt"));
  EXPECT_TRUE(common::CheckLogLevel("debug"));
  EXPECT_FALSE(common::CheckLogLevel("verbose"));
}

TEST(ExporterSettings, FullConfigFile) {
  auto s = ParseConfigYaml(R"(# every key
redis:
  addr: [127.0.0.1:7000, "redis://alice@10.0.0.2:7001"]
  user: bob
  password_file: /run/secrets/redis
web:
  listen_address: "127.0.0.1:9555"
  telemetry_path: /m
scrape:
  timeout: 750ms
  stray_keys: true
log:
  format: json
  level: debug
)",
                           "exporter.yaml");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(*s->redis_addrs,
            (std::vector<std::string>{"127.0.0.1:7000", "redis://alice@10.0.0.2:7001"}));
  EXPECT_EQ(*s->redis_user, "bob");
  EXPECT_EQ(*s->password_file, "/run/secrets/redis");
  EXPECT_EQ(*s->listen_address, "127.0.0.1:9555");
  EXPECT_EQ(*s->telemetry_path, "/m");
  EXPECT_EQ(*s->scrape_timeout, milliseconds(750));
  EXPECT_EQ(s->scrape_stray_keys, true);
  EXPECT_EQ(*s->log_format, "json");
  EXPECT_EQ(*s->log_level, "debug");
}

TEST(ExporterSettings, SingleAddrAndEmptyFile) {
  auto web = ParseConfigYaml("web:\n  config_file: /etc/slotguard/web.yml\n", "f.yaml");
  ASSERT_TRUE(web) << web.error().message;
  EXPECT_EQ(*web->web_config_file, "/etc/slotguard/web.yml");
  auto s = ParseConfigYaml("redis:\n  addr: 127.0.0.1:7000\n", "f.yaml");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(*s->redis_addrs, std::vector<std::string>{"127.0.0.1:7000"});
  EXPECT_FALSE(s->scrape_timeout);
  EXPECT_FALSE(s->scrape_stray_keys);
  auto empty = ParseConfigYaml("", "f.yaml");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->redis_addrs);
}

struct BadCase {
  const char* yaml;
  const char* expected;  // the message must hold this
};

TEST(ExporterSettings, BadConfigNamesFileLineAndKey) {
  const BadCase cases[] = {
      {"redis:\n  addr: [127.0.0.1:7000]\n  adr: x\n", "f.yaml:3: redis.adr: unknown key"},
      {"redis:\n  addr: 127.0.0.1:7000\nscrape:\n  timeout: 12s\n",
       "f.yaml:4: scrape.timeout: \"12s\" must be below 10s"},
      {"scrape:\n  timeout: soon\n", "f.yaml:2: scrape.timeout: \"soon\" is not a duration"},
      {"scrape:\n  stray_keys: sometimes\n", "f.yaml:2: scrape.stray_keys: expected true or false"},
      {"web:\n  listen_address: 9478\n", "f.yaml:2: web.listen_address"},
      {"log:\n  format: xml\n", "f.yaml:2: log.format: \"xml\": must be text or json"},
      {"redis:\n  addr:\n    - 127.0.0.1:7000\n    - nope\n", "f.yaml:4: redis.addr[1]"},
      {"redis:\n  addr: []\n", "f.yaml:2: redis.addr: the list is empty"},
      {"redis:\n  addr: \"redis://u:secret@h:1\"\n", "f.yaml:2: redis.addr: a password"},
      {"redis: 5\n", "f.yaml:1: redis: expected a map"},
      {"metrics: {}\n", "f.yaml:1: metrics: unknown key"},
      {"log:\n  level: info\n  level: debug\n", "f.yaml:3: log.level: duplicate key"},
      {"web:\n  telemetry_path: [a, b]\n", "f.yaml:2: web.telemetry_path: expected a string"},
      {"redis:\n  addr: [127.0.0.1:1\n", "f.yaml:"},  // YAML syntax error
  };
  for (const auto& c : cases) {
    auto s = ParseConfigYaml(c.yaml, "f.yaml");
    ASSERT_FALSE(s) << c.yaml;
    EXPECT_THAT(s.error().message, HasSubstr(c.expected)) << c.yaml;
  }
  // The rejected password itself is never echoed.
  auto s = ParseConfigYaml("redis:\n  addr: \"redis://u:secret@h:1\"\n", "f.yaml");
  EXPECT_THAT(s.error().message, ::testing::Not(HasSubstr("secret")));
}

TEST(ExporterSettings, MissingConfigFile) {
  auto s = LoadConfigFile("/nonexistent/exporter.yaml");
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, HasSubstr("/nonexistent/exporter.yaml"));
}

// Runs ParseCommandLine on a list of arguments.
struct Parsed {
  std::variant<Settings, ExitNow> result;
  std::string out;
  std::string err;
};

Parsed RunCommandLine(std::vector<std::string> args) {
  args.insert(args.begin(), "slotguard-exporter");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  auto result = ParseCommandLine(static_cast<int>(argv.size()), argv.data(), out, err);
  return {result, out.str(), err.str()};
}

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/slotguard-exporter-test-XXXXXX";
    int fd = mkstemp(name);
    path_ = name;
    ::close(fd);
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ExporterCommandLine, DefaultsAndRepeatedAddr) {
  auto p = RunCommandLine({"--redis.addr", "127.0.0.1:7000", "--redis.addr", "127.0.0.1:7001"});
  ASSERT_TRUE(std::holds_alternative<Settings>(p.result)) << p.err;
  const auto& s = std::get<Settings>(p.result);
  EXPECT_EQ(s.redis_addrs, (std::vector<std::string>{"127.0.0.1:7000", "127.0.0.1:7001"}));
  EXPECT_EQ(s.listen_address, ":9478");
  EXPECT_EQ(s.telemetry_path, "/metrics");
  EXPECT_EQ(s.scrape_timeout, milliseconds(8000));
  EXPECT_EQ(s.log_format, "text");
  EXPECT_FALSE(s.redis_user);
  EXPECT_FALSE(s.scrape_stray_keys);
}

TEST(ExporterCommandLine, StrayKeysFromFlagOrFileAndTheFlagWins) {
  auto p = RunCommandLine({"--redis.addr", "127.0.0.1:7000", "--scrape.stray-keys"});
  ASSERT_TRUE(std::holds_alternative<Settings>(p.result)) << p.err;
  EXPECT_TRUE(std::get<Settings>(p.result).scrape_stray_keys);
  TempFile file("redis:\n  addr: [10.0.0.1:7000]\nscrape:\n  stray_keys: true\n");
  p = RunCommandLine({"--config", file.path()});
  ASSERT_TRUE(std::holds_alternative<Settings>(p.result)) << p.err;
  EXPECT_TRUE(std::get<Settings>(p.result).scrape_stray_keys);
  p = RunCommandLine({"--config", file.path(), "--scrape.stray-keys=false"});
  ASSERT_TRUE(std::holds_alternative<Settings>(p.result)) << p.err;
  EXPECT_FALSE(std::get<Settings>(p.result).scrape_stray_keys);
}

TEST(ExporterCommandLine, FlagsOverrideTheFile) {
  TempFile file(
      "redis:\n  addr: [10.0.0.1:7000]\n  user: alice\nscrape:\n  timeout: 3s\nlog:\n  "
      "format: json\n");
  auto p =
      RunCommandLine({"--config", file.path(), "--scrape.timeout", "500ms", "--redis.user", "bob"});
  ASSERT_TRUE(std::holds_alternative<Settings>(p.result)) << p.err;
  const auto& s = std::get<Settings>(p.result);
  EXPECT_EQ(s.redis_addrs, std::vector<std::string>{"10.0.0.1:7000"});  // from the file
  EXPECT_EQ(s.scrape_timeout, milliseconds(500));                       // flag wins
  EXPECT_EQ(*s.redis_user, "bob");
  EXPECT_EQ(s.log_format, "json");
  p = RunCommandLine({"--config", file.path(), "--redis.addr", "10.9.9.9:1"});
  EXPECT_EQ(std::get<Settings>(p.result).redis_addrs, std::vector<std::string>{"10.9.9.9:1"});
}

TEST(ExporterCommandLine, TlsFromFileAndFlagsTheFlagWins) {
  TempFile file(
      "redis:\n  addr: [rediss://10.0.0.1:7000]\n  tls:\n    ca_file: /etc/ca.pem\n    "
      "server_name: redis.internal\n    insecure_skip_verify: true\n");
  auto p = RunCommandLine({"--config", file.path(), "--tls.server-name", "other.internal",
                           "--tls.insecure-skip-verify=false", "--tls.cert-file", "/etc/c.pem",
                           "--tls.key-file", "/etc/c.key"});
  ASSERT_TRUE(std::holds_alternative<Settings>(p.result)) << p.err;
  const auto& s = std::get<Settings>(p.result);
  EXPECT_EQ(s.tls.ca_file, "/etc/ca.pem");         // the file
  EXPECT_EQ(s.tls.server_name, "other.internal");  // the flag wins
  EXPECT_EQ(s.tls.insecure_skip_verify, false);    // an explicit false wins too
  EXPECT_EQ(s.tls.cert_file, "/etc/c.pem");
  EXPECT_EQ(s.tls.key_file, "/etc/c.key");

  auto bad = ParseConfigYaml("redis:\n  addr: rediss://h:1\n  tls:\n    ca: /x\n", "f.yaml");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("f.yaml:4: redis.tls.ca: unknown key"));
  auto bad_bool = ParseConfigYaml(
      "redis:\n  addr: rediss://h:1\n  tls:\n    insecure_skip_verify: perhaps\n", "f.yaml");
  ASSERT_FALSE(bad_bool);
  EXPECT_THAT(bad_bool.error().message, HasSubstr("f.yaml:4: redis.tls.insecure_skip_verify"));
}

TEST(ExporterCommandLine, BadConfigFileExitsOneNamingKeyAndLine) {
  TempFile file("redis:\n  addr: [127.0.0.1:7000]\nweb:\n  listen_adress: \":1\"\n");
  auto p = RunCommandLine({"--config", file.path()});
  ASSERT_TRUE(std::holds_alternative<ExitNow>(p.result));
  EXPECT_EQ(std::get<ExitNow>(p.result).code, 1);
  EXPECT_THAT(p.err, HasSubstr(file.path() + ":4: web.listen_adress: unknown key"));
}

TEST(ExporterCommandLine, Errors) {
  auto p = RunCommandLine({});
  ASSERT_TRUE(std::holds_alternative<ExitNow>(p.result));
  EXPECT_EQ(std::get<ExitNow>(p.result).code, 1);
  EXPECT_THAT(p.err, HasSubstr("--redis.addr"));

  // Every usage error exits 1, as the README promises (not CLI11's 105, 109, 114).
  p = RunCommandLine({"--redis.addr", "127.0.0.1:7000", "--scrape.timeout", "10s"});
  ASSERT_TRUE(std::holds_alternative<ExitNow>(p.result));
  EXPECT_EQ(std::get<ExitNow>(p.result).code, 1);
  EXPECT_THAT(p.err, HasSubstr("below 10s"));

  p = RunCommandLine({"--redis.addr", "nonsense"});
  EXPECT_EQ(std::get<ExitNow>(p.result).code, 1);

  p = RunCommandLine({"--redis.addr", "127.0.0.1:7000", "--redis.password", "x"});
  EXPECT_EQ(std::get<ExitNow>(p.result).code, 1);  // no password flag, by design

  p = RunCommandLine({"--redis.addr"});  // a value missing
  EXPECT_EQ(std::get<ExitNow>(p.result).code, 1);
  p = RunCommandLine({"--redis.addr", "127.0.0.1:7000", "--log.format", "xml"});
  EXPECT_EQ(std::get<ExitNow>(p.result).code, 1);
  p = RunCommandLine({"--redis.addr", "127.0.0.1:7000", "stray-positional"});
  EXPECT_EQ(std::get<ExitNow>(p.result).code, 1);
}

// Sets an environment variable for the lifetime of the object.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_.c_str()); }

 private:
  std::string name_;
};

TEST(ExporterCommandLine, EveryFlagHasAnEnvironmentVariable) {
  ScopedEnv addr("SLOTGUARD_EXPORTER_REDIS_ADDR", "10.0.0.1:7000,10.0.0.2:7000");
  ScopedEnv user("SLOTGUARD_EXPORTER_REDIS_USER", "alice");
  ScopedEnv pw("SLOTGUARD_EXPORTER_REDIS_PASSWORD_FILE", "/run/secrets/redis");
  ScopedEnv listen("SLOTGUARD_EXPORTER_WEB_LISTEN_ADDRESS", "127.0.0.1:9999");
  ScopedEnv path("SLOTGUARD_EXPORTER_WEB_TELEMETRY_PATH", "/m");
  ScopedEnv timeout("SLOTGUARD_EXPORTER_SCRAPE_TIMEOUT", "2s");
  ScopedEnv stray("SLOTGUARD_EXPORTER_SCRAPE_STRAY_KEYS", "true");
  ScopedEnv format("SLOTGUARD_EXPORTER_LOG_FORMAT", "json");
  ScopedEnv level("SLOTGUARD_EXPORTER_LOG_LEVEL", "debug");
  ScopedEnv ca("SLOTGUARD_EXPORTER_TLS_CA_FILE", "/etc/ca.pem");
  ScopedEnv cert("SLOTGUARD_EXPORTER_TLS_CERT_FILE", "/etc/c.pem");
  ScopedEnv key("SLOTGUARD_EXPORTER_TLS_KEY_FILE", "/etc/c.key");
  ScopedEnv server_name("SLOTGUARD_EXPORTER_TLS_SERVER_NAME", "redis.internal");
  ScopedEnv insecure("SLOTGUARD_EXPORTER_TLS_INSECURE_SKIP_VERIFY", "true");
  auto p = RunCommandLine({});
  ASSERT_TRUE(std::holds_alternative<Settings>(p.result)) << p.err;
  const auto& s = std::get<Settings>(p.result);
  EXPECT_EQ(s.redis_addrs, (std::vector<std::string>{"10.0.0.1:7000", "10.0.0.2:7000"}));
  EXPECT_EQ(*s.redis_user, "alice");
  EXPECT_EQ(s.password_file, "/run/secrets/redis");
  EXPECT_EQ(s.listen_address, "127.0.0.1:9999");
  EXPECT_EQ(s.telemetry_path, "/m");
  EXPECT_EQ(s.scrape_timeout, milliseconds(2000));
  EXPECT_TRUE(s.scrape_stray_keys);
  EXPECT_EQ(s.log_format, "json");
  EXPECT_EQ(s.log_level, "debug");
  EXPECT_EQ(s.tls.ca_file, "/etc/ca.pem");
  EXPECT_EQ(s.tls.cert_file, "/etc/c.pem");
  EXPECT_EQ(s.tls.key_file, "/etc/c.key");
  EXPECT_EQ(s.tls.server_name, "redis.internal");
  EXPECT_EQ(s.tls.insecure_skip_verify, true);

  // A flag wins over its variable.
  p = RunCommandLine(
      {"--scrape.timeout", "500ms", "--redis.addr", "10.9.9.9:1", "--scrape.stray-keys=false"});
  ASSERT_TRUE(std::holds_alternative<Settings>(p.result)) << p.err;
  EXPECT_EQ(std::get<Settings>(p.result).scrape_timeout, milliseconds(500));
  EXPECT_EQ(std::get<Settings>(p.result).redis_addrs, std::vector<std::string>{"10.9.9.9:1"});
  EXPECT_FALSE(std::get<Settings>(p.result).scrape_stray_keys);
}

TEST(ExporterCommandLine, EnvironmentWinsOverTheConfigFileAndNamesIt) {
  TempFile file("redis:\n  addr: [10.0.0.1:7000]\nscrape:\n  timeout: 3s\nlog:\n  level: warn\n");
  ScopedEnv config("SLOTGUARD_EXPORTER_CONFIG", file.path());
  ScopedEnv timeout("SLOTGUARD_EXPORTER_SCRAPE_TIMEOUT", "1s");
  auto p = RunCommandLine({});
  ASSERT_TRUE(std::holds_alternative<Settings>(p.result)) << p.err;
  const auto& s = std::get<Settings>(p.result);
  EXPECT_EQ(s.redis_addrs, std::vector<std::string>{"10.0.0.1:7000"});  // the file
  EXPECT_EQ(s.log_level, "warn");                                       // the file
  EXPECT_EQ(s.scrape_timeout, milliseconds(1000));                      // the variable
}

TEST(ExporterCommandLine, BadEnvironmentValueExitsOne) {
  ScopedEnv timeout("SLOTGUARD_EXPORTER_SCRAPE_TIMEOUT", "12s");
  auto p = RunCommandLine({"--redis.addr", "127.0.0.1:7000"});
  ASSERT_TRUE(std::holds_alternative<ExitNow>(p.result));
  EXPECT_EQ(std::get<ExitNow>(p.result).code, 1);
  EXPECT_THAT(p.err, HasSubstr("below 10s"));
}

TEST(ExporterCommandLine, HelpListsEveryFlagAndVersionPrints) {
  auto p = RunCommandLine({"--help"});
  ASSERT_TRUE(std::holds_alternative<ExitNow>(p.result));
  EXPECT_EQ(std::get<ExitNow>(p.result).code, 0);
  for (const char* flag :
       {"--redis.addr", "--redis.user", "--redis.password-file", "--web.listen-address",
        "--web.telemetry-path", "--scrape.timeout", "--scrape.stray-keys", "--log.format",
        "--log.level", "--config", "--version", "REDIS_PASSWORD", ":9478", "/metrics", "8s"}) {
    EXPECT_THAT(p.out, HasSubstr(flag));
  }
  for (const char* env :
       {"SLOTGUARD_EXPORTER_REDIS_ADDR", "SLOTGUARD_EXPORTER_REDIS_USER",
        "SLOTGUARD_EXPORTER_REDIS_PASSWORD_FILE", "SLOTGUARD_EXPORTER_WEB_LISTEN_ADDRESS",
        "SLOTGUARD_EXPORTER_WEB_TELEMETRY_PATH", "SLOTGUARD_EXPORTER_SCRAPE_TIMEOUT",
        "SLOTGUARD_EXPORTER_SCRAPE_STRAY_KEYS", "SLOTGUARD_EXPORTER_LOG_FORMAT",
        "SLOTGUARD_EXPORTER_LOG_LEVEL", "SLOTGUARD_EXPORTER_CONFIG"}) {
    EXPECT_THAT(p.out, HasSubstr(env));
  }
  p = RunCommandLine({"--version"});
  EXPECT_EQ(std::get<ExitNow>(p.result).code, 0);
  EXPECT_THAT(p.out, HasSubstr("slotguard-exporter "));
}

}  // namespace
}  // namespace slotguard::exporter
