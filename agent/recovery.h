#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/nodes.h"

namespace slotguard::agent {

// One slot of a batch as the batch's source (A) and target (B) describe it in their own
// CLUSTER NODES, plus how many keys each holds in it.
struct SlotObservation {
  int slot = 0;
  std::string owner_in_source_view;  // node id, "" when unassigned
  std::string owner_in_target_view;
  uint64_t source_epoch = 0;  // config epochs from the nodes' own lines
  uint64_t target_epoch = 0;
  bool source_migrating = false;  // A: [slot->-B]
  bool source_importing = false;  // A: [slot-<-B]
  bool target_migrating = false;  // B: [slot->-A]
  bool target_importing = false;  // B: [slot-<-A]
  int64_t source_keys = 0;
  int64_t target_keys = 0;
};

// Builds the observation of `slot` from A's and B's own views (pure; used by tests too).
// `former_target_id` (non-empty after a failover of the target, see PromotedTarget): B is then
// the promoted replica, and what A's view says of the former target counts as said of B: A's
// open state towards it is not replicated, so A still shows [slot->-former] while B never
// imported, and the slots the former target owned are B's since the failover.
SlotObservation Observe(int slot, const std::string& source_id,
                        const std::vector<cluster::NodeEntry>& source_view,
                        const std::string& target_id,
                        const std::vector<cluster::NodeEntry>& target_view, int64_t source_keys,
                        int64_t target_keys, const std::string& former_target_id = "");

// After a failover of a batch's target (its replica promoted, e.g. CLUSTER FAILOVER TAKEOVER,
// or the target failed), the master that took its place: the target is now a replica and
// names its master, which is a master that is not failing. nullptr when the target is still a
// master (no failover) or no such master is known. `nodes`: one entry per node id, a node's
// own line when it answered (ClusterSnapshot::nodes).
const cluster::NodeEntry* PromotedTarget(const std::vector<cluster::NodeEntry>& nodes,
                                         const std::string& target_id);

enum class Side { kSource, kTarget, kNeither };

// Where the slot settles before anything else moves: the node that owns it in its own view;
// when both claim it (a crash between SETSLOT NODE on one and the other), the one with the
// higher config epoch, because gossip makes that claim win anyway (SETSLOT NODE on the
// importing node bumps its epoch).
Side SettledOwner(const SlotObservation& o, const std::string& source_id,
                  const std::string& target_id);

// The slot can end at the target without moving a key back: the target owns it already, or it
// is open A->B and A holds no key any more.
bool ForwardReady(const SlotObservation& o, const std::string& source_id,
                  const std::string& target_id);

// Something is still to do for a slot that settles at `side`: open flags, keys left on the
// other node, or the two views disagree.
bool NeedsSettling(const SlotObservation& o, Side side, const std::string& source_id,
                   const std::string& target_id);

enum class ConvergeMode {
  kRollback,  // every slot ends at the source (guard trip, operator, alert, rollback in journal)
  kAuto,      // recovery: at the target when every slot is forward-ready, else at the source
};

// What to do, slot by slot, to end a batch with one owner per slot and every key present.
//
// Policy (recovery after a crash): a batch ends whole. When every slot of the batch can be
// finished forward without moving keys back (SETSLOT NODE already reached the target, or all
// keys are already at the target), it is finished forward and marked done; otherwise every slot
// goes back to the source and the batch is marked rolled back.
//
// Going back, a slot left open A->B with A still MIGRATING is first finished forward and then
// moved back with the forward protocol reversed. Redis gives no race-free way to send keys to a
// node that is MIGRATING the slot (it answers RESTORE with -ASK), and making A STABLE first would
// let clients miss keys that are still on B; finishing forward never does. A slot open only on B
// (IMPORTING, A not yet MIGRATING) received no key and no client: closing it is enough.
struct ConvergencePlan {
  bool to_target = false;             // the goal
  std::vector<int> close_at_source;   // A owns, not MIGRATING: STABLE on B, NODE A on B, others
  std::vector<int> finish_forward;    // A owns, MIGRATING to B: the forward protocol again
  std::vector<int> settle_at_target;  // B owns in its own view: NODE B on A and the others
  std::vector<int> reverse;           // goal A: afterwards the forward protocol B->A
  std::vector<int> stuck;             // neither A nor B owns it: left for the operator
};

ConvergencePlan PlanConvergence(const std::vector<SlotObservation>& slots,
                                const std::string& source_id, const std::string& target_id,
                                ConvergeMode mode);

}  // namespace slotguard::agent
