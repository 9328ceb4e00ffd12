// journal.jsonl's text as an agent finds it at start (torn, damaged, edited by hand): the
// reader, the replay recovery runs on, and the compaction that rewrites it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/journal.h"
#include "cluster/nodes.h"

namespace sa = slotguard::agent;

namespace {

// Recovery indexes per-slot tables with what the replay returns.
void CheckSlots(const std::vector<int>& slots) {
  for (int slot : slots) {
    if (slot < 0 || slot >= slotguard::cluster::kSlotCount) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  int skipped = 0;
  const auto records = sa::Journal::ParseRecords(text, &skipped);
  const sa::JournalState state = sa::ReplayJournal(records);
  for (const auto& batch : state.batches) {
    CheckSlots(batch.slots);
    CheckSlots({batch.touched.begin(), batch.touched.end()});
  }
  for (const auto& run : state.runs) {
    for (const auto& [id, slots] : run.batches) CheckSlots(slots);
  }
  (void)state.OpenBatches();
  (void)state.LastUnfinishedRun();
  for (const auto& record : sa::CompactRecords(records)) {
    (void)record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return 0;
}
