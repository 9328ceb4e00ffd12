#pragma once

#include <chrono>
#include <string_view>
#include <vector>

#include "cluster/reply.h"
#include "exporter/node_client.h"
#include "exporter/scrape_result.h"

namespace slotguard::exporter {

using Clock = std::chrono::steady_clock;

// The pipeline sent to every node on every scrape.
const std::vector<cluster::Argv>& NodeCommands();

// A node's result from the replies to NodeCommands() (pure: unit-tested on captured output).
// Any refused command or unparsable reply leaves the node down with the reason in `error`.
NodeResult NodeResultFromReplies(const cluster::Endpoint& dialed,
                                 const std::vector<cluster::Reply>& replies);

// The same from the raw texts, as captured into tests/data.
NodeResult NodeResultFromText(const cluster::Endpoint& dialed, std::string_view info,
                              std::string_view cluster_info, std::string_view cluster_nodes);

// Reads one node: the pipeline, then CLUSTER COUNTKEYSINSLOT for every slot the node has open
// (its own CLUSTER NODES line says which). Every wait ends by `deadline`.
NodeResult ReadNode(NodeClient& client, const cluster::Endpoint& endpoint,
                    Clock::time_point deadline);

}  // namespace slotguard::exporter
