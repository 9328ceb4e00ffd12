#include "agent/step_hooks.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include <spdlog/spdlog.h>

namespace slotguard::agent {

std::vector<StepPause> ParseStepPauses(const std::string& text) {
  std::vector<StepPause> out;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = std::min(text.find(',', pos), text.size());
    std::string item = text.substr(pos, end - pos);
    pos = end + 1;
    const auto colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0) continue;
    StepPause p{item.substr(0, colon), 1, std::atoi(item.c_str() + colon + 1)};
    if (auto at = p.point.find('@'); at != std::string::npos) {
      p.nth = std::atoi(p.point.c_str() + at + 1);
      p.point.resize(at);
    }
    if (p.point.empty() || p.ms <= 0 || p.nth < 1) continue;
    out.push_back(std::move(p));
  }
  return out;
}

namespace {

class EnvironmentStepHooks final : public StepHooks {
 public:
  EnvironmentStepHooks(Clock& clock, std::string crash_at, std::vector<StepPause> pauses)
      : clock_(clock), crash_at_(std::move(crash_at)) {
    for (auto& p : pauses) pauses_.push_back({std::move(p), 0});
  }

  void Reached(const std::string& point, const std::function<bool()>& released) override {
    for (auto& [pause, seen] : pauses_) {
      if (pause.point != point || ++seen != pause.nth) continue;
      std::fprintf(stderr, "slotguard-test-hook: paused at %s for %d ms\n", point.c_str(),
                   pause.ms);
      std::fflush(stderr);
      const auto until = clock_.Now() + std::chrono::milliseconds(pause.ms);
      while (clock_.Now() < until && !released()) {
        clock_.SleepFor(std::chrono::milliseconds(10));
      }
    }
    if (point == crash_at_) {
      spdlog::warn("SLOTGUARD_TEST_CRASH_AT={}: killing myself", point);
      spdlog::default_logger()->flush();
      std::raise(SIGKILL);
    }
  }

  bool Watches(const std::string& point) const override {
    return point == crash_at_ || std::any_of(pauses_.begin(), pauses_.end(),
                                             [&](const auto& p) { return p.first.point == point; });
  }

 private:
  Clock& clock_;
  std::string crash_at_;
  std::vector<std::pair<StepPause, int>> pauses_;  // with how often the point was reached
};

}  // namespace

std::unique_ptr<StepHooks> StepHooksFromEnvironment([[maybe_unused]] Clock& clock) {
#ifdef SLOTGUARD_TEST_HOOKS
  const char* crash = std::getenv("SLOTGUARD_TEST_CRASH_AT");
  const char* pause = std::getenv("SLOTGUARD_TEST_PAUSE_AT");
  if (crash || pause) {
    return std::make_unique<EnvironmentStepHooks>(clock, crash ? crash : "",
                                                  ParseStepPauses(pause ? pause : ""));
  }
#endif
  return std::make_unique<StepHooks>();
}

}  // namespace slotguard::agent
