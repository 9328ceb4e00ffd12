#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace slotguard::common {

// The durable-file primitives the agent's journal and queue are built on. Errors carry the
// system's reason (strerror) and the file; callers add what the file is ("journal ...").

// Writes all of `data` to `fd`, retrying short writes and EINTR.
Result<void> WriteAll(int fd, std::string_view data);

// fsyncs a directory, so a file created or renamed in it survives a power cut.
Result<void> SyncDir(const std::string& dir);

// Replaces `path` with `data` so that a crash at any point leaves the old or the new file
// whole: written to `path` + `temp_suffix`, fsynced, renamed over `path`, the directory
// fsynced. The temporary file is removed when a step fails.
Result<void> AtomicRewrite(const std::string& path, std::string_view data,
                           const std::string& temp_suffix = ".tmp");

}  // namespace slotguard::common
