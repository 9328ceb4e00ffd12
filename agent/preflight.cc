#include "agent/preflight.h"

#include <algorithm>
#include <cstdio>

namespace slotguard::agent {
namespace {

std::string Name(const ClusterSnapshot& s, const std::string& id) {
  if (const auto* n = s.FindById(id)) return n->endpoint.ToString() + " (" + id + ")";
  return id;
}

std::string FirstSlots(const std::vector<int>& slots) {
  std::string out;
  for (size_t i = 0; i < slots.size() && i < 5; ++i) {
    out += (i ? "," : "") + std::to_string(slots[i]);
  }
  if (slots.size() > 5) out += ",...";
  return out;
}

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
  for (const auto& r : s.reports) {
    if (!r.reachable())
      return fail("node " + r.endpoint.ToString() + " is unreachable: " + r.error);
    if (!r.cluster_info) {
      return fail("node " + r.endpoint.ToString() + " did not answer CLUSTER INFO");
    }
    auto state = r.cluster_info->Get("cluster_state");
    if (!state || *state != "ok") {
      return fail("node " + r.endpoint.ToString() +
                  " reports cluster_state:" + (state ? *state : std::string("?")));
    }
  }
  const auto& j = s.judgement;
  for (const auto& id : j.failing_node_ids) {
    for (const auto& v : s.views) {
      for (const auto& n : v.nodes) {
        if (n.id != id) continue;
        std::string flag = n.flags.fail        ? "fail"
                           : n.flags.pfail     ? "fail?"
                           : n.flags.handshake ? "handshake"
                           : n.flags.noaddr    ? "noaddr"
                                               : "";
        if (!flag.empty()) {
          return fail("node " + Name(s, id) + " is flagged " + flag + " by " +
                      v.reporter.ToString());
        }
      }
    }
  }
  if (j.covered != cluster::kSlotCount) {
    if (!j.disputed_slots.empty()) {
      return fail(std::to_string(j.disputed) + " slots are disputed between nodes (" +
                  FirstSlots(j.disputed_slots) + ")");
    }
    return fail("only " + std::to_string(j.covered) +
                " of 16384 slots are covered (uncovered: " + FirstSlots(j.uncovered_slots) + ")");
  }
  if (!j.consistent) {
    std::string first = s.views.empty() ? "" : cluster::ConfigSignature(s.views.front().nodes);
    for (const auto& v : s.views) {
      if (cluster::ConfigSignature(v.nodes) != first) {
        return fail("nodes don't agree about the slot configuration (" + v.reporter.ToString() +
                    " differs from " + s.views.front().reporter.ToString() + ")");
      }
    }
    return fail("nodes don't agree about the slot configuration");
  }
  if (!j.open_slots.empty()) {
    const auto& o = j.open_slots.front();
    return fail("slot " + std::to_string(o.slot) + " is open (" +
                (o.direction == cluster::OpenDirection::kMigrating ? "migrating" : "importing") +
                " on " + o.node.ToString() + "); " + std::to_string(j.open_slots.size()) +
                " open slot(s) in all; fix them first (slotguard-agent reshard --journal of the "
                "run that left them, or redis-cli --cluster fix)");
  }
  if (j.epoch_collisions > 0) {
    const auto& [epoch, ids] = *j.colliding_epochs.begin();
    std::string who;
    for (const auto& id : ids) who += (who.empty() ? "" : ", ") + Name(s, id);
    return fail("config epoch " + std::to_string(epoch) + " is shared by masters " + who);
  }
  for (int slot : batch.batch.slots) {
    if (j.Owner(slot) != batch.source_id) {
      return fail("slot " + std::to_string(slot) + " is not owned by source " +
                  Name(s, batch.source_id));
    }
  }
  const auto* target = s.FindById(batch.target_id);
  if (target == nullptr || !target->flags.master) {
    return fail("target " + Name(s, batch.target_id) + " is not a master");
  }
  const auto* target_report = s.ReportFor(target->endpoint);
  if (target_report == nullptr || !target_report->reachable()) {
    return fail("target " + Name(s, batch.target_id) + " is not reachable");
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
      return fail("source " + Name(s, batch.source_id) + " runs " + name(from) + ", target " +
                  Name(s, batch.target_id) + " runs " + name(to) +
                  ": the target cannot read the keys MIGRATE would carry (\"DUMP payload "
                  "version or checksum are wrong\"); upgrade the target first, or move the "
                  "slots to a master on the source's version");
    }
    if (from.RdbVersion() < to.RdbVersion()) {
      report.warnings.push_back(
          "target " + Name(s, batch.target_id) + " runs " + name(to) + ", newer than source " +
          Name(s, batch.source_id) + " (" + name(from) +
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
