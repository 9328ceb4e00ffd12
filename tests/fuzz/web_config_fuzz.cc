// The exporter-toolkit web config (--web.config.file, agent.yaml's web_config_file), and the
// same bytes as an Authorization header for the basic-auth header parser.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/basic_auth.h"
#include "common/web_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)slotguard::common::ParseWebConfig(text, "/etc/slotguard/web.yml");
  std::string user;
  std::string password;
  (void)slotguard::common::ParseBasicAuthorization(text, user, password);
  return 0;
}
