#pragma once

#include <optional>
#include <string>

#include "common/error.h"

namespace slotguard::common {

// An exclusive flock on a lock file, held for the object's lifetime (RAII: closing the
// descriptor releases it, also when the process dies, so a crash never leaves a stale lock).
class FileLock {
 public:
  // Creates `path` if needed and locks it without waiting. nullopt: another process holds it
  // (the caller words that, naming what is in use); an error: the file could not be opened.
  static Result<std::optional<FileLock>> TryAcquire(const std::string& path);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace slotguard::common
