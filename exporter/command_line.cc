#include "exporter/command_line.h"

#include <CLI/CLI.hpp>

#include "common/logging.h"
#include "exporter/version.h"

namespace slotguard::exporter {
namespace {

// A CLI11 check from one of the shared validators: "" when fine, else the message.
template <typename Check>
std::function<std::string(const std::string&)> Validator(Check check) {
  return [check](const std::string& value) -> std::string {
    auto result = check(value);
    return result ? std::string() : result.error().message;
  };
}

}  // namespace

// Over 100 lines on purpose: a flag table. Each flag's value, declaration (help, env name,
// check) and precedence over the config file line up in three short runs; split, one flag would
// be spread over three functions and a struct.
std::variant<Settings, ExitNow> ParseCommandLine(int argc, const char* const* argv,
                                                 std::ostream& out, std::ostream& err) {
  CLI::App app{
      "slotguard-exporter: a Prometheus exporter for Redis Cluster. From one or more seed "
      "addresses it discovers every node and, on each scrape, reads INFO, CLUSTER INFO and "
      "CLUSTER NODES from all nodes in parallel under one deadline, then exports per-node "
      "metrics and cluster-wide slot coverage judged the way `redis-cli --cluster check` "
      "judges it.",
      "slotguard-exporter"};
  app.get_formatter()->column_width(34);
  app.footer(
      "The Redis password is read from --redis.password-file (first line) or from the "
      "REDIS_PASSWORD environment variable; it is never accepted on the command line.\n"
      "Every flag can also be set by the environment variable shown with it; a flag given on "
      "the command line wins over the environment, both win over --config. Endpoints: the "
      "telemetry path, / (a "
      "landing page) and /healthz.");

  std::string config_path;
  std::vector<std::string> addrs;
  std::string user;
  std::string password_file;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_server_name;
  bool tls_insecure = false;
  std::string listen_address;
  std::string telemetry_path;
  std::string web_config_file;
  std::string timeout_text;
  bool stray_keys = false;
  std::string log_format;
  std::string log_level;

  app.set_version_flag("--version", VersionString(), "Print the version and exit");
  auto* config_opt = app.add_option("--config", config_path,
                                    "YAML file with the same settings (redis.addr, redis.user, "
                                    "redis.password_file, redis.tls.*, web.listen_address, "
                                    "web.telemetry_path, web.config_file, scrape.timeout, "
                                    "scrape.stray_keys, log.format, log.level)")
                         ->type_name("FILE")
                         ->envname("SLOTGUARD_EXPORTER_CONFIG");
  auto* addr_opt =
      app.add_option("--redis.addr", addrs,
                     "Seed node, host:port, redis://[user@]host:port or rediss://[user@]host:port "
                     "(TLS, to every node); repeat the flag for more seeds (any one that answers "
                     "is enough). Required unless the config "
                     "file gives redis.addr")
          ->type_name("ADDR")
          ->delimiter(',')
          ->envname("SLOTGUARD_EXPORTER_REDIS_ADDR")
          ->check(Validator(CheckRedisAddr));
  auto* user_opt =
      app.add_option("--redis.user", user, "ACL user name for AUTH (default: the default user)")
          ->type_name("NAME")
          ->envname("SLOTGUARD_EXPORTER_REDIS_USER");
  auto* pwfile_opt =
      app.add_option("--redis.password-file", password_file,
                     "File whose first line is the Redis password (else REDIS_PASSWORD is used "
                     "when set)")
          ->type_name("FILE")
          ->envname("SLOTGUARD_EXPORTER_REDIS_PASSWORD_FILE");
  auto* ca_opt = app.add_option("--tls.ca-file", tls_ca_file,
                                "CA certificate(s) that sign the nodes' certificates, PEM "
                                "(rediss:// seeds; default: the system's trust store)")
                     ->type_name("FILE")
                     ->envname("SLOTGUARD_EXPORTER_TLS_CA_FILE");
  auto* cert_opt = app.add_option("--tls.cert-file", tls_cert_file,
                                  "Client certificate, PEM, for nodes with tls-auth-clients "
                                  "(with --tls.key-file)")
                       ->type_name("FILE")
                       ->envname("SLOTGUARD_EXPORTER_TLS_CERT_FILE");
  auto* key_opt = app.add_option("--tls.key-file", tls_key_file,
                                 "The client certificate's private key, PEM, unencrypted")
                      ->type_name("FILE")
                      ->envname("SLOTGUARD_EXPORTER_TLS_KEY_FILE");
  auto* server_name_opt =
      app.add_option("--tls.server-name", tls_server_name,
                     "Name sent as SNI and checked in every node's certificate (default: the "
                     "node's own address, which its certificate must then name)")
          ->type_name("NAME")
          ->envname("SLOTGUARD_EXPORTER_TLS_SERVER_NAME");
  auto* insecure_opt =
      app.add_flag("--tls.insecure-skip-verify", tls_insecure,
                   "Do not check the nodes' certificates (encrypts, but anyone in the path can "
                   "pose as a node) [default: off]")
          ->envname("SLOTGUARD_EXPORTER_TLS_INSECURE_SKIP_VERIFY");
  auto* listen_opt =
      app.add_option("--web.listen-address", listen_address,
                     "Address to serve HTTP on: \":port\" (every IPv4 address), \"ip:port\" or "
                     "\"[ipv6]:port\" [default: :9478]")
          ->type_name("ADDR")
          ->envname("SLOTGUARD_EXPORTER_WEB_LISTEN_ADDRESS")
          ->check(Validator(CheckListenAddress));
  auto* path_opt = app.add_option("--web.telemetry-path", telemetry_path,
                                  "Path under which metrics are served [default: /metrics]")
                       ->type_name("PATH")
                       ->envname("SLOTGUARD_EXPORTER_WEB_TELEMETRY_PATH")
                       ->check(Validator(CheckTelemetryPath));
  auto* web_config_opt =
      app.add_option("--web.config.file", web_config_file,
                     "Prometheus exporter-toolkit web config (YAML): TLS with "
                     "tls_server_config, optional client certificates, basic_auth_users with "
                     "bcrypt hashes [default: none: plain HTTP, no auth]")
          ->type_name("FILE")
          ->envname("SLOTGUARD_EXPORTER_WEB_CONFIG_FILE");
  auto* timeout_opt =
      app.add_option("--scrape.timeout", timeout_text,
                     "Deadline for a whole scrape, below Prometheus' 10s, e.g. \"8s\" or "
                     "\"500ms\" (a unit is required); nodes that have not answered by then are "
                     "reported with "
                     "redis_up 0 [default: 8s]")
          ->type_name("DURATION")
          ->envname("SLOTGUARD_EXPORTER_SCRAPE_TIMEOUT")
          ->check(Validator(ParseScrapeTimeout));
  auto* stray_opt =
      app.add_flag(
             "--scrape.stray-keys", stray_keys,
             "On every master, count the keys it holds in slots it neither owns nor imports "
             "(CLUSTER COUNTKEYSINSLOT for each such slot, about 11,000 commands per master and "
             "scrape) and export them as redis_cluster_stray_keys; --scrape.stray-keys=false turns "
             "it off when the config file turns it on [default: off]")
          ->envname("SLOTGUARD_EXPORTER_SCRAPE_STRAY_KEYS");
  auto* format_opt =
      app.add_option("--log.format", log_format, "Log line format: text or json [default: text]")
          ->type_name("FORMAT")
          ->envname("SLOTGUARD_EXPORTER_LOG_FORMAT")
          ->check(Validator(common::CheckLogFormat));
  auto* level_opt =
      app.add_option("--log.level", log_level,
                     "Lowest level logged: trace, debug, info, warn, error, off [default: info]")
          ->type_name("LEVEL")
          ->envname("SLOTGUARD_EXPORTER_LOG_LEVEL")
          ->check(Validator(common::CheckLogLevel));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 1 (not CLI11's own codes).
    return ExitNow{app.exit(e, out, err) == 0 ? 0 : 1};
  }

  Settings settings;
  if (config_opt->count() > 0) {
    auto file = LoadConfigFile(config_path);
    if (!file) {
      err << "slotguard-exporter: config: " << file.error().message << "\n";
      return ExitNow{1};
    }
    if (file->redis_addrs) settings.redis_addrs = *file->redis_addrs;
    if (file->redis_user) settings.redis_user = *file->redis_user;
    if (file->password_file) settings.password_file = *file->password_file;
    settings.tls = file->tls;
    if (file->listen_address) settings.listen_address = *file->listen_address;
    if (file->telemetry_path) settings.telemetry_path = *file->telemetry_path;
    if (file->web_config_file) settings.web_config_file = *file->web_config_file;
    if (file->scrape_timeout) settings.scrape_timeout = *file->scrape_timeout;
    if (file->scrape_stray_keys) settings.scrape_stray_keys = *file->scrape_stray_keys;
    if (file->log_format) settings.log_format = *file->log_format;
    if (file->log_level) settings.log_level = *file->log_level;
  }
  // Flags given on the command line (or their SLOTGUARD_EXPORTER_* environment variables, which
  // CLI11 counts as given when the flag is not) win over the file.
  if (addr_opt->count() > 0) settings.redis_addrs = addrs;
  if (user_opt->count() > 0) settings.redis_user = user;
  if (pwfile_opt->count() > 0) settings.password_file = password_file;
  if (ca_opt->count() > 0) settings.tls.ca_file = tls_ca_file;
  if (cert_opt->count() > 0) settings.tls.cert_file = tls_cert_file;
  if (key_opt->count() > 0) settings.tls.key_file = tls_key_file;
  if (server_name_opt->count() > 0) settings.tls.server_name = tls_server_name;
  if (insecure_opt->count() > 0) settings.tls.insecure_skip_verify = tls_insecure;
  if (listen_opt->count() > 0) settings.listen_address = listen_address;
  if (path_opt->count() > 0) settings.telemetry_path = telemetry_path;
  if (web_config_opt->count() > 0) settings.web_config_file = web_config_file;
  if (timeout_opt->count() > 0) settings.scrape_timeout = *ParseScrapeTimeout(timeout_text);
  if (stray_opt->count() > 0) settings.scrape_stray_keys = stray_keys;
  if (format_opt->count() > 0) settings.log_format = log_format;
  if (level_opt->count() > 0) settings.log_level = log_level;

  if (settings.redis_addrs.empty()) {
    err << "slotguard-exporter: no seed address: give --redis.addr host:port (or redis.addr in "
           "the --config file)\n";
    return ExitNow{1};
  }
  if (settings.redis_user && settings.redis_user->empty()) {
    err << "slotguard-exporter: --redis.user: empty user name\n";
    return ExitNow{1};
  }
  return settings;
}

}  // namespace slotguard::exporter
