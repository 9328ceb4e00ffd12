#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

namespace slotguard::exporter {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Collects samples into MetricFamily values for prometheus::TextSerializer: one family per name
// (the exposition format needs all series of a name together), families in the order first
// added. Guards the output: a name or label name that Prometheus would reject, a second sample
// with the same labels, or a name reused with another type is dropped (and counted), so one odd
// field from a server can never make the whole scrape unparsable.
class FamilySet {
 public:
  void Gauge(std::string_view name, std::string_view help, const Labels& labels, double value);
  void Counter(std::string_view name, std::string_view help, const Labels& labels, double value);
  // quantiles: (quantile, value) pairs, e.g. (0.99, 120).
  void Summary(std::string_view name, std::string_view help, const Labels& labels, uint64_t count,
               double sum, const std::vector<std::pair<double, double>>& quantiles);

  int dropped() const { return dropped_; }
  std::vector<prometheus::MetricFamily> Take();

 private:
  prometheus::MetricFamily* Family(std::string_view name, std::string_view help,
                                   prometheus::MetricType type);
  prometheus::ClientMetric* Add(std::string_view name, std::string_view help,
                                prometheus::MetricType type, const Labels& labels);

  std::vector<prometheus::MetricFamily> families_;
  std::map<std::string, size_t, std::less<>> index_;
  std::set<std::string> series_;  // name + labels already added
  int dropped_ = 0;
};

// A metric name from arbitrary text: characters outside [a-zA-Z0-9_] become "_".
std::string SanitizeMetricName(std::string_view text);

}  // namespace slotguard::exporter
