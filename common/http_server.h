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

struct mg_context;
struct mg_connection;

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
  // Each connection holds a worker from accept until its answer is written, idle or not:
  // enough of them that hundreds of idle or trickling clients leave some for Prometheus and
  // Alertmanager. A worker that waits costs a thread with a mostly untouched stack.
  int workers = 256;
  // The whole request head must arrive within this after the connection is taken up, and each
  // read of the body within it; a client that connects and says nothing is dropped then.
  std::chrono::milliseconds request_timeout{5000};
  // The whole body must have arrived within this (checked between reads).
  std::chrono::milliseconds body_timeout{10000};
  // civetweb's workers have small stacks (100 KiB as Debian builds it); handlers that build
  // big objects on the stack need a thread of the default size. One thread per request,
  // joined before the answer: requests here are rare (scrapes, alerts, control commands).
  // Turn it off once no handler needs more than a few KiB of stack.
  bool handlers_on_large_stack = true;
  HttpAuthHook auth;  // for every route, after the web config's checks
  // The exporter-toolkit web config: TLS (client certificates are checked in the handshake)
  // and basic auth. Basic auth guards every route that has no auth hook of its own; a route
  // with its own hook (the agent's bearer tokens) keeps the Authorization header for that
  // credential, since a request carries only one, and is covered by TLS and client certs.
  std::optional<WebConfig> web_config;
  // How the server words the errors it answers itself (404, 405, 413, 500).
  std::function<HttpResponse(int status, const std::string& message)> error_response;
};

// One civetweb server (RAII: stops in the destructor) dispatching exact paths to handlers.
// Every answer closes its connection: no keep-alive, so an idle client never holds a worker
// longer than request_timeout.
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

 private:
  explicit HttpServer(HttpServerOptions options);
  static int Dispatch(mg_connection* conn, void* self);
  HttpResponse Handle(mg_connection* conn, bool& head, bool& challenge);
  HttpResponse Error(int status, const std::string& message) const;
  static int InitTls(void* ssl_ctx, void* self);

  struct ContextDeleter {
    void operator()(mg_context* context) const;
  };
  HttpServerOptions options_;
  std::multimap<std::string, HttpRoute> routes_;  // by path
  std::unique_ptr<BasicAuth> basic_auth_;         // when the web config has basic_auth_users
  std::string tls_error_;                         // why InitTls failed, for Start's error
  std::unique_ptr<mg_context, ContextDeleter> context_;
  int port_ = 0;
  ListenAddress address_;
};

// A JSON error body {"error": message}; the default error_response.
HttpResponse JsonError(int status, const std::string& message);
// A text/plain answer with a trailing newline.
HttpResponse TextError(int status, const std::string& message);

}  // namespace slotguard::common
