#include "exporter/node_reader.h"

#include <algorithm>
#include <map>
#include <memory>

namespace slotguard::exporter {
namespace {

using cluster::Reply;

constexpr std::string_view kAclUser = "the exporter's ACL user";

NodeResult Down(const cluster::Endpoint& dialed, std::string error) {
  NodeResult r;
  r.endpoint = dialed;
  r.label = dialed.ToString();
  r.error = std::move(error);
  return r;
}

// The slots a node's count pipeline asks about: open ones, and with stray keys on a master the
// ones it neither owns nor imports (a slot it imports is counted once, as open: its keys are
// expected there mid-move, so they are not stray).
struct CountPlan {
  std::vector<int> slots;
  std::vector<bool> is_open, is_stray;
  bool count_strays = false;
};

CountPlan PlanCounts(const cluster::NodeEntry& me, const ReadOptions& options) {
  CountPlan p;
  p.count_strays = options.stray_keys && me.flags.master;
  // The usual case, twice per node and scrape: nothing to count, no 16384-slot tables.
  if (me.open_slots.empty() && !p.count_strays) return p;
  p.is_open.assign(cluster::kSlotCount, false);
  p.is_stray.assign(cluster::kSlotCount, false);
  for (const auto& o : me.open_slots) p.is_open[o.slot] = true;
  if (p.count_strays) {
    for (int slot : me.SlotsNotOwned()) p.is_stray[slot] = !p.is_open[slot];
  }
  for (int slot = 0; slot < cluster::kSlotCount; ++slot) {
    if (p.is_open[slot] || p.is_stray[slot]) p.slots.push_back(slot);
  }
  return p;
}

const cluster::NodeEntry* Myself(const cluster::NodeRead& read) {
  return read.view ? cluster::FindMyself(read.view->nodes) : nullptr;
}

std::string CountRefusal(int slot, const Reply& reply) {
  return reply.IsError()
             ? cluster::Refusal("CLUSTER COUNTKEYSINSLOT " + std::to_string(slot), reply.str,
                                kAclUser)
             : "CLUSTER COUNTKEYSINSLOT " + std::to_string(slot) + ": not an integer reply";
}

void ApplyCounts(NodeResult& result, const cluster::NodeEntry& me, const CountPlan& plan,
                 const std::vector<Reply>& replies) {
  std::map<int, int64_t> by_slot;
  int64_t stray_keys = 0;
  bool strays_counted = plan.count_strays;
  for (size_t i = 0; i < plan.slots.size(); ++i) {
    const int slot = plan.slots[i];
    const Reply& reply = replies[i];
    const bool counted = reply.type == Reply::Type::kInteger;
    if (plan.is_open[slot] && counted) by_slot[slot] = reply.integer;
    // The open slot's key count is left out: say why rather than let it vanish.
    if (plan.is_open[slot] && !counted && result.error.empty()) {
      result.error = CountRefusal(slot, reply);
    }
    if (!plan.is_stray[slot]) continue;
    if (counted) {
      stray_keys += reply.integer;
    } else if (strays_counted) {
      strays_counted = false;  // a partial sum would read as fewer stray keys than there are
      result.error = CountRefusal(slot, reply);
    }
  }
  if (strays_counted) result.stray_keys = stray_keys;
  for (const auto& o : me.open_slots) {
    auto it = by_slot.find(o.slot);
    if (it != by_slot.end()) result.open_slot_keys.push_back({o.slot, o.direction, it->second});
  }
}

// A Connector over the one connection ReadNode was given.
class OneConnection final : public cluster::Connector {
 public:
  explicit OneConnection(cluster::Connection& connection) : connection_(connection) {}
  cluster::Connection& Get(const cluster::Endpoint&) override { return connection_; }

 private:
  cluster::Connection& connection_;
};

}  // namespace

cluster::ReadPlan ScrapePlan(const ReadOptions& options) {
  cluster::ReadPlan plan;
  plan.info_sections = {"all"};
  plan.cluster_info = true;
  plan.acl_user = std::string(kAclUser);
  plan.follow_up = [options](const cluster::NodeRead& read) {
    std::vector<cluster::Argv> counts;
    const cluster::NodeEntry* me = Myself(read);
    if (me == nullptr) return counts;
    for (int slot : PlanCounts(*me, options).slots) {
      counts.push_back({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)});
    }
    return counts;
  };
  return plan;
}

const std::vector<cluster::Argv>& NodeCommands() {
  static const std::vector<cluster::Argv> kCommands =
      cluster::NodeCommands(ScrapePlan(), cluster::Endpoint{});
  return kCommands;
}

NodeResult NodeResultFromRead(cluster::NodeRead read, const ReadOptions& options) {
  const cluster::NodeEntry* me = Myself(read);
  const bool complete = read.info.size() == 1 && read.info[0] && read.cluster_info && me;
  if (!complete || !read.error.empty()) {
    return Down(read.dialed, read.error.empty() ? "incomplete reply" : read.error);
  }
  NodeResult r;
  r.endpoint = read.dialed;
  r.label = read.address.ToString();
  r.up = true;
  r.duration_seconds = read.seconds;
  if (auto server = cluster::ServerVersionFromInfo(*read.info[0])) r.server = std::move(*server);
  r.info = std::move(*read.info[0]);
  r.cluster_info = std::move(*read.cluster_info);
  const CountPlan plan = PlanCounts(*me, options);
  if (!plan.slots.empty()) {
    if (read.follow_up_replies) {
      ApplyCounts(r, *me, plan, *read.follow_up_replies);
    } else if (!read.follow_up_error.empty()) {
      // The node answered the scrape itself: it stays up, only the key counts are missing.
      r.error = read.follow_up_error == "no time left"
                    ? "no time left to count keys (CLUSTER COUNTKEYSINSLOT)"
                    : "CLUSTER COUNTKEYSINSLOT: " + read.follow_up_error;
    }
  } else if (plan.count_strays) {
    r.stray_keys = 0;
  }
  r.view = std::move(read.view);
  return r;
}

NodeResult NodeResultFromReplies(const cluster::Endpoint& dialed,
                                 const std::vector<Reply>& replies) {
  return NodeResultFromRead(cluster::ParseNodeReplies(dialed, ScrapePlan(), replies));
}

NodeResult NodeResultFromText(const cluster::Endpoint& dialed, std::string_view info_text,
                              std::string_view cluster_info_text,
                              std::string_view cluster_nodes_text) {
  auto bulk = [](std::string_view text) {
    Reply r;
    r.type = Reply::Type::kString;
    r.str = std::string(text);
    return r;
  };
  return NodeResultFromReplies(
      dialed, {bulk(info_text), bulk(cluster_info_text), bulk(cluster_nodes_text)});
}

NodeResult ReadNode(cluster::Connection& connection, const cluster::Endpoint& endpoint,
                    Clock::time_point deadline, const ReadOptions& options) {
  OneConnection connector(connection);
  cluster::ClusterReader reader(cluster::Borrow(connector), ScrapePlan(options));
  auto reads = reader.ReadNodes({endpoint}, deadline);
  return NodeResultFromRead(std::move(reads.front()), options);
}

}  // namespace slotguard::exporter
