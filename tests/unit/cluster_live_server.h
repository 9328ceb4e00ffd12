#pragma once

// A real redis-server for unit tests that need one, started on a free port in a temporary
// directory and killed (with its directory removed) when the object goes away.
// Tests call RequireRedisServer() first: it skips outside CI when redis-server is absent and
// fails in CI, where scripts/install-deps.sh has installed it.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/connection.h"

namespace slotguard::cluster::testing {

inline std::optional<std::string> FindRedisServer() {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/usr/local/bin";
  size_t pos = 0;
  while (pos <= dirs.size()) {
    size_t colon = dirs.find(':', pos);
    std::string dir =
        dirs.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    std::string candidate = (dir.empty() ? "." : dir) + "/redis-server";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  return std::nullopt;
}

inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && *ci != '\0' && std::string(ci) != "false" && std::string(ci) != "0";
}

// A port nothing listens on right now (the kernel's pick, released at once).
inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

class LiveServer {
 public:
  // `config` lines are appended to the generated redis.conf (e.g. "requirepass x").
  // Passing settings in a file keeps them out of `ps` output.
  static std::unique_ptr<LiveServer> Start(const std::string& binary, bool cluster_enabled,
                                           const std::vector<std::string>& config = {}) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto server = std::unique_ptr<LiveServer>(new LiveServer());
      if (server->Launch(binary, cluster_enabled, config)) return server;
    }
    return nullptr;
  }

  ~LiveServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  LiveServer(const LiveServer&) = delete;
  LiveServer& operator=(const LiveServer&) = delete;

  int port() const { return port_; }
  Endpoint endpoint() const { return Endpoint{"127.0.0.1", port_}; }
  const std::string& log() const { return log_; }

 private:
  LiveServer() = default;

  bool Launch(const std::string& binary, bool cluster_enabled,
              const std::vector<std::string>& config) {
    char tmpl[] = "/tmp/slotguard-unit-redis.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return false;
    dir_ = tmpl;
    port_ = FreePort();
    if (port_ == 0 || port_ > 55535) return false;  // the bus port is port + 10000
    const std::string conf = dir_ + "/redis.conf";
    log_ = dir_ + "/redis.log";
    {
      std::ofstream out(conf);
      out << "port " << port_ << "\nbind 127.0.0.1\ndir " << dir_ << "\nlogfile " << log_
          << "\nsave \"\"\nappendonly no\nenable-debug-command yes\n";
      if (cluster_enabled)
        out << "cluster-enabled yes\ncluster-config-file " << dir_ << "/nodes.conf\n";
      for (const auto& line : config) out << line << "\n";
    }
    pid_ = fork();
    if (pid_ == 0) {
      execl(binary.c_str(), binary.c_str(), conf.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    if (pid_ < 0) return false;
    // Ready when it answers a PING (NOAUTH counts: it is up); gone when the process exited
    // (port taken between FreePort and bind): then the caller retries on another port.
    RedisConnection probe(
        endpoint(),
        ConnectOptions{std::chrono::milliseconds(200), std::chrono::milliseconds(1000), {}});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      auto reply = probe.Command({"PING"});
      if (reply) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
  std::string log_;
};

}  // namespace slotguard::cluster::testing

// Skips outside CI when redis-server is absent; fails in CI. Sets `binary_var`.
#define SLOTGUARD_REQUIRE_REDIS_SERVER(binary_var)                                         \
  do {                                                                                     \
    auto found = ::slotguard::cluster::testing::FindRedisServer();                         \
    if (!found) {                                                                          \
      if (::slotguard::cluster::testing::InCi()) {                                         \
        FAIL() << "redis-server not installed; scripts/install-deps.sh should install it"; \
      }                                                                                    \
      GTEST_SKIP() << "redis-server not installed (run scripts/install-deps.sh)";          \
    }                                                                                      \
    binary_var = *found;                                                                   \
  } while (0)
