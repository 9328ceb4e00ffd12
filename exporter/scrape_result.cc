#include "exporter/scrape_result.h"

#include <algorithm>

#include "cluster/membership.h"

namespace slotguard::exporter {

ViewRefs ClusterViews(const std::vector<NodeResult>& nodes) {
  ViewRefs views;
  for (const auto& n : nodes) {
    if (n.up && n.view) views.push_back(&*n.view);
  }
  return cluster::MemberViews(views);
}

ScrapeResult AssembleScrape(std::vector<NodeResult> nodes) {
  ScrapeResult result;
  std::sort(nodes.begin(), nodes.end(),
            [](const NodeResult& a, const NodeResult& b) { return a.label < b.label; });
  result.nodes = std::move(nodes);
  const auto views = ClusterViews(result.nodes);
  result.discovery_ok = !views.empty();
  if (result.discovery_ok) {
    result.judgement =
        std::make_shared<const cluster::ClusterJudgement>(cluster::JudgeClusterRefs(views));
  }
  return result;
}

}  // namespace slotguard::exporter
