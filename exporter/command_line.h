#pragma once

#include <ostream>
#include <variant>

#include "exporter/settings.h"

namespace slotguard::exporter {

// What the command line asks for: settings to run with, or an exit code (after --help,
// --version, or an error already printed to `err`).
struct ExitNow {
  int code = 0;
};

// Parses flags, reads --config FILE when given, lets flags override the file, and checks that
// a seed address is known. Help and version go to `out`, errors to `err`.
std::variant<Settings, ExitNow> ParseCommandLine(int argc, const char* const* argv,
                                                 std::ostream& out, std::ostream& err);

}  // namespace slotguard::exporter
