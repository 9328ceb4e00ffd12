#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slotguard::cluster {

// An owned copy of a hiredis reply, so nothing outlives its redisReply.
struct Reply {
  enum class Type { kString, kStatus, kError, kInteger, kNil, kArray };

  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<Reply> elements;

  bool IsError() const { return type == Type::kError; }
  bool IsOk() const { return type == Type::kStatus && str == "OK"; }
  bool IsNil() const { return type == Type::kNil; }
};

}  // namespace slotguard::cluster
