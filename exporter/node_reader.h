#pragma once

#include <chrono>
#include <string_view>
#include <vector>

#include "cluster/cluster_reader.h"
#include "cluster/connection.h"
#include "cluster/reply.h"
#include "exporter/scrape_result.h"

namespace slotguard::exporter {

using Clock = std::chrono::steady_clock;

// What a scrape reads beyond the fixed pipeline.
struct ReadOptions {
  // On a master, CLUSTER COUNTKEYSINSLOT for every slot it neither owns nor imports: about
  // 11,000 commands per master and scrape, so off unless asked for (--scrape.stray-keys).
  bool stray_keys = false;
};

// The cluster reader's plan for a scrape: INFO all, CLUSTER INFO and CLUSTER NODES, then, in one
// more round trip, CLUSTER COUNTKEYSINSLOT for every slot the node has open (its own CLUSTER
// NODES line says which) and, with `options.stray_keys`, for every slot a master does not own.
cluster::ReadPlan ScrapePlan(const ReadOptions& options = {});

// The pipeline sent to every node on every scrape.
const std::vector<cluster::Argv>& NodeCommands();

// A node's result from what the cluster reader read (pure). A node is up when it answered INFO,
// CLUSTER INFO and a CLUSTER NODES with a myself line; else down with the reason in `error`.
NodeResult NodeResultFromRead(cluster::NodeRead read, const ReadOptions& options = {});

// A node's result from the replies to NodeCommands() (pure: unit-tested on captured output).
NodeResult NodeResultFromReplies(const cluster::Endpoint& dialed,
                                 const std::vector<cluster::Reply>& replies);

// The same from the raw texts, as captured into tests/data.
NodeResult NodeResultFromText(const cluster::Endpoint& dialed, std::string_view info,
                              std::string_view cluster_info, std::string_view cluster_nodes);

// Reads one node over `connection` through the cluster reader; every wait ends by `deadline`.
NodeResult ReadNode(cluster::Connection& connection, const cluster::Endpoint& endpoint,
                    Clock::time_point deadline, const ReadOptions& options = {});

}  // namespace slotguard::exporter
