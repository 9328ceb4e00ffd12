#include "cluster/fan_out.h"

namespace slotguard::cluster {

FanOut::FanOut(size_t max_workers) : max_workers_(max_workers == 0 ? 1 : max_workers) {
  workers_.reserve(max_workers_);
}

FanOut::~FanOut() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void FanOut::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks_.push_back(std::move(task));
    if (tasks_.size() > idle_ && workers_.size() < max_workers_) {
      workers_.emplace_back([this] { Work(); });
    }
  }
  cv_.notify_one();
}

size_t FanOut::workers() {
  std::lock_guard<std::mutex> lock(mutex_);
  return workers_.size();
}

size_t FanOut::idle_workers() {
  std::lock_guard<std::mutex> lock(mutex_);
  return idle_;
}

void FanOut::Work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ++idle_;
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      --idle_;
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

FanOut& FanOut::Shared() {
  static FanOut* const pool = new FanOut(kSharedWorkers);  // leaked on purpose, see header
  return *pool;
}

}  // namespace slotguard::cluster
