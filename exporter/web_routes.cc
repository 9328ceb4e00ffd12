#include "exporter/web_routes.h"

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

std::vector<common::HttpRoute> WebRoutes(const std::string& telemetry_path,
                                         std::function<std::string()> render_metrics) {
  const common::HttpResponse landing{200, "text/html; charset=utf-8", LandingPage(telemetry_path)};
  std::vector<common::HttpRoute> routes;
  routes.push_back(
      {"GET", telemetry_path, [render = std::move(render_metrics)](const common::HttpRequest&) {
         return common::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", render()};
       }});
  routes.push_back({"GET", "/", [landing](const common::HttpRequest&) { return landing; }});
  routes.push_back({"GET", "/healthz", [](const common::HttpRequest&) {
                      return common::HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
                    }});
  return routes;
}

}  // namespace slotguard::exporter
