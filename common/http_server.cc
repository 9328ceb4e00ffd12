#include "common/http_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/basic_auth.h"

// common/openssl_shim: the libssl.so and libcrypto.so civetweb's dlopen gets.
extern "C" int slotguard_libssl_shim(void);
extern "C" unsigned long slotguard_libcrypto_shim(void);

namespace slotguard::common {
namespace {

// civetweb's feature bit for IPv6 (mg_check_feature).
constexpr unsigned kFeatureIpv6 = 8;

const char* StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 503:
      return "Service Unavailable";
    default:
      return status >= 500 ? "Internal Server Error" : "Error";
  }
}

void InitLibraryOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Keeps the OpenSSL stand-ins linked in (they must be loaded before civetweb's dlopen).
    (void)(slotguard_libssl_shim() + slotguard_libcrypto_shim());
    mg_init_library(0);
  });
}

// civetweb says "Failed to setup server ports" whatever went wrong; binding the address
// ourselves tells a port in use from an address this host does not have.
std::string WhyNoListen(const ListenAddress& address, const std::string& civetweb_text) {
  const int family = address.ipv6 ? AF_INET6 : AF_INET;
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return civetweb_text;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as civetweb binds
  int rc = -1;
  if (address.ipv6) {
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
  const int err = errno;
  ::close(fd);
  const std::string port = std::to_string(address.port);
  if (rc == 0) return civetweb_text;
  switch (err) {
    case EADDRINUSE:
      return "port " + port + " is already in use (another process listens there)";
    case EADDRNOTAVAIL:
      return address.host + " is not an address of this host";
    case EACCES:
      return "port " + port + " needs privileges this process does not have";
    default:
      return std::strerror(err);
  }
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

// RequestClientCert and RequireAnyClientCert take whatever certificate the client shows.
int AcceptAnyCertificate(int, X509_STORE_CTX*) { return 1; }

// civetweb's "9443s": an 's' after each port listens with TLS.
std::string WithTls(const std::string& ports) {
  std::string out;
  size_t start = 0;
  while (start <= ports.size()) {
    const size_t comma = ports.find(',', start);
    const std::string one = ports.substr(start, comma - start);
    out += (out.empty() ? "" : ",") + one + "s";
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// What civetweb logs while mg_start2 runs on this thread (its reasons for failing to start).
thread_local std::string* start_log = nullptr;

std::string RequestPath(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  return info && info->local_uri ? info->local_uri : "?";
}

}  // namespace

HttpResponse JsonError(int status, const std::string& message) {
  return HttpResponse{status, "application/json", nlohmann::json{{"error", message}}.dump()};
}

HttpResponse TextError(int status, const std::string& message) {
  return HttpResponse{status, "text/plain; charset=utf-8", message + "\n"};
}

void HttpServer::ContextDeleter::operator()(mg_context* context) const { mg_stop(context); }

HttpServer::HttpServer(HttpServerOptions options) : options_(std::move(options)) {}

HttpServer::~HttpServer() = default;

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const ListenAddress& address,
                                                      std::vector<HttpRoute> routes,
                                                      HttpServerOptions options) {
  InitLibraryOnce();
  const bool have_ipv6 = mg_check_feature(kFeatureIpv6) != 0;
  if (address.ipv6 && !have_ipv6) {
    return MakeError("cannot listen on " + address.ToString() +
                     ": this build of civetweb has no IPv6 support; listen on an IPv4 address "
                     "or on \":" +
                     std::to_string(address.port) + "\" (every IPv4 address)");
  }
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(options)));
  for (auto& route : routes) server->routes_.emplace(route.path, std::move(route));
  const std::optional<WebConfig>& web = server->options_.web_config;
  const bool tls = web && web->tls;
  if (web && !web->basic_auth_users.empty()) {
    server->basic_auth_ = std::make_unique<BasicAuth>(web->basic_auth_users);
  }

  const std::string ports =
      tls ? WithTls(address.CivetwebPorts(have_ipv6)) : address.CivetwebPorts(have_ipv6);
  const std::string workers = std::to_string(server->options_.workers);
  const std::string request_timeout = std::to_string(server->options_.request_timeout.count());
  const char* config[] = {"listening_ports", ports.c_str(), "num_threads", workers.c_str(),
                          "request_timeout_ms", request_timeout.c_str(), "enable_keep_alive", "no",
                          // Connections beyond the busy workers wait in the kernel, not refused.
                          "listen_backlog", "1024", nullptr};
  mg_callbacks callbacks{};
  // The certificate, key and client checks are set on civetweb's SSL_CTX by InitTls (civetweb
  // alone wants cert and key in one file and has no RequestClientCert-style modes).
  if (tls) callbacks.init_ssl = &HttpServer::InitTls;
  // civetweb's own reason for a failed start (a TLS library it cannot load, ...), kept for
  // the error instead of its bare "Error initializing SSL context".
  callbacks.log_message = [](const mg_connection*, const char* message) {
    if (start_log != nullptr) {
      *start_log += (start_log->empty() ? "" : "; ") + std::string(message);
    } else {
      spdlog::debug("civetweb: {}", message);
    }
    return 1;
  };
  mg_init_data init{&callbacks, server.get(), config};
  unsigned code = 0;
  char text[256] = {0};
  mg_error_data error{&code, text, sizeof(text)};
  std::string civetweb_log;
  start_log = &civetweb_log;
  mg_context* context = mg_start2(&init, &error);
  start_log = nullptr;
  if (context == nullptr) {
    if (!server->tls_error_.empty()) {
      return MakeError("cannot serve TLS on " + address.ToString() + ": " + server->tls_error_);
    }
    if (tls) {
      return MakeError("cannot serve TLS on " + address.ToString() + ": " +
                       (civetweb_log.empty() ? std::string(text) : civetweb_log));
    }
    return MakeError("cannot listen on " + address.ToString() + ": " +
                     WhyNoListen(address, text[0] ? text : "civetweb failed to start"));
  }
  server->context_.reset(context);
  mg_set_request_handler(context, "/", &HttpServer::Dispatch, server.get());
  mg_server_port port_info[4];
  const int n = mg_get_server_ports(context, 4, port_info);
  if (n > 0) server->port_ = port_info[0].port;
  server->address_ = address;
  server->address_.port = server->port_;
  return server;
}

