#include "cluster/connection.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <utility>

namespace slotguard::cluster {
namespace {

// Appends argv in RESP, formatted by hiredis as its contexts do.
Result<void> AppendArgv(std::string& out, const Argv& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  char* command = nullptr;
  const int len =
      redisFormatCommandArgv(&command, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  if (len < 0 || command == nullptr) return MakeError("out of memory");
  out.append(command, static_cast<size_t>(len));
  redisFreeCommand(command);
  return {};
}

bool HungUp(const std::string& why) {
  return why == "Server closed the connection" || why == "Connection reset by peer" ||
         why == "the server closed the connection" || why == "Broken pipe" ||
         why.find("unexpected eof") != std::string::npos;
}

}  // namespace

RedisConnection::RedisConnection(Endpoint endpoint, ConnectOptions options)
    : endpoint_(std::move(endpoint)), options_(std::move(options)) {}

RedisConnection::~RedisConnection() = default;

void RedisConnection::SetIoTimeout(std::chrono::milliseconds timeout) {
  options_.io_timeout = timeout;
  if (transport_ && !transport_->SetIoTimeout(timeout)) Discard();
}

void RedisConnection::SetDeadline(std::optional<std::chrono::steady_clock::time_point> deadline) {
  deadline_ = deadline;
  // Back to the connection's own timeout for whoever uses it next without a deadline.
  if (!deadline_ && transport_ && !transport_->SetIoTimeout(options_.io_timeout)) Discard();
}

namespace {

std::chrono::milliseconds Left(std::chrono::steady_clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                               std::chrono::steady_clock::now());
}

}  // namespace

Result<void> RedisConnection::ApplyDeadline() {
  if (!deadline_) return {};
  const auto left = Left(*deadline_);
  if (left.count() <= 0) {
    Discard();  // replies in flight, if any, would be read by the next user as its own
    return MakeError("timed out (the read's deadline passed)");
  }
  if (auto r = transport_->SetIoTimeout(std::min(left, options_.io_timeout)); !r) {
    Discard();
    return r;
  }
  return {};
}

Result<void> RedisConnection::EnsureConnected() {
  if (transport_) return {};
  auto connect_timeout = options_.connect_timeout;
  if (deadline_) {
    // A zero timeout would block forever.
    connect_timeout =
        std::max(std::chrono::milliseconds(1), std::min(connect_timeout, Left(*deadline_)));
  }
  auto transport = Transport::Connect(endpoint_, connect_timeout, options_.tls.get());
  if (!transport) {
    return MakeError("connect to " + endpoint_.ToString() + ": " + transport.error().message);
  }
  transport_ = std::move(*transport);
  reader_.emplace();
  answered_ = false;
  if (auto r = transport_->SetIoTimeout(options_.io_timeout); !r) {
    Discard();
    return MakeError("set timeout on " + endpoint_.ToString() + ": " + r.error().message);
  }
  if (options_.credentials) {
    Argv auth{"AUTH"};
    if (options_.credentials->user) auth.push_back(*options_.credentials->user);
    auth.push_back(options_.credentials->password);
    std::string command;
    if (auto r = AppendArgv(command, auth); !r) {
      Discard();
      return tl::unexpected(r.error());
    }
    auto written = transport_->Write(command);
    auto reply = written ? ReadReply() : Result<Reply>(MakeError(Explain(written.error().message)));
    if (!reply) {
      Discard();
      return MakeError("AUTH to " + endpoint_.ToString() + ": " + reply.error().message);
    }
    if (reply->type == Reply::Type::kError) {
      Discard();
      // The server's message names the problem, never the password.
      return MakeError("AUTH to " + endpoint_.ToString() + " refused: " + reply->str);
    }
  }
  return {};
}

std::string RedisConnection::Explain(const std::string& why) {
  if (answered_ || !HungUp(why)) return why;
  if (!options_.tls) {
    // A plain-text client on a TLS port: the node hangs up on what is not a TLS handshake.
    return why + " before answering anything (if the port speaks TLS, use rediss://)";
  }
  const std::string alert = Transport::ProbeTlsRefusal(
      endpoint_, std::min(options_.connect_timeout, std::chrono::milliseconds(1000)),
      *options_.tls);
  if (!alert.empty()) {
    const std::string hint = TlsFailureHint(alert, endpoint_.host);
    return why + " before answering anything: " + alert + (hint.empty() ? "" : " (" + hint + ")");
  }
  return why +
         " before answering anything (a node with tls-auth-clients yes does so when it refuses "
         "the client certificate: check tls.cert-file and tls.key-file)";
}

Result<Reply> RedisConnection::ReadReply() {
  // hiredis's own read size: large replies (INFO all, CLUSTER NODES) take a few reads.
  char buffer[16 * 1024];
  for (;;) {
    auto next = reader_->Next();
    if (!next) return MakeError("protocol error: " + next.error().message);
    if (*next) {
      answered_ = true;
      return std::move(**next);
    }
    if (auto d = ApplyDeadline(); !d) return tl::unexpected(d.error());
    auto n = transport_->Read(buffer, sizeof(buffer));
    if (!n) return MakeError(Explain(n.error().message));
    if (auto fed = reader_->Feed(std::string_view(buffer, *n)); !fed) {
      return MakeError("protocol error: " + fed.error().message);
    }
  }
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
  if (auto c = EnsureConnected(); !c) return c;
  out_.clear();
  for (const auto& argv : commands) {
    if (auto r = AppendArgv(out_, argv); !r) {
      Discard();
      return MakeError(endpoint_.ToString() + ": " + r.error().message);
    }
    in_flight_.push_back(argv.empty() ? std::string() : argv.front());
  }
  if (auto d = ApplyDeadline(); !d)
    return MakeError(endpoint_.ToString() + ": " + d.error().message);
  if (auto w = transport_->Write(out_); !w) {
    std::string why = Explain(w.error().message);
    Discard();
    return MakeError(endpoint_.ToString() + ": " + why);
  }
  out_.clear();
  return {};
}

Result<std::vector<Reply>> RedisConnection::Receive(size_t count) {
  if (!transport_ || count > in_flight_.size()) {
    Discard();
    return MakeError(endpoint_.ToString() + ": no reply in flight (connection lost)");
  }
  std::vector<Reply> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    auto reply = ReadReply();
    if (!reply) {
      std::string name = in_flight_.front();
      Discard();
      return MakeError(endpoint_.ToString() + ": " + name + ": " + reply.error().message);
    }
    in_flight_.pop_front();
    out.push_back(std::move(*reply));
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
