#include "common/http_server.h"

#include <arpa/inet.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "common/basic_auth.h"

namespace slotguard::common {
namespace {

// Binds and listens ourselves (libmicrohttpd takes the socket): the errors can then tell a
// port in use from an address this host does not have.
Result<int> Listen(const ListenAddress& address) {
  const int family = address.ipv6 ? AF_INET6 : AF_INET;
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return MakeError("cannot listen on " + address.ToString() + ": " +
                     (address.ipv6 && errno == EAFNOSUPPORT ? "this host has no IPv6 support"
                                                            : std::strerror(errno)));
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc = -1;
  if (address.ipv6) {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(static_cast<uint16_t>(address.port));
    ::inet_pton(AF_INET6, address.host.c_str(), &sa.sin6_addr);
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(address.port));
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (!address.host.empty()) ::inet_pton(AF_INET, address.host.c_str(), &sa.sin_addr);
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  }
  // Connections beyond what the threads take up at once wait in the kernel, not refused.
  if (rc == 0) rc = ::listen(fd, 1024);
  if (rc == 0) return fd;
  const int err = errno;
  ::close(fd);
  const std::string port = std::to_string(address.port);
  std::string why;
  switch (err) {
    case EADDRINUSE:
      why = "port " + port + " is already in use (another process listens there)";
      break;
    case EADDRNOTAVAIL:
      why = address.host + " is not an address of this host";
      break;
    case EACCES:
      why = "port " + port + " needs privileges this process does not have";
      break;
    default:
      why = std::strerror(err);
  }
  return MakeError("cannot listen on " + address.ToString() + ": " + why);
}

int BoundPort(int fd) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return 0;
  if (sa.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&sa)->sin_port);
}

// The oldest OpenSSL error, worded for an operator ("" when there is none).
std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// Checks the web config's files as OpenSSL reads them, for errors that name the problem
// (GnuTLS, which serves them, says little more than "parsing error").
Result<void> CheckTlsFiles(const TlsServerConfig& tls) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()),
                                                        &SSL_CTX_free);
  auto fail = [](const std::string& what) -> Result<void> {
    const std::string reason = OpenSslError();
    return MakeError(what + (reason.empty() ? "" : " (" + reason + ")"));
  };
  if (!ctx) return fail("cannot set up TLS");
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) != 1) {
    return fail("cannot load the certificate " + tls.cert_file);
  }
  const std::string mismatch =
      "the private key " + tls.key_file + " does not belong to the certificate " + tls.cert_file;
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH) return fail(mismatch);
    return fail("cannot load the private key " + tls.key_file);
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) return fail(mismatch);
  if (!tls.client_ca_file.empty() &&
      SSL_CTX_load_verify_locations(ctx.get(), tls.client_ca_file.c_str(), nullptr) != 1) {
    return fail("cannot load the client CA " + tls.client_ca_file);
  }
  return {};
}

Result<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf())) return MakeError("cannot read " + path);
  return text.str();
}

// GnuTLS priorities for min_version ("NORMAL" is Debian's policy: TLS 1.2 and 1.3).
const char* Priorities(TlsVersion min_version) {
  switch (min_version) {
    case TlsVersion::kTls10:
      return "NORMAL:+VERS-TLS1.0:+VERS-TLS1.1";
    case TlsVersion::kTls11:
      return "NORMAL:+VERS-TLS1.1:-VERS-TLS1.0";
    case TlsVersion::kTls12:
      return "NORMAL:-VERS-TLS1.0:-VERS-TLS1.1";
    case TlsVersion::kTls13:
      return "NORMAL:-VERS-ALL:+VERS-TLS1.3";
  }
  return "NORMAL";
}

// What libmicrohttpd logs while MHD_start_daemon runs on this thread (its reasons for failing).
thread_local std::string* start_log = nullptr;

void LogFromMhd(void*, const char* format, va_list args) {
  char text[512];
  std::vsnprintf(text, sizeof text, format, args);
  std::string line(text);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (start_log != nullptr) {
    *start_log += (start_log->empty() ? "" : "; ") + line;
  } else {
    spdlog::debug("libmicrohttpd: {}", line);
  }
}

}  // namespace

// One request from its head to its answer.
struct HttpServer::Exchange {
  std::string target;  // as the client sent it, query included
  HttpRequest request;
  const HttpRoute* route = nullptr;  // set once the head passed every check
  std::chrono::steady_clock::time_point body_deadline;
  bool too_large = false;
};

