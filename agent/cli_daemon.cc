#include "agent/cli.h"

namespace slotguard::agent {
// Placeholder until the daemon commands land.
void RegisterDaemonCommands(CLI::App& /*app*/, int& /*exit_code*/) {}
}  // namespace slotguard::agent
