#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace slotguard::common {

// Sets spdlog's default logger for a binary: lines on stderr, "text" (time level message) or
// "json" (one object a line: time, level, logger, msg; the message JSON-escaped whatever it
// holds), at `level` (trace|debug|info|warn|error|off). May be called again (the CLI does, per
// command): the new logger replaces the old one.
void SetupLogging(const std::string& logger_name, const std::string& format,
                  const std::string& level);

// The validators of the two settings, shared by flags and config files; the message names no
// flag or key (the caller adds "--log.format" or "agent.yaml:7: log.format").
Result<std::string> CheckLogFormat(std::string_view text);
Result<std::string> CheckLogLevel(std::string_view text);

}  // namespace slotguard::common
