#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/endpoint.h"
#include "cluster/info.h"
#include "cluster/membership.h"
#include "cluster/nodes.h"
#include "cluster/server_version.h"
#include "cluster/slot_map.h"

namespace slotguard::exporter {

// Keys counted (CLUSTER COUNTKEYSINSLOT) in a slot this node has open.
struct OpenSlotKeys {
  int slot = 0;
  cluster::OpenDirection direction = cluster::OpenDirection::kMigrating;
  int64_t keys = 0;
};

// What one node answered in one scrape.
struct NodeResult {
  cluster::Endpoint endpoint;  // the address dialed
  std::string label;           // node="..." label: the address the node announces
  bool up = false;             // answered INFO, CLUSTER INFO and CLUSTER NODES in time
  std::string error;           // why not up (never holds a secret)
  double duration_seconds = 0;
  cluster::Info info;  // INFO all
  // Which server and version, from INFO all's server section; unset when INFO has no usable
  // redis_version (the node is up all the same).
  std::optional<cluster::ServerVersion> server;
  cluster::Info cluster_info;              // CLUSTER INFO
  std::optional<cluster::NodesView> view;  // CLUSTER NODES
  std::vector<OpenSlotKeys> open_slot_keys;
  // On a master, when asked for: keys it holds in slots it neither owns nor imports in its own
  // view (stranded: clients are sent elsewhere). Unset when not counted.
  std::optional<int64_t> stray_keys;
};

// One whole scrape: every node read, and the judgement of all views together.
struct ScrapeResult {
  std::vector<NodeResult> nodes;  // sorted by label
  double duration_seconds = 0;
  bool discovery_ok = false;  // at least one node answered CLUSTER NODES
  int known_nodes = 0;        // nodes known from discovery after this scrape
  // Set when discovery_ok. Shared, not copied, by whoever renders or keeps the scrape.
  std::shared_ptr<const cluster::ClusterJudgement> judgement;
};

using cluster::ViewRefs;

// The member views (cluster/membership.h) of the nodes that are up, in the order of `nodes`;
// valid while `nodes` is.
ViewRefs ClusterViews(const std::vector<NodeResult>& nodes);

// A ScrapeResult from per-node results: sorted by label, discovery_ok and the judgement from
// the answering cluster members' views. known_nodes and duration_seconds are left to the caller.
ScrapeResult AssembleScrape(std::vector<NodeResult> nodes);

}  // namespace slotguard::exporter