HttpResponse HttpServer::Error(int status, const std::string& message) const {
  return options_.error_response ? options_.error_response(status, message)
                                 : JsonError(status, message);
}

int HttpServer::InitTls(void* ssl_ctx, void* self) {
  auto* server = static_cast<HttpServer*>(self);
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  const TlsServerConfig& tls = *server->options_.web_config->tls;
  ERR_clear_error();
  // civetweb 1.15 has already set option bits numbered as in OpenSSL 1.1; under OpenSSL 3 they
  // include SSL_OP_DISABLE_TLSEXT_CA_NAMES, which makes a TLS 1.3 CertificateRequest carry an
  // empty CA list that Go clients (Prometheus, Alertmanager) refuse ("tls: unexpected
  // message"). Start again from the options a fresh OpenSSL context has.
  {
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> fresh(SSL_CTX_new(TLS_server_method()),
                                                            &SSL_CTX_free);
    const uint64_t defaults = fresh ? SSL_CTX_get_options(fresh.get()) : 0;
    SSL_CTX_clear_options(ctx, SSL_CTX_get_options(ctx));
    SSL_CTX_set_options(ctx, defaults | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  }
  auto fail = [server](const std::string& what) {
    const std::string reason = OpenSslError();
    server->tls_error_ = what + (reason.empty() ? "" : " (" + reason + ")");
    return -1;
  };
  if (SSL_CTX_use_certificate_chain_file(ctx, tls.cert_file.c_str()) != 1) {
    return fail("cannot load the certificate " + tls.cert_file);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH) {
      return fail("the private key " + tls.key_file + " does not belong to the certificate " +
                  tls.cert_file);
    }
    return fail("cannot load the private key " + tls.key_file);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail("the private key " + tls.key_file + " does not belong to the certificate " +
                tls.cert_file);
  }
  int version = TLS1_2_VERSION;
  switch (tls.min_version) {
    case TlsVersion::kTls10:
      version = TLS1_VERSION;
      break;
    case TlsVersion::kTls11:
      version = TLS1_1_VERSION;
      break;
    case TlsVersion::kTls12:
      version = TLS1_2_VERSION;
      break;
    case TlsVersion::kTls13:
      version = TLS1_3_VERSION;
      break;
  }
  SSL_CTX_set_min_proto_version(ctx, version);
  // Client certificates and session resumption need an id for the sessions of this server.
  static const unsigned char kSessionId[] = "slotguard";
  SSL_CTX_set_session_id_context(ctx, kSessionId, sizeof kSessionId - 1);
  if (!tls.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, tls.client_ca_file.c_str(), nullptr) != 1) {
      return fail("cannot load the client CA " + tls.client_ca_file);
    }
    // Tells clients which CAs' certificates to offer.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(ctx, names);
    }
  }
  switch (tls.client_auth_type) {
    case ClientAuthType::kNoClientCert:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
      break;
    case ClientAuthType::kRequestClientCert:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, &AcceptAnyCertificate);
      break;
    case ClientAuthType::kRequireAnyClientCert:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                         &AcceptAnyCertificate);
      break;
    case ClientAuthType::kVerifyClientCertIfGiven:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      break;
    case ClientAuthType::kRequireAndVerifyClientCert:
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  return 1;  // civetweb: the callback set everything up
}

