// CLUSTER NODES text: the parser, then what the exporter and the agent derive from the views
// (a view split at each "\n\n", so one input can disagree with itself).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "cluster/nodes.h"
#include "cluster/slot_map.h"

namespace sc = slotguard::cluster;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<sc::NodesView> views;
  while (!text.empty()) {
    const size_t end = text.find("\n\n");
    auto nodes = sc::ParseClusterNodes(text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 2);
    if (!nodes) continue;
    for (const auto& node : *nodes) {
      (void)node.SlotCount();
      (void)node.SlotsNotOwned();
      (void)node.endpoint.ToString();
    }
    (void)sc::ConfigSignature(*nodes);
    (void)sc::SlotMap(*nodes).Assigned();
    sc::NodesView view;
    if (const sc::NodeEntry* myself = sc::FindMyself(*nodes)) {
      view.reporter_id = myself->id;
      view.reporter = myself->endpoint;
    }
    view.nodes = std::move(*nodes);
    views.push_back(std::move(view));
  }
  (void)sc::JudgeCluster(views);
  return 0;
}
