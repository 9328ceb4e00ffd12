#include "agent/control_api.h"

#include <spdlog/spdlog.h>

#include "agent/json_read.h"
#include "agent/token.h"

namespace slotguard::agent {

namespace {

using nlohmann::json;

constexpr size_t kMaxPlanBytes = 4 << 20;

HttpResponse Reply(const cluster::Result<json>& result) {
  if (!result) return JsonError(422, result.error().message);
  return HttpResponse{200, "application/json", result->dump()};
}

// Wraps a handler with the bearer-token check and the JSON body parsing.
HttpHandler Authorized(std::string token, std::string what,
                       std::function<HttpResponse(const json& body)> handler) {
  return [token = std::move(token), what = std::move(what),
          handler = std::move(handler)](const HttpRequest& request) -> HttpResponse {
    if (!BearerMatches(request.authorization, token)) {
      spdlog::warn("control API: refused {} {} without a valid bearer token", request.method,
                   request.path);
      return JsonError(401, "missing or wrong bearer token (see control.token_file)");
    }
    auto body = ParseJsonObject(request.body);
    if (!body) return JsonError(400, body.error().message);
    HttpResponse response = handler(*body);
    if (request.method != "GET") {
      spdlog::info("control API: {} -> {}", what, response.status);
    }
    return response;
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

std::vector<HttpRoute> ControlRoutes(DaemonControl& daemon, std::string token) {
  std::vector<HttpRoute> routes;
  routes.push_back({"GET", "/api/v1/status", Authorized(token, "status", [&daemon](const json&) {
                      return HttpResponse{200, "application/json", daemon.Status().dump()};
                    })});
  routes.push_back({"POST", "/api/v1/plans",
                    Authorized(token, "enqueue",
                               [&daemon](const json& body) {
                                 auto yaml = OptionalString(body, "yaml");
                                 if (!yaml)
                                   return JsonError(400,
                                                    "\"yaml\" (the plan file's text) is missing");
                                 return Reply(daemon.Enqueue(
                                     OptionalString(body, "file").value_or("plan"), *yaml));
                               }),
                    kMaxPlanBytes});
  routes.push_back(
      {"POST", "/api/v1/approve", Authorized(token, "approve", [&daemon](const json& body) {
         auto id = OptionalString(body, "id");
         if (!id || id->empty()) return JsonError(400, "\"id\" is missing");
         return Reply(daemon.Approve(*id));
       })});
  routes.push_back(
      {"POST", "/api/v1/pause", Authorized(token, "pause", [&daemon](const json& body) {
         return Reply(
             daemon.Pause(OptionalString(body, "reason").value_or("paused by an operator")));
       })});
  routes.push_back({"POST", "/api/v1/resume", Authorized(token, "resume", [&daemon](const json&) {
                      return Reply(daemon.Resume());
                    })});
  routes.push_back(
      {"POST", "/api/v1/rollback", Authorized(token, "rollback", [&daemon](const json& body) {
         return Reply(daemon.Rollback(OptionalString(body, "batch")));
       })});
  return routes;
}

}  // namespace slotguard::agent
