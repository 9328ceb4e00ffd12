#include "cluster/reply_reader.h"

#include <hiredis/hiredis.h>

#include <string>

namespace slotguard::cluster {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};

std::string ReaderError(const redisReader* reader) {
  return reader->errstr[0] == '\0' ? "protocol error" : std::string(reader->errstr);
}

}  // namespace

Reply ToReply(const redisReply& r) {
  Reply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i) out.elements.push_back(ToReply(*r.element[i]));
      break;
    default:
      out.type = Reply::Type::kNil;
      break;
  }
  return out;
}

void ReplyReader::ReaderDeleter::operator()(redisReader* reader) const { redisReaderFree(reader); }

ReplyReader::ReplyReader() : reader_(redisReaderCreate()) {}

Result<void> ReplyReader::Feed(std::string_view bytes) {
  if (!reader_) return MakeError("out of memory");
  if (redisReaderFeed(reader_.get(), bytes.data(), bytes.size()) != REDIS_OK) {
    return MakeError(ReaderError(reader_.get()));
  }
  return {};
}

Result<std::optional<Reply>> ReplyReader::Next() {
  if (!reader_) return MakeError("out of memory");
  void* raw = nullptr;
  if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
    return MakeError(ReaderError(reader_.get()));
  }
  if (raw == nullptr) return std::optional<Reply>();
  std::unique_ptr<redisReply, ReplyDeleter> reply(static_cast<redisReply*>(raw));
  return std::optional<Reply>(ToReply(*reply));
}

}  // namespace slotguard::cluster
