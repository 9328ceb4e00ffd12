#include "exporter/collectors.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>

namespace slotguard::exporter {
namespace {

// commandstats' calls as a summary's _count. The number comes from a node's INFO text: a
// negative, NaN or 1e300 must not reach a float-to-integer cast (undefined behaviour).
uint64_t CallCount(double calls) {
  if (!(calls >= 0)) return 0;
  if (calls >= 18446744073709551616.0) return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(calls);
}

// "p50" -> 0.5, "p99.9" -> 0.999 (rounded so it prints as written, not 0.9990000000000001).
std::optional<double> Quantile(const std::string& percentile) {
  std::string digits = percentile;
  if (!digits.empty() && (digits.front() == 'p' || digits.front() == 'P')) digits.erase(0, 1);
  char* end = nullptr;
  const double value = std::strtod(digits.c_str(), &end);
  if (digits.empty() || end != digits.c_str() + digits.size() || value < 0 || value > 100) {
    return std::nullopt;
  }
  return std::round(value / 100.0 * 1e9) / 1e9;
}

void GaugeFromField(const NodeResult& node, FamilySet& out, const char* field, const char* name,
                    const char* help) {
  if (auto value = node.info.GetNumber(field))
    out.Gauge(name, help, {{"node", node.label}}, *value);
}

}  // namespace

// Over 100 lines on purpose: a table of INFO-derived families, one statement or short loop
// each, in the order they are exported; split, that order would be spread over several functions.
void CollectInfo(const ScrapeResult& scrape, FamilySet& out) {
  for (const auto& node : scrape.nodes) {
    if (!node.up) continue;
    const Labels labels = {{"node", node.label}};

    std::string role = node.info.Get("role").value_or("");
    if (role == "slave") role = "replica";
    // server_version is the server's own (valkey_version on Valkey, whose redis_version is the
    // Redis it is compatible with), so it equals redis_version on Redis.
    out.Gauge("redis_instance_info",
              "Always 1: the node's replication role (master|replica), server (redis|valkey), "
              "its own version and the Redis version it reports, from INFO.",
              {{"node", node.label},
               {"role", role},
               {"redis_version", node.info.Get("redis_version").value_or("")},
               {"server_name", node.server ? node.server->name() : ""},
               {"server_version", node.server ? node.server->version() : ""}},
              1);
    GaugeFromField(node, out, "uptime_in_seconds", "redis_uptime_in_seconds",
                   "Seconds since the redis-server process started.");
    GaugeFromField(node, out, "used_memory", "redis_memory_used_bytes",
                   "Bytes allocated by Redis (INFO used_memory).");
    GaugeFromField(node, out, "maxmemory", "redis_memory_max_bytes",
                   "The maxmemory setting in bytes (0: no limit).");
    GaugeFromField(node, out, "connected_clients", "redis_connected_clients",
                   "Client connections, not counting replicas.");
    GaugeFromField(node, out, "blocked_clients", "redis_blocked_clients",
                   "Clients waiting in a blocking call (BLPOP, XREAD BLOCK, WAIT, ...).");
    GaugeFromField(node, out, "master_repl_offset", "redis_master_repl_offset",
                   "The node's replication offset in bytes (a replica's is its master's as "
                   "received).");
    GaugeFromField(node, out, "connected_slaves", "redis_connected_slaves",
                   "Replicas connected to this node.");

    auto keyspace = cluster::Keyspace(node.info);
    if (keyspace.empty()) keyspace.push_back({});  // an empty node still says "db0 has 0 keys"
    for (const auto& db : keyspace) {
      const Labels db_labels = {{"node", node.label}, {"db", "db" + std::to_string(db.db)}};
      out.Gauge("redis_db_keys", "Keys in the database (INFO keyspace).", db_labels, db.keys);
      out.Gauge("redis_db_keys_expiring", "Keys with an expiry set in the database.", db_labels,
                db.expires);
    }

    if (role == "master") {
      const double offset = node.info.GetNumber("master_repl_offset").value_or(0);
      for (const auto& replica : cluster::Replicas(node.info)) {
        const std::string address = cluster::Endpoint{replica.ip, replica.port}.ToString();
        out.Gauge("redis_replica_lag_bytes",
                  "Bytes of replication stream a replica has not acknowledged: the master's "
                  "master_repl_offset minus the replica's offset (from the master's slaveN "
                  "line).",
                  {{"node", node.label}, {"replica", address}},
                  std::max(0.0, offset - replica.offset));
      }
    }

    const auto commands = cluster::CommandStats(node.info);
    for (const auto& stat : commands) {
      const Labels cmd = {{"node", node.label}, {"cmd", stat.command}};
      out.Counter("redis_commands_total",
                  "Calls of the command (INFO commandstats calls; subcommands as "
                  "\"cluster|setslot\").",
                  cmd, stat.calls);
      out.Counter("redis_commands_duration_seconds_total",
                  "Seconds spent executing the command (INFO commandstats usec).", cmd,
                  stat.usec / 1e6);
      out.Counter("redis_commands_failed_calls_total",
                  "Calls of the command that failed while executing (INFO commandstats "
                  "failed_calls; for migrate these are failed MIGRATEs).",
                  cmd, stat.failed_calls);
      out.Counter("redis_commands_rejected_calls_total",
                  "Calls of the command rejected before executing: bad arguments, ACL, OOM, "
                  "MOVED/ASK redirects (INFO commandstats rejected_calls).",
                  cmd, stat.rejected_calls);
    }
    for (const auto& error : cluster::ErrorStats(node.info)) {
      out.Counter("redis_errors_total",
                  "Error replies by error prefix (INFO errorstats): MOVED/ASK/TRYAGAIN show "
                  "redirect pressure, IOERR failed MIGRATEs.",
                  {{"node", node.label}, {"err", error.error}}, error.count);
    }
    // A summary, as redis_exporter exports it: the quantiles from LATENCYSTATS, _count and
    // _sum (microseconds) from the same command's commandstats.
    std::map<std::string, std::vector<std::pair<double, double>>> quantiles;
    for (const auto& latency : cluster::LatencyPercentiles(node.info)) {
      if (auto q = Quantile(latency.quantile)) {
        quantiles[latency.command].emplace_back(*q, latency.usec);
      }
    }
    for (const auto& [command, values] : quantiles) {
      // An init-capture: clang 14 (the fuzz build) cannot capture a structured binding.
      auto stat = std::find_if(
          commands.begin(), commands.end(),
          [&command = command](const cluster::CommandStat& c) { return c.command == command; });
      out.Summary("redis_latency_percentiles_usec",
                  "Latency percentiles of the command in microseconds (INFO latencystats; "
                  "quantile 0.5 = p50), with _count the calls and _sum the microseconds from "
                  "commandstats.",
                  {{"node", node.label}, {"cmd", command}},
                  stat == commands.end() ? 0 : CallCount(stat->calls),
                  stat == commands.end() ? 0 : stat->usec, values);
    }
  }
}

}  // namespace slotguard::exporter