// The server certificate and key as GnuTLS hands them out, and what to ask of clients.
struct HttpServer::Tls {
  ClientAuthType client_auth = ClientAuthType::kNoClientCert;
  std::vector<gnutls_pcert_st> chain;
  gnutls_privkey_t key = nullptr;
  std::string priorities;
  std::string client_ca;  // PEM; "" when none

  ~Tls() {
    for (auto& cert : chain) gnutls_pcert_deinit(&cert);
    if (key != nullptr) gnutls_privkey_deinit(key);
  }
};

// The TLS settings of the server whose thread runs this handshake: each libmicrohttpd thread
// serves one server, and GnuTLS' certificate callback carries no user pointer.
thread_local const HttpServer::Tls* thread_tls = nullptr;

namespace {

// Hands GnuTLS the server's certificate and, per client_auth_type, asks for (or requires) the
// client's; RequireAndVerifyClientCert has GnuTLS check it against the client CA in the
// handshake.
int RetrieveCertificate(gnutls_session_t session, const gnutls_datum_t*, int,
                        const gnutls_pk_algorithm_t*, int, gnutls_pcert_st** pcert,
                        unsigned int* pcert_length, gnutls_privkey_t* key) {
  const HttpServer::Tls* tls = thread_tls;
  if (tls == nullptr) return -1;
  switch (tls->client_auth) {
    case ClientAuthType::kNoClientCert:
      gnutls_certificate_server_set_request(session, GNUTLS_CERT_IGNORE);
      break;
    case ClientAuthType::kRequestClientCert:
      gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUEST);
      break;
    case ClientAuthType::kRequireAnyClientCert:
      gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
      break;
    case ClientAuthType::kVerifyClientCertIfGiven:
      // GnuTLS' own check in the handshake would also refuse a client without a certificate:
      // a given one is verified before the request is served (ClientCertificateOk).
      gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUEST);
      break;
    case ClientAuthType::kRequireAndVerifyClientCert:
      gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
      gnutls_session_set_verify_cert(session, nullptr, 0);
      break;
  }
  *pcert = const_cast<gnutls_pcert_st*>(tls->chain.data());
  *pcert_length = static_cast<unsigned int>(tls->chain.size());
  *key = tls->key;
  return 0;
}

Result<std::unique_ptr<HttpServer::Tls>> LoadTls(const TlsServerConfig& config) {
  if (auto checked = CheckTlsFiles(config); !checked) return tl::unexpected(checked.error());
  auto cert = ReadWhole(config.cert_file);
  if (!cert) return tl::unexpected(cert.error());
  auto key = ReadWhole(config.key_file);
  if (!key) return tl::unexpected(key.error());
  auto tls = std::make_unique<HttpServer::Tls>();
  tls->client_auth = config.client_auth_type;
  tls->priorities = Priorities(config.min_version);
  if (!config.client_ca_file.empty()) {
    auto ca = ReadWhole(config.client_ca_file);
    if (!ca) return tl::unexpected(ca.error());
    tls->client_ca = *ca;
  }
  gnutls_datum_t cert_data{reinterpret_cast<unsigned char*>(cert->data()),
                           static_cast<unsigned int>(cert->size())};
  unsigned int count = 16;
  tls->chain.resize(count);
  int rc = gnutls_pcert_list_import_x509_raw(tls->chain.data(), &count, &cert_data,
                                             GNUTLS_X509_FMT_PEM, 0);
  if (rc < 0) {
    tls->chain.clear();
    return MakeError("cannot load the certificate " + config.cert_file + " (" +
                     gnutls_strerror(rc) + ")");
  }
  tls->chain.resize(count);
  gnutls_datum_t key_data{reinterpret_cast<unsigned char*>(key->data()),
                          static_cast<unsigned int>(key->size())};
  gnutls_privkey_init(&tls->key);
  rc = gnutls_privkey_import_x509_raw(tls->key, &key_data, GNUTLS_X509_FMT_PEM, nullptr, 0);
  if (rc < 0) {
    return MakeError("cannot load the private key " + config.key_file + " (" + gnutls_strerror(rc) +
                     ")");
  }
  return tls;
}

}  // namespace

// Drops connections whose request head (or body) has not arrived by its deadline:
// libmicrohttpd's own timeout only bounds silence, so a client trickling a byte at a time
// would hold its connection forever. Shutting the socket down makes libmicrohttpd close it.
struct HttpServer::Deadlines {
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
  std::unordered_map<const MHD_Connection*, std::pair<int, std::chrono::steady_clock::time_point>>
      open;
  std::thread reaper;

