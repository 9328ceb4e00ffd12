#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/listen_address.h"
#include "common/web_config.h"

struct MHD_Daemon;
struct MHD_Connection;

namespace slotguard::common {

class BasicAuth;

struct HttpRequest {
  std::string method;
  std::string path;
  std::string query;
  std::string authorization;  // the Authorization header, "" when absent
  std::string content_type;
  std::string body;  // empty until the auth hooks passed
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// Handlers must not throw (the server turns a stray exception into a 500 anyway).
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// Looks at a request before its body is read: a response refuses it (401, 403), nullopt lets
// it through. Bearer tokens are checked here today; TLS client and basic auth plug in here.
using HttpAuthHook = std::function<std::optional<HttpResponse>(const HttpRequest&)>;

struct HttpRoute {
  std::string method;  // "GET" (which answers HEAD too) or "POST"
  std::string path;    // exact path
  HttpHandler handler;
  size_t max_body_bytes = 64 * 1024;  // larger bodies get 413 before the handler runs
  // Told when the server refuses a request before the handler sees it (413, a body that did
  // not arrive in time), so the route's owner can log and count it.
  std::function<void(const HttpResponse&)> on_refused;
  HttpAuthHook auth;  // after the server's own hook; none: open to everyone
};

struct HttpServerOptions {
  // Threads of libmicrohttpd's pool (epoll): a connection costs no thread while it waits, so
  // a few suffice. A handler runs on the thread that owns its connection and holds only the
  // connections of that thread meanwhile: several, so a slow one (a big scrape, a control
  // command reading the cluster) leaves the others answering.
  int workers = 6;
  // The whole request head must arrive within this after the connection is accepted (TLS
  // handshake included), and the connection may not stay silent longer than this (rounded up
  // to whole seconds) at any time; a client that connects and says nothing is dropped then.
  std::chrono::milliseconds request_timeout{5000};
  // The whole body must have arrived within this (checked between reads).
  std::chrono::milliseconds body_timeout{10000};
  // No longer needed, kept so callers compile: the pool threads have the default (8 MiB)
  // stacks, so handlers always run on them, whatever this says.
  bool handlers_on_large_stack = true;
  HttpAuthHook auth;  // for every route, after the web config's checks
  // The exporter-toolkit web config: TLS (client certificates are checked before any request is
  // served) and basic auth. Basic auth guards every route that has no auth hook of its own; a route
  // with its own hook (the agent's bearer tokens) keeps the Authorization header for that
  // credential, since a request carries only one, and is covered by TLS and client certs.
  std::optional<WebConfig> web_config;
  // How the server words the errors it answers itself (404, 405, 413, 500).
  std::function<HttpResponse(int status, const std::string& message)> error_response;
};

// One libmicrohttpd server (RAII: stops in the destructor) dispatching exact paths to
// handlers, on a few epoll threads: idle connections cost a socket and a little memory, no
// thread. Every answer closes its connection (no keep-alive). TLS is GnuTLS's.
class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Start(const ListenAddress& address,
                                                   std::vector<HttpRoute> routes,
                                                   HttpServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Where it listens, with the port the kernel chose for port 0: what the start-up line logs.
  const ListenAddress& address() const { return address_; }

  // Only http_server.cc knows these: one request on its way; GnuTLS' certificate and key
  // with the client certificate mode.
  struct Exchange;
  struct Tls;

 private:
  struct Deadlines;  // drops connections that overstay request_timeout (http_server.cc)
  explicit HttpServer(HttpServerOptions options);
  int Access(MHD_Connection* conn, const char* method, Exchange& exchange, const char* data,
             size_t* size);
  // Decides on a request once its head arrived: nullopt lets the body be read for the route.
  std::optional<HttpResponse> Admit(MHD_Connection* conn, Exchange& exchange, bool& challenge);
  HttpResponse Run(const HttpRoute& route, const HttpRequest& request) const;
  HttpResponse Error(int status, const std::string& message) const;
  bool ClientCertificateOk(MHD_Connection* conn) const;

  struct DaemonDeleter {
    void operator()(MHD_Daemon* daemon) const;
  };
  HttpServerOptions options_;
  std::multimap<std::string, HttpRoute> routes_;  // by path
  std::unique_ptr<BasicAuth> basic_auth_;         // when the web config has basic_auth_users
  std::unique_ptr<Tls> tls_;
  std::unique_ptr<Deadlines> deadlines_;
  std::unique_ptr<MHD_Daemon, DaemonDeleter> daemon_;  // stopped first: declared last
  int port_ = 0;
  ListenAddress address_;
};

// A JSON error body {"error": message}; the default error_response.
HttpResponse JsonError(int status, const std::string& message);
// A text/plain answer with a trailing newline.
HttpResponse TextError(int status, const std::string& message);

}  // namespace slotguard::common
