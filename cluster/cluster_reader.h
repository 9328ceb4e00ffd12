#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/connection.h"
#include "cluster/endpoint.h"
#include "cluster/info.h"
#include "cluster/reply.h"
#include "cluster/result.h"
#include "cluster/slot_map.h"

namespace slotguard::cluster {

using ReadClock = std::chrono::steady_clock;

struct NodeRead;

// What to read from each node besides CLUSTER NODES.
struct ReadPlan {
  // One INFO command per entry ("all", "commandstats"): 6.2 takes one section per INFO. Each
  // lands in NodeRead::info at the same index. Empty: no INFO.
  std::vector<std::string> info_sections;
  // Only these nodes are sent the INFO commands; empty: every node.
  std::vector<Endpoint> info_only_at;
  bool cluster_info = true;  // CLUSTER INFO
  // A second round trip chosen from the first's answer (the exporter's key counts), under the
  // same deadline; its replies land in NodeRead::follow_up_replies. Unset or empty: none.
  std::function<std::vector<Argv>(const NodeRead&)> follow_up;
  // Return at the deadline even while a node's read still runs (a fake or a kernel call that
  // ignores its timeout): the straggler finishes in the background, holding that node's lock so
  // no later read shares its connection. Only for a connector nothing else uses. Off: wait for
  // every read (each ends by the deadline on a real connection).
  bool abandon_stragglers = false;
  // Who a NOPERM refusal tells the operator to grant the command to.
  std::string acl_user = "the ACL user";
};

// What one node answered (or why it did not).
struct NodeRead {
  Endpoint dialed;
  // The address the node announces for itself (its myself line, the ":port only" form completed
  // with the dialed host); the dialed one when it did not answer.
  Endpoint address;
  std::optional<NodesView> view;  // its CLUSTER NODES; reporter is `address`
  std::optional<Info> cluster_info;
  // One per ReadPlan::info_sections entry when INFO was sent (none otherwise); unset where the
  // node refused it or the reply did not parse (an INFO section with no field does not).
  std::vector<std::optional<Info>> info;
  // The first thing that failed, in pipeline order (INFO, CLUSTER INFO, CLUSTER NODES, then the
  // follow-up); "" when everything answered. A node with a view may still have one.
  std::string error;
  std::optional<std::vector<Reply>> follow_up_replies;
  std::string follow_up_error;  // why the follow-up has no replies
  double seconds = 0;
  bool member = false;  // its view counts for the cluster (cluster/membership.h)
  bool up() const { return view.has_value(); }
};

// A whole cluster as read from seeds.
struct ClusterRead {
  std::vector<NodeRead> nodes;  // one per address, sorted by it
  bool discovery_ok = false;    // at least one node answered CLUSTER NODES
};

// Pure: the commands sent to a node under `plan`, in order.
std::vector<Argv> NodeCommands(const ReadPlan& plan, const Endpoint& dialed);
// Pure: a NodeRead from the replies to NodeCommands (unit-tested on captured server output).
NodeRead ParseNodeReplies(const Endpoint& dialed, const ReadPlan& plan,
                          const std::vector<Reply>& replies);
// A refusal as logs show it; NOPERM says what to grant to `acl_user`.
std::string Refusal(std::string_view command, const std::string& error,
                    std::string_view acl_user = "the ACL user");

// The one way both binaries read a cluster: every node's CLUSTER NODES plus what the plan asks
// for, in parallel on the shared FanOut workers, under one deadline. Safe to use from several
// threads at once; each node's connection has one reader at a time.
class ClusterReader {
 public:
  // `connector` must outlive every read (stragglers included).
  ClusterReader(std::shared_ptr<Connector> connector, ReadPlan plan);

  // Exactly `endpoints`, no discovery. Results in the order given.
  std::vector<NodeRead> ReadNodes(const std::vector<Endpoint>& endpoints,
                                  std::optional<ReadClock::time_point> deadline);

  // Reads `known` (or the seeds when `known` is empty or none of it answers), then every
  // address the answers name that was not read yet, up to three rounds. A seed that is another
  // name of a node is reported once, under the node's own address. Marks the members.
  ClusterRead Read(const std::vector<Endpoint>& seeds, const std::vector<Endpoint>& known,
                   std::optional<ReadClock::time_point> deadline);

  // Drops the connections (and locks) of endpoints not in `keep`, except those a straggler
  // still uses.
  void Retain(const std::vector<Endpoint>& keep);

 private:
  struct NodeLock;
  std::shared_ptr<NodeLock> LockFor(const Endpoint& endpoint);

  const std::shared_ptr<Connector> connector_;
  const std::shared_ptr<const ReadPlan> plan_;
  std::mutex mutex_;  // guards locks_
  std::map<Endpoint, std::shared_ptr<NodeLock>> locks_;
};

// For a caller that owns its connector elsewhere and outlives the read.
std::shared_ptr<Connector> Borrow(Connector& connector);

}  // namespace slotguard::cluster