  Deadlines() : reaper([this] { Run(); }) {}
  ~Deadlines() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    wake.notify_all();
    reaper.join();
  }
  void Set(const MHD_Connection* conn, int fd, std::chrono::steady_clock::time_point when) {
    std::lock_guard<std::mutex> lock(mutex);
    open[conn] = {fd, when};
  }
  void Move(const MHD_Connection* conn, std::chrono::steady_clock::time_point when) {
    std::lock_guard<std::mutex> lock(mutex);
    if (auto it = open.find(conn); it != open.end()) it->second.second = when;
  }
  void Forget(const MHD_Connection* conn) {
    std::lock_guard<std::mutex> lock(mutex);
    open.erase(conn);
  }
  void Run() {
    std::unique_lock<std::mutex> lock(mutex);
    while (!stop) {
      wake.wait_for(lock, std::chrono::milliseconds(250));
      const auto now = std::chrono::steady_clock::now();
      for (auto it = open.begin(); it != open.end();) {
        if (it->second.second < now) {
          ::shutdown(it->second.first, SHUT_RDWR);
          it = open.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
};

HttpResponse JsonError(int status, const std::string& message) {
  return HttpResponse{status, "application/json", nlohmann::json{{"error", message}}.dump()};
}

HttpResponse TextError(int status, const std::string& message) {
  return HttpResponse{status, "text/plain; charset=utf-8", message + "\n"};
}

void HttpServer::DaemonDeleter::operator()(MHD_Daemon* daemon) const { MHD_stop_daemon(daemon); }

HttpServer::HttpServer(HttpServerOptions options) : options_(std::move(options)) {}

HttpServer::~HttpServer() = default;

namespace {

// libmicrohttpd's callbacks, forwarding to the server.
struct Callbacks {
  static void* Uri(void*, const char* uri, MHD_Connection*) {
    auto* exchange = new HttpServer::Exchange;  // freed in Completed
    exchange->target = uri ? uri : "";
    return exchange;
  }
  static void Completed(void*, MHD_Connection*, void** context, MHD_RequestTerminationCode) {
    delete static_cast<HttpServer::Exchange*>(*context);
    *context = nullptr;
  }
};

}  // namespace

namespace {

MHD_Result Answer(MHD_Connection* conn, const HttpResponse& response, bool challenge) {
  MHD_Response* out = MHD_create_response_from_buffer(
      response.body.size(), const_cast<char*>(response.body.data()), MHD_RESPMEM_MUST_COPY);
  if (out == nullptr) return MHD_NO;
  MHD_add_response_header(out, "Content-Type", response.content_type.c_str());
  MHD_add_response_header(out, "Cache-Control", "no-store");
  MHD_add_response_header(out, "Connection", "close");
  if (challenge) {
    MHD_add_response_header(out, "WWW-Authenticate",
                            "Basic realm=\"slotguard\", charset=\"UTF-8\"");
  }
  const MHD_Result queued = MHD_queue_response(conn, static_cast<unsigned>(response.status), out);
  MHD_destroy_response(out);
  return queued;
}

std::string Header(MHD_Connection* conn, const char* name) {
  const char* value = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
  return value ? value : "";
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const ListenAddress& address,
                                                      std::vector<HttpRoute> routes,
                                                      HttpServerOptions options) {
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(options)));
  for (auto& route : routes) server->routes_.emplace(route.path, std::move(route));
  const std::optional<WebConfig>& web = server->options_.web_config;
  const bool tls = web && web->tls;
  if (web && !web->basic_auth_users.empty()) {
    server->basic_auth_ = std::make_unique<BasicAuth>(web->basic_auth_users);
  }
  if (tls) {
    auto loaded = LoadTls(*web->tls);
    if (!loaded) {
      return MakeError("cannot serve TLS on " + address.ToString() + ": " + loaded.error().message);
    }
    server->tls_ = std::move(*loaded);
  }
  auto fd = Listen(address);
  if (!fd) return tl::unexpected(fd.error());
  server->port_ = BoundPort(*fd);
  server->address_ = address;
  server->address_.port = server->port_;
  server->deadlines_ = std::make_unique<Deadlines>();

  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  if (address.ipv6) flags |= MHD_USE_IPv6;
  if (tls) flags |= MHD_USE_TLS;
  const auto timeout_s = static_cast<unsigned>(
      (std::max<int64_t>(server->options_.request_timeout.count(), 1) + 999) / 1000);
  using Notify = void (*)(void*, MHD_Connection*, void**, MHD_ConnectionNotificationCode);
  Notify notify = [](void* self, MHD_Connection* conn, void**,
                     MHD_ConnectionNotificationCode code) {
    auto* server = static_cast<HttpServer*>(self);
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
      server->deadlines_->Forget(conn);
      return;
    }
    thread_tls = server->tls_.get();
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info != nullptr) {
      server->deadlines_->Set(conn, info->connect_fd,
                              std::chrono::steady_clock::now() + server->options_.request_timeout);
    }
  };
  MHD_AccessHandlerCallback access = [](void* self, MHD_Connection* conn, const char*,
                                        const char* method, const char*, const char* data,
                                        size_t* size, void** context) -> MHD_Result {
    auto* exchange = static_cast<Exchange*>(*context);
    if (exchange == nullptr) return MHD_NO;
    auto* server = static_cast<HttpServer*>(self);
    // Nothing may leave a libmicrohttpd callback (an auth hook that throws, bad_alloc): a 500
    // when no answer is queued yet, else the connection is closed.
    try {
      return static_cast<MHD_Result>(server->Access(conn, method, *exchange, data, size));
    } catch (const std::exception& e) {
      spdlog::error("HTTP {}: {}", exchange->target, e.what());
    } catch (...) {
      spdlog::error("HTTP {}: unknown error", exchange->target);
    }
    server->deadlines_->Forget(conn);
    return Answer(conn, server->Error(500, "internal error"), false);
  };
  // The logger first, so that libmicrohttpd's complaints about later options reach it.
  std::vector<MHD_OptionItem> items = {
      {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&LogFromMhd), nullptr},
      {MHD_OPTION_LISTEN_SOCKET, *fd, nullptr},
      {MHD_OPTION_THREAD_POOL_SIZE, std::max(1, server->options_.workers), nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, static_cast<intptr_t>(timeout_s), nullptr},
      {MHD_OPTION_URI_LOG_CALLBACK, reinterpret_cast<intptr_t>(&Callbacks::Uri), nullptr},
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&Callbacks::Completed), nullptr},
      {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(notify), server.get()},
  };
  if (tls) {
    items.push_back(
        {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, reinterpret_cast<void*>(&RetrieveCertificate)});
    items.push_back(
        {MHD_OPTION_HTTPS_PRIORITIES, 0, const_cast<char*>(server->tls_->priorities.c_str())});
    if (!server->tls_->client_ca.empty()) {
      items.push_back(
          {MHD_OPTION_HTTPS_MEM_TRUST, 0, const_cast<char*>(server->tls_->client_ca.c_str())});
    }
  }
  items.push_back({MHD_OPTION_END, 0, nullptr});
  std::string log;
  start_log = &log;
  MHD_Daemon* daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, access, server.get(),
                                        MHD_OPTION_ARRAY, items.data(), MHD_OPTION_END);
  start_log = nullptr;
  if (daemon == nullptr) {
    ::close(*fd);
    return MakeError((tls ? "cannot serve TLS on " : "cannot listen on ") + address.ToString() +
                     ": " + (log.empty() ? std::string("libmicrohttpd failed to start") : log));
  }
  server->daemon_.reset(daemon);
  return server;
}

