#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace slotguard::cluster {

// A set of worker threads that run posted tasks: how the cluster reader reads many nodes at
// once without a thread per node per read. Tasks block on a node's socket (each bounded by its
// connection's timeouts or deadline), so the workers may be many more than the cores. A worker
// is started when a task finds none idle, up to `max_workers`, and then kept: a 3+3 cluster's
// reads keep about six threads, a 25+25 cluster's the whole pool.
class FanOut {
 public:
  explicit FanOut(size_t max_workers);
  ~FanOut();  // runs the queued tasks, then joins the workers

  FanOut(const FanOut&) = delete;
  FanOut& operator=(const FanOut&) = delete;

  void Post(std::function<void()> task);
  // Workers started so far, and those of them waiting for a task.
  size_t workers();
  size_t idle_workers();

  // The process's pool, made on first use with up to kSharedWorkers workers and never destroyed: a
  // worker may still wait on a stuck node when the process exits.
  static FanOut& Shared();
  static constexpr size_t kSharedWorkers = 16;

 private:
  void Work();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  size_t idle_ = 0;  // workers waiting for a task
  const size_t max_workers_;
  std::vector<std::thread> workers_;
};

}  // namespace slotguard::cluster
