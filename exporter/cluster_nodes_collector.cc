#include "exporter/collectors.h"

#include <algorithm>
#include <map>

namespace slotguard::exporter {
namespace {

using cluster::NodeEntry;
using cluster::NodesView;

// The node label of a CLUSTER NODES line: its announced address; a node without one (noaddr)
// is named by its id so it still shows up.
std::string EntryLabel(const NodeEntry& n) {
  if (n.endpoint.host.empty() || n.endpoint.port <= 0) return n.id;
  return n.endpoint.ToString();
}

struct Sighting {
  const NodeEntry* entry;
  const NodesView* view;
};

// Among the ids seen at one address, the one most views give (handshake stubs last).
std::string CommonId(const std::vector<Sighting>& seen) {
  std::map<std::string, std::pair<int, int>> score;  // id -> (non-handshake views, views)
  for (const auto& s : seen) {
    auto& [solid, all] = score[s.entry->id];
    if (!s.entry->flags.handshake) ++solid;
    ++all;
  }
  return std::max_element(score.begin(), score.end(),
                          [](const auto& a, const auto& b) { return a.second < b.second; })
      ->first;
}

}  // namespace

void CollectClusterNodes(const ScrapeResult& scrape, const std::vector<const NodesView*>& views,
                         FamilySet& out) {
  std::map<std::string, std::vector<Sighting>> by_label;
  for (const NodesView* view : views) {
    for (const auto& entry : view->nodes) by_label[EntryLabel(entry)].push_back({&entry, view});
  }

  for (const auto& [label, seen] : by_label) {
    // A node's own line is the truth about itself when it answered.
    auto own_it = std::find_if(seen.begin(), seen.end(),
                               [](const Sighting& s) { return s.entry->flags.myself; });
    const NodeEntry* own = own_it == seen.end() ? nullptr : own_it->entry;
    const std::string id = own ? own->id : CommonId(seen);
    const NodeEntry* main = own;
    uint64_t epoch = 0;
    for (const auto& s : seen) {
      if (s.entry->id != id) continue;
      if (main == nullptr) main = s.entry;
      epoch = std::max(epoch, s.entry->config_epoch);
    }
    if (own) epoch = own->config_epoch;
    const Labels node = {{"node", label}};

    const std::string role = main->flags.master    ? "master"
                             : main->flags.replica ? "replica"
                                                   : "unknown";
    out.Gauge("redis_cluster_node_info",
              "Always 1: a node named in CLUSTER NODES, with its id, role (master|replica) and "
              "the id of its master (empty for a master). From the node's own line when it "
              "answered, else from the other nodes' views.",
              {{"node", label}, {"node_id", id}, {"role", role}, {"master_id", main->master_id}},
              1);

    struct FlagOf {
      const char* name;
      bool cluster::NodeFlags::*member;
    };
    static constexpr FlagOf kFlags[] = {
        {"master", &cluster::NodeFlags::master},         {"replica", &cluster::NodeFlags::replica},
        {"pfail", &cluster::NodeFlags::pfail},           {"fail", &cluster::NodeFlags::fail},
        {"handshake", &cluster::NodeFlags::handshake},   {"noaddr", &cluster::NodeFlags::noaddr},
        {"nofailover", &cluster::NodeFlags::nofailover},
    };
    for (const auto& flag : kFlags) {
      bool any = std::any_of(seen.begin(), seen.end(),
                             [&](const Sighting& s) { return s.entry->flags.*flag.member; });
      out.Gauge("redis_cluster_node_flag",
                "1 when any answering node's CLUSTER NODES gives the node this flag (master, "
                "replica, pfail, fail, handshake, noaddr, nofailover), else 0.",
                {{"node", label}, {"flag", flag.name}}, any ? 1 : 0);
    }

    out.Gauge("redis_cluster_node_config_epoch",
              "The node's config epoch (its own line when it answered, else the highest any "
              "view gives). A replica shows its master's epoch.",
              node, static_cast<double>(epoch));

    double slots = 0;
    if (own) {
      slots = own->flags.master ? own->SlotCount() : 0;
    } else if (scrape.judgement) {
      // Not answering: the slots all views agree it owns.
      slots = scrape.judgement->owners.Count(id);
    }
    out.Gauge("redis_cluster_node_slots",
              "Slots the node owns, from its own view (0 for a replica; for a node that did not "
              "answer, the slots all views agree it owns).",
              node, slots);

    bool link_up = true;
    for (const NodesView* view : views) {
      if (view->reporter_id == id) continue;
      auto it = std::find_if(view->nodes.begin(), view->nodes.end(),
                             [&](const NodeEntry& n) { return n.id == id; });
      if (it == view->nodes.end() || !it->link_connected) link_up = false;
    }
    out.Gauge("redis_cluster_node_link_up",
              "1 when every other answering node has its cluster bus link to this node "
              "connected, else 0.",
              node, link_up ? 1 : 0);
  }
}

}  // namespace slotguard::exporter
