// run, enqueue, status, approve, pause, resume, rollback: the daemon and the CLI that talks
// to it over the control API.
#include <signal.h>

#include <spdlog/spdlog.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/agent_config.h"
#include "agent/cli.h"
#include "agent/daemon.h"
#include "agent/http_client.h"
#include "agent/plan_file.h"
#include "agent/token.h"
#include "common/logging.h"
#include "common/web_config.h"

namespace slotguard::agent {

namespace {

using nlohmann::json;

struct ClientOptions {
  std::string agent_url = "http://127.0.0.1:9479";
  std::string token_file;
  std::string config;     // optional agent.yaml: its listen_address and control.token_file
  std::string ca_file;    // https: the CA of the agent's certificate
  std::string cert_file;  // https: client certificate + key (one PEM file)
  bool json_output = false;
};

void AddClientOptions(CLI::App* cmd, ClientOptions& o) {
  cmd->add_option("--agent", o.agent_url, "The agent's URL")
      ->envname("SLOTGUARD_AGENT")
      ->capture_default_str();
  cmd->add_option("--token-file", o.token_file,
                  "File holding the control token (else $SLOTGUARD_TOKEN, else --config's "
                  "control.token_file)");
  cmd->add_option("--config", o.config,
                  "agent.yaml to take the address and token file from (--agent and "
                  "--token-file win)");
  cmd->add_option("--ca-file", o.ca_file,
                  "https:// agents: CA file that signed the agent's certificate (without it the "
                  "certificate is not verified)")
      ->envname("SLOTGUARD_AGENT_CA_FILE");
  cmd->add_option("--cert-file", o.cert_file,
                  "https:// agents that ask for client certificates: one PEM file holding the "
                  "client certificate and its key")
      ->envname("SLOTGUARD_AGENT_CERT_FILE");
  cmd->add_flag("--json", o.json_output, "Print the agent's JSON answer");
}

int Fail(const std::string& message) {
  std::cerr << "slotguard-agent: " << message << "\n";
  return 1;
}

// Sends one control request; prints errors and returns nullopt on any failure.
std::optional<json> Call(const ClientOptions& o, const std::string& method, const std::string& path,
                         const json& body, int& exit_code) {
  std::string url = o.agent_url;
  std::string token_file = o.token_file;
  std::string token;
  const char* env = std::getenv("SLOTGUARD_TOKEN");
  if (token_file.empty() && env != nullptr && *env != '\0') token = env;
  if (!o.config.empty()) {
    auto config = LoadAgentConfig(o.config);
    if (!config) {
      exit_code = Fail(config.error().message);
      return std::nullopt;
    }
    if (token_file.empty() && token.empty()) token_file = config->control_token_file;
    // --agent keeps its default unless given: prefer the config's listen address then.
    if (url == "http://127.0.0.1:9479") {
      std::string address = config->listen_address;
      if (address.rfind("0.0.0.0:", 0) == 0) address = "127.0.0.1:" + address.substr(8);
      if (address.rfind(':', 0) == 0) address = "127.0.0.1" + address;
      bool tls = false;
      if (!config->web_config_file.empty()) {
        auto web = common::LoadWebConfig(config->web_config_file);
        if (!web) {
          exit_code = Fail("web_config_file: " + web.error().message);
          return std::nullopt;
        }
        tls = web->tls.has_value();
      }
      url = (tls ? "https://" : "http://") + address;
    }
  }
  if (token.empty()) {
    if (token_file.empty()) {
      exit_code = Fail("no control token: pass --token-file FILE or set SLOTGUARD_TOKEN");
      return std::nullopt;
    }
    auto t = ReadTokenFile(token_file);
    if (!t) {
      exit_code = Fail(t.error().message);
      return std::nullopt;
    }
    token = *t;
  }
  auto response = HttpRequestTo(url, method, path, token, body.is_null() ? "" : body.dump(),
                                std::chrono::seconds(60), HttpClientTls{o.ca_file, o.cert_file});
  if (!response) {
    exit_code = Fail(response.error().message);
    return std::nullopt;
  }
  json answer = json::parse(response->body, nullptr, false);
  if (response->status == 401) {
    exit_code = Fail("the agent at " + url +
                     " refused the control token (401): check --token-file / SLOTGUARD_TOKEN "
                     "against the agent's control.token_file");
    return std::nullopt;
  }
  if (response->status != 200) {
    std::string message = answer.is_object() && answer.contains("error")
                              ? answer["error"].get<std::string>()
                              : response->body;
    exit_code = Fail(message + " (HTTP " + std::to_string(response->status) + ")");
    return std::nullopt;
  }
  if (answer.is_discarded()) {
    exit_code = Fail("the agent at " + url + " answered something that is not JSON");
    return std::nullopt;
  }
  return answer;
}

std::string Ago(int64_t ms) {
  if (ms <= 0) return "-";
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  int64_t s = (now - ms) / 1000;
  if (s < 0) s = 0;
  if (s < 120) return std::to_string(s) + "s ago";
  if (s < 7200) return std::to_string(s / 60) + "m ago";
  if (s < 172800) return std::to_string(s / 3600) + "h ago";
  return std::to_string(s / 86400) + "d ago";
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

void PrintStatus(const json& s) {
  std::cout << "state:  " << s.value("state", "?");
  if (s.value("paused", false)) std::cout << "  (paused: " << s.value("pause_reason", "") << ")";
  std::cout << "\n";
  const json& q = s["queue"];
  std::cout << "queue:  " << q.value("batches", 0) << " batches, " << q.value("slots", 0)
            << " slots";
  const double wait = q.value("approval_wait_seconds", 0.0);
  if (wait > 0) {
    std::cout << "; oldest approval waiting " << static_cast<int64_t>(wait) << "s";
  }
  std::cout << "\n";
  // Every running batch (several when a plan's moves have no master in common).
  if (s["running"].is_array() && !s["running"].empty()) {
    std::cout << "running: " << s["running"].size() << " batch(es)\n";
    for (const auto& r : s["running"]) {
      std::cout << "  " << Pad(r.value("id", ""), 16) << Pad(r.value("state", ""), 14)
                << Pad(std::to_string(r.value("slots_done", 0)) + "/" +
                           std::to_string(r.value("slots", 0)) + " slots",
                       14)
                << r.value("from", "") << " -> " << r.value("to", "") << "\n";
    }
  }
  const json& items = s["items"];
  if (items.empty()) {
    std::cout << "\nno batches\n";
    return;
  }
  std::cout << "\n"
            << Pad("BATCH", 16) << Pad("PLAN", 6) << Pad("STATE", 18) << Pad("FROM", 22)
            << Pad("TO", 22) << Pad("SLOTS", 6) << Pad("ENQUEUED", 10) << "MESSAGE\n";
  for (const auto& item : items) {
    std::string state = item.value("display_state", "?");
    std::cout << Pad(item.value("id", ""), 16) << Pad(item.value("plan_id", ""), 6)
              << Pad(state, 18) << Pad(item.value("from", ""), 22) << Pad(item.value("to", ""), 22)
              << Pad(std::to_string(item["slots"].size()), 6)
              << Pad(Ago(item.value("enqueued_at_ms", int64_t{0})), 10) << item.value("message", "")
              << "\n";
  }
  bool waiting = false;
  for (const auto& item : items)
    waiting = waiting || item.value("display_state", "") == "awaiting_approval";
  if (waiting) {
    std::cout << "\nplans over " << s.value("approval_threshold_slots", 1000)
              << " slots wait for `slotguard-agent approve PLAN|BATCH`\n";
  }
}

int RunDaemon(const std::string& config_path) {
  auto config = LoadAgentConfig(config_path);
  if (!config) return Fail(config.error().message);
  common::SetupLogging("slotguard-agent", config->log_format, config->log_level);
  // Signals are taken by sigwait below; block them before any thread starts so that every
  // thread inherits the mask and none is interrupted mid-step.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  Daemon daemon(*config);
  auto started = daemon.Start();
  if (!started) {
    spdlog::error("cannot start: {}", started.error().message);
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  daemon.Shutdown();
  return 0;
}

// Each Add*Command keeps its options in statics: they live as long as the app, since the
// callbacks run after parsing.

// `run`: the daemon itself
void AddRunCommand(CLI::App& app, int& exit_code) {
  static std::string config_path;
  auto* run = app.add_subcommand(
      "run", "Run the agent daemon: queue, control API, /metrics, Alertmanager webhook");
  run->add_option("--config", config_path, "agent.yaml")->required();
  run->callback([&exit_code] { exit_code = RunDaemon(config_path); });
}

// `enqueue`
void AddEnqueueCommand(CLI::App& app, int& exit_code) {
  static ClientOptions enqueue_opts;
  static std::string plan_path;
  auto* enqueue = app.add_subcommand(
      "enqueue", "Queue the batches of a plan file (checked against the cluster first)");
  enqueue->add_option("PLAN", plan_path, "PLAN.yaml (see config/plan.example.yaml)")->required();
  AddClientOptions(enqueue, enqueue_opts);
  enqueue->callback([&exit_code] {
    std::ifstream in(plan_path);
    if (!in) {
      exit_code = Fail("cannot read " + plan_path + ": " + std::strerror(errno));
      return;
    }
    std::stringstream text;
    text << in.rdbuf();
    // The same structural checks the agent makes: errors show without a round trip.
    auto local = ParsePlanFile(text.str(), plan_path);
    if (!local) {
      exit_code = Fail(local.error().message);
      return;
    }
    auto answer = Call(enqueue_opts, "POST", "/api/v1/plans",
                       json{{"file", plan_path}, {"yaml", text.str()}}, exit_code);
    if (!answer) return;
    if (enqueue_opts.json_output) {
      std::cout << answer->dump(2) << "\n";
      return;
    }
    std::string ids;
    for (const auto& id : (*answer)["batches"])
      ids += (ids.empty() ? "" : ", ") + id.get<std::string>();
    std::cout << "enqueued plan " << (*answer)["plan_id"].get<std::string>() << ": "
              << (*answer)["batches"].size() << " batches (" << ids << "), "
              << (*answer)["slots"].get<int>() << " slots\n";
    // Hot slots split out on enqueue (over 15% of their node's memory, one batch each).
    for (const auto& h : answer->value("hot_slots", json::array())) {
      std::cout << "hot slot " << h.value("slot", -1) << " (over "
                << static_cast<int>(answer->value("hot_slot_fraction", 0.15) * 100 + 0.5)
                << "% of its node's memory) split out of batch " << h.value("from_batch", "")
                << " into its own batch " << h.value("batch", "") << "\n";
    }
    if ((*answer)["needs_approval"].get<bool>()) {
      std::cout << "the plan is over the approval threshold: it waits for `slotguard-agent "
                   "approve "
                << (*answer)["plan_id"].get<std::string>() << "`\n";
    }
  });
}

// `status`
void AddStatusCommand(CLI::App& app, int& exit_code) {
  static ClientOptions status_opts;
  auto* status = app.add_subcommand("status", "Show the agent's state and queue");
  AddClientOptions(status, status_opts);
  status->callback([&exit_code] {
    auto answer = Call(status_opts, "GET", "/api/v1/status", json(), exit_code);
    if (!answer) return;
    if (status_opts.json_output) {
      std::cout << answer->dump(2) << "\n";
    } else {
      PrintStatus(*answer);
    }
  });
}

// `approve`
void AddApproveCommand(CLI::App& app, int& exit_code) {
  static ClientOptions approve_opts;
  static std::string approve_id;
  auto* approve =
      app.add_subcommand("approve", "Approve a plan waiting for approval (by plan or batch id)");
  approve->add_option("BATCH", approve_id, "A batch id or plan id")->required();
  AddClientOptions(approve, approve_opts);
  approve->callback([&exit_code] {
    auto answer =
        Call(approve_opts, "POST", "/api/v1/approve", json{{"id", approve_id}}, exit_code);
    if (!answer) return;
    if (approve_opts.json_output) {
      std::cout << answer->dump(2) << "\n";
      return;
    }
    std::string ids;
    for (const auto& id : (*answer)["approved"])
      ids += (ids.empty() ? "" : ", ") + id.get<std::string>();
    std::cout << "approved: " << ids << "\n";
  });
}

// `pause`
void AddPauseCommand(CLI::App& app, int& exit_code) {
  static ClientOptions pause_opts;
  static std::string pause_reason;
  auto* pause = app.add_subcommand(
      "pause", "Pause the queue (the running batches finish; no new batch starts)");
  pause->add_option("--reason", pause_reason, "Why (shown by status)");
  AddClientOptions(pause, pause_opts);
  pause->callback([&exit_code] {
    json body = json::object();
    if (!pause_reason.empty()) body["reason"] = pause_reason;
    auto answer = Call(pause_opts, "POST", "/api/v1/pause", body, exit_code);
    if (!answer) return;
    if (pause_opts.json_output) {
      std::cout << answer->dump(2) << "\n";
      return;
    }
    std::cout << "queue paused (" << (*answer).value("note", "") << ")\n";
  });
}

// `resume`
void AddResumeCommand(CLI::App& app, int& exit_code) {
  static ClientOptions resume_opts;
  auto* resume = app.add_subcommand("resume", "Resume the queue");
  AddClientOptions(resume, resume_opts);
  resume->callback([&exit_code] {
    auto answer = Call(resume_opts, "POST", "/api/v1/resume", json::object(), exit_code);
    if (!answer) return;
    if (resume_opts.json_output) {
      std::cout << answer->dump(2) << "\n";
      return;
    }
    std::cout << "queue resumed\n";
  });
}

// `rollback`
void AddRollbackCommand(CLI::App& app, int& exit_code) {
  static ClientOptions rollback_opts;
  static std::string rollback_batch;
  auto* rollback = app.add_subcommand("rollback",
                                      "Roll back every running batch (or BATCH alone: roll it back "
                                      "if running, cancel it if queued, revert it if finished)");
  rollback->add_option("BATCH", rollback_batch, "A batch id (default: every running batch)");
  AddClientOptions(rollback, rollback_opts);
  rollback->callback([&exit_code] {
    json body = json::object();
    if (!rollback_batch.empty()) body["batch"] = rollback_batch;
    auto answer = Call(rollback_opts, "POST", "/api/v1/rollback", body, exit_code);
    if (!answer) return;
    if (rollback_opts.json_output) {
      std::cout << answer->dump(2) << "\n";
      return;
    }
    const std::string action = answer->value("action", "");
    if (action == "rollback") {
      std::cout << answer->value("result", "") << "\n";
    } else if (action == "cancel") {
      std::cout << "batch " << answer->value("batch", "") << " cancelled (it had not started)\n";
    } else {
      std::cout << "revert batch " << answer->value("revert_batch", "") << " queued ("
                << (*answer)["slots"].get<int>() << " slots back); " << answer->value("note", "")
                << "\n";
    }
  });
}

}  // namespace

// Subcommands in the order `--help` lists them.
void RegisterDaemonCommands(CLI::App& app, int& exit_code) {
  AddRunCommand(app, exit_code);
  AddEnqueueCommand(app, exit_code);
  AddStatusCommand(app, exit_code);
  AddApproveCommand(app, exit_code);
  AddPauseCommand(app, exit_code);
  AddResumeCommand(app, exit_code);
  AddRollbackCommand(app, exit_code);
}

}  // namespace slotguard::agent
