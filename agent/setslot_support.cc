#include "agent/setslot_support.h"

#include <strings.h>

#include <charconv>
#include <map>

namespace slotguard::agent {
namespace {

bool Is(const cluster::Reply& r, const char* text) {
  return (r.type == cluster::Reply::Type::kString || r.type == cluster::Reply::Type::kStatus) &&
         strcasecmp(r.str.c_str(), text) == 0;
}

// True when some argument map below `r` (RESP2: a flat array of name/value pairs) has
// name == "timeout".
bool HasTimeoutArgument(const cluster::Reply& r) {
  if (r.type != cluster::Reply::Type::kArray) return false;
  const auto& e = r.elements;
  for (size_t i = 0; i + 1 < e.size(); ++i) {
    if (Is(e[i], "name") && Is(e[i + 1], "timeout")) return true;
  }
  for (const auto& child : e) {
    if (HasTimeoutArgument(child)) return true;
  }
  return false;
}

}  // namespace

SetSlotSupport SetSlotSupportFrom(const cluster::Reply& docs) {
  SetSlotSupport out;
  if (docs.type != cluster::Reply::Type::kArray) return out;
  // [ "cluster|setslot", [ "summary", ..., "arguments", [ ... ] ] ]
  const auto& e = docs.elements;
  for (size_t i = 0; i + 1 < e.size(); i += 2) {
    if (!Is(e[i], "cluster|setslot")) continue;
    const auto& fields = e[i + 1].elements;
    for (size_t k = 0; k + 1 < fields.size(); k += 2) {
      if (Is(fields[k], "arguments")) out.replicated = HasTimeoutArgument(fields[k + 1]);
    }
  }
  return out;
}

cluster::Result<SetSlotSupport> ProbeSetSlotSupport(cluster::Connection& connection) {
  auto docs = connection.Command({"COMMAND", "DOCS", "CLUSTER|SETSLOT"});
  if (!docs) return tl::unexpected(docs.error());
  return SetSlotSupportFrom(*docs);
}

std::vector<cluster::Argv> WithSetSlotTimeout(const SetSlotSupport& support,
                                              std::vector<cluster::Argv> commands,
                                              std::chrono::milliseconds timeout) {
  if (!support.replicated) return commands;
  for (auto& argv : commands) {
    if (argv.size() >= 4 && strcasecmp(argv[0].c_str(), "CLUSTER") == 0 &&
        strcasecmp(argv[1].c_str(), "SETSLOT") == 0) {
      argv.push_back("TIMEOUT");
      argv.push_back(std::to_string(timeout.count()));
    }
  }
  return commands;
}

bool SetSlotOutcomeUnknown(const cluster::Reply& reply) {
  if (!reply.IsError()) return false;
  return reply.str.rfind("NOREPLICAS", 0) == 0 || reply.str.rfind("UNBLOCKED", 0) == 0;
}

bool IsReplicaReply(const std::string& error) {
  return error.find("Please use SETSLOT only with masters") != std::string::npos ||
         error.find("Please use SETSLOT only with primaries") != std::string::npos;
}

std::vector<std::vector<size_t>> SplitIntoLanes(const std::vector<cluster::Argv>& commands,
                                                size_t max_lanes) {
  std::vector<std::vector<size_t>> lanes;
  std::map<int, size_t> lane_of_slot;
  std::vector<size_t> all;
  bool split = max_lanes > 1;
  for (size_t i = 0; i < commands.size(); ++i) {
    all.push_back(i);
    const auto& argv = commands[i];
    int slot = -1;
    if (argv.size() >= 3 && strcasecmp(argv[0].c_str(), "CLUSTER") == 0) {
      const auto& text = argv[2];
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), slot);
      if (ec != std::errc() || end != text.data() + text.size()) slot = -1;
    }
    if (slot < 0) split = false;
    if (!split) continue;
    auto [it, added] = lane_of_slot.emplace(slot, lane_of_slot.size() % max_lanes);
    if (it->second >= lanes.size()) lanes.resize(it->second + 1);
    lanes[it->second].push_back(i);
  }
  if (!split) return {all};
  return lanes;
}

}  // namespace slotguard::agent
