#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

namespace slotguard::agent {

// Wall-clock time for records people read (journal, lease, queue): unix milliseconds, and the
// UTC text shown to operators. The engine's own timing uses the injected Clock instead.
inline int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline std::string UtcText(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace slotguard::agent
