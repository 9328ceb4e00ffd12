#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cluster/cluster_reader.h"
#include "cluster/connection.h"
#include "cluster/endpoint.h"
#include "exporter/node_reader.h"
#include "exporter/scrape_result.h"

namespace slotguard::exporter {

// A scrape: the whole cluster through the cluster reader (cluster/cluster_reader.h) under one
// deadline, turned into per-node results, with node up/down and server changes logged once.
//
// The node list comes from the nodes' own CLUSTER NODES: each scrape reads the nodes known from
// the previous one, then any address the answers name that was not read yet (joins, and the
// whole cluster on the first scrape); the member views' addresses become the next list. When no
// known node answers, the seeds are asked. A straggler (a stopped node) finishes in the
// background holding its node's connection, and a later scrape that finds the node busy waits
// for it no longer than its own deadline. Scrape() is safe to call from several threads at once.
class ScrapeEngine {
 public:
  // `connector` is the exporter's own (nothing else may use its connections).
  ScrapeEngine(std::vector<cluster::Endpoint> seeds, std::chrono::milliseconds timeout,
               std::shared_ptr<cluster::Connector> connector, ReadOptions read_options = {});

  ScrapeResult Scrape();

  // The nodes the next scrape will read (empty before the first one).
  std::vector<cluster::Endpoint> KnownNodes() const;

 private:
  void LogTransitions(const ScrapeResult& result);

  const std::vector<cluster::Endpoint> seeds_;
  const std::chrono::milliseconds timeout_;
  const ReadOptions read_options_;
  cluster::ClusterReader reader_;

  mutable std::mutex mutex_;  // guards the members below
  std::vector<cluster::Endpoint> known_;
  std::map<std::string, bool> last_up_;  // by label, to log only changes
  // By label: the server and version last logged ("redis 7.2.6"), to log each node's once and
  // again only when it changes (an upgrade in place).
  std::map<std::string, std::string> last_server_;
  // By label: what an up node could not answer (key counts), to log each change once.
  std::map<std::string, std::string> last_partial_error_;
  std::optional<bool> discovery_ok_;
};

}  // namespace slotguard::exporter
