#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace slotguard::agent {

// One line of CLIENT LIST.
struct ClientLine {
  int64_t id = 0;
  std::string addr;
  std::string name;
  std::string flags;
  std::string cmd;
  int64_t age_s = 0;
  int64_t idle_s = 0;
};

// Pure: parses CLIENT LIST text (one client a line, key=value fields).
std::vector<ClientLine> ParseClientList(const std::string& text);

// What `forget` checks about the node before removing it from the cluster.
struct ForgetFacts {
  std::string node;  // "host:port (id)", for messages
  bool master = false;
  int owned_slots = 0;
  int64_t keys = 0;   // DBSIZE; a replica's keys are its master's copy and do not count
  int followers = 0;  // replicas that follow it
  std::vector<ClientLine> clients;
  int64_t own_client_id = 0;             // slotguard's own connection
  std::optional<int64_t> drained_at_ms;  // end of the last run that moved slots off it
  int64_t now_ms = 0;
  std::chrono::milliseconds min_age{0};
};

// Pure: why the node must not be forgotten yet, one reason each ("" none: go ahead). Clients
// other than slotguard's own connection and the replication links (flags M, S) count.
std::vector<std::string> ForgetRefusals(const ForgetFacts& facts);

}  // namespace slotguard::agent
