#include "agent/forget.h"

#include <sstream>

namespace slotguard::agent {

std::vector<ClientLine> ParseClientList(const std::string& text) {
  std::vector<ClientLine> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    ClientLine c;
    std::istringstream fields(line);
    std::string field;
    while (fields >> field) {
      const auto eq = field.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = field.substr(0, eq);
      const std::string value = field.substr(eq + 1);
      auto number = [&] {
        try {
          return static_cast<int64_t>(std::stoll(value));
        } catch (...) {
          return int64_t{0};
        }
      };
      if (key == "id") c.id = number();
      if (key == "addr") c.addr = value;
      if (key == "name") c.name = value;
      if (key == "flags") c.flags = value;
      if (key == "cmd") c.cmd = value;
      if (key == "age") c.age_s = number();
      if (key == "idle") c.idle_s = number();
    }
    out.push_back(std::move(c));
  }
  return out;
}

namespace {

std::string Hours(std::chrono::milliseconds d) {
  std::ostringstream s;
  s.precision(3);
  s << static_cast<double>(d.count()) / 3600000.0 << " h";
  return s.str();
}

}  // namespace

std::vector<std::string> ForgetRefusals(const ForgetFacts& f) {
  std::vector<std::string> why;
  if (f.owned_slots > 0) {
    why.push_back(f.node + " owns " + std::to_string(f.owned_slots) +
                  " slot(s): drain it first (slotguard-agent drain)");
  }
  if (f.master && f.keys > 0) {
    why.push_back(f.node + " holds " + std::to_string(f.keys) +
                  " key(s): forgetting it would lose them (slotguard-agent check shows in which "
                  "slots)");
  }
  if (f.followers > 0) {
    why.push_back(f.node + " has " + std::to_string(f.followers) +
                  " replica(s): point them at another master first (CLUSTER REPLICATE)");
  }
  std::string clients;
  int n = 0;
  for (const auto& c : f.clients) {
    // Replication links, and the connections other masters' MIGRATE keeps open to the node
    // for up to 10 s after their last key (their last command RESTORE-ASKING): not clients.
    if (c.id == f.own_client_id || c.flags.find('M') != std::string::npos ||
        c.flags.find('S') != std::string::npos || c.cmd == "restore-asking") {
      continue;
    }
    if (n++ < 5) {
      clients += (clients.empty() ? "" : ", ") + c.addr +
                 (c.name.empty() ? "" : " name=" + c.name) + " idle " + std::to_string(c.idle_s) +
                 " s, last " + c.cmd;
    }
  }
  if (n > 0) {
    why.push_back(f.node + " still has " + std::to_string(n) + " client(s) other than slotguard: " +
                  clients + (n > 5 ? ", ..." : "") + " (move them off it first)");
  }
  if (f.min_age.count() > 0) {
    if (!f.drained_at_ms) {
      why.push_back("the journal has no drain of " + f.node +
                    ", so the observation window (--min-age " + Hours(f.min_age) +
                    ") cannot be checked: give the --journal the drain used, or --min-age 0s to "
                    "forget it without one");
    } else if (f.now_ms - *f.drained_at_ms < f.min_age.count()) {
      why.push_back(f.node + " was drained " +
                    Hours(std::chrono::milliseconds(f.now_ms - *f.drained_at_ms)) +
                    " ago, within the observation window (--min-age " + Hours(f.min_age) + ")");
    }
  }
  return why;
}

}  // namespace slotguard::agent
