#include "exporter/node_reader.h"

#include <algorithm>
#include <map>

namespace slotguard::exporter {
namespace {

using cluster::Reply;

std::chrono::milliseconds Remaining(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
}

// A refusal as the log shows it; NOPERM (an ACL user without the command) says what to grant.
std::string Refusal(std::string_view command, const std::string& error) {
  std::string out = std::string(command) + " refused: " + error;
  if (error.rfind("NOPERM", 0) == 0) {
    out += " (the exporter's ACL user needs this command: see README, Least-privilege ACL users)";
  }
  return out;
}

// The text of a bulk/status reply, or why there is none.
cluster::Result<std::string_view> Text(const Reply& reply, std::string_view command) {
  if (reply.IsError()) return cluster::MakeError(Refusal(command, reply.str));
  if (reply.type != Reply::Type::kString && reply.type != Reply::Type::kStatus) {
    return cluster::MakeError(std::string(command) + ": unexpected reply type");
  }
  return std::string_view(reply.str);
}

NodeResult Down(const cluster::Endpoint& dialed, std::string error) {
  NodeResult r;
  r.endpoint = dialed;
  r.label = dialed.ToString();
  r.error = std::move(error);
  return r;
}

}  // namespace

const std::vector<cluster::Argv>& NodeCommands() {
  static const std::vector<cluster::Argv> kCommands = {
      {"INFO", "all"}, {"CLUSTER", "INFO"}, {"CLUSTER", "NODES"}};
  return kCommands;
}

NodeResult NodeResultFromText(const cluster::Endpoint& dialed, std::string_view info_text,
                              std::string_view cluster_info_text,
                              std::string_view cluster_nodes_text) {
  auto info = cluster::ParseInfo(info_text);
  if (!info) return Down(dialed, "INFO all: " + info.error().message);
  auto cluster_info = cluster::ParseInfo(cluster_info_text);
  if (!cluster_info) return Down(dialed, "CLUSTER INFO: " + cluster_info.error().message);
  auto nodes = cluster::ParseClusterNodes(cluster_nodes_text);
  if (!nodes) return Down(dialed, "CLUSTER NODES: " + nodes.error().message);

  auto myself = std::find_if(nodes->begin(), nodes->end(),
                             [](const cluster::NodeEntry& n) { return n.flags.myself; });
  if (myself == nodes->end()) return Down(dialed, "CLUSTER NODES: no myself line");
  // A node never met by another does not know its own IP and writes ":port".
  if (myself->endpoint.host.empty()) myself->endpoint.host = dialed.host;
  if (myself->endpoint.port <= 0) myself->endpoint.port = dialed.port;

  NodeResult r;
  r.endpoint = dialed;
  r.label = myself->endpoint.ToString();
  r.up = true;
  if (auto server = cluster::ServerVersionFromInfo(*info)) r.server = std::move(*server);
  r.info = std::move(*info);
  r.cluster_info = std::move(*cluster_info);
  cluster::NodesView view;
  view.reporter_id = myself->id;
  view.reporter = myself->endpoint;
  view.nodes = std::move(*nodes);
  r.view = std::move(view);
  return r;
}

NodeResult NodeResultFromReplies(const cluster::Endpoint& dialed,
                                 const std::vector<Reply>& replies) {
  const auto& commands = NodeCommands();
  if (replies.size() != commands.size()) {
    return Down(dialed, "expected " + std::to_string(commands.size()) + " replies, got " +
                            std::to_string(replies.size()));
  }
  std::vector<std::string_view> texts;
  for (size_t i = 0; i < replies.size(); ++i) {
    const std::string name = commands[i][0] + " " + commands[i][1];
    auto text = Text(replies[i], name);
    if (!text) return Down(dialed, text.error().message);
    texts.push_back(*text);
  }
  return NodeResultFromText(dialed, texts[0], texts[1], texts[2]);
}

NodeResult ReadNode(NodeClient& client, const cluster::Endpoint& endpoint,
                    Clock::time_point deadline, const ReadOptions& options) {
  auto left = Remaining(deadline);
  if (left.count() <= 0) return Down(endpoint, "scrape deadline passed before the node was read");
  auto replies = client.Pipeline(NodeCommands(), left);
  if (!replies) return Down(endpoint, replies.error().message);
  NodeResult result = NodeResultFromReplies(endpoint, *replies);
  if (!result.up || !result.view) return result;

  const cluster::NodeEntry* me = cluster::FindMyself(result.view->nodes);
  if (me == nullptr) return result;
  // Open slots and stray-key slots share the one round trip: a slot the node imports is counted
  // once, for open_slot_keys (its keys are expected there mid-move, so they are not stray).
  std::vector<bool> is_open(cluster::kSlotCount, false);
  for (const auto& o : me->open_slots) is_open[o.slot] = true;
  std::vector<bool> is_stray(cluster::kSlotCount, false);
  const bool count_strays = options.stray_keys && me->flags.master;
  if (count_strays) {
    for (int slot : me->SlotsNotOwned()) is_stray[slot] = !is_open[slot];
  }
  std::vector<int> slots;
  for (int slot = 0; slot < cluster::kSlotCount; ++slot) {
    if (is_open[slot] || is_stray[slot]) slots.push_back(slot);
  }
  if (slots.empty()) {
    if (count_strays) result.stray_keys = 0;
    return result;
  }
  std::vector<cluster::Argv> counts;
  counts.reserve(slots.size());
  for (int slot : slots) counts.push_back({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)});

  left = Remaining(deadline);
  if (left.count() <= 0) {
    result.error = "no time left to count keys (CLUSTER COUNTKEYSINSLOT)";
    return result;
  }
  auto count_replies = client.Pipeline(counts, left);
  if (!count_replies || count_replies->size() != counts.size()) {
    // The node answered the scrape itself: it stays up, only the key counts are missing.
    result.error =
        "CLUSTER COUNTKEYSINSLOT: " +
        (count_replies ? std::string("wrong number of replies") : count_replies.error().message);
    return result;
  }
  std::map<int, int64_t> by_slot;
  int64_t stray_keys = 0;
  bool strays_counted = count_strays;
  for (size_t i = 0; i < slots.size(); ++i) {
    const Reply& reply = (*count_replies)[i];
    const bool counted = reply.type == Reply::Type::kInteger;
    if (is_open[slots[i]] && counted) by_slot[slots[i]] = reply.integer;
    if (is_open[slots[i]] && !counted && result.error.empty()) {
      // The open slot's key count is left out: say why rather than let it vanish.
      result.error =
          reply.IsError()
              ? Refusal("CLUSTER COUNTKEYSINSLOT " + std::to_string(slots[i]), reply.str)
              : "CLUSTER COUNTKEYSINSLOT " + std::to_string(slots[i]) + ": not an integer reply";
    }
    if (!is_stray[slots[i]]) continue;
    if (counted) {
      stray_keys += reply.integer;
    } else if (strays_counted) {
      strays_counted = false;  // a partial sum would read as fewer stray keys than there are
      result.error =
          reply.IsError()
              ? Refusal("CLUSTER COUNTKEYSINSLOT " + std::to_string(slots[i]), reply.str)
              : "CLUSTER COUNTKEYSINSLOT " + std::to_string(slots[i]) + ": not an integer reply";
    }
  }
  if (strays_counted) result.stray_keys = stray_keys;
  for (const auto& o : me->open_slots) {
    auto it = by_slot.find(o.slot);
    if (it != by_slot.end()) result.open_slot_keys.push_back({o.slot, o.direction, it->second});
  }
  return result;
}

}  // namespace slotguard::exporter