HttpResponse HttpServer::Error(int status, const std::string& message) const {
  return options_.error_response ? options_.error_response(status, message)
                                 : JsonError(status, message);
}

bool HttpServer::ClientCertificateOk(MHD_Connection* conn) const {
  if (!tls_ || tls_->client_auth == ClientAuthType::kNoClientCert ||
      tls_->client_auth == ClientAuthType::kRequestClientCert) {
    return true;
  }
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (info == nullptr) return false;
  auto session = static_cast<gnutls_session_t>(info->tls_session);
  unsigned int count = 0;
  const bool given = gnutls_certificate_get_peers(session, &count) != nullptr && count > 0;
  // GnuTLS refused most of these in the handshake already; checked again (and here only, for
  // VerifyClientCertIfGiven) so that no request passes on a certificate nobody verified.
  switch (tls_->client_auth) {
    case ClientAuthType::kRequireAnyClientCert:
      return given;
    case ClientAuthType::kVerifyClientCertIfGiven:
    case ClientAuthType::kRequireAndVerifyClientCert: {
      if (!given) return tls_->client_auth == ClientAuthType::kVerifyClientCertIfGiven;
      unsigned int status = 0;
      return gnutls_certificate_verify_peers2(session, &status) == 0 && status == 0;
    }
    default:
      return true;
  }
}

HttpResponse HttpServer::Run(const HttpRoute& route, const HttpRequest& request) const {
  // Nothing may leave a libmicrohttpd callback: every failure becomes a 500.
  try {
    return route.handler(request);
  } catch (const std::exception& e) {
    spdlog::error("HTTP {}: {}", request.path, e.what());
    return Error(500, std::string("internal error: ") + e.what());
  } catch (...) {
    spdlog::error("HTTP {}: unknown error", request.path);
    return Error(500, "internal error");
  }
}

