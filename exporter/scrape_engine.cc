#include "exporter/scrape_engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "cluster/membership.h"

namespace slotguard::exporter {

ScrapeEngine::ScrapeEngine(std::vector<cluster::Endpoint> seeds, std::chrono::milliseconds timeout,
                           std::shared_ptr<cluster::Connector> connector, ReadOptions read_options)
    : seeds_(std::move(seeds)),
      timeout_(timeout),
      read_options_(read_options),
      reader_(std::move(connector), [&] {
        cluster::ReadPlan plan = ScrapePlan(read_options);
        // The exporter's connector is its own: a stuck node must not hold the scrape.
        plan.abandon_stragglers = true;
        return plan;
      }()) {}

std::vector<cluster::Endpoint> ScrapeEngine::KnownNodes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return known_;
}

ScrapeResult ScrapeEngine::Scrape() {
  const auto start = Clock::now();
  cluster::ClusterRead read = reader_.Read(seeds_, KnownNodes(), start + timeout_);

  std::vector<NodeResult> nodes;
  nodes.reserve(read.nodes.size());
  for (auto& n : read.nodes) nodes.push_back(NodeResultFromRead(std::move(n), read_options_));
  ScrapeResult result = AssembleScrape(std::move(nodes));
  if (result.discovery_ok) {
    auto next = cluster::EndpointsInViews(ClusterViews(result.nodes));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      known_ = next;
    }
    // Connections to nodes that left are closed; seeds keep theirs for the next fallback.
    next.insert(next.end(), seeds_.begin(), seeds_.end());
    reader_.Retain(next);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    result.known_nodes = static_cast<int>(known_.size());
  }
  result.duration_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  LogTransitions(result);
  spdlog::debug("scrape: {} nodes, {} up, {:.3f}s", result.nodes.size(),
                std::count_if(result.nodes.begin(), result.nodes.end(),
                              [](const NodeResult& n) { return n.up; }),
                result.duration_seconds);
  return result;
}

void ScrapeEngine::LogTransitions(const ScrapeResult& result) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!discovery_ok_ || *discovery_ok_ != result.discovery_ok) {
    discovery_ok_ = result.discovery_ok;
    if (result.discovery_ok) {
      spdlog::info("discovery: {} nodes known", known_.size());
    } else {
      spdlog::warn("discovery: no node answered CLUSTER NODES (known nodes and seeds tried)");
    }
  }
  for (const auto& n : result.nodes) {
    auto [it, first] = last_up_.emplace(n.label, n.up);
    if (!first && it->second == n.up) {
      if (!n.up) spdlog::debug("node {} still down: {}", n.label, n.error);
      continue;
    }
    it->second = n.up;
    if (n.up) {
      spdlog::info("node {} up", n.label);
    } else {
      spdlog::warn("node {} down: {}", n.label, n.error);
    }
  }
  // An up node that refused part of the scrape (an ACL user without CLUSTER COUNTKEYSINSLOT):
  // once when it starts, once when it stops, not on every scrape.
  for (const auto& n : result.nodes) {
    if (!n.up) continue;
    std::string& last = last_partial_error_[n.label];
    if (n.error == last) continue;
    if (n.error.empty()) {
      spdlog::info("node {}: answers the whole scrape again", n.label);
    } else {
      spdlog::warn("node {} up, but part of its scrape is missing: {}", n.label, n.error);
    }
    last = n.error;
  }
  for (const auto& n : result.nodes) {
    if (!n.up || !n.server) continue;
    std::string server = n.server->ToString();
    auto [it, first] = last_server_.emplace(n.label, server);
    if (first) {
      spdlog::info("node {} runs {}", n.label, server);
    } else if (it->second != server) {
      spdlog::info("node {} runs {} (was {})", n.label, server, it->second);
      it->second = std::move(server);
    }
  }
}

}  // namespace slotguard::exporter
