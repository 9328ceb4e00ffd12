#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace slotguard::cluster {

// A fixed set of worker threads that run posted tasks: how the cluster reader reads many nodes
// at once without a thread per node per read. Tasks block on a node's socket (each bounded by
// its connection's timeouts or deadline), so the workers are many more than the cores.
class FanOut {
 public:
  explicit FanOut(size_t workers);
  ~FanOut();  // runs the queued tasks, then joins the workers

  FanOut(const FanOut&) = delete;
  FanOut& operator=(const FanOut&) = delete;

  void Post(std::function<void()> task);

  // The process's pool, made on first use with kSharedWorkers workers and never destroyed: a
  // worker may still wait on a stuck node when the process exits.
  static FanOut& Shared();
  static constexpr size_t kSharedWorkers = 16;

 private:
  void Work();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace slotguard::cluster