int HttpServer::Dispatch(mg_connection* conn, void* self) {
  auto* server = static_cast<HttpServer*>(self);
  HttpResponse response;
  bool head = false;
  bool challenge = false;
  // Nothing may leave a civetweb callback: every failure becomes a 500.
  try {
    response = server->Handle(conn, head, challenge);
  } catch (const std::exception& e) {
    spdlog::error("HTTP {}: {}", RequestPath(conn), e.what());
    response = server->Error(500, std::string("internal error: ") + e.what());
  } catch (...) {
    spdlog::error("HTTP {}: unknown error", RequestPath(conn));
    response = server->Error(500, "internal error");
  }
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
            response.status, StatusText(response.status), response.content_type.c_str(),
            response.body.size(),
            challenge ? "WWW-Authenticate: Basic realm=\"slotguard\", charset=\"UTF-8\"\r\n" : "");
  if (!head && !response.body.empty()) mg_write(conn, response.body.data(), response.body.size());
  return response.status;
}

HttpResponse HttpServer::Handle(mg_connection* conn, bool& head, bool& challenge) {
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest request;
  request.method = info->request_method ? info->request_method : "";
  request.path = info->local_uri ? info->local_uri : "";
  request.query = info->query_string ? info->query_string : "";
  if (const char* auth = mg_get_header(conn, "Authorization")) request.authorization = auth;
  if (const char* type = mg_get_header(conn, "Content-Type")) request.content_type = type;
  head = request.method == "HEAD";
  const std::string method = head ? "GET" : request.method;

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
    if (auto refused = (*hook)(request)) return *refused;
  }

  auto refuse = [route](HttpResponse response) {
    if (route->on_refused) route->on_refused(response);
    return response;
  };
  const std::string too_large =
      "body larger than " + std::to_string(route->max_body_bytes) + " bytes";
  // Refuse oversized bodies before reading them; chunked bodies are cut at the limit + 1.
  if (info->content_length > static_cast<long long>(route->max_body_bytes)) {
    return refuse(Error(413, too_large));
  }
  // civetweb bounds each read by request_timeout; a client trickling its body a byte at a
  // time is cut off here, between reads of small pieces.
  const auto deadline = std::chrono::steady_clock::now() + options_.body_timeout;
  char buffer[1024];
  while (true) {
    const int n = mg_read(conn, buffer, sizeof(buffer));
    if (n <= 0) break;
    request.body.append(buffer, static_cast<size_t>(n));
    if (request.body.size() > route->max_body_bytes) return refuse(Error(413, too_large));
    if (std::chrono::steady_clock::now() > deadline) {
      return refuse(Error(408, "the body did not arrive within " +
                                   std::to_string(options_.body_timeout.count()) + "ms"));
    }
  }

  if (!options_.handlers_on_large_stack) return route->handler(request);
  HttpResponse response;
  std::exception_ptr failure;
  std::thread worker([&] {
    try {
      response = route->handler(request);
    } catch (...) {
      failure = std::current_exception();
    }
  });
  worker.join();
  if (failure) std::rethrow_exception(failure);
  return response;
}

}  // namespace slotguard::common
