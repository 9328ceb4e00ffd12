// An Alertmanager webhook body, through the handler the agent's route runs (token accepted):
// validation, the decision under rules with an equality and a regex matcher, dedup.
#include <cstddef>
#include <cstdint>
#include <string>

#include <spdlog/spdlog.h>

#include "agent/webhook.h"
#include "common/http_server.h"

namespace sa = slotguard::agent;

namespace {

sa::Webhook& Handler() {
  static sa::Webhook* webhook = [] {
    spdlog::set_level(spdlog::level::off);
    sa::WebhookRules rules;
    rules.matchers.push_back(*sa::LabelMatcher::Parse("slotguard_action=\"rollback\""));
    rules.matchers.push_back(*sa::LabelMatcher::Parse("severity=~\"crit.*|page\""));
    rules.cluster = "prod";
    static sa::AlertMemory memory(16);
    sa::Webhook::Callbacks callbacks{[](const std::string& key) { return memory.Contains(key); },
                                     [](const std::string&, const std::vector<std::string>& keys) {
                                       for (const auto& key : keys) memory.Add(key);
                                       return std::string("rolled back");
                                     },
                                     [](const std::string&) {}};
    return new sa::Webhook("token", std::move(rules), std::move(callbacks));
  }();
  return *webhook;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  slotguard::common::HttpRequest request;
  request.method = "POST";
  request.path = "/api/v1/alerts";
  request.authorization = "Bearer token";
  request.content_type = "application/json";
  request.body.assign(reinterpret_cast<const char*>(data), size);
  if (Handler().Authorize(request)) return 0;  // the token check, as the route runs it first
  (void)Handler().Handle(request);
  return 0;
}
