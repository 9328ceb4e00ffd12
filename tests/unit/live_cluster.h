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
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster/connection.h"
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
