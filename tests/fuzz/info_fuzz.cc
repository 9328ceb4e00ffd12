// INFO and CLUSTER INFO text as a server (or anything listening on its port) answers it: the
// parser and every reader the exporter and the agent run on its result.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cluster/info.h"
#include "cluster/server_version.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)slotguard::cluster::ParseServerVersion(text);
  auto info = slotguard::cluster::ParseInfo(text);
  if (!info) return 0;
  for (const auto& field : info->fields()) {
    (void)info->Get(field.key);
    (void)info->GetNumber(field.key);
    (void)slotguard::cluster::ParseNestedValue(field.value);
  }
  (void)slotguard::cluster::CommandStats(*info);
  (void)slotguard::cluster::ErrorStats(*info);
  (void)slotguard::cluster::LatencyPercentiles(*info);
  (void)slotguard::cluster::Keyspace(*info);
  (void)slotguard::cluster::Replicas(*info);
  (void)slotguard::cluster::ServerVersionFromInfo(*info);
  return 0;
}
