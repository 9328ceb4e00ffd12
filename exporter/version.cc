#include "exporter/version.h"

#include "slotguard_build_info.h"  // generated: SLOTGUARD_REVISION, SLOTGUARD_COMPILER

namespace slotguard::exporter {

std::string VersionString() { return std::string("slotguard-exporter ") + SLOTGUARD_VERSION; }

const BuildInfo& GetBuildInfo() {
  static const BuildInfo kInfo{SLOTGUARD_VERSION, SLOTGUARD_REVISION, SLOTGUARD_COMPILER};
  return kInfo;
}

}  // namespace slotguard::exporter
