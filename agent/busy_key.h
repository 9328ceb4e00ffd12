#pragma once

#include <optional>
#include <string>

namespace slotguard::agent {

// Which copy of a key is the live one when MIGRATE meets BUSYKEY.
enum class BusyKeyPolicy {
  // Moving from the node clients read the key from (the owner / migrating node) to a node
  // that already has a copy: that copy is the user's data unless we put it there.
  kForward,
  // Moving keys back to the owner, which already has the key: the owner's copy is live, the
  // copy on the moving node is a duplicate (equal) or a stray the engine must not touch.
  kToOwner,
};

enum class BusyKeyAction {
  kReplace,         // MIGRATE ... REPLACE that key: the moving node's copy is live
  kDeleteFromCopy,  // drop the copy on the moving node: the owner's is live and equal (or ours)
  kLeave,           // leave the moving node's copy where it is and skip the key
  kConflict,        // stop the batch and name the key
  kRetry,           // the key changed under us (gone on one side): look again
};

struct BusyKeyFacts {
  bool replace_requested = false;  // --replace
  // The key was in a MIGRATE of ours that failed (IOERR/timeout): the copy on the receiving
  // node may be ours, written by that MIGRATE.
  bool ours = false;
  std::optional<std::string> from_dump;  // DUMP on the moving node, nullopt when absent
  std::optional<std::string> to_dump;    // DUMP on the receiving node, nullopt when absent
  // The payloads differ but the values are the same (type and contents; a set's or hash's
  // payload depends on its table's iteration order, an int-encoded string's on its encoding).
  bool same_content = false;
};

// Pure. Never overwrites a different value unless the user asked (--replace) or the copy
// being overwritten is provably ours.
BusyKeyAction DecideBusyKey(BusyKeyPolicy policy, const BusyKeyFacts& facts);

}  // namespace slotguard::agent
