// exporter.yaml's text, and the validators its values (and the flags) go through.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/listen_address.h"
#include "exporter/settings.h"

namespace se = slotguard::exporter;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)se::ParseConfigYaml(text, "exporter.yaml");
  // The same bytes as one flag value.
  (void)se::ParseScrapeTimeout(text);
  (void)se::CheckRedisAddr(text);
  (void)se::CheckListenAddress(text);
  (void)se::CheckTelemetryPath(text);
  (void)slotguard::common::ParseListenAddress(text);
  return 0;
}
