#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "cluster/reply.h"

// Replies as a server would send them, for fakes and scripted connections.
namespace slotguard::testing {

inline cluster::Reply ReplyOf(cluster::Reply::Type type, std::string text) {
  cluster::Reply r;
  r.type = type;
  r.str = std::move(text);
  return r;
}
inline cluster::Reply StringReply(std::string s) {
  return ReplyOf(cluster::Reply::Type::kString, std::move(s));
}
inline cluster::Reply StatusReply(std::string s) {
  return ReplyOf(cluster::Reply::Type::kStatus, std::move(s));
}
inline cluster::Reply ErrorReply(std::string s) {
  return ReplyOf(cluster::Reply::Type::kError, std::move(s));
}
inline cluster::Reply IntegerReply(int64_t v) {
  cluster::Reply r;
  r.type = cluster::Reply::Type::kInteger;
  r.integer = v;
  return r;
}

}  // namespace slotguard::testing
