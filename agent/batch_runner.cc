#include "agent/batch_runner.h"

#include <condition_variable>
#include <thread>

#include <spdlog/spdlog.h>

namespace slotguard::agent {
namespace {

// Holds the batches of a round between their preflight and their first step until each of them
// has passed preflight or ended without it.
class StartBarrier {
 public:
  explicit StartBarrier(size_t parties) : waiting_for_(parties) {}
  void ArriveAndWait() {
    std::unique_lock<std::mutex> lock(mutex_);
    Count();
    wake_.wait(lock, [this] { return waiting_for_ == 0; });
  }
  void Leave() {
    std::lock_guard<std::mutex> lock(mutex_);
    Count();
  }

 private:
  void Count() {
    if (waiting_for_ > 0 && --waiting_for_ == 0) wake_.notify_all();
  }
  std::mutex mutex_;
  std::condition_variable wake_;
  size_t waiting_for_;
};

}  // namespace

cluster::Result<OnTrip> ParseOnTrip(const std::string& text) {
  if (text == "finish") return OnTrip::kFinish;
  if (text == "rollback") return OnTrip::kRollback;
  return cluster::MakeError("--on-trip " + text + ": expected finish or rollback");
}

std::vector<BatchEnd> BatchRunner::Run(std::vector<PairMove>& pairs,
                                       const std::function<void(const BatchEnd&)>& on_end) {
  std::vector<size_t> next(pairs.size(), 0);
  std::vector<BatchEnd> ends;
  while (!stop_new_) {
    std::vector<PairWork> work;
    for (size_t i = 0; i < pairs.size(); ++i) {
      PairWork w{pairs[i].source_id, pairs[i].target_id, pairs[i].batches.size() - next[i], 0};
      for (size_t b = next[i]; b < pairs[i].batches.size(); ++b) {
        w.slots_left += static_cast<int>(pairs[i].batches[b].slots.size());
      }
      work.push_back(std::move(w));
    }
    const std::vector<size_t> round = NextRound(work, options_.limits);
    if (round.empty()) break;
    RunRound(pairs, round, next, ends, on_end);
  }
  return ends;
}

void BatchRunner::RunRound(std::vector<PairMove>& pairs, const std::vector<size_t>& round,
                           std::vector<size_t>& next, std::vector<BatchEnd>& ends,
                           const std::function<void(const BatchEnd&)>& on_end) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    running_.clear();
    for (size_t i : round) running_.emplace_back(pairs[i].engine, pairs[i].batches[next[i]].id);
  }
  StartBarrier barrier(round.size());
  auto run_one = [&](size_t i) {
    BatchEnd end;
    end.pair = i;
    end.batch = &pairs[i].batches[next[i]];
    bool arrived = false;
    end.outcome = pairs[i].engine->RunBatch(*end.batch, [&] {
      arrived = true;
      barrier.ArriveAndWait();
    });
    if (!arrived) barrier.Leave();
    OnBatchEnded(end);
    if (on_end) on_end(end);
    std::lock_guard<std::mutex> lock(mutex_);
    ends.push_back(std::move(end));
  };
  if (round.size() == 1) {
    run_one(round.front());  // a plain reshard: no thread
  } else {
    std::vector<std::thread> threads;
    for (size_t i : round) threads.emplace_back(run_one, i);
    for (auto& t : threads) t.join();
  }
  for (size_t i : round) ++next[i];
  std::lock_guard<std::mutex> lock(mutex_);
  running_.clear();
}

void BatchRunner::OnBatchEnded(const BatchEnd& end) {
  if (end.outcome && end.outcome->state == BatchState::kDone) return;
  stop_new_ = true;
  if (options_.on_trip != OnTrip::kRollback || !end.outcome || end.outcome->stopped) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (named_rollbacks_.count(end.batch->id) != 0) return;
  const std::string reason = "batch " + end.batch->id + " of the same run did not finish (" +
                             ToString(end.outcome->state) + ": " + end.outcome->reason +
                             "), --on-trip rollback";
  for (const auto& [engine, batch_id] : running_) {
    if (batch_id != end.batch->id)
      engine->RequestRollback(RollbackTrigger::kGuard, reason, batch_id);
  }
}

void BatchRunner::StopNew() { stop_new_ = true; }

void BatchRunner::RequestRollback(RollbackTrigger trigger, const std::string& reason) {
  stop_new_ = true;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [engine, batch_id] : running_)
    engine->RequestRollback(trigger, reason, batch_id);
}

bool BatchRunner::RequestRollback(RollbackTrigger trigger, const std::string& reason,
                                  const std::string& batch_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [engine, id] : running_) {
    if (id != batch_id) continue;
    stop_new_ = true;
    named_rollbacks_.insert(batch_id);
    engine->RequestRollback(trigger, reason, batch_id);
    return true;
  }
  return false;
}

void BatchRunner::RequestStop() {
  stop_new_ = true;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [engine, batch_id] : running_) engine->RequestStop();
}

}  // namespace slotguard::agent
