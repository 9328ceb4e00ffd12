#include "exporter/version.h"

namespace slotguard::exporter {

#ifndef SLOTGUARD_REVISION
#define SLOTGUARD_REVISION "unknown"
#endif
#ifndef SLOTGUARD_COMPILER
#define SLOTGUARD_COMPILER "unknown"
#endif

std::string VersionString() { return std::string("slotguard-exporter ") + SLOTGUARD_VERSION; }

const BuildInfo& GetBuildInfo() {
  static const BuildInfo kInfo{SLOTGUARD_VERSION, SLOTGUARD_REVISION, SLOTGUARD_COMPILER};
  return kInfo;
}

}  // namespace slotguard::exporter
