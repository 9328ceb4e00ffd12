#include "agent/preflight.h"

#include <algorithm>
#include <cstdio>

#include "agent/cluster_health.h"

namespace slotguard::agent {
namespace {

std::string Mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

}  // namespace

std::optional<std::string> HeadroomProblem(const std::string& target, const NodeMemory& memory,
                                           int64_t estimated_bytes) {
  if (memory.maxmemory <= 0 || estimated_bytes <= 0) return std::nullopt;
  const int64_t needed = estimated_bytes + estimated_bytes / 4;
  const int64_t headroom = memory.maxmemory - memory.maxmemory / 20 - memory.used_memory;
  if (needed <= headroom) return std::nullopt;
  const std::string& policy = memory.maxmemory_policy;
  std::string consequence;
  if (policy.rfind("allkeys-", 0) == 0 || policy.rfind("volatile-", 0) == 0) {
    consequence = "the target would evict unrelated keys to make room";
  } else {
    consequence = "the target would refuse keys with -OOM part way through the batch";
  }
  return "target " + target + " has no memory headroom for the batch: estimated " +
         Mib(estimated_bytes) + " (" + Mib(needed) + " with a 25% margin), headroom " +
         Mib(std::max<int64_t>(0, headroom)) + " (maxmemory " + Mib(memory.maxmemory) +
         " less 5% reserve, used_memory " + Mib(memory.used_memory) + "), maxmemory-policy " +
         (policy.empty() ? "?" : policy) + ": " + consequence +
         ". Free memory on the target, raise its maxmemory or move fewer slots";
}

cluster::Result<PreflightReport> Preflight(const ClusterSnapshot& s, const ResolvedBatch& batch,
                                           const std::map<std::string, NodeSettings>& settings) {
  const std::string prefix = "preflight for batch " + batch.batch.id + ": ";
  auto fail = [&](const std::string& why) { return cluster::MakeError(prefix + why); };
  if (auto problems = AssessHealth(s); !problems.empty()) return fail(problems.front().text);
  const auto& j = s.judgement;
  for (int slot : batch.batch.slots) {
    if (j.Owner(slot) != batch.source_id) {
      return fail("slot " + std::to_string(slot) + " is not owned by source " +
                  s.Describe(batch.source_id));
    }
  }
  const auto* target = s.FindById(batch.target_id);
  if (target == nullptr || !target->flags.master) {
    return fail("target " + s.Describe(batch.target_id) + " is not a master");
  }
  const auto* target_report = s.ReportFor(target->endpoint);
  if (target_report == nullptr || !target_report->reachable()) {
    return fail("target " + s.Describe(batch.target_id) + " is not reachable");
  }

  PreflightReport report;
  // MIGRATE carries the source's RDB format; a node refuses a newer one than its own.
  const auto source_settings = settings.find(batch.source.ToString());
  const auto target_settings = settings.find(target->endpoint.ToString());
  if (source_settings != settings.end() && target_settings != settings.end() &&
      source_settings->second.server && target_settings->second.server) {
    const auto& from = *source_settings->second.server;
    const auto& to = *target_settings->second.server;
    const auto name = [](const cluster::ServerVersion& v) {
      return v.ToString() + ", RDB format " + std::to_string(v.RdbVersion());
    };
    if (from.RdbVersion() > to.RdbVersion()) {
      return fail("source " + s.Describe(batch.source_id) + " runs " + name(from) + ", target " +
                  s.Describe(batch.target_id) + " runs " + name(to) +
                  ": the target cannot read the keys MIGRATE would carry (\"DUMP payload "
                  "version or checksum are wrong\"); upgrade the target first, or move the "
                  "slots to a master on the source's version");
    }
    if (from.RdbVersion() < to.RdbVersion()) {
      report.warnings.push_back(
          "target " + s.Describe(batch.target_id) + " runs " + name(to) + ", newer than source " +
          s.Describe(batch.source_id) + " (" + name(from) +
          "): a rollback cannot move keys back to the source, it stops with the slots open "
          "(every key still reachable) until the source is upgraded");
    }
  }
  // One line per setting, naming every node that has it.
  std::map<long, std::string> timeouts;
  std::string full_coverage;
  std::map<long, std::string> barriers;
  auto add = [](std::string& list, const std::string& node) {
    list += (list.empty() ? "" : ", ") + node;
  };
  for (const auto& [node, ns] : settings) {
    if (ns.cluster_node_timeout_ms && *ns.cluster_node_timeout_ms < 15000) {
      add(timeouts[*ns.cluster_node_timeout_ms], node);
    }
    if (ns.cluster_require_full_coverage && *ns.cluster_require_full_coverage == "yes") {
      add(full_coverage, node);
    }
    if (ns.cluster_migration_barrier && *ns.cluster_migration_barrier < 1) {
      add(barriers[*ns.cluster_migration_barrier], node);
    }
  }
  for (const auto& [ms, nodes] : timeouts) {
    report.warnings.push_back("cluster-node-timeout is " + std::to_string(ms) + " ms on " + nodes +
                              ", below the runbook's 15000 ms (a slow MIGRATE can look like a "
                              "failure and trigger a failover)");
  }
  if (!full_coverage.empty()) {
    report.warnings.push_back("cluster-require-full-coverage is yes on " + full_coverage +
                              " (a slot without an owner stops the whole cluster)");
  }
  for (const auto& [barrier, nodes] : barriers) {
    report.warnings.push_back("cluster-migration-barrier is " + std::to_string(barrier) + " on " +
                              nodes + " (replicas may migrate away and leave a master alone)");
  }
  return report;
}

}  // namespace slotguard::agent
