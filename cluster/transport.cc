#include "cluster/transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cluster/tls_context.h"

namespace slotguard::cluster {
namespace {

using Clock = std::chrono::steady_clock;

timeval ToTimeval(std::chrono::milliseconds ms) {
  // A zero timeout would mean "block forever" to the kernel.
  if (ms.count() <= 0) ms = std::chrono::milliseconds(1);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string ErrnoText(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK) return "timed out";
  return std::strerror(err);
}

Result<void> SetTimeouts(int fd, std::chrono::milliseconds timeout) {
  const timeval tv = ToTimeval(timeout);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
    return MakeError(std::string("setting the timeout: ") + std::strerror(errno));
  }
  return {};
}

std::chrono::milliseconds Left(Clock::time_point deadline) {
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

// A non-blocking connect bounded by `deadline`; on success the socket is blocking again.
Result<int> ConnectOne(const addrinfo& ai, Clock::time_point deadline) {
  int fd = socket(ai.ai_family, ai.ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai.ai_protocol);
  if (fd < 0) return MakeError(std::strerror(errno));
  auto fail = [fd](const std::string& why) {
    close(fd);
    return MakeError(why);
  };
  if (connect(fd, ai.ai_addr, ai.ai_addrlen) != 0) {
    if (errno != EINPROGRESS) return fail(std::strerror(errno));
    pollfd p{fd, POLLOUT, 0};
    int ready = 0;
    do {
      ready = poll(&p, 1, static_cast<int>(Left(deadline).count()));
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) return fail(std::strerror(ETIMEDOUT));
    if (ready < 0) return fail(std::strerror(errno));
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return fail(std::strerror(errno));
    if (err != 0) return fail(std::strerror(err));
  }
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return fail(std::strerror(errno));
  }
  // Commands are written whole and their replies awaited: Nagle would only add delay.
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

bool IsIpAddress(const std::string& host) {
  in6_addr buffer{};
  return inet_pton(AF_INET, host.c_str(), &buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), &buffer) == 1;
}

}  // namespace

void Transport::SslDeleter::operator()(ssl_st* ssl) const { SSL_free(ssl); }

Transport::~Transport() {
  ssl_.reset();
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<Transport>> Transport::Connect(const Endpoint& endpoint,
                                                      std::chrono::milliseconds connect_timeout,
                                                      const TlsContext* tls) {
  const auto deadline = Clock::now() + connect_timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(endpoint.port);
  if (int rc = getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return MakeError(rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(found, &freeaddrinfo);
  Result<int> fd = MakeError("no address");
  for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    fd = ConnectOne(*ai, deadline);
    if (fd) break;
  }
  if (!fd) return tl::unexpected(fd.error());
  std::unique_ptr<Transport> transport(new Transport(*fd));
  if (tls != nullptr) {
    if (auto r = SetTimeouts(*fd, Left(deadline)); !r) return tl::unexpected(r.error());
    if (auto r = transport->Handshake(endpoint, *tls); !r) return tl::unexpected(r.error());
  }
  return transport;
}

Result<void> Transport::Handshake(const Endpoint& endpoint, const TlsContext& tls) {
  ERR_clear_error();
  ssl_.reset(SSL_new(tls.native()));
  if (!ssl_) return MakeError("TLS: " + TakeOpenSslError("cannot create a session"));
  SSL_set_fd(ssl_.get(), fd_);
  const TlsSettings& settings = tls.settings();
  const std::string& name = settings.server_name.empty() ? endpoint.host : settings.server_name;
  // SNI carries names only, never an address.
  if (!IsIpAddress(name)) SSL_set_tlsext_host_name(ssl_.get(), name.c_str());
  if (!settings.insecure_skip_verify) {
    // Discovered nodes are usually IP addresses: their certificates need them as IP SANs.
    const int set = IsIpAddress(name)
                        ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), name.c_str())
                        : SSL_set1_host(ssl_.get(), name.c_str());
    if (set != 1) return MakeError("TLS: cannot check the name " + name);
  }
  const int ret = SSL_connect(ssl_.get());
  if (ret == 1) return {};
  std::string why = TlsFailure(ret, "handshake");
  const long verify = SSL_get_verify_result(ssl_.get());
  if (verify != X509_V_OK) {
    why = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
  }
  // A plain-text node reads the ClientHello as the start of an inline command and waits.
  const std::string hint = why == "timed out"
                               ? "no TLS answer from the node: if its port is plain text, use "
                                 "redis://"
                               : TlsFailureHint(why, name);
  return MakeError("TLS handshake: " + why + (hint.empty() ? "" : " (" + hint + ")"));
}

