#pragma once

// Loads the captured server output in tests/data/exporter_*.txt: for each node, the replies to
// INFO all, CLUSTER INFO and CLUSTER NODES, each after a "==> host:port COMMAND" line.
// (Captured from a redis-server 7.0 3+3 loopback cluster made by scripts/redis-cluster.sh:
// healthy; slot 3300 migrating 23100 -> 23101 with 26 keys and slot 7365 migrating
// 23101 -> 23100 with none; then replica 23105 killed and flagged fail.)

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cluster/endpoint.h"
#include "exporter/node_reader.h"
#include "exporter/scrape_result.h"

namespace slotguard::exporter::testing {

struct CapturedNode {
  std::string info;
  std::string cluster_info;
  std::string cluster_nodes;
};

inline std::map<std::string, CapturedNode> LoadCapture(const std::string& name) {
  std::ifstream in(std::string(SLOTGUARD_TEST_DATA) + "/" + name);
  std::map<std::string, CapturedNode> nodes;
  std::string line;
  std::string* target = nullptr;
  while (std::getline(in, line)) {
    if (line.rfind("==> ", 0) == 0) {
      std::istringstream header(line.substr(4));
      std::string addr;
      header >> addr;
      std::string command;
      std::getline(header, command);
      command.erase(0, command.find_first_not_of(' '));
      auto& node = nodes[addr];
      target = command == "INFO all"       ? &node.info
               : command == "CLUSTER INFO" ? &node.cluster_info
                                           : &node.cluster_nodes;
      continue;
    }
    if (target != nullptr) *target += line + "\n";
  }
  return nodes;
}

inline NodeResult CapturedResult(const std::string& addr, const CapturedNode& node) {
  auto endpoint = cluster::ParseEndpoint(addr);
  return NodeResultFromText(*endpoint, node.info, node.cluster_info, node.cluster_nodes);
}

// A scrape of every captured node; `down` lists nodes to report as not answering.
inline ScrapeResult CapturedScrape(const std::string& name,
                                   const std::vector<std::string>& down = {}) {
  std::vector<NodeResult> nodes;
  for (const auto& [addr, node] : LoadCapture(name)) {
    bool is_down = std::find(down.begin(), down.end(), addr) != down.end();
    if (node.info.empty() || is_down) {
      NodeResult r;
      r.endpoint = *cluster::ParseEndpoint(addr);
      r.label = addr;
      r.error = "no answer";
      nodes.push_back(r);
    } else {
      nodes.push_back(CapturedResult(addr, node));
    }
  }
  for (const auto& addr : down) {  // a node killed before the capture has no section at all
    if (std::none_of(nodes.begin(), nodes.end(),
                     [&](const NodeResult& n) { return n.label == addr; })) {
      NodeResult r;
      r.endpoint = *cluster::ParseEndpoint(addr);
      r.label = addr;
      r.error = "no answer";
      nodes.push_back(r);
    }
  }
  auto scrape = AssembleScrape(std::move(nodes));
  scrape.known_nodes = static_cast<int>(scrape.nodes.size());
  scrape.duration_seconds = 0.25;
  return scrape;
}

}  // namespace slotguard::exporter::testing
