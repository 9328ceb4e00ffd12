#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cluster/result.h"

struct mg_context;
struct mg_connection;

namespace slotguard::exporter {

// The exporter's HTTP side over civetweb: the telemetry path answers with whatever
// `render_metrics` returns (a scrape), "/" with a landing page, "/healthz" with "ok".
// Handlers never let an exception out: a failing scrape is a 500 with a short message.
class HttpServer {
 public:
  using RenderMetrics = std::function<std::string()>;

  // Listens on `listen_address` (":9478", "127.0.0.1:9478", "[::1]:9478").
  static cluster::Result<std::unique_ptr<HttpServer>> Start(const std::string& listen_address,
                                                            const std::string& telemetry_path,
                                                            RenderMetrics render_metrics);
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;  // the first listening port

 private:
  HttpServer(std::string telemetry_path, RenderMetrics render_metrics);
  static int BeginRequest(mg_connection* connection);
  int Handle(mg_connection* connection);

  struct ContextDeleter {
    void operator()(mg_context* context) const;
  };

  const std::string telemetry_path_;
  const RenderMetrics render_metrics_;
  std::unique_ptr<mg_context, ContextDeleter> context_;
};

}  // namespace slotguard::exporter
