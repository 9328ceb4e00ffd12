#pragma once

#include <string>

namespace slotguard::exporter {

// "slotguard-exporter 0.1.0", for --version, the landing page and the start-up log line.
std::string VersionString();

// The labels of slotguard_exporter_build_info: version (0.1.0), revision (the git revision
// at configure time, or "unknown") and compiler ("GNU 12.2.0").
struct BuildInfo {
  std::string version;
  std::string revision;
  std::string compiler;
};
const BuildInfo& GetBuildInfo();

}  // namespace slotguard::exporter
