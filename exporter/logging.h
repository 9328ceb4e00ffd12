#pragma once

#include <string>

namespace slotguard::exporter {

// Sets spdlog's default logger: lines on stderr, "text" (time level message) or "json" (one
// object a line: time, level, msg), at `level` (trace|debug|info|warn|error|off).
void SetupLogging(const std::string& format, const std::string& level);

}  // namespace slotguard::exporter
