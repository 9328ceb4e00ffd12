#pragma once

// A real loopback Redis Cluster for C++ tests that drive the engine against real servers:
// started with scripts/redis-cluster.sh (the same script the Python tests and the demo use) on
// a free base port, torn down (and its directory removed) when the object goes away.
// Tests call SLOTGUARD_REQUIRE_REDIS_SERVER first (cluster_live_server.h).

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster/connection.h"
#include "cluster/key_slot.h"
#include "cluster/nodes.h"
#include "tests/unit/cluster_live_server.h"

namespace slotguard::cluster::testing {

inline std::string SourceDir() {
  // SLOTGUARD_TEST_DATA is <source>/tests/data.
  return std::filesystem::path(SLOTGUARD_TEST_DATA).parent_path().parent_path().string();
}

class LiveCluster {
 public:
  static std::unique_ptr<LiveCluster> Start(int masters, int replicas) {
    std::mt19937 rng(std::random_device{}());
    for (int attempt = 0; attempt < 10; ++attempt) {
      auto c = std::unique_ptr<LiveCluster>(new LiveCluster());
      char tmpl[] = "/tmp/slotguard-live-cluster.XXXXXX";
      if (mkdtemp(tmpl) == nullptr) return nullptr;
      c->dir_ = tmpl;
      // Python tests pick 12000-21000; keep clear of them.
      c->base_ = 22000 + 10 * static_cast<int>(rng() % 900);
      c->total_ = masters * (replicas + 1);
      const std::string cmd = SourceDir() + "/scripts/redis-cluster.sh up " + c->dir_ + " " +
                              std::to_string(c->base_) + " " + std::to_string(masters) + " " +
                              std::to_string(replicas) + " >" + c->dir_ + "/up.log 2>&1";
      if (std::system(cmd.c_str()) == 0) return c;
    }
    return nullptr;
  }

  ~LiveCluster() {
    const std::string cmd =
        SourceDir() + "/scripts/redis-cluster.sh down " + dir_ + " >/dev/null 2>&1";
    (void)std::system(cmd.c_str());
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  LiveCluster(const LiveCluster&) = delete;
  LiveCluster& operator=(const LiveCluster&) = delete;

  Endpoint endpoint(int i) const { return Endpoint{"127.0.0.1", base_ + i}; }
  int size() const { return total_; }

  // A fresh connection of the test's own (never one the engine under test uses).
  std::unique_ptr<RedisConnection> Connect(int i) const {
    return std::make_unique<RedisConnection>(
        endpoint(i),
        ConnectOptions{std::chrono::milliseconds(500), std::chrono::milliseconds(5000), {}});
  }

  pid_t Pid(int i) const {
    std::ifstream in(dir_ + "/" + std::to_string(base_ + i) + "/redis.pid");
    pid_t pid = -1;
    in >> pid;
    return pid;
  }

  // Names of `per_slot` keys hashing to each of `slots` (plain names, no hash tags).
  static std::map<int, std::vector<std::string>> KeysFor(const std::vector<int>& slots,
                                                         int per_slot) {
    std::map<int, std::vector<std::string>> out;
    std::set<int> want(slots.begin(), slots.end());
    size_t full = 0;
    for (long i = 0; full < want.size(); ++i) {
      std::string key = "k" + std::to_string(i);
      int slot = KeySlot(key);
      if (!want.count(slot)) continue;
      auto& v = out[slot];
      if (static_cast<int>(v.size()) < per_slot &&
          (v.push_back(key), v.size() == static_cast<size_t>(per_slot))) {
        ++full;
      }
    }
    return out;
  }

  // The key-level check: polls (bounded) until every node's view agrees on every slot's owner
  // and no slot is open anywhere; then every key of `expected` reads back its value at its
  // slot's owner, and no master holds a key of a slot it does not own. "" when whole, else
  // what is wrong.
  std::string Whole(const std::map<std::string, std::string>& expected,
                    std::chrono::seconds timeout = std::chrono::seconds(30)) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string problem;
    std::vector<std::string> owner(kSlotCount);
    std::map<std::string, Endpoint> address;
    std::set<std::string> masters;
    while (true) {
      problem.clear();
      for (int i = 0; i < total_ && problem.empty(); ++i) {
        auto nodes = Nodes(i);
        if (nodes.empty()) problem = endpoint(i).ToString() + ": no CLUSTER NODES";
        std::vector<std::string> mine(kSlotCount);
        for (const auto& n : nodes) {
          address[n.id] = n.endpoint;
          if (n.flags.master) masters.insert(n.id);
          for (const auto& r : n.slots) {
            for (int s = r.first; s <= r.last; ++s) mine[s] = n.id;
          }
          if (n.flags.myself && !n.open_slots.empty()) {
            problem = endpoint(i).ToString() + " has slot " +
                      std::to_string(n.open_slots.front().slot) + " open";
          }
        }
        for (int s = 0; s < kSlotCount && problem.empty(); ++s) {
          if (mine[s].empty()) problem = "slot " + std::to_string(s) + " unowned in a view";
          if (i > 0 && mine[s] != owner[s]) problem = "views disagree on slot " + std::to_string(s);
        }
        if (i == 0) owner = mine;
      }
      if (problem.empty() || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!problem.empty()) return problem;
    for (const auto& [key, value] : expected) {
      const auto& id = owner[KeySlot(key)];
      RedisConnection c(address[id]);
      auto r = c.Command({"GET", key});
      if (!r || r->type != Reply::Type::kString || r->str != value) {
        return "key " + key + " (slot " + std::to_string(KeySlot(key)) + ") not readable at " +
               address[id].ToString() + ": " +
               (r ? (r->IsNil() ? "nil" : r->str) : r.error().message);
      }
    }
    for (const auto& id : masters) {
      const Endpoint& ep = address[id];
      std::vector<Argv> counts;
      std::vector<int> slots;
      for (int s = 0; s < kSlotCount; ++s) {
        if (owner[s] == id) continue;
        slots.push_back(s);
        counts.push_back({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(s)});
      }
      RedisConnection c(ep);
      auto r = c.Pipeline(counts);
      if (!r) return ep.ToString() + ": " + r.error().message;
      for (size_t k = 0; k < slots.size(); ++k) {
        if ((*r)[k].type == Reply::Type::kInteger && (*r)[k].integer > 0) {
          return ep.ToString() + " holds " + std::to_string((*r)[k].integer) + " keys of slot " +
                 std::to_string(slots[k]) + " it does not own";
        }
      }
    }
    return "";
  }

  // The nodes as node i sees them.
  std::vector<NodeEntry> Nodes(int i) const {
    auto r = Connect(i)->Command({"CLUSTER", "NODES"});
    if (!r || r->IsError()) return {};
    auto parsed = ParseClusterNodes(r->str);
    return parsed ? *parsed : std::vector<NodeEntry>{};
  }

 private:
  LiveCluster() = default;
  std::string dir_;
  int base_ = 0;
  int total_ = 0;
};

}  // namespace slotguard::cluster::testing
