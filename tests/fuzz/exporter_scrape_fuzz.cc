// What the exporter makes of hostile nodes: each node's INFO all, CLUSTER INFO and CLUSTER NODES
// text, in the format of the captures in tests/data/exporter_*.txt (each reply after a
// "==> host:port COMMAND" line), through the node reader, the scrape's judgement and every
// collector to the /metrics text.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/endpoint.h"
#include "exporter/collectors.h"
#include "exporter/node_reader.h"

namespace se = slotguard::exporter;

namespace {

struct Texts {
  std::string info, cluster_info, cluster_nodes;
};

std::map<std::string, Texts> SplitCapture(std::string_view text) {
  std::map<std::string, Texts> nodes;
  std::string* target = nullptr;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.substr(0, 4) == "==> ") {
      const std::string_view rest = line.substr(4);
      const size_t space = rest.find(' ');
      const std::string_view command =
          space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
      Texts& node = nodes[std::string(rest.substr(0, space))];
      target = command == "INFO all"       ? &node.info
               : command == "CLUSTER INFO" ? &node.cluster_info
                                           : &node.cluster_nodes;
      continue;
    }
    if (target != nullptr) target->append(line).push_back('\n');
  }
  return nodes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto captured = SplitCapture(std::string_view(reinterpret_cast<const char*>(data), size));
  std::vector<se::NodeResult> nodes;
  for (const auto& [addr, texts] : captured) {
    auto endpoint = slotguard::cluster::ParseEndpoint(addr);
    if (!endpoint) continue;
    nodes.push_back(
        se::NodeResultFromText(*endpoint, texts.info, texts.cluster_info, texts.cluster_nodes));
  }
  (void)se::RenderMetrics(se::AssembleScrape(std::move(nodes)));
  return 0;
}
