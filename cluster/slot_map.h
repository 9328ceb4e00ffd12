#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/nodes.h"

namespace slotguard::cluster {

// What one node said in CLUSTER NODES: its own id and every line.
struct NodesView {
  std::string reporter_id;  // the node that answered (its myself line)
  Endpoint reporter;
  std::vector<NodeEntry> nodes;
};

// Who owns each of the 16384 slots: per slot a small index into a table of the owners' node
// ids. 32 KiB plus one string per owner, where a string per slot took half a megabyte and
// 16384 allocations; it is built on every scrape, per view and for the judgement.
class SlotMap {
 public:
  using Index = uint16_t;
  static constexpr Index kUnassigned = 0xFFFF;
  // More owners than this cannot be told apart; a cluster has at most a few thousand nodes.
  static constexpr size_t kMaxOwners = kUnassigned;

  // Every slot unassigned.
  SlotMap();
  // One view's owners: every master line's slot ranges (a later line wins a slot two claim).
  explicit SlotMap(const std::vector<NodeEntry>& nodes);

  // The owner's node id, "" when unassigned. Valid while the map lives and is not changed.
  std::string_view Owner(int slot) const {
    const Index i = owners_[static_cast<size_t>(slot)];
    return i == kUnassigned ? std::string_view() : std::string_view(ids_[i]);
  }
  // The owner as an index into Ids(), kUnassigned when none.
  Index OwnerIndex(int slot) const { return owners_[static_cast<size_t>(slot)]; }
  // Every id interned so far (owners, and ids that owned a slot before it was reassigned).
  const std::vector<std::string>& Ids() const { return ids_; }
  // The index of `id` in Ids(), kUnassigned when it was never interned.
  Index Find(std::string_view id) const;

  // Slots with an owner; slots `id` owns.
  int Assigned() const;
  int Count(std::string_view id) const;

  // The index of `id`, added to the table when new (kUnassigned when the table is full).
  Index Intern(std::string_view id);
  // Names the owner of slots [first, last] by index (kUnassigned to clear them).
  void Assign(int first, int last, Index owner);

 private:
  std::vector<std::string> ids_;
  std::vector<Index> owners_;  // kSlotCount entries, on the heap: the map is small on a stack
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
  // Agreed owner per slot (unassigned when uncovered or disputed).
  SlotMap owners;

  // The agreed owner of `slot`, "" when uncovered or disputed.
  std::string_view Owner(int slot) const { return owners.Owner(slot); }
};

ClusterJudgement JudgeCluster(const std::vector<NodesView>& views);
// JudgeCluster over views held elsewhere (none null).
ClusterJudgement JudgeClusterRefs(const std::vector<const NodesView*>& views);

// `redis-cli --cluster check`'s signature of one view: "id:ranges|id:ranges", sorted.
std::string ConfigSignature(const std::vector<NodeEntry>& nodes);

}  // namespace slotguard::cluster
