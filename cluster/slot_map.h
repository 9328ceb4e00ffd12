#pragma once

#include <array>
#include <map>
#include <string>
#include <vector>

#include "cluster/nodes.h"

namespace slotguard::cluster {

// What one node said in CLUSTER NODES: its own id and every line.
struct NodesView {
  std::string reporter_id;  // the node that answered (its myself line)
  Endpoint reporter;
  std::vector<NodeEntry> nodes;
};

// One node's view of the 16384 slot owners (node ids, "" when unassigned).
class SlotMap {
 public:
  explicit SlotMap(const std::vector<NodeEntry>& nodes);
  const std::string& Owner(int slot) const { return owners_[slot]; }
  int Assigned() const;

 private:
  std::array<std::string, kSlotCount> owners_;
};

struct OpenSlotState {
  int slot = 0;
  OpenDirection direction = OpenDirection::kMigrating;
  std::string node_id;  // the node that has the slot open
  Endpoint node;
  std::string peer_id;  // migrating towards / importing from
};

// The cluster-wide judgement of all views together.
struct ClusterJudgement {
  int views = 0;      // how many nodes answered
  int covered = 0;    // every view names the same, non-empty owner
  int uncovered = 0;  // every view says unassigned
  int disputed = 0;   // views disagree on the owner
  std::vector<int> uncovered_slots;
  std::vector<int> disputed_slots;
  std::vector<OpenSlotState> open_slots;  // sorted by slot, then node
  // As `redis-cli --cluster check` decides it: every node's config signature (its view of
  // which master owns which slots) is identical.
  bool consistent = true;
  // Masters (in any view) that share a config epoch with another master, per epoch.
  int epoch_collisions = 0;
  std::map<uint64_t, std::vector<std::string>> colliding_epochs;
  // Nodes any view flags fail / pfail / handshake / noaddr, by id.
  std::vector<std::string> failing_node_ids;
  // Agreed owner per slot ("" when uncovered or disputed).
  std::array<std::string, kSlotCount> owner;
};

ClusterJudgement JudgeCluster(const std::vector<NodesView>& views);

// `redis-cli --cluster check`'s signature of one view: "id:ranges|id:ranges", sorted.
std::string ConfigSignature(const std::vector<NodeEntry>& nodes);

}  // namespace slotguard::cluster
