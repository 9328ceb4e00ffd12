#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cluster/endpoint.h"
#include "exporter/node_client.h"
#include "exporter/node_reader.h"
#include "exporter/scrape_result.h"

namespace slotguard::exporter {

// Reads every node of the cluster in parallel under one deadline.
//
// The node list comes from the nodes' own CLUSTER NODES: each scrape reads the nodes known from
// the previous one, then any address the answers name that was not read yet (joins, and the
// whole cluster on the first scrape); the union of the answering views becomes the next list.
// When no known node answers, the seeds are asked.
//
// Each node has one persistent connection behind its own mutex. Every read runs on its own
// thread; the scrape waits for them only until the deadline. A straggler (a stopped node, a
// slow network) finishes in the background, its result is dropped, and a later scrape that finds
// the node busy waits for it no longer than its own deadline. Scrape() is safe to call from
// several threads at once.
class ScrapeEngine {
 public:
  ScrapeEngine(std::vector<cluster::Endpoint> seeds, std::chrono::milliseconds timeout,
               NodeClientFactory factory, ReadOptions read_options = {});

  ScrapeResult Scrape();

  // The nodes the next scrape will read (empty before the first one).
  std::vector<cluster::Endpoint> KnownNodes() const;

 private:
  struct NodeState;

  std::shared_ptr<NodeState> State(const cluster::Endpoint& endpoint);
  std::vector<NodeResult> ReadAll(const std::vector<cluster::Endpoint>& endpoints,
                                  Clock::time_point deadline);
  void LogTransitions(const ScrapeResult& result);

  const std::vector<cluster::Endpoint> seeds_;
  const std::chrono::milliseconds timeout_;
  const ReadOptions read_options_;
  const std::shared_ptr<const NodeClientFactory> factory_;

  mutable std::mutex mutex_;  // guards the members below
  std::vector<cluster::Endpoint> known_;
  std::map<cluster::Endpoint, std::shared_ptr<NodeState>> states_;
  std::map<std::string, bool> last_up_;  // by label, to log only changes
  // By label: the server and version last logged ("redis 7.2.6"), to log each node's once and
  // again only when it changes (an upgrade in place).
  std::map<std::string, std::string> last_server_;
  // By label: what an up node could not answer (key counts), to log each change once.
  std::map<std::string, std::string> last_partial_error_;
  std::optional<bool> discovery_ok_;
};

}  // namespace slotguard::exporter
