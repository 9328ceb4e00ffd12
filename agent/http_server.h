#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "cluster/result.h"

struct mg_context;
struct mg_connection;

namespace slotguard::agent {

struct HttpRequest {
  std::string method;
  std::string path;
  std::string query;
  std::string authorization;  // the Authorization header, "" when absent
  std::string content_type;
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// Handlers must not throw (the server turns a stray exception into a 500 anyway).
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpRoute {
  std::string method;  // "GET" or "POST"
  std::string path;    // exact path
  HttpHandler handler;
  size_t max_body_bytes = 64 * 1024;  // larger bodies get 413 before the handler runs
  // Told when the server refuses a request before the handler sees it (413), so the
  // route's owner can log and count it.
  std::function<void(const HttpResponse&)> on_refused;
};

// One civetweb server (RAII: stops in the destructor) dispatching exact paths to handlers.
class HttpServer {
 public:
  // listen_address: "host:port" (port 0 picks a free port; see port()).
  static cluster::Result<std::unique_ptr<HttpServer>> Start(const std::string& listen_address,
                                                            std::vector<HttpRoute> routes,
                                                            int threads = 4);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

 private:
  HttpServer() = default;
  static int Dispatch(mg_connection* conn, void* self);
  HttpResponse Handle(mg_connection* conn);

  struct ContextDeleter {
    void operator()(mg_context* context) const;
  };
  std::multimap<std::string, HttpRoute> routes_;  // by path
  std::unique_ptr<mg_context, ContextDeleter> context_;
  int port_ = 0;
};

// Serializes a JSON error body {"error": message}.
HttpResponse JsonError(int status, const std::string& message);

}  // namespace slotguard::agent
