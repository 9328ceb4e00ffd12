#include "exporter/version.h"

namespace slotguard::exporter {

std::string VersionString() { return std::string("slotguard-exporter ") + SLOTGUARD_VERSION; }

}  // namespace slotguard::exporter
