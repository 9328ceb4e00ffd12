#include "agent/stray_keys.h"

#include <algorithm>
#include <set>

namespace slotguard::agent {
namespace {

// COUNTKEYSINSLOT per round trip and master: a master owning a third of the slots needs three.
constexpr size_t kChunk = 4096;

struct Master {
  cluster::Endpoint endpoint;
  std::vector<int> slots;  // not owned, ascending
  std::set<int> importing;
  size_t counted = 0;  // slots whose reply was read
  bool failed = false;
};

}  // namespace

StrayKeys CountStrayKeys(cluster::Connector& connector, const ClusterSnapshot& snapshot) {
  std::vector<Master> masters;
  for (const auto& r : snapshot.reports) {
    if (!r.view) continue;
    const cluster::NodeEntry* me = cluster::FindMyself(r.view->nodes);
    if (me == nullptr || !me->flags.master) continue;
    Master m;
    m.endpoint = r.endpoint;
    m.slots = me->SlotsNotOwned();
    for (const auto& open : me->open_slots) {
      if (open.direction == cluster::OpenDirection::kImporting) m.importing.insert(open.slot);
    }
    masters.push_back(std::move(m));
  }

  StrayKeys out;
  auto fail = [&](Master& m, const std::string& why) {
    m.failed = true;
    out.errors.push_back(m.endpoint.ToString() + ": " + why);
  };
  for (bool more = true; more;) {
    more = false;
    // One chunk to every master first, then the replies: the masters count in parallel.
    std::vector<Master*> sent;
    for (auto& m : masters) {
      if (m.failed || m.counted >= m.slots.size()) continue;
      std::vector<cluster::Argv> cmds;
      const size_t end = std::min(m.slots.size(), m.counted + kChunk);
      for (size_t i = m.counted; i < end; ++i) {
        cmds.push_back({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(m.slots[i])});
      }
      auto s = connector.Get(m.endpoint).Send(cmds);
      if (!s) {
        fail(m, s.error().message);
        continue;
      }
      sent.push_back(&m);
    }
    for (Master* m : sent) {
      const size_t end = std::min(m->slots.size(), m->counted + kChunk);
      auto replies = connector.Get(m->endpoint).Receive(end - m->counted);
      if (!replies) {
        fail(*m, replies.error().message);
        continue;
      }
      for (size_t i = 0; i < replies->size(); ++i) {
        const cluster::Reply& reply = (*replies)[i];
        const int slot = m->slots[m->counted + i];
        if (reply.type != cluster::Reply::Type::kInteger) {
          fail(*m, "CLUSTER COUNTKEYSINSLOT " + std::to_string(slot) + ": " +
                       (reply.IsError() ? reply.str : std::string("not an integer reply")));
          break;
        }
        if (reply.integer > 0) {
          out.slots.push_back({m->endpoint, slot, reply.integer, m->importing.count(slot) > 0});
        }
      }
      m->counted = end;
      more = more || (!m->failed && m->counted < m->slots.size());
    }
  }
  std::stable_sort(out.slots.begin(), out.slots.end(), [](const auto& a, const auto& b) {
    return a.node < b.node || (a.node == b.node && a.slot < b.slot);
  });
  return out;
}

}  // namespace slotguard::agent
