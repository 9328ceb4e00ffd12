#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/result.h"
#include "common/http_server.h"

namespace slotguard::agent {

// What the control API can ask of the daemon. Errors are refusals phrased for the operator
// (the API answers 422 with them); every method is thread-safe.
class DaemonControl {
 public:
  virtual ~DaemonControl() = default;
  virtual nlohmann::json Status() = 0;
  // `file` names the plan in error messages; `yaml` is the plan file's text.
  virtual cluster::Result<nlohmann::json> Enqueue(const std::string& file,
                                                  const std::string& yaml) = 0;
  virtual cluster::Result<nlohmann::json> Approve(const std::string& id) = 0;
  virtual cluster::Result<nlohmann::json> Pause(const std::string& reason) = 0;
  virtual cluster::Result<nlohmann::json> Resume() = 0;
  // No batch: the running one. A running batch rolls back; a queued one is cancelled; a
  // finished one gets a revert batch at the head of the queue.
  virtual cluster::Result<nlohmann::json> Rollback(const std::optional<std::string>& batch) = 0;
};

// The control API under /api/v1 (JSON; every route needs "Authorization: Bearer <token>"):
//   GET  /api/v1/status
//   POST /api/v1/plans     {"file": "plan.yaml", "yaml": "..."}
//   POST /api/v1/approve   {"id": "BATCH or PLAN"}
//   POST /api/v1/pause     {"reason": "..."}        (reason optional)
//   POST /api/v1/resume
//   POST /api/v1/rollback  {"batch": "ID"}          (batch optional)
std::vector<common::HttpRoute> ControlRoutes(DaemonControl& daemon, std::string token);

// Parses a JSON request body into an object ({} for an empty body); error = reason for a 400.
cluster::Result<nlohmann::json> ParseJsonObject(const std::string& body);

}  // namespace slotguard::agent