std::string Transport::TlsFailure(int ret, const std::string& during) {
  const int saved_errno = errno;
  switch (SSL_get_error(ssl_.get(), ret)) {
    case SSL_ERROR_ZERO_RETURN:
      return "the server closed the connection";
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      ERR_clear_error();
      return "timed out";
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() != 0) return TakeOpenSslError(during + " failed");
      if (ret == 0 || saved_errno == 0) return "the server closed the connection";
      return ErrnoText(saved_errno);
    default:
      return TakeOpenSslError(during + " failed");
  }
}

std::string Transport::ProbeTlsRefusal(const Endpoint& endpoint, std::chrono::milliseconds wait,
                                       const TlsContext& tls) {
  auto probe = Connect(endpoint, wait, &tls);
  if (!probe) return "";
  if (!(*probe)->SetIoTimeout(wait)) return "";
  char byte = 0;
  ERR_clear_error();
  // Session tickets are consumed inside SSL_read; a node that accepted us sends nothing else.
  const int n = SSL_read((*probe)->ssl_.get(), &byte, 1);
  if (n > 0 || SSL_get_error((*probe)->ssl_.get(), n) != SSL_ERROR_SSL) {
    ERR_clear_error();
    return "";
  }
  return TakeOpenSslError("");
}

Result<void> Transport::SetIoTimeout(std::chrono::milliseconds timeout) {
  return SetTimeouts(fd_, timeout);
}

Result<void> Transport::Write(std::string_view data) {
  while (!data.empty()) {
    if (ssl_) {
      ERR_clear_error();
      const int n = SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size()));
      if (n <= 0) {
        std::string why = TlsFailure(n, "write");
        const std::string hint = TlsFailureHint(why, "");
        return MakeError(why + (hint.empty() ? "" : " (" + hint + ")"));
      }
      data.remove_prefix(static_cast<size_t>(n));
    } else {
      // MSG_NOSIGNAL: a node that closed the socket gives EPIPE, not a SIGPIPE.
      const ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return MakeError(ErrnoText(errno));
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  return {};
}

Result<size_t> Transport::Read(char* buffer, size_t size) {
  for (;;) {
    if (ssl_) {
      ERR_clear_error();
      const int n = SSL_read(ssl_.get(), buffer, static_cast<int>(size));
      if (n > 0) return static_cast<size_t>(n);
      std::string why = TlsFailure(n, "read");
      const std::string hint = TlsFailureHint(why, "");
      return MakeError(why + (hint.empty() ? "" : " (" + hint + ")"));
    }
    const ssize_t n = recv(fd_, buffer, size, 0);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) return MakeError("Server closed the connection");
    if (errno == EINTR) continue;
    return MakeError(ErrnoText(errno));
  }
}

std::string TlsFailureHint(std::string_view reason, std::string_view host) {
  auto has = [reason](std::string_view part) { return reason.find(part) != std::string::npos; };
  if (has("wrong version number") || has("packet length too long") || has("record layer failure") ||
      has("unknown protocol")) {
    return "the port does not speak TLS: is it a plain-text port? use redis://";
  }
  if (has("certificate required") || (has("handshake failure") && has("alert"))) {
    return "the server wants a client certificate: give tls.cert-file and tls.key-file";
  }
  if (has("alert certificate expired")) return "the server refused the client certificate: expired";
  if (has("bad certificate") || has("unknown ca") || has("certificate unknown") ||
      has("certificate revoked") || has("unsupported certificate")) {
    return "the server refused the client certificate";
  }
  if (has("certificate has expired")) return "the node's certificate has expired";
  if (has("certificate is not yet valid")) return "the node's certificate is not valid yet";
  if (has("unable to get local issuer certificate") || has("self-signed certificate") ||
      has("self signed certificate") || has("unable to verify the first certificate")) {
    return "the node's certificate is not signed by a CA in tls.ca-file (or the system's store)";
  }
  if (has("hostname mismatch") || has("IP address mismatch")) {
    return "the node's certificate does not name " + std::string(host) +
           ": tls.server-name sets the name to check";
  }
  return "";
}

}  // namespace slotguard::cluster
