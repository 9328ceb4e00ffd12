#include "exporter/family_set.h"

#include <prometheus/check_names.h>

#include <cctype>

namespace slotguard::exporter {

std::string SanitizeMetricName(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) c = '_';
  }
  if (!out.empty() && std::isdigit(static_cast<unsigned char>(out.front()))) out = "_" + out;
  return out;
}

prometheus::MetricFamily* FamilySet::Family(std::string_view name, std::string_view help,
                                            prometheus::MetricType type) {
  auto it = index_.find(name);
  if (it != index_.end()) {
    auto& family = families_[it->second];
    return family.type == type ? &family : nullptr;
  }
  if (!prometheus::CheckMetricName(std::string(name))) return nullptr;
  prometheus::MetricFamily family;
  family.name = std::string(name);
  family.help = std::string(help);
  family.type = type;
  index_.emplace(std::string(name), families_.size());
  families_.push_back(std::move(family));
  return &families_.back();
}

prometheus::ClientMetric* FamilySet::Add(std::string_view name, std::string_view help,
                                         prometheus::MetricType type, const Labels& labels) {
  std::string key(name);
  for (const auto& [k, v] : labels) {
    if (!prometheus::CheckLabelName(k) || k == "quantile" || k == "le") {
      ++dropped_;
      return nullptr;
    }
    key += '\x1f' + k + '\x1e' + v;
  }
  auto* family = Family(name, help, type);
  if (family == nullptr || !series_.insert(key).second) {
    ++dropped_;
    return nullptr;
  }
  prometheus::ClientMetric metric;
  for (const auto& [k, v] : labels) metric.label.push_back({k, v});
  family->metric.push_back(std::move(metric));
  return &family->metric.back();
}

void FamilySet::Gauge(std::string_view name, std::string_view help, const Labels& labels,
                      double value) {
  if (auto* metric = Add(name, help, prometheus::MetricType::Gauge, labels)) {
    metric->gauge.value = value;
  }
}

void FamilySet::Counter(std::string_view name, std::string_view help, const Labels& labels,
                        double value) {
  if (auto* metric = Add(name, help, prometheus::MetricType::Counter, labels)) {
    metric->counter.value = value;
  }
}

void FamilySet::Summary(std::string_view name, std::string_view help, const Labels& labels,
                        uint64_t count, double sum,
                        const std::vector<std::pair<double, double>>& quantiles) {
  if (auto* metric = Add(name, help, prometheus::MetricType::Summary, labels)) {
    metric->summary.sample_count = count;
    metric->summary.sample_sum = sum;
    for (const auto& [q, v] : quantiles) metric->summary.quantile.push_back({q, v});
  }
}

std::vector<prometheus::MetricFamily> FamilySet::Take() {
  index_.clear();
  series_.clear();
  return std::move(families_);
}

}  // namespace slotguard::exporter
