#include "agent/guards.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include "cluster/cluster_reader.h"

#include "cluster/info.h"
#include "cluster/membership.h"
#include "cluster/nodes.h"
#include "cluster/slot_map.h"

namespace slotguard::agent {
namespace {

// Growth of a counter read from a node's INFO text. The numbers are the node's: NaN, a
// negative difference (a restarted node) or 1e300 must not reach a float-to-integer cast
// (undefined behaviour). Capped far below INT64_MAX so the sums below cannot overflow.
int64_t CounterGrowth(double now, double base) {
  constexpr int64_t kCap = std::numeric_limits<int64_t>::max() / 4;
  const double growth = now - base;
  if (!(growth >= 0)) return 0;
  if (growth >= static_cast<double>(kCap)) return kCap;
  return static_cast<int64_t>(growth);
}

}  // namespace

int64_t GuardEvaluator::MigrateFailures(const GuardSample& s) const {
  int64_t foreign = 0;
  if (s.source_migrate_failed_calls && base_failed_calls_) {
    const int64_t growth = CounterGrowth(*s.source_migrate_failed_calls, *base_failed_calls_);
    foreign = std::max(foreign, growth - s.own_failed);
  }
  if (s.source_ioerr && base_ioerr_) {
    const int64_t growth = CounterGrowth(*s.source_ioerr, *base_ioerr_);
    foreign = std::max(foreign, growth - s.own_ioerr);
  }
  return s.own_counted + std::max<int64_t>(0, foreign);
}

std::optional<GuardTrip> GuardEvaluator::Evaluate(const GuardSample& s) {
  if (!have_baseline_) {
    have_baseline_ = true;
    base_failed_calls_ = s.source_migrate_failed_calls;
    base_ioerr_ = s.source_ioerr;
  } else {
    // A source that did not answer at the start gets its baseline when it first does.
    if (!base_failed_calls_) base_failed_calls_ = s.source_migrate_failed_calls;
    if (!base_ioerr_) base_ioerr_ = s.source_ioerr;
  }

  if (!s.failing.empty()) {
    std::string who;
    for (const auto& f : s.failing) who += (who.empty() ? "" : "; ") + f;
    return GuardTrip{"node_health", "node failing: " + who};
  }

  // Guards off: only node health is judged (see GuardOptions::enabled).
  if (!settings_.enabled) return std::nullopt;

  int64_t failures = MigrateFailures(s);
  if (failures > settings_.migrate_failures) {
    return GuardTrip{"migrate_failures", std::to_string(failures) +
                                             " MIGRATE failures, over the threshold of " +
                                             std::to_string(settings_.migrate_failures)};
  }

  // No view at all counts as uncovered: nothing says the slots are served.
  if (s.views > 0 && s.covered >= cluster::kSlotCount) {
    uncovered_since_.reset();
  } else {
    if (!uncovered_since_) uncovered_since_ = s.at;
    auto for_how_long = s.at - *uncovered_since_;
    if (for_how_long > settings_.coverage_grace) {
      return GuardTrip{
          "coverage",
          std::to_string(s.covered) + " of 16384 slots covered for " +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::seconds>(for_how_long).count()) +
              " s (grace " + std::to_string(settings_.coverage_grace.count()) + " s)"};
    }
  }
  return std::nullopt;
}

