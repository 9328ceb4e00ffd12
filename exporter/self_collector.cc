#include "exporter/collectors.h"
#include "exporter/version.h"

namespace slotguard::exporter {

void CollectSelf(const ScrapeResult& scrape, FamilySet& out) {
  const BuildInfo& build = GetBuildInfo();
  out.Gauge(
      "slotguard_exporter_build_info",
      "Always 1; the labels say which slotguard-exporter build this is (version, git "
      "revision, compiler).",
      {{"version", build.version}, {"revision", build.revision}, {"compiler", build.compiler}}, 1);
  out.Gauge("slotguard_exporter_scrape_duration_seconds",
            "Wall time of the last scrape: every node read in parallel, bounded by "
            "--scrape.timeout.",
            {}, scrape.duration_seconds);
  out.Gauge("slotguard_exporter_discovery_ok",
            "1 when at least one node answered CLUSTER NODES in this scrape (the node list and "
            "the cluster-wide metrics are current), 0 when none did.",
            {}, scrape.discovery_ok ? 1 : 0);
  out.Gauge("slotguard_exporter_nodes",
            "Nodes known from discovery: every address the answering nodes' CLUSTER NODES name, "
            "failed ones included.",
            {}, scrape.known_nodes);
  for (const auto& node : scrape.nodes) {
    out.Gauge("redis_up",
              "1 when the node was reachable and answered INFO, CLUSTER INFO and CLUSTER NODES "
              "within the scrape deadline, else 0.",
              {{"node", node.label}}, node.up ? 1 : 0);
  }
  for (const auto& node : scrape.nodes) {
    out.Gauge("slotguard_exporter_node_scrape_duration_seconds",
              "Time spent reading one node in the last scrape (up to the deadline for a node "
              "that did not answer).",
              {{"node", node.label}}, node.duration_seconds);
  }
}

}  // namespace slotguard::exporter
