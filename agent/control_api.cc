#include "agent/control_api.h"

#include <spdlog/spdlog.h>

#include "agent/json_read.h"
#include "agent/token.h"

namespace slotguard::agent {

namespace {

using nlohmann::json;

constexpr size_t kMaxPlanBytes = 4 << 20;

common::HttpResponse Reply(const cluster::Result<json>& result) {
  if (!result) return common::JsonError(422, result.error().message);
  return common::HttpResponse{200, "application/json", result->dump()};
}

// Wraps a handler with the JSON body parsing (the bearer token was checked by the route's
// auth hook before the body was read).
common::HttpHandler Authorized(std::string what,
                               std::function<common::HttpResponse(const json& body)> handler) {
  return [what = std::move(what), handler = std::move(handler)](
             const common::HttpRequest& request) -> common::HttpResponse {
    auto body = ParseJsonObject(request.body);
    if (!body) return common::JsonError(400, body.error().message);
    common::HttpResponse response = handler(*body);
    if (request.method != "GET") {
      spdlog::info("control API: {} -> {}", what, response.status);
    }
    return response;
  };
}

// Every control route needs "Authorization: Bearer <token>".
common::HttpAuthHook BearerAuth(std::string token) {
  return [token = std::move(token)](
             const common::HttpRequest& request) -> std::optional<common::HttpResponse> {
    if (BearerMatches(request.authorization, token)) return std::nullopt;
    spdlog::warn("control API: refused {} {} without a valid bearer token", request.method,
                 request.path);
    return common::JsonError(401, "missing or wrong bearer token (see control.token_file)");
  };
}

std::optional<std::string> OptionalString(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

cluster::Result<json> ParseJsonObject(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  auto doc = ParseJson(body);
  if (!doc) return cluster::MakeError("body is " + doc.error().message);
  if (!doc->is_object()) return cluster::MakeError("body must be a JSON object");
  return doc;
}

std::vector<common::HttpRoute> ControlRoutes(DaemonControl& daemon, std::string token) {
  std::vector<common::HttpRoute> routes;
  routes.push_back({"GET", "/api/v1/status", Authorized("status", [&daemon](const json&) {
                      return common::HttpResponse{200, "application/json", daemon.Status().dump()};
                    })});
  routes.push_back({"POST", "/api/v1/plans",
                    Authorized("enqueue",
                               [&daemon](const json& body) {
                                 auto yaml = OptionalString(body, "yaml");
                                 if (!yaml)
                                   return common::JsonError(
                                       400, "\"yaml\" (the plan file's text) is missing");
                                 return Reply(daemon.Enqueue(
                                     OptionalString(body, "file").value_or("plan"), *yaml));
                               }),
                    kMaxPlanBytes});
  routes.push_back({"POST", "/api/v1/approve", Authorized("approve", [&daemon](const json& body) {
                      auto id = OptionalString(body, "id");
                      if (!id || id->empty()) return common::JsonError(400, "\"id\" is missing");
                      return Reply(daemon.Approve(*id));
                    })});
  routes.push_back({"POST", "/api/v1/pause", Authorized("pause", [&daemon](const json& body) {
                      return Reply(daemon.Pause(
                          OptionalString(body, "reason").value_or("paused by an operator")));
                    })});
  routes.push_back({"POST", "/api/v1/resume", Authorized("resume", [&daemon](const json&) {
                      return Reply(daemon.Resume());
                    })});
  routes.push_back({"POST", "/api/v1/rollback", Authorized("rollback", [&daemon](const json& body) {
                      return Reply(daemon.Rollback(OptionalString(body, "batch")));
                    })});
  for (auto& route : routes) route.auth = BearerAuth(token);
  return routes;
}

}  // namespace slotguard::agent