int HttpServer::Access(MHD_Connection* conn, const char* method, Exchange& exchange,
                       const char* data, size_t* size) {
  HttpRequest& request = exchange.request;
  if (exchange.route == nullptr) {
    // The head has arrived: everything but the body is decided now.
    if (!ClientCertificateOk(conn)) {
      spdlog::debug("HTTP: client certificate refused");
      return MHD_NO;  // closes the connection without an answer, as a failed handshake would
    }
    request.method = method ? method : "";
    const size_t q = exchange.target.find('?');
    request.path = exchange.target.substr(0, q);
    request.query = q == std::string::npos ? "" : exchange.target.substr(q + 1);
    request.authorization = Header(conn, "Authorization");
    request.content_type = Header(conn, "Content-Type");
    bool challenge = false;
    if (auto refused = Admit(conn, exchange, challenge)) {
      deadlines_->Forget(conn);
      return Answer(conn, *refused, challenge);
    }
    if (request.method == "POST") {
      // The body has body_timeout from here; the reaper backs it up for a client that
      // stops sending altogether.
      exchange.body_deadline = std::chrono::steady_clock::now() + options_.body_timeout;
      deadlines_->Move(conn, exchange.body_deadline + options_.request_timeout);
      return MHD_YES;
    }
    deadlines_->Forget(conn);
    return Answer(conn, Run(*exchange.route, request), false);
  }
  const HttpRoute& route = *exchange.route;
  if (*size != 0) {
    if (std::chrono::steady_clock::now() > exchange.body_deadline) {
      if (route.on_refused) {
        route.on_refused(Error(408, "the body did not arrive within " +
                                        std::to_string(options_.body_timeout.count()) + "ms"));
      }
      return MHD_NO;  // the rest may never come: drop the connection
    }
    if (!exchange.too_large) {
      request.body.append(data, *size);
      if (request.body.size() > route.max_body_bytes) {
        exchange.too_large = true;  // a chunked body: the rest is read and dropped
        request.body.clear();
      }
    }
    *size = 0;
    return MHD_YES;
  }
  deadlines_->Forget(conn);
  if (exchange.too_large) {
    HttpResponse refused =
        Error(413, "body larger than " + std::to_string(route.max_body_bytes) + " bytes");
    if (route.on_refused) route.on_refused(refused);
    return Answer(conn, refused, false);
  }
  return Answer(conn, Run(route, request), false);
}

std::optional<HttpResponse> HttpServer::Admit(MHD_Connection* conn, Exchange& exchange,
                                              bool& challenge) {
  const HttpRequest& request = exchange.request;
  const std::string method = request.method == "HEAD" ? "GET" : request.method;
  auto [first, last] = routes_.equal_range(request.path);
  if (first == last) return Error(404, "no such endpoint: " + request.path);
  const HttpRoute* route = nullptr;
  std::string allowed;
  for (auto it = first; it != last; ++it) {
    if (it->second.method == method) route = &it->second;
    allowed += (allowed.empty() ? "" : ", ") + it->second.method;
    if (it->second.method == "GET") allowed += ", HEAD";
  }
  if (route == nullptr) return Error(405, "use " + allowed + " on " + request.path);

  if (basic_auth_ && !route->auth) {
    std::string user;
    if (!basic_auth_->Check(request.authorization, &user)) {
      challenge = true;
      spdlog::debug("HTTP {}: basic auth refused{}", request.path,
                    user.empty() ? "" : " for user '" + user + "'");
      return Error(401, "basic auth required: wrong or missing user name or password");
    }
  }
  for (const HttpAuthHook* hook :
       std::initializer_list<const HttpAuthHook*>{&options_.auth, &route->auth}) {
    if (!*hook) continue;
    if (auto refused = (*hook)(request)) return refused;
  }
  exchange.route = route;
  // An announced body over the limit is refused before it is read when the client waits for
  // "100 Continue"; one that is being sent anyway is read (within body_timeout) and dropped
  // before the 413, since closing on unread data resets the connection and the client, still
  // writing, would never see the answer. Chunked bodies are cut at the limit + 1.
  const std::string length = Header(conn, "Content-Length");
  if (!length.empty() && std::strtoull(length.c_str(), nullptr, 10) > route->max_body_bytes) {
    if (Header(conn, "Expect").find("100-continue") == std::string::npos) {
      exchange.too_large = true;
      return std::nullopt;
    }
    HttpResponse refused =
        Error(413, "body larger than " + std::to_string(route->max_body_bytes) + " bytes");
    if (route->on_refused) route->on_refused(refused);
    return refused;
  }
  return std::nullopt;
}

}  // namespace slotguard::common
