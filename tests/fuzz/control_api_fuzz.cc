// A control API request body, through the routes' handlers (bearer token accepted) to a daemon
// that parses the plan it is given as the real one does. The first byte picks the route.
#include <cstddef>
#include <cstdint>
#include <string>

#include <spdlog/spdlog.h>

#include "agent/control_api.h"
#include "agent/plan_file.h"
#include "common/http_server.h"

namespace sa = slotguard::agent;
namespace sc = slotguard::cluster;
using nlohmann::json;

namespace {

class FakeDaemon final : public sa::DaemonControl {
 public:
  json Status() override { return json{{"paused", false}}; }
  sc::Result<json> Enqueue(const std::string& file, const std::string& yaml) override {
    auto plan = sa::ParsePlanFile(yaml, file);
    if (!plan) return sc::MakeError(plan.error().message);
    json ids = json::array();
    for (const auto& b : plan->batches) ids.push_back(b.batch.id);
    return json{{"plan", file}, {"batches", ids}};
  }
  sc::Result<json> Approve(const std::string& id) override { return json{{"approved", id}}; }
  sc::Result<json> Pause(const std::string& reason) override { return json{{"paused", reason}}; }
  sc::Result<json> Resume() override { return json{{"paused", false}}; }
  sc::Result<json> Rollback(const std::optional<std::string>& batch) override {
    if (!batch) return sc::MakeError("no batch is running");
    return json{{"rollback", *batch}};
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static FakeDaemon daemon;
  static const std::vector<slotguard::common::HttpRoute> routes = [] {
    spdlog::set_level(spdlog::level::off);
    return sa::ControlRoutes(daemon, "token");
  }();
  if (size == 0) return 0;
  const slotguard::common::HttpRoute& route = routes[data[0] % routes.size()];
  slotguard::common::HttpRequest request;
  request.method = route.method;
  request.path = route.path;
  request.authorization = "Bearer token";
  request.content_type = "application/json";
  request.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (route.auth && route.auth(request)) return 0;  // the bearer token hook, as the server runs it
  (void)route.handler(request);
  return 0;
}
