// RESP bytes from whatever answers on a node's port, read by hiredis's reader as a connection
// reads them, then handed to the code that reads fields out of replies. The first byte picks
// where the input is cut in two (replies arrive in pieces).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "agent/lease.h"
#include "agent/setslot_support.h"
#include "cluster/reply_reader.h"
#include "exporter/node_reader.h"

namespace sc = slotguard::cluster;
namespace sa = slotguard::agent;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t cut = data[0] % (bytes.size() + 1);
  sc::ReplyReader reader;
  std::vector<sc::Reply> replies;
  for (std::string_view piece : {bytes.substr(0, cut), bytes.substr(cut)}) {
    if (!reader.Feed(piece)) return 0;
    while (true) {
      auto reply = reader.Next();
      if (!reply || !*reply) break;
      (void)sa::SetSlotSupportFrom(**reply);
      (void)sa::SetSlotOutcomeUnknown(**reply);
      (void)sa::IsReplicaReply((*reply)->str);
      if (auto holder = sa::ParseLeaseHolder((*reply)->str)) (void)holder->Describe();
      replies.push_back(std::move(**reply));
    }
  }
  // The exporter's fixed pipeline (INFO all, CLUSTER INFO, CLUSTER NODES) answered with these.
  (void)slotguard::exporter::NodeResultFromReplies({"127.0.0.1", 7000}, replies);
  return 0;
}