GuardSample TakeGuardSample(cluster::Connector& connector,
                            const std::vector<cluster::Endpoint>& nodes,
                            const cluster::Endpoint& source, Clock& clock,
                            const MigrateCounters& counters,
                            const std::optional<cluster::Endpoint>& target) {
  GuardSample s;
  // The MIGRATE counters come from the source only; every node gives its view.
  cluster::ReadPlan plan;
  plan.cluster_info = false;
  plan.info_sections = {"commandstats", "errorstats"};
  plan.info_only_at = {source};
  cluster::ClusterReader reader(cluster::Borrow(connector), std::move(plan));
  std::vector<cluster::NodesView> answered;
  for (auto& r : reader.ReadNodes(nodes, std::nullopt)) {
    if (r.view) answered.push_back(std::move(*r.view));
    if (r.dialed == source && r.info.size() == 2) {
      if (const auto& commandstats = r.info[0]) {
        s.source_migrate_failed_calls = 0;
        for (const auto& c : cluster::CommandStats(*commandstats)) {
          if (c.command == "migrate") s.source_migrate_failed_calls = c.failed_calls;
        }
      }
      if (const auto& errorstats = r.info[1]) {
        s.source_ioerr = 0;
        for (const auto& e : cluster::ErrorStats(*errorstats)) {
          if (e.error == "IOERR") s.source_ioerr = e.count;
        }
      }
    }
  }
  // Judged by the one membership rule (cluster/membership.h), as check and preflight judge.
  cluster::ViewRefs refs;
  for (const auto& v : answered) refs.push_back(&v);
  std::vector<cluster::NodesView> views;
  for (const cluster::NodesView* v : cluster::MemberViews(refs)) views.push_back(*v);
  s.at = clock.Now();
  s.views = static_cast<int>(views.size());
  auto j = cluster::JudgeCluster(views);
  // Slots owned by a node some view flags fail are not served, whatever the views agree on.
  std::set<std::string> down;
  std::map<std::string, std::string> described;
  for (const auto& v : views) {
    for (const auto& n : v.nodes) {
      // An end of the batch turned replica: it failed over (a manual CLUSTER FAILOVER flags
      // nothing fail), and its open-slot state did not go to the promoted node (7.x).
      const bool end = n.endpoint == source || (target && n.endpoint == *target);
      if (end && n.flags.replica && !described.count(n.id)) {
        described[n.id] = n.endpoint.ToString() + " (" + n.id.substr(0, 8) +
                          "), an end of the batch, is now a replica (failed over) says " +
                          v.reporter.ToString();
      }
      if (n.flags.fail || n.flags.pfail) {
        down.insert(n.id);
        if (!described.count(n.id)) {
          described[n.id] = n.endpoint.ToString() + " (" + n.id.substr(0, 8) + ") flagged " +
                            (n.flags.fail ? "fail" : "fail?") + " by " + v.reporter.ToString();
        }
      }
    }
  }
  // Per owner index, whether it is down: the slots are then counted without a string lookup.
  std::vector<bool> owner_down(j.owners.Ids().size(), false);
  for (size_t i = 0; i < owner_down.size(); ++i) owner_down[i] = down.count(j.owners.Ids()[i]) > 0;
  int covered = 0;
  for (int slot = 0; slot < cluster::kSlotCount; ++slot) {
    const auto owner = j.owners.OwnerIndex(slot);
    if (owner != cluster::SlotMap::kUnassigned && !owner_down[owner]) ++covered;
  }
  s.covered = covered;
  for (const auto& [id, text] : described) s.failing.push_back(text);
  s.own_counted = counters.counted.load();
  s.own_failed = counters.failed.load();
  s.own_ioerr = counters.ioerr.load();
  return s;
}

GuardMonitor::GuardMonitor(cluster::Connector& connector, Clock& clock, EngineObserver& observer,
                           const MigrateCounters& counters, std::chrono::milliseconds interval)
    : connector_(connector),
      clock_(clock),
      observer_(observer),
      counters_(counters),
      interval_(interval) {}

GuardMonitor::~GuardMonitor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GuardMonitor::Arm(GuardSettings settings, std::vector<cluster::Endpoint> nodes,
                       cluster::Endpoint source, std::optional<cluster::Endpoint> target) {
  for (const char* g : {"coverage", "migrate_failures", "node_health", "convergence"}) {
    observer_.OnGuard(g, false);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    armed_ = true;
    ++generation_;
    settings_ = settings;
    nodes_ = std::move(nodes);
    source_ = std::move(source);
    target_ = std::move(target);
    evaluator_.emplace(settings);
    trip_.reset();
    if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  }
  wake_.notify_all();
}

void GuardMonitor::Disarm() {
  std::lock_guard<std::mutex> lock(mutex_);
  armed_ = false;
  ++generation_;
}

std::optional<GuardTrip> GuardMonitor::tripped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return trip_;
}

void GuardMonitor::Trip(GuardTrip trip) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (trip_) return;
    trip_ = trip;
  }
  observer_.OnGuard(trip.guard, true);
}

void GuardMonitor::Loop() {
  uint64_t sampled = 0;  // the generation the last sample was for
  while (true) {
    std::vector<cluster::Endpoint> nodes;
    cluster::Endpoint source;
    std::optional<cluster::Endpoint> target;
    uint64_t generation = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // A newly armed batch is sampled at once (its baseline); then every interval. Real time
      // here: the wait only paces sampling, decisions use the injected clock.
      if (!stop_ && !(armed_ && generation_ != sampled)) {
        wake_.wait_for(lock, interval_,
                       [&] { return stop_ || (armed_ && generation_ != sampled); });
      }
      if (stop_) return;
      if (!armed_) {
        wake_.wait(lock, [&] { return stop_ || armed_; });
        if (stop_) return;
      }
      nodes = nodes_;
      source = source_;
      target = target_;
      generation = generation_;
    }
    GuardSample sample = TakeGuardSample(connector_, nodes, source, clock_, counters_, target);
    ++samples_;
    sampled = generation;
    std::optional<GuardTrip> trip;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!armed_ || generation != generation_ || !evaluator_) continue;  // batch ended meanwhile
      trip = evaluator_->Evaluate(sample);
    }
    if (trip) Trip(*trip);
  }
}

}  // namespace slotguard::agent
