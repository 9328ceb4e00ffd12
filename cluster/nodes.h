#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/endpoint.h"
#include "cluster/result.h"

namespace slotguard::cluster {

inline constexpr int kSlotCount = 16384;

struct NodeFlags {
  bool myself = false;
  bool master = false;
  bool replica = false;  // "slave"
  bool pfail = false;    // "fail?"
  bool fail = false;
  bool handshake = false;
  bool noaddr = false;
  bool nofailover = false;
};

struct SlotRange {
  int first = 0;
  int last = 0;  // inclusive
  bool operator==(const SlotRange&) const = default;
};

enum class OpenDirection { kMigrating, kImporting };

// "[N->-id]" (this node migrates N to id) or "[N-<-id]" (this node imports N from id).
struct OpenSlot {
  int slot = 0;
  OpenDirection direction = OpenDirection::kMigrating;
  std::string peer_id;
  bool operator==(const OpenSlot&) const = default;
};

// One line of CLUSTER NODES.
struct NodeEntry {
  std::string id;
  Endpoint endpoint;  // host may be empty for a noaddr node
  int cluster_port = 0;
  std::string hostname;  // 7.0+: "ip:port@cport,hostname"; empty when none
  NodeFlags flags;
  std::vector<std::string> raw_flags;
  std::string master_id;  // empty for "-"
  int64_t ping_sent = 0;
  int64_t pong_recv = 0;
  uint64_t config_epoch = 0;
  bool link_connected = false;
  std::vector<SlotRange> slots;
  std::vector<OpenSlot> open_slots;  // only on the myself line

  int SlotCount() const;
  // Every slot outside `slots`, ascending: where this node should hold no key.
  std::vector<int> SlotsNotOwned() const;
};

// Fails with the line number and the reason on malformed input (too few fields, bad slot,
// slot out of range, bad address); an empty input is an error too.
Result<std::vector<NodeEntry>> ParseClusterNodes(std::string_view text);

// The myself entry of a parsed view, or nullptr.
const NodeEntry* FindMyself(const std::vector<NodeEntry>& nodes);

}  // namespace slotguard::cluster
