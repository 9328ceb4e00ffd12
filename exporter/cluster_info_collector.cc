#include "exporter/collectors.h"

#include <map>
#include <string_view>

namespace slotguard::exporter {
namespace {

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// HELP for the fields Redis 7.0 writes; fields a newer server adds get a generic one.
const std::map<std::string, std::string, std::less<>>& KnownHelp() {
  static const std::map<std::string, std::string, std::less<>> kHelp = {
      {"redis_cluster_state",
       "1 when the node says cluster_state:ok (it serves queries), 0 when fail."},
      {"redis_cluster_slots_assigned",
       "Slots bound to a node, in this node's view (CLUSTER INFO cluster_slots_assigned)."},
      {"redis_cluster_slots_ok",
       "Slots whose owner this node sees neither failing nor possibly failing."},
      {"redis_cluster_slots_pfail",
       "Slots whose owner this node flags PFAIL (possibly failing, not yet agreed)."},
      {"redis_cluster_slots_fail",
       "Slots whose owner this node flags FAIL: they are not served until a failover."},
      {"redis_cluster_known_nodes",
       "Nodes this node knows in the cluster, handshaking ones included."},
      {"redis_cluster_size", "Masters serving at least one slot, in this node's view."},
      {"redis_cluster_current_epoch", "The cluster's current epoch as this node knows it."},
      {"redis_cluster_my_epoch", "Config epoch of this node (of its master for a replica)."},
      {"redis_cluster_messages_sent_total",
       "Cluster bus messages sent by this node (CLUSTER INFO cluster_stats_messages_sent)."},
      {"redis_cluster_messages_received_total",
       "Cluster bus messages received by this node (CLUSTER INFO "
       "cluster_stats_messages_received)."},
      {"redis_cluster_total_cluster_links_buffer_limit_exceeded_total",
       "Cluster bus links freed because their send buffer exceeded "
       "cluster-link-sendbuf-limit."},
  };
  return kHelp;
}

std::string Help(const std::string& name, const std::string& field, bool counter) {
  auto it = KnownHelp().find(name);
  if (it != KnownHelp().end()) return it->second;
  constexpr std::string_view kMessages = "stats_messages_";
  std::string stripped = StartsWith(field, "cluster_") ? field.substr(8) : field;
  if (StartsWith(stripped, kMessages)) {
    std::string rest = stripped.substr(kMessages.size());  // "<type>_sent" or "<type>_received"
    auto underscore = rest.rfind('_');
    if (underscore != std::string::npos) {
      return "Cluster bus " + rest.substr(0, underscore) + " messages " +
             rest.substr(underscore + 1) + " by this node (CLUSTER INFO " + field +
             "; a counter, named and typed as redis_exporter exports it).";
    }
  }
  return std::string(counter ? "Counter" : "Value") + " of the CLUSTER INFO field " + field +
         " on this node.";
}

}  // namespace

void CollectClusterInfo(const ScrapeResult& scrape, FamilySet& out) {
  for (const auto& node : scrape.nodes) {
    if (!node.up) continue;
    const Labels labels = {{"node", node.label}};
    for (const auto& field : node.cluster_info.fields()) {
      if (field.key == "cluster_state") {
        out.Gauge("redis_cluster_state", Help("redis_cluster_state", field.key, false), labels,
                  field.value == "ok" ? 1 : 0);
        continue;
      }
      auto value = node.cluster_info.GetNumber(field.key);
      if (!value) continue;  // only numbers are metrics
      std::string stripped = StartsWith(field.key, "cluster_") ? field.key.substr(8) : field.key;
      // redis_exporter's names, so its rules and dashboards see these: the two totals as
      // redis_cluster_messages_{sent,received}_total, the per-type counts as
      // redis_cluster_stats_messages_<type>_<dir> without _total, typed gauge as redis_exporter
      // types them (a counter without _total would fail `promtool check metrics`).
      if (stripped == "stats_messages_sent" || stripped == "stats_messages_received") {
        const std::string name = "redis_cluster_messages_" + stripped.substr(15) + "_total";
        out.Counter(name, Help(name, field.key, true), labels, *value);
        continue;
      }
      if (StartsWith(stripped, "stats_messages_")) {
        const std::string name = "redis_cluster_" + SanitizeMetricName(stripped);
        out.Gauge(name, Help(name, field.key, true), labels, *value);
        continue;
      }
      const bool counter = StartsWith(stripped, "stats_") || StartsWith(stripped, "total_");
      std::string name = "redis_cluster_" + SanitizeMetricName(stripped);
      if (counter) {
        name += "_total";
        out.Counter(name, Help(name, field.key, true), labels, *value);
      } else {
        out.Gauge(name, Help(name, field.key, false), labels, *value);
      }
    }
  }
}

}  // namespace slotguard::exporter
