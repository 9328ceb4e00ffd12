#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "cluster/reply.h"
#include "cluster/result.h"

struct redisReader;
struct redisReply;

namespace slotguard::cluster {

// An owned copy of a hiredis reply: what RedisConnection hands out.
Reply ToReply(const redisReply& reply);

// hiredis's RESP reader with its default reply functions, the one a connection's context reads
// replies with, for bytes that do not come from a socket (fuzzing, tests).
class ReplyReader {
 public:
  ReplyReader();

  // Appends bytes as they arrive; fails when the reader is already in error.
  Result<void> Feed(std::string_view bytes);
  // The next complete reply, nullopt when more bytes are needed, an error on a protocol
  // error (after which the reader stays in error, as the connection drops it).
  Result<std::optional<Reply>> Next();

 private:
  struct ReaderDeleter {
    void operator()(redisReader* reader) const;
  };
  std::unique_ptr<redisReader, ReaderDeleter> reader_;
};

}  // namespace slotguard::cluster
