#pragma once

#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "cluster/slot_map.h"
#include "exporter/family_set.h"
#include "exporter/scrape_result.h"

namespace slotguard::exporter {

// One collector per concern. Each turns a scrape's results into samples; none does I/O, so
// all are unit-tested on captured server output. Metric names are pinned (notes/metrics.md).

// slotguard_exporter_* and redis_up.
void CollectSelf(const ScrapeResult& scrape, FamilySet& out);
// Every CLUSTER INFO field of every node, future fields included.
void CollectClusterInfo(const ScrapeResult& scrape, FamilySet& out);
// redis_cluster_node_*: every node named in CLUSTER NODES, from all views together.
void CollectClusterNodes(const ScrapeResult& scrape,
                         const std::vector<const cluster::NodesView*>& views, FamilySet& out);
// INFO all: commandstats, errorstats, latency percentiles, memory, clients, keys, replication.
void CollectInfo(const ScrapeResult& scrape, FamilySet& out);
// Cluster-wide coverage, consistency and open slots, from the judgement of all views.
void CollectSlots(const ScrapeResult& scrape, FamilySet& out);

// All collectors, in exposition order.
std::vector<prometheus::MetricFamily> BuildMetricFamilies(const ScrapeResult& scrape);

// The text exposition format (prometheus::TextSerializer) of BuildMetricFamilies.
std::string RenderMetrics(const ScrapeResult& scrape);

}  // namespace slotguard::exporter
