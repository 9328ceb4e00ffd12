#include "agent/busy_key.h"

namespace slotguard::agent {

BusyKeyAction DecideBusyKey(BusyKeyPolicy policy, const BusyKeyFacts& facts) {
  if (!facts.from_dump || !facts.to_dump) return BusyKeyAction::kRetry;
  const bool equal = *facts.from_dump == *facts.to_dump || facts.same_content;
  switch (policy) {
    case BusyKeyPolicy::kForward:
      if (facts.replace_requested || facts.ours || equal) return BusyKeyAction::kReplace;
      return BusyKeyAction::kConflict;
    case BusyKeyPolicy::kToOwner:
      // The owner served the key all along (or since our failed MIGRATE reached it).
      if (facts.ours || equal) return BusyKeyAction::kDeleteFromCopy;
      return BusyKeyAction::kLeave;
  }
  return BusyKeyAction::kConflict;
}

}  // namespace slotguard::agent
