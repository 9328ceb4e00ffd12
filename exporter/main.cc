// slotguard-exporter: a Prometheus exporter for Redis Cluster. See --help.
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>
#include <variant>

#include "cluster/connection_pool.h"
#include "cluster/credentials.h"
#include "cluster/endpoint.h"
#include "cluster/tls_context.h"
#include "cluster/tls_settings.h"
#include "common/http_server.h"
#include "common/listen_address.h"
#include "common/logging.h"
#include "exporter/collectors.h"
#include "exporter/command_line.h"
#include "exporter/scrape_engine.h"
#include "exporter/version.h"
#include "exporter/web_routes.h"

namespace {

using namespace slotguard;

// What the exporter connects with: the seeds, TLS and credentials, from the settings.
struct SeedConnection {
  std::vector<cluster::Endpoint> seeds;
  std::optional<cluster::TlsSettings> tls;
  // One OpenSSL context for every node: the CA and the client certificate are read once, here.
  std::shared_ptr<const cluster::TlsContext> tls_context;
  std::optional<std::string> user;
  std::optional<cluster::Credentials> credentials;
};

// Logs what is wrong and returns nullopt (the exporter then exits 1).
std::optional<SeedConnection> ResolveSeedConnection(const exporter::Settings& settings) {
  SeedConnection c;
  std::vector<cluster::SeedAddress> seed_addresses;
  std::optional<std::string> url_user;
  for (const auto& addr : settings.redis_addrs) {
    auto seed = cluster::ParseSeedAddress(addr);
    if (!seed) {
      spdlog::error("--redis.addr: {}", seed.error().message);
      return std::nullopt;
    }
    if (seed->user && !url_user) url_user = seed->user;
    c.seeds.push_back(seed->endpoint);
    seed_addresses.push_back(*seed);
  }
  const cluster::TlsSettings tls_settings = cluster::MergeTls({}, settings.tls);
  auto tls =
      cluster::TlsForSeeds(seed_addresses, tls_settings, tls_settings != cluster::TlsSettings{});
  if (!tls) {
    spdlog::error("--redis.addr, --tls.*: {}", tls.error().message);
    return std::nullopt;
  }
  c.tls = *tls;
  if (c.tls) {
    auto context = cluster::TlsContext::Create(*c.tls);
    if (!context) {
      spdlog::error("--tls.*: {}", context.error().message);
      return std::nullopt;
    }
    c.tls_context = *context;
  }
  // --redis.user wins over a user written in a redis:// address.
  c.user = settings.redis_user ? settings.redis_user : url_user;
  auto credentials = cluster::LoadCredentials(c.user, settings.password_file);
  if (!credentials) {
    spdlog::error("credentials: {}", credentials.error().message);
    return std::nullopt;
  }
  c.credentials = *credentials;
  return c;
}

int Run(const exporter::Settings& settings) {
  // Scrapes read nodes on the cluster reader's workers and glibc gives threads arenas of their
  // own (up to eight per core), each keeping a few hundred KiB after a scrape: two arenas took
  // 2 MB off the resident size of a 3+3 scrape at no measurable cost in time.
  mallopt(M_ARENA_MAX, 2);
  // The threads that parse and render live on between scrapes now (the reader's workers,
  // the HTTP server's), so what a scrape frees stays in their arenas. Fixed thresholds (glibc
  // raises both on its own after the first large free) give the large buffers (replies, the
  // rendered page) back to the system when freed and trim an arena's top past 128 KiB (25+25: 31.5
  // to 28.3 MiB resident, one bench run each, no change in scrape time).
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);

  common::SetupLogging("slotguard-exporter", settings.log_format, settings.log_level);

  auto resolved = ResolveSeedConnection(settings);
  if (!resolved) return 1;
  const SeedConnection& c = *resolved;

  // Signals are taken by sigwait below; every thread started from here on inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A peer closing a socket mid-write must not kill the process.
  signal(SIGPIPE, SIG_IGN);

  cluster::ConnectOptions connect;
  // Each read is cut to the scrape's deadline; these only bound a read made without one.
  connect.connect_timeout = settings.scrape_timeout;
  connect.io_timeout = settings.scrape_timeout;
  connect.credentials = c.credentials;
  connect.tls = c.tls_context;
  exporter::ScrapeEngine engine(c.seeds, settings.scrape_timeout,
                                std::make_shared<cluster::ConnectionPool>(std::move(connect)),
                                exporter::ReadOptions{settings.scrape_stray_keys});
  // Checked by the command line already; parsed again here for its parts.
  auto listen = common::ParseListenAddress(settings.listen_address);
  if (!listen) {
    spdlog::error("web: {}", listen.error().message);
    return 1;
  }
  common::HttpServerOptions web_options;
  web_options.error_response = common::TextError;
  if (!settings.web_config_file.empty()) {
    auto web_config = common::LoadWebConfig(settings.web_config_file);
    if (!web_config) {
      spdlog::error("web config: {}", web_config.error().message);
      return 1;
    }
    web_options.web_config = std::move(*web_config);
  }
  auto server = common::HttpServer::Start(
      *listen,
      exporter::WebRoutes(settings.telemetry_path,
                          [&engine] { return exporter::RenderMetrics(engine.Scrape()); }),
      web_options);
  if (!server) {
    spdlog::error("web: {}", server.error().message);
    return 1;
  }
  std::string seed_list;
  for (const auto& s : c.seeds) seed_list += (seed_list.empty() ? "" : ",") + s.ToString();
  spdlog::info(
      "{} listening on {} ({}; metrics at {}), seeds {}, scrape timeout {}ms, stray keys {}, "
      "auth {}, {}",
      exporter::VersionString(), (*server)->address().ToString(),
      web_options.web_config ? common::DescribeWebConfig(*web_options.web_config)
                             : std::string("plain HTTP"),
      settings.telemetry_path, seed_list, settings.scrape_timeout.count(),
      settings.scrape_stray_keys ? "counted" : "not counted",
      c.credentials ? (c.user ? "as user " + *c.user : std::string("with password"))
                    : std::string("none"),
      cluster::DescribeTls(c.tls));

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("received signal {}, stopping", signal_number);
  server->reset();
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = slotguard::exporter::ParseCommandLine(argc, argv, std::cout, std::cerr);
  if (auto* exit = std::get_if<slotguard::exporter::ExitNow>(&parsed)) return exit->code;
  const int code = Run(std::get<slotguard::exporter::Settings>(parsed));
  // Readers still waiting on a stopped node run detached; do not run static destructors
  // under them.
  std::cout.flush();
  std::_Exit(code);
}
