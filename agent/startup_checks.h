#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "agent/agent_config.h"

namespace slotguard::agent {

// What one seed said to a PING at start-up: `error` empty when it answered.
struct SeedProbe {
  std::string seed;
  std::string error;
};

// Mistakes the daemon can see at start-up that would otherwise show only when an alert or a
// batch needs the thing that is wrong. Each warning is one sentence for the log; none of them
// stops the daemon (a seed may come up later). Never contains a token.
std::vector<std::string> StartupWarnings(const AgentConfig& config, std::string_view control_token,
                                         std::string_view webhook_token,
                                         const std::vector<SeedProbe>& probes);

}  // namespace slotguard::agent
