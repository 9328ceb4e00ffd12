#include "agent/startup_checks.h"

#include "agent/token.h"

namespace slotguard::agent {

std::vector<std::string> StartupWarnings(const AgentConfig& config, std::string_view control_token,
                                         std::string_view webhook_token,
                                         const std::vector<SeedProbe>& probes) {
  std::vector<std::string> warnings;
  if (config.webhook.enabled && ConstantTimeEquals(control_token, webhook_token)) {
    // Alertmanager holds the webhook token; with the same token it could enqueue, approve,
    // resume and cancel too.
    warnings.push_back(
        "control.token_file (" + config.control_token_file + ") and webhook.token_file (" +
        config.webhook.token_file +
        ") hold the same token: whoever sends alerts (Alertmanager) can also enqueue, approve "
        "and resume batches; give the webhook a token of its own");
  }
  std::string unreachable;
  size_t failed = 0;
  for (const auto& probe : probes) {
    if (probe.error.empty()) continue;
    ++failed;
    if (!unreachable.empty()) unreachable += "; ";
    unreachable += probe.seed + ": " + probe.error;
  }
  if (!probes.empty() && failed == probes.size()) {
    warnings.push_back("no seed in redis.seeds answers (" + unreachable +
                       "): the daemon serves its API, but recovery, enqueue and batches fail "
                       "until one does");
  } else if (failed > 0) {
    warnings.push_back("redis.seeds: " + unreachable + " (the other seeds answer)");
  }
  return warnings;
}

}  // namespace slotguard::agent
