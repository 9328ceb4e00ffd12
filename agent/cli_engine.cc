#include "agent/cli.h"

namespace slotguard::agent {
// Placeholder until the engine commands land.
void RegisterEngineCommands(CLI::App& /*app*/, int& /*exit_code*/) {}
}  // namespace slotguard::agent
