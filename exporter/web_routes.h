#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/http_server.h"

namespace slotguard::exporter {

// The exporter's HTTP endpoints, served by common::HttpServer: the telemetry path answers with
// whatever `render_metrics` returns (a scrape), "/" with a landing page, "/healthz" with "ok".
// A failing scrape is a 500 with a short message (the server catches what a handler throws).
std::vector<common::HttpRoute> WebRoutes(const std::string& telemetry_path,
                                         std::function<std::string()> render_metrics);

}  // namespace slotguard::exporter
