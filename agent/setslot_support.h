#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "cluster/connection.h"
#include "cluster/reply.h"

namespace slotguard::agent {

// How a node executes CLUSTER SETSLOT. Valkey 8 primaries replicate every SETSLOT to their
// replicas first, block the caller until the replicas acknowledge it (the TIMEOUT argument,
// 2 s by default) and only then execute it; when the wait expires they answer -NOREPLICAS
// without executing it, although a replica may have applied it already (cluster_legacy.c,
// clusterCommandSetSlot). Redis (6.2 to 7.4) executes SETSLOT at once and replicates nothing.
struct SetSlotSupport {
  // SETSLOT takes `TIMEOUT <ms>` and is replicated before it runs.
  bool replicated = false;
};

// From the node's reply to COMMAND DOCS CLUSTER|SETSLOT: replicated when its arguments include
// `timeout` (Valkey 8). An error reply (6.2 has no COMMAND DOCS) or no such argument: not.
// Probing the command's documented arguments decides by capability, not by version string.
SetSlotSupport SetSlotSupportFrom(const cluster::Reply& docs);

// Reads the node's COMMAND DOCS; a transport failure is returned, an error reply is not.
cluster::Result<SetSlotSupport> ProbeSetSlotSupport(cluster::Connection& connection);

// `commands` with `TIMEOUT <ms>` appended to every CLUSTER SETSLOT when the node replicates
// SETSLOT. The wait for the replicas is bounded below the agent's own read timeout, so the
// node says -NOREPLICAS (an answer) before the agent would give up on the reply (no answer).
std::vector<cluster::Argv> WithSetSlotTimeout(const SetSlotSupport& support,
                                              std::vector<cluster::Argv> commands,
                                              std::chrono::milliseconds timeout);

// True for the replies that leave a replicated SETSLOT's outcome unknown: -NOREPLICAS (the
// primary did not execute it, a replica may have) and -UNBLOCKED (CLIENT UNBLOCK, or the
// primary turned replica while it waited). The state must be read again, never assumed.
bool SetSlotOutcomeUnknown(const cluster::Reply& reply);

// True for a demoted node's answer to SETSLOT ("Please use SETSLOT only with masters", or
// "primaries" in later Valkey wording): its new master learns the change by gossip.
bool IsReplicaReply(const std::string& error);

// Splits a pipeline for a node that replicates SETSLOT into lanes (indices into `commands`)
// that may run side by side, one connection each: such a node blocks each SETSLOT until its
// replicas acknowledge it, so one connection pays a replica round trip per command, while N
// connections share each round trip (the primary asks its replicas once for every client
// waiting). Commands of one slot stay in one lane, in order; consecutive slots go to different
// lanes. When some command names no slot (argv[2] of CLUSTER ...), one lane holds everything.
std::vector<std::vector<size_t>> SplitIntoLanes(const std::vector<cluster::Argv>& commands,
                                                size_t max_lanes);

}  // namespace slotguard::agent
