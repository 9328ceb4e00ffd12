#include "cluster/connection.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <utility>

#include "cluster/reply_reader.h"

namespace slotguard::cluster {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string ContextError(const redisContext* c) {
  if (c == nullptr) return "out of memory";
  if (c->err == REDIS_ERR_IO && c->errstr[0] == '\0') return "I/O error";
  // hiredis reports a read timeout as "Resource temporarily unavailable".
  std::string msg = c->errstr;
  if (msg == "Resource temporarily unavailable") msg = "timed out";
  return msg;
}

Result<void> AppendArgv(redisContext* c, const Argv& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data()) !=
      REDIS_OK) {
    return MakeError(ContextError(c));
  }
  return {};
}

}  // namespace

void RedisConnection::ContextDeleter::operator()(redisContext* context) const {
  redisFree(context);
}

RedisConnection::RedisConnection(Endpoint endpoint, ConnectOptions options)
    : endpoint_(std::move(endpoint)), options_(std::move(options)) {}

RedisConnection::~RedisConnection() = default;

void RedisConnection::SetIoTimeout(std::chrono::milliseconds timeout) {
  options_.io_timeout = timeout;
  if (context_) redisSetTimeout(context_.get(), ToTimeval(timeout));
}

Result<redisContext*> RedisConnection::EnsureConnected() {
  if (context_) return context_.get();
  ContextPtr c(redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port,
                                       ToTimeval(options_.connect_timeout)));
  if (!c || c->err) {
    return MakeError("connect to " + endpoint_.ToString() + ": " + ContextError(c.get()));
  }
  if (redisSetTimeout(c.get(), ToTimeval(options_.io_timeout)) != REDIS_OK) {
    return MakeError("set timeout on " + endpoint_.ToString() + ": " + ContextError(c.get()));
  }
  if (options_.credentials) {
    Argv auth{"AUTH"};
    if (options_.credentials->user) auth.push_back(*options_.credentials->user);
    auth.push_back(options_.credentials->password);
    if (auto r = AppendArgv(c.get(), auth); !r) return tl::unexpected(r.error());
    redisReply* raw = nullptr;
    if (redisGetReply(c.get(), reinterpret_cast<void**>(&raw)) != REDIS_OK) {
      return MakeError("AUTH to " + endpoint_.ToString() + ": " + ContextError(c.get()));
    }
    ReplyPtr reply(raw);
    if (reply->type == REDIS_REPLY_ERROR) {
      // The server's message names the problem, never the password.
      return MakeError("AUTH to " + endpoint_.ToString() +
                       " refused: " + std::string(reply->str, reply->len));
    }
  }
  context_ = std::move(c);
  return context_.get();
}

Result<Reply> RedisConnection::Command(const Argv& argv) {
  auto replies = Pipeline({argv});
  if (!replies) return tl::unexpected(replies.error());
  return std::move(replies->front());
}

Result<void> Connection::Send(const std::vector<Argv>& commands) {
  unsent_.insert(unsent_.end(), commands.begin(), commands.end());
  return {};
}

Result<std::vector<Reply>> Connection::Receive(size_t count) {
  count = std::min(count, unsent_.size());
  std::vector<Argv> batch(unsent_.begin(), unsent_.begin() + static_cast<std::ptrdiff_t>(count));
  unsent_.erase(unsent_.begin(), unsent_.begin() + static_cast<std::ptrdiff_t>(count));
  auto replies = Pipeline(batch);
  if (!replies) unsent_.clear();  // as a real connection loses every reply in flight
  return replies;
}

Result<void> RedisConnection::Send(const std::vector<Argv>& commands) {
  auto c = EnsureConnected();
  if (!c) return tl::unexpected(c.error());
  for (const auto& argv : commands) {
    if (auto r = AppendArgv(*c, argv); !r) {
      Discard();
      return MakeError(endpoint_.ToString() + ": " + r.error().message);
    }
    in_flight_.push_back(argv.empty() ? std::string() : argv.front());
  }
  // Blocking context: each redisBufferWrite writes what the socket takes.
  for (int done = 0; !done;) {
    if (redisBufferWrite(*c, &done) != REDIS_OK) {
      std::string why = ContextError(*c);
      Discard();
      return MakeError(endpoint_.ToString() + ": " + why);
    }
  }
  return {};
}

Result<std::vector<Reply>> RedisConnection::Receive(size_t count) {
  if (!context_ || count > in_flight_.size()) {
    Discard();
    return MakeError(endpoint_.ToString() + ": no reply in flight (connection lost)");
  }
  std::vector<Reply> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    redisReply* raw = nullptr;
    if (redisGetReply(context_.get(), reinterpret_cast<void**>(&raw)) != REDIS_OK ||
        raw == nullptr) {
      std::string why = ContextError(context_.get());
      std::string name = in_flight_.front();
      Discard();
      return MakeError(endpoint_.ToString() + ": " + name + ": " + why);
    }
    in_flight_.pop_front();
    ReplyPtr reply(raw);
    out.push_back(ToReply(*reply));
  }
  return out;
}

Result<std::vector<Reply>> RedisConnection::Pipeline(const std::vector<Argv>& commands) {
  if (!in_flight_.empty()) {
    // Replies of an earlier Send are still unread: they would be taken for these.
    Discard();
    return MakeError(endpoint_.ToString() + ": replies of earlier commands unread");
  }
  if (auto sent = Send(commands); !sent) return tl::unexpected(sent.error());
  return Receive(commands.size());
}

}  // namespace slotguard::cluster
