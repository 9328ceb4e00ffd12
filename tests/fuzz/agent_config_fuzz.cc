// agent.yaml's text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/agent_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)slotguard::agent::ParseAgentConfig(text, "agent.yaml", "/etc/slotguard");
  return 0;
}
