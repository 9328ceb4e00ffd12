// A plan file's text, as `slotguard-agent run PLAN.yaml` and the control API's POST
// /api/v1/plans take it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/plan_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)slotguard::agent::ParsePlanFile(text, "plan.yaml");
  return 0;
}
