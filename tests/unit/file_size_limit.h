#pragma once

#include <sys/resource.h>

#include <csignal>
#include <cstdint>

namespace slotguard::agent::testing {

// While it lives, a write that would grow a regular file past `bytes` fails (EFBIG, the
// process limit RLIMIT_FSIZE, with SIGXFSZ ignored), as on a full filesystem: a real write
// error for code that writes files, without a seam in that code. Process-wide: tests only.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(uint64_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    saved_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() { Lift(); }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

  void Lift() {
    if (lifted_) return;
    lifted_ = true;
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, saved_handler_);
  }

 private:
  rlimit saved_{};
  void (*saved_handler_)(int) = SIG_DFL;
  bool lifted_ = false;
};

}  // namespace slotguard::agent::testing
