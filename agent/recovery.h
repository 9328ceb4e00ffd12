#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/cluster_snapshot.h"
#include "cluster/endpoint.h"
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

// The masters that replaced a batch's ends after a failover (see PromotedMaster); "" when that
// end did not fail over.
struct FormerEnds {
  std::string source_id;
  std::string target_id;
};

// Builds the observation of `slot` from A's and B's own views (pure; used by tests too).
// After a failover of an end, A or B is the promoted replica, and what the views say of the
// former node counts as said of its replacement: open-slot state is not replicated (7.x), so
// A may still show [slot->-former target] while B never imported, or B [slot-<-former source]
// while the promoted A is not MIGRATING; the slots a former node owned are its replacement's.
SlotObservation Observe(int slot, const std::string& source_id,
                        const std::vector<cluster::NodeEntry>& source_view,
                        const std::string& target_id,
                        const std::vector<cluster::NodeEntry>& target_view, int64_t source_keys,
                        int64_t target_keys, const FormerEnds& former = {});

// After a failover of a batch's end (its replica promoted, e.g. CLUSTER FAILOVER TAKEOVER, or
// the node failed), the master that took its place: the node is now a replica and names its
// master, which is a master that is not failing. nullptr when the node is still a master (no
// failover) or no such master is known. `nodes`: one entry per node id, a node's own line when
// it answered (ClusterSnapshot::nodes).
// A node that no longer answers (frozen, dead) cannot say whose replica it is: then the master
// that replaced it is one of `former_replicas` (its replicas when the batch started) that is now
// a master not failing.
const cluster::NodeEntry* PromotedMaster(const std::vector<cluster::NodeEntry>& nodes,
                                         const std::string& node_id, bool unreachable = false,
                                         const std::vector<std::string>& former_replicas = {});

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
// let clients miss keys that are still on B; finishing forward never does. A slot A owns with
// keys on B but A no longer MIGRATING (A failed over: open state is not replicated; or a run
// died inside a settle step) takes the same path: SETSLOT MIGRATING on A is its first step, and
// from then on clients that miss a key at A are sent to B again. Only a slot with no key on B
// (B IMPORTING, A never MIGRATING: no key and no client went there) is just closed.
struct ConvergencePlan {
  bool to_target = false;             // the goal
  std::vector<int> close_at_source;   // A owns, no key on B: STABLE on B, NODE A on B, others
  std::vector<int> finish_forward;    // A owns, open or keys on B: the forward protocol again
  std::vector<int> settle_at_target;  // B owns in its own view: NODE B on A and the others
  std::vector<int> reverse;           // goal A: afterwards the forward protocol B->A
  std::vector<int> stuck;             // neither A nor B owns it: left for the operator
};

ConvergencePlan PlanConvergence(const std::vector<SlotObservation>& slots,
                                const std::string& source_id, const std::string& target_id,
                                ConvergeMode mode);

// Pure. Open slots among `slots` that a replica shows in its own line while its master does
// not have them open: Valkey 8 replicas apply a SETSLOT before their primary runs it, and keep
// it when the primary then answers -NOREPLICAS without running it. By the master's address,
// the slots to make STABLE there: the master replicates that STABLE, which clears them. A slot
// the master has open too is left to PlanConvergence.
std::map<cluster::Endpoint, std::vector<int>> ReplicaLeftovers(const ClusterSnapshot& snapshot,
                                                               const std::vector<int>& slots);

}  // namespace slotguard::agent
