#pragma once

#include <string>

namespace slotguard::exporter {

// "slotguard-exporter 0.1.0", for --version, the landing page and the start-up log line.
std::string VersionString();

}  // namespace slotguard::exporter
