#include <prometheus/text_serializer.h>

#include <sstream>

#include "exporter/collectors.h"
#include "exporter/scrape_result.h"

namespace slotguard::exporter {

std::vector<prometheus::MetricFamily> BuildMetricFamilies(const ScrapeResult& scrape) {
  FamilySet out;
  CollectSelf(scrape, out);
  CollectSlots(scrape, out);
  CollectClusterNodes(scrape, ClusterViews(scrape.nodes), out);
  CollectClusterInfo(scrape, out);
  CollectInfo(scrape, out);
  auto families = out.Take();
  // A family whose only sample was dropped would be a HELP line with nothing under it.
  std::erase_if(families, [](const prometheus::MetricFamily& f) { return f.metric.empty(); });
  return families;
}

std::string RenderMetrics(const ScrapeResult& scrape) {
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, BuildMetricFamilies(scrape));
  return text.str();
}

}  // namespace slotguard::exporter
