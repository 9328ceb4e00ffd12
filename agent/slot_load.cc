#include "agent/slot_load.h"

#include "cluster/info.h"

namespace slotguard::agent {
namespace {

constexpr size_t kPerRoundTrip = 2000;

cluster::Result<std::vector<cluster::Reply>> Chunked(cluster::Connection& c,
                                                     const std::vector<cluster::Argv>& cmds) {
  // Every chunk goes out before any reply is read: the node works through the next chunk while
  // the replies of the last are parsed here, one round trip for all (a failed Send or Receive
  // drops every reply in flight, so an error can be returned at once).
  for (size_t i = 0; i < cmds.size(); i += kPerRoundTrip) {
    std::vector<cluster::Argv> part(cmds.begin() + i,
                                    cmds.begin() + std::min(cmds.size(), i + kPerRoundTrip));
    if (auto sent = c.Send(part); !sent) return tl::unexpected(sent.error());
  }
  std::vector<cluster::Reply> out;
  out.reserve(cmds.size());
  for (size_t i = 0; i < cmds.size(); i += kPerRoundTrip) {
    auto r = c.Receive(std::min(kPerRoundTrip, cmds.size() - i));
    if (!r) return tl::unexpected(r.error());
    for (auto& x : *r) out.push_back(std::move(x));
  }
  return out;
}

}  // namespace

cluster::Result<NodeMemory> ReadNodeMemory(cluster::Connection& node) {
  auto r = node.Command({"INFO", "memory"});
  if (!r) return tl::unexpected(r.error());
  if (r->IsError()) return cluster::MakeError(node.endpoint().ToString() + ": INFO: " + r->str);
  auto info = cluster::ParseInfo(r->str);
  if (!info) return tl::unexpected(info.error());
  auto used = info->GetNumber("used_memory");
  if (!used) return cluster::MakeError(node.endpoint().ToString() + ": INFO has no used_memory");
  NodeMemory m;
  m.used_memory = static_cast<int64_t>(*used);
  m.maxmemory = static_cast<int64_t>(info->GetNumber("maxmemory").value_or(0));
  m.maxmemory_policy = info->Get("maxmemory_policy").value_or("");
  return m;
}

cluster::Result<int64_t> UsedMemory(cluster::Connection& node) {
  auto m = ReadNodeMemory(node);
  if (!m) return tl::unexpected(m.error());
  return m->used_memory;
}

cluster::Result<std::map<int, SlotLoad>> MeasureSlotLoads(cluster::Connection& source,
                                                          const std::vector<int>& slots,
                                                          int sample_keys) {
  std::map<int, SlotLoad> loads;
  // COUNTKEYSINSLOT and GETKEYSINSLOT of each slot in one pipeline: an empty slot lists nothing.
  std::vector<cluster::Argv> cmds;
  for (int s : slots) {
    cmds.push_back({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(s)});
    cmds.push_back({"CLUSTER", "GETKEYSINSLOT", std::to_string(s), std::to_string(sample_keys)});
  }
  auto c = Chunked(source, cmds);
  if (!c) return tl::unexpected(c.error());
  std::map<int, const cluster::Reply*> listed;
  for (size_t i = 0; i < slots.size(); ++i) {
    const auto& count = (*c)[2 * i];
    const auto& list = (*c)[2 * i + 1];
    for (const auto* r : {&count, &list}) {
      if (r->IsError()) {
        return cluster::MakeError(source.endpoint().ToString() + ": " +
                                  (r == &count ? "COUNT" : "GET") + "KEYSINSLOT " +
                                  std::to_string(slots[i]) + ": " + r->str);
      }
    }
    loads[slots[i]].keys = count.integer;
    if (count.integer > 0) listed[slots[i]] = &list;
  }
  if (listed.empty()) return loads;

  std::vector<cluster::Argv> usage;
  std::vector<int> owner;  // slot of each MEMORY USAGE
  for (const auto& [slot, list] : listed) {
    for (const auto& k : list->elements) {
      usage.push_back({"MEMORY", "USAGE", k.str, "SAMPLES", "5"});
      owner.push_back(slot);
    }
  }
  auto u = Chunked(source, usage);
  if (!u) return tl::unexpected(u.error());
  std::map<int, std::pair<int64_t, int64_t>> sampled;  // slot -> (bytes, keys sampled)
  bool refused = false;
  for (size_t i = 0; i < usage.size(); ++i) {
    if ((*u)[i].IsError()) {
      refused = true;
      break;
    }
    if ((*u)[i].type == cluster::Reply::Type::kInteger) {
      sampled[owner[i]].first += (*u)[i].integer;
      sampled[owner[i]].second += 1;
    }
  }
  if (refused) {
    auto used = UsedMemory(source);
    auto dbsize = source.Command({"DBSIZE"});
    int64_t avg = 0;
    if (used && dbsize && dbsize->integer > 0) avg = *used / dbsize->integer;
    for (auto& [slot, load] : loads) load.bytes = load.keys * avg;
    return loads;
  }
  for (auto& [slot, load] : loads) {
    auto it = sampled.find(slot);
    if (it == sampled.end() || it->second.second == 0) continue;
    load.bytes = it->second.first * load.keys / it->second.second;
  }
  return loads;
}

}  // namespace slotguard::agent
