#pragma once

#include <chrono>
#include <mutex>
#include <thread>

namespace slotguard::agent {

// Injectable time, so guard grace periods and convergence bounds are unit-tested without
// sleeping. Thread-safe: the guard thread and the engine thread share one clock.
class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() = 0;
  virtual void SleepFor(std::chrono::milliseconds duration) = 0;
};

class RealClock final : public Clock {
 public:
  TimePoint Now() override { return std::chrono::steady_clock::now(); }
  void SleepFor(std::chrono::milliseconds duration) override {
    std::this_thread::sleep_for(duration);
  }
};

// Time moves only when a test advances it, or when someone sleeps (a sleep advances the clock
// by its duration and returns at once).
class FakeClock final : public Clock {
 public:
  TimePoint Now() override {
    std::lock_guard<std::mutex> lock(mutex_);
    return now_;
  }
  void SleepFor(std::chrono::milliseconds duration) override { Advance(duration); }
  void Advance(std::chrono::steady_clock::duration duration) {
    std::lock_guard<std::mutex> lock(mutex_);
    now_ += duration;
  }

 private:
  std::mutex mutex_;
  TimePoint now_{std::chrono::hours(1)};
};

}  // namespace slotguard::agent
