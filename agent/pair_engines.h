#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/batch_runner.h"
#include "agent/clock.h"
#include "agent/engine.h"
#include "agent/engine_observer.h"
#include "agent/plan.h"
#include "cluster/connection_pool.h"

namespace slotguard::agent {

// How MakePairEngines builds each pair's engine.
struct PairEngineSettings {
  // Every pair's engine gets a copy (shared set, reuse_verified_snapshot off).
  EngineOptions engine;
  EngineShared shared;
  // Each pair's connection pool (its io timeout must outwait MIGRATE's).
  cluster::ConnectOptions connect;
  // Wraps a pair's pool in a connector of the caller's (the daemon's throttle); null: the pool.
  std::function<std::unique_ptr<cluster::Connector>(cluster::Connector&)> wrap;
};

// The engines of a parallel run: one per source -> target pair, each with its own connection
// pool (a connection is used by one thread at a time), sharing the journal and the lease.
// Used by the CLI's rebalance/drain and by the daemon.
struct PairEngines {
  std::vector<std::unique_ptr<cluster::ConnectionPool>> pools;
  std::vector<std::unique_ptr<cluster::Connector>> connectors;  // settings.wrap's, per pair
  std::vector<std::unique_ptr<Engine>> engines;
  std::vector<PairMove> pairs;
  // The journal's run per pair when settings.engine.lease.run names the run (forget dates a
  // drain by it): "<run>-p<n>".
  std::vector<std::string> run_ids;

  // The pair (index into pairs) that runs `batch_id`; pairs.size() when none.
  size_t PairOf(const std::string& batch_id) const;
};

// Groups `batches` by source -> target (plan order kept within a pair) and builds each pair's
// pool, connector and engine.
PairEngines MakePairEngines(const std::vector<Batch>& batches, const PairEngineSettings& settings,
                            Clock& clock, EngineObserver& observer);

}  // namespace slotguard::agent
