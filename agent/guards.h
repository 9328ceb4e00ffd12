#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/clock.h"
#include "agent/engine_observer.h"
#include "agent/guard_settings.h"
#include "cluster/connection.h"
#include "cluster/endpoint.h"

namespace slotguard::agent {

// The engine's own MIGRATE failure counts, shared with the guard thread.
struct MigrateCounters {
  std::atomic<int64_t> counted{0};  // failures that count toward the guard (all but BUSYKEYs
                                    // the engine resolved)
  std::atomic<int64_t> failed{0};   // every failed MIGRATE reply or transport failure
  std::atomic<int64_t> ioerr{0};    // of those, IOERR replies
  void Reset() {
    counted = 0;
    failed = 0;
    ioerr = 0;
  }
};

// One look at the cluster, taken by the guard thread on its own connections.
struct GuardSample {
  Clock::TimePoint at{};
  int views = 0;                     // nodes that answered CLUSTER NODES
  int covered = 0;                   // slots with an agreed owner that no view flags fail
  std::vector<std::string> failing;  // "host:port (id) flagged fail? by host:port"
  // From the source's INFO commandstats / errorstats; nullopt when the source did not answer.
  std::optional<double> source_migrate_failed_calls;
  std::optional<double> source_ioerr;
  // The engine's own counts at sample time.
  int64_t own_counted = 0;
  int64_t own_failed = 0;
  int64_t own_ioerr = 0;
};

struct GuardTrip {
  std::string guard;   // coverage, migrate_failures, node_health, convergence
  std::string reason;  // for the operator
};

// Pure: decides from successive samples whether a guard trips. The first sample sets the
// baselines of the source's counters.
//
// Migrate failures = the engine's own counted failures + the growth of failures on the source
// that the engine did not cause itself (max of cmdstat_migrate failed_calls growth and
// errorstat_IOERR growth, each minus the engine's own share: the two counters see the same
// failed MIGRATE, so they are not added together).
class GuardEvaluator {
 public:
  explicit GuardEvaluator(GuardSettings settings) : settings_(settings) {}
  std::optional<GuardTrip> Evaluate(const GuardSample& sample);
  int64_t MigrateFailures(const GuardSample& sample) const;
  const GuardSettings& settings() const { return settings_; }

 private:
  GuardSettings settings_;
  bool have_baseline_ = false;
  std::optional<double> base_failed_calls_;
  std::optional<double> base_ioerr_;
  std::optional<Clock::TimePoint> uncovered_since_;
};

// Reads every node (in parallel, on `connector`'s connections) for one GuardSample.
// `target`, when given, is watched like the source for a failover (the end turned replica).
GuardSample TakeGuardSample(cluster::Connector& connector,
                            const std::vector<cluster::Endpoint>& nodes,
                            const cluster::Endpoint& source, Clock& clock,
                            const MigrateCounters& counters,
                            const std::optional<cluster::Endpoint>& target = std::nullopt);

// The guard thread: samples the cluster every `interval` while a batch is armed and latches
// the first trip. It uses its own connector, never the engine's (which may sit in a MIGRATE).
// One thread lives as long as the monitor; Arm/Disarm per batch cost nothing (a sample in
// flight when a batch is disarmed is discarded).
class GuardMonitor {
 public:
  GuardMonitor(cluster::Connector& connector, Clock& clock, EngineObserver& observer,
               const MigrateCounters& counters, std::chrono::milliseconds interval);
  ~GuardMonitor();
  GuardMonitor(const GuardMonitor&) = delete;
  GuardMonitor& operator=(const GuardMonitor&) = delete;

  // Starts watching a batch: clears any trip, the next sample (taken at once) is the baseline.
  // `source` and `target` (the batch's ends) trip node_health when they turn replica.
  void Arm(GuardSettings settings, std::vector<cluster::Endpoint> nodes, cluster::Endpoint source,
           std::optional<cluster::Endpoint> target = std::nullopt);
  // Stops watching; returns at once.
  void Disarm();
  std::optional<GuardTrip> tripped() const;
  // Lets the engine latch a trip it detected itself (its own failure count, convergence).
  void Trip(GuardTrip trip);
  int64_t samples() const { return samples_; }

 private:
  void Loop();

  cluster::Connector& connector_;
  Clock& clock_;
  EngineObserver& observer_;
  const MigrateCounters& counters_;
  std::chrono::milliseconds interval_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool armed_ = false;
  uint64_t generation_ = 0;
  GuardSettings settings_;
  std::vector<cluster::Endpoint> nodes_;
  cluster::Endpoint source_;
  std::optional<cluster::Endpoint> target_;
  std::optional<GuardEvaluator> evaluator_;
  std::optional<GuardTrip> trip_;
  std::atomic<int64_t> samples_{0};
  std::thread thread_;
};

}  // namespace slotguard::agent
