#include "exporter/collectors.h"

#include <algorithm>
#include <set>

namespace slotguard::exporter {
namespace {

const char* StateName(cluster::OpenDirection direction) {
  return direction == cluster::OpenDirection::kMigrating ? "migrating" : "importing";
}

}  // namespace

void CollectSlots(const ScrapeResult& scrape, FamilySet& out) {
  // With no node answering nothing is known: better no series than a false "0 covered".
  if (!scrape.judgement) return;
  const cluster::ClusterJudgement& j = *scrape.judgement;

  out.Gauge("redis_cluster_slots_covered",
            "Slots every answering node assigns to the same owner (16384 when healthy).", {},
            j.covered);
  out.Gauge("redis_cluster_slots_uncovered",
            "Slots no answering node assigns to any owner: keys there cannot be served.", {},
            j.uncovered);
  out.Gauge("redis_cluster_slots_disputed",
            "Slots the answering nodes assign to different owners (views disagree).", {},
            j.disputed);

  // Each slot once per state: on Valkey 8 a primary's replicas show its open slot in their own
  // lines too (SETSLOT is replicated), which is still one open slot.
  std::set<int> migrating;
  std::set<int> importing;
  for (const auto& open : j.open_slots) {
    (open.direction == cluster::OpenDirection::kMigrating ? migrating : importing)
        .insert(open.slot);
  }
  const char* open_help =
      "Open slots by state: a node's own CLUSTER NODES line shows [slot->-id] (migrating) or "
      "[slot-<-id] (importing); each slot counted once however many nodes show it. Nonzero "
      "outside a resharding means a move was left half done.";
  out.Gauge("redis_cluster_slots_open", open_help, {{"state", "migrating"}},
            static_cast<double>(migrating.size()));
  out.Gauge("redis_cluster_slots_open", open_help, {{"state", "importing"}},
            static_cast<double>(importing.size()));

  out.Gauge("redis_cluster_config_consistent",
            "1 when every answering node has the same slot configuration (as `redis-cli "
            "--cluster check` decides it: \"All nodes agree about slots configuration\"), else "
            "0.",
            {}, j.consistent ? 1 : 0);
  out.Gauge("redis_cluster_config_epoch_collisions",
            "Masters sharing a config epoch with another master (0 when healthy).", {},
            j.epoch_collisions);
  out.Gauge("redis_cluster_nodes_failing",
            "Nodes any answering node flags fail, pfail, handshake or noaddr.", {},
            static_cast<double>(j.failing_node_ids.size()));

  const char* keys_help =
      "Keys in an open slot on the node that has it open (CLUSTER COUNTKEYSINSLOT): on the "
      "migrating node the keys still to move, on the importing node those already moved.";
  for (const auto& open : j.open_slots) {
    const std::string label = open.node.ToString();
    auto node = std::find_if(scrape.nodes.begin(), scrape.nodes.end(),
                             [&](const NodeResult& n) { return n.label == label; });
    if (node == scrape.nodes.end()) continue;
    for (const auto& counted : node->open_slot_keys) {
      if (counted.slot != open.slot || counted.direction != open.direction) continue;
      out.Gauge("redis_cluster_open_slot_keys", keys_help,
                {{"slot", std::to_string(open.slot)},
                 {"state", StateName(open.direction)},
                 {"node", label}},
                static_cast<double>(counted.keys));
    }
  }

  for (const auto& node : scrape.nodes) {
    if (!node.stray_keys) continue;
    out.Gauge("redis_cluster_stray_keys",
              "Keys a master holds in slots it neither owns nor imports in its own CLUSTER NODES "
              "view (CLUSTER COUNTKEYSINSLOT): stranded, clients are sent to the owner. 0 when "
              "healthy. Only with --scrape.stray-keys.",
              {{"node", node.label}}, static_cast<double>(*node.stray_keys));
  }
}

}  // namespace slotguard::exporter
