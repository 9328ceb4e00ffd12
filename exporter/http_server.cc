#include "exporter/http_server.h"

#include <civetweb.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <exception>
#include <thread>

#include "exporter/settings.h"
#include "exporter/version.h"

namespace slotguard::exporter {
namespace {

std::string HtmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

void Send(mg_connection* connection, int status, const char* reason, const char* content_type,
          const std::string& body, bool head) {
  mg_printf(connection,
            "HTTP/1.1 %d %s\r\n"
            "Content-Type: %s\r\n"
            "Content-Length: %zu\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n",
            status, reason, content_type, body.size());
  if (!head && !body.empty()) mg_write(connection, body.data(), body.size());
}

std::string LandingPage(const std::string& telemetry_path) {
  const std::string path = HtmlEscape(telemetry_path);
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>slotguard-exporter</title>"
         "</head>\n<body>\n<h1>slotguard-exporter</h1>\n"
         "<p>Prometheus exporter for Redis Cluster: per-node INFO, CLUSTER INFO and CLUSTER "
         "NODES, and cluster-wide slot coverage, consistency and open slots.</p>\n<ul>\n"
         "<li><a href=\"" +
         path + "\">" + path +
         "</a>: metrics (each request scrapes every node)</li>\n"
         "<li><a href=\"/healthz\">/healthz</a>: liveness of the exporter itself</li>\n"
         "</ul>\n<p>" +
         HtmlEscape(VersionString()) + "</p>\n</body></html>\n";
}

}  // namespace

void HttpServer::ContextDeleter::operator()(mg_context* context) const { mg_stop(context); }

HttpServer::HttpServer(std::string telemetry_path, RenderMetrics render_metrics)
    : telemetry_path_(std::move(telemetry_path)), render_metrics_(std::move(render_metrics)) {}

HttpServer::~HttpServer() = default;

cluster::Result<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen_address,
                                                               const std::string& telemetry_path,
                                                               RenderMetrics render_metrics) {
  std::unique_ptr<HttpServer> server(new HttpServer(telemetry_path, std::move(render_metrics)));
  const std::string ports = CivetwebListeningPorts(listen_address);
  const char* options[] = {
      "listening_ports", ports.c_str(),       "num_threads", "16",   "request_timeout_ms",
      "30000",           "enable_keep_alive", "no",          nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof callbacks);
  callbacks.begin_request = &HttpServer::BeginRequest;
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = server.get();
  init.configuration_options = options;
  char error_text[256] = {0};
  unsigned error_code = 0;
  mg_error_data error{};
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof error_text;
  server->context_.reset(mg_start2(&init, &error));
  if (!server->context_) {
    return cluster::MakeError("cannot listen on " + listen_address + ": " +
                              (error_text[0] ? error_text : "civetweb failed to start"));
  }
  return server;
}

int HttpServer::port() const {
  mg_server_port ports[4];
  std::memset(ports, 0, sizeof ports);
  int n = mg_get_server_ports(context_.get(), 4, ports);
  return n > 0 ? ports[0].port : 0;
}

int HttpServer::BeginRequest(mg_connection* connection) {
  const mg_request_info* request = mg_get_request_info(connection);
  auto* server = static_cast<HttpServer*>(request->user_data);
  try {
    return server->Handle(connection);
  } catch (const std::exception& e) {
    spdlog::error("HTTP {}: {}", request->local_uri ? request->local_uri : "?", e.what());
  } catch (...) {
    spdlog::error("HTTP {}: unknown error", request->local_uri ? request->local_uri : "?");
  }
  Send(connection, 500, "Internal Server Error", "text/plain; charset=utf-8",
       "internal error, see the exporter's log\n", false);
  return 500;
}

int HttpServer::Handle(mg_connection* connection) {
  const mg_request_info* request = mg_get_request_info(connection);
  const std::string method = request->request_method ? request->request_method : "";
  const std::string path = request->local_uri ? request->local_uri : "";
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    Send(connection, 405, "Method Not Allowed", "text/plain; charset=utf-8", "only GET and HEAD\n",
         false);
    return 405;
  }
  if (path == telemetry_path_) {
    // civetweb's workers have 100 KiB stacks; a scrape gets a thread with a full-size one.
    std::string body;
    std::exception_ptr failure;
    std::thread([&] {
      try {
        body = render_metrics_();
      } catch (...) {
        failure = std::current_exception();
      }
    }).join();
    if (failure) std::rethrow_exception(failure);
    Send(connection, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, head);
    return 200;
  }
  if (path == "/") {
    Send(connection, 200, "OK", "text/html; charset=utf-8", LandingPage(telemetry_path_), head);
    return 200;
  }
  if (path == "/healthz") {
    Send(connection, 200, "OK", "text/plain; charset=utf-8", "ok\n", head);
    return 200;
  }
  Send(connection, 404, "Not Found", "text/plain; charset=utf-8",
       "not found; metrics are at " + telemetry_path_ + "\n", head);
  return 404;
}

}  // namespace slotguard::exporter
