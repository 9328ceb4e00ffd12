#include "exporter/scrape_engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <optional>
#include <set>
#include <thread>

#include "exporter/membership.h"

namespace slotguard::exporter {
namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

NodeResult DownResult(const cluster::Endpoint& endpoint, std::string error, double seconds) {
  NodeResult r;
  r.endpoint = endpoint;
  r.label = endpoint.ToString();
  r.error = std::move(error);
  r.duration_seconds = seconds;
  return r;
}

// The results of one round of parallel reads. Shared with the reader threads, so a straggler
// writing after the scrape gave up writes into memory that is still alive and then dropped.
struct Round {
  std::mutex mutex;
  std::condition_variable done_cv;
  std::vector<std::optional<NodeResult>> results;
  size_t done = 0;
};

}  // namespace

struct ScrapeEngine::NodeState {
  std::timed_mutex mutex;              // one reader at a time on the connection
  std::unique_ptr<NodeClient> client;  // guarded by mutex; made on first use
};

ScrapeEngine::ScrapeEngine(std::vector<cluster::Endpoint> seeds, std::chrono::milliseconds timeout,
                           NodeClientFactory factory, ReadOptions read_options)
    : seeds_(std::move(seeds)),
      timeout_(timeout),
      read_options_(read_options),
      factory_(std::make_shared<const NodeClientFactory>(std::move(factory))) {}

std::vector<cluster::Endpoint> ScrapeEngine::KnownNodes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return known_;
}

std::shared_ptr<ScrapeEngine::NodeState> ScrapeEngine::State(const cluster::Endpoint& endpoint) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& state = states_[endpoint];
  if (!state) state = std::make_shared<NodeState>();
  return state;
}

std::vector<NodeResult> ScrapeEngine::ReadAll(const std::vector<cluster::Endpoint>& endpoints,
                                              Clock::time_point deadline) {
  const auto start = Clock::now();
  auto round = std::make_shared<Round>();
  round->results.resize(endpoints.size());
  for (size_t i = 0; i < endpoints.size(); ++i) {
    auto state = State(endpoints[i]);
    auto work = [round, state, factory = factory_, endpoint = endpoints[i], i, deadline,
                 options = read_options_]() {
      const auto t0 = Clock::now();
      NodeResult result;
      try {
        std::unique_lock<std::timed_mutex> lock(state->mutex, std::defer_lock);
        if (!lock.try_lock_until(deadline)) {
          result = DownResult(endpoint,
                              "still busy with an earlier scrape that has not finished (the "
                              "node is slow or stopped)",
                              0);
        } else {
          if (!state->client) state->client = (*factory)(endpoint);
          result = ReadNode(*state->client, endpoint, deadline, options);
        }
      } catch (const std::exception& e) {
        result = DownResult(endpoint, std::string("internal error: ") + e.what(), 0);
      }
      result.duration_seconds = Seconds(Clock::now() - t0);
      {
        std::lock_guard<std::mutex> lock(round->mutex);
        round->results[i] = std::move(result);
        ++round->done;
      }
      round->done_cv.notify_all();
    };
    try {
      std::thread(std::move(work)).detach();
    } catch (const std::system_error& e) {
      std::lock_guard<std::mutex> lock(round->mutex);
      round->results[i] = DownResult(endpoints[i], std::string("no thread: ") + e.what(), 0);
      ++round->done;
    }
  }

  std::unique_lock<std::mutex> lock(round->mutex);
  round->done_cv.wait_until(lock, deadline, [&] { return round->done == endpoints.size(); });
  std::vector<NodeResult> out;
  out.reserve(endpoints.size());
  for (size_t i = 0; i < endpoints.size(); ++i) {
    if (round->results[i]) {
      out.push_back(std::move(*round->results[i]));
    } else {
      out.push_back(DownResult(endpoints[i], "no answer within the scrape timeout",
                               Seconds(Clock::now() - start)));
    }
  }
  return out;
}

ScrapeResult ScrapeEngine::Scrape() {
  const auto start = Clock::now();
  const auto deadline = start + timeout_;

  std::vector<cluster::Endpoint> targets = KnownNodes();
  bool asked_seeds = targets.empty();
  if (asked_seeds) targets = seeds_;

  std::map<std::string, NodeResult> by_label;
  std::set<cluster::Endpoint> dialed;
  auto merge = [&](std::vector<NodeResult> results) {
    for (auto& r : results) {
      dialed.insert(r.endpoint);
      auto it = by_label.find(r.label);
      // A seed written as another name of a node already read: keep the answer that is up.
      if (it == by_label.end()) {
        by_label.emplace(r.label, std::move(r));
      } else if (!it->second.up && r.up) {
        it->second = std::move(r);
      }
    }
  };
  // Pointers into by_label's values (stable while the map lives): no result is copied.
  auto member_views = [&] {
    ViewRefs answered;
    for (const auto& [label, r] : by_label) {
      if (r.up && r.view) answered.push_back(&*r.view);
    }
    return MemberViews(answered);
  };

  // Round one reads the known nodes (or the seeds); later rounds read what the answers named
  // that was not read yet. Three rounds cover: known nodes, seeds, newly named nodes.
  ViewRefs views;
  for (int round = 0; round < 3 && !targets.empty() && Clock::now() < deadline; ++round) {
    merge(ReadAll(targets, deadline));
    views = member_views();
    targets.clear();
    if (views.empty()) {
      if (!asked_seeds) {
        asked_seeds = true;
        for (const auto& seed : seeds_) {
          if (!dialed.count(seed)) targets.push_back(seed);
        }
      }
      continue;
    }
    for (const auto& e : EndpointsInViews(views)) {
      if (!dialed.count(e) && !by_label.count(e.ToString())) targets.push_back(e);
    }
  }
  // Named by the cluster but never read (the deadline came first): they count as down.
  for (const auto& e : targets) {
    if (!by_label.count(e.ToString())) {
      by_label.emplace(e.ToString(), DownResult(e, "not read: the scrape deadline came first", 0));
    }
  }

  std::vector<NodeResult> nodes;
  for (auto& [label, r] : by_label) nodes.push_back(std::move(r));
  ScrapeResult result = AssembleScrape(std::move(nodes));
  if (result.discovery_ok) {
    auto next = EndpointsInViews(ClusterViews(result.nodes));
    std::lock_guard<std::mutex> lock(mutex_);
    known_ = next;
    // Connections to nodes that left are closed; seeds keep theirs for the next fallback.
    for (auto it = states_.begin(); it != states_.end();) {
      bool keep = std::binary_search(next.begin(), next.end(), it->first) ||
                  std::find(seeds_.begin(), seeds_.end(), it->first) != seeds_.end();
      it = keep ? std::next(it) : states_.erase(it);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    result.known_nodes = static_cast<int>(known_.size());
  }
  result.duration_seconds = Seconds(Clock::now() - start);
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
