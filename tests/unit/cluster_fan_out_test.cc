#include "cluster/fan_out.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace slotguard::cluster {
namespace {

// Blocks every task until released, and counts how many block at once.
class Gate {
 public:
  void Enter() {
    std::unique_lock<std::mutex> lock(mutex_);
    ++inside_;
    peak_ = std::max(peak_, inside_);
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
    --inside_;
  }
  bool WaitInside(int n) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return inside_ == n; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  int peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    return peak_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int inside_ = 0;
  int peak_ = 0;
  bool open_ = false;
};

TEST(FanOut, RunsUpToItsLimitAtOnceAndEveryTaskInTheEnd) {
  Gate gate;
  std::atomic<int> done{0};
  {
    FanOut pool(4);
    for (int i = 0; i < 10; ++i) {
      pool.Post([&] {
        gate.Enter();
        ++done;
      });
    }
    ASSERT_TRUE(gate.WaitInside(4));
    EXPECT_EQ(pool.workers(), 4u);
    gate.Open();
  }  // the destructor runs what is queued, then joins
  EXPECT_EQ(done.load(), 10);
  EXPECT_EQ(gate.peak(), 4);
}

TEST(FanOut, StartsAWorkerOnlyWhenNoneIsIdle) {
  FanOut pool(16);
  for (int i = 0; i < 20; ++i) {
    std::atomic<bool> ran{false};
    pool.Post([&] { ran = true; });
    // Until the task ran and its worker waits again (bounded).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!(ran && pool.idle_workers() == pool.workers()) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    ASSERT_TRUE(ran);
  }
  EXPECT_EQ(pool.workers(), 1u);
}

TEST(FanOut, SixTasksAtOnceStartSixWorkers) {
  Gate gate;
  FanOut pool(16);
  for (int i = 0; i < 6; ++i) pool.Post([&] { gate.Enter(); });
  ASSERT_TRUE(gate.WaitInside(6));
  EXPECT_EQ(pool.workers(), 6u);
  gate.Open();
}

}  // namespace
}  // namespace slotguard::cluster
