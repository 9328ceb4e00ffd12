// queue.json's text as the daemon finds it at start (damaged, edited by hand, written by
// another version): the reader, then the write-back every change of the queue makes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/queue.h"
#include "cluster/nodes.h"

namespace sa = slotguard::agent;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto state = sa::ParseQueueState(text, "queue.json");
  if (!state) return 0;
  nlohmann::json items = nlohmann::json::array();
  for (const auto& item : state->items) {
    // Recovery and rollback index per-slot tables with a loaded batch's slots.
    for (int slot : item.batch.slots) {
      if (slot < 0 || slot >= slotguard::cluster::kSlotCount) __builtin_trap();
    }
    (void)item.DisplayState();
    items.push_back(sa::ToJson(item));
  }
  (void)items.dump(1);
  return 0;
}
