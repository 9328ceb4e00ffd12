#include "agent/control_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/http_client.h"
#include "common/http_server.h"

namespace slotguard::agent {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// A port nobody listens on right now (the kernel's pick for an ephemeral bind).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class FakeDaemon final : public DaemonControl {
 public:
  json Status() override { return json{{"state", "idle"}}; }
  cluster::Result<json> Enqueue(const std::string& file, const std::string& yaml) override {
    ++calls;
    if (yaml == "bad") return cluster::MakeError(file + ":1: bad plan");
    return json{{"plan_id", "p1"}};
  }
  cluster::Result<json> Approve(const std::string& id) override {
    ++calls;
    return json{{"approved", {id}}};
  }
  cluster::Result<json> Pause(const std::string& reason) override {
    ++calls;
    paused_reason = reason;
    return json{{"paused", true}};
  }
  cluster::Result<json> Resume() override {
    ++calls;
    return json{{"paused", false}};
  }
  cluster::Result<json> Rollback(const std::optional<std::string>& batch) override {
    ++calls;
    if (!batch) return cluster::MakeError("no batch is running");
    return json{{"batch", *batch}};
  }
  std::atomic<int> calls{0};
  std::string paused_reason;
};

class ControlApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto routes = ControlRoutes(daemon_, "tok3n");
    routes.push_back(
        {"POST", "/small",
         [](const common::HttpRequest& r) {
           return common::HttpResponse{200, "text/plain", std::to_string(r.body.size())};
         },
         16});
    auto server = common::HttpServer::Start({"127.0.0.1", FreePort()}, routes);
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(*server);
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }

  HttpClientResponse Call(const std::string& method, const std::string& path,
                          const std::string& token, const std::string& body = "") {
    auto r = HttpRequestTo(url_, method, path, token, body, std::chrono::seconds(10));
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : HttpClientResponse{};
  }

  FakeDaemon daemon_;
  std::unique_ptr<common::HttpServer> server_;
  std::string url_;
};

TEST_F(ControlApiTest, EveryRouteNeedsTheToken) {
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"GET", "/api/v1/status"}, {"POST", "/api/v1/plans"},  {"POST", "/api/v1/approve"},
      {"POST", "/api/v1/pause"}, {"POST", "/api/v1/resume"}, {"POST", "/api/v1/rollback"}};
  for (const auto& [method, path] : routes) {
    for (const std::string token : {"", "tok3", "tok3n2", "TOK3N"}) {
      auto r = Call(method, path, token, R"({"id": "x", "yaml": "y"})");
      EXPECT_EQ(r.status, 401) << method << " " << path << " token '" << token << "'";
      EXPECT_THAT(r.body, HasSubstr("bearer token"));
    }
  }
  EXPECT_EQ(daemon_.calls, 0);
}

TEST_F(ControlApiTest, AuthorizedCalls) {
  auto status = Call("GET", "/api/v1/status", "tok3n");
  EXPECT_EQ(status.status, 200);
  EXPECT_EQ(json::parse(status.body)["state"], "idle");

  auto pause = Call("POST", "/api/v1/pause", "tok3n", R"({"reason": "window"})");
  EXPECT_EQ(pause.status, 200);
  EXPECT_EQ(daemon_.paused_reason, "window");
  Call("POST", "/api/v1/pause", "tok3n");
  EXPECT_EQ(daemon_.paused_reason, "paused by an operator");

  EXPECT_EQ(Call("POST", "/api/v1/plans", "tok3n", R"({"yaml": "ok"})").status, 200);
  auto refused = Call("POST", "/api/v1/plans", "tok3n", R"({"file": "f.yaml", "yaml": "bad"})");
  EXPECT_EQ(refused.status, 422);
  EXPECT_EQ(json::parse(refused.body)["error"], "f.yaml:1: bad plan");
  auto no_yaml = Call("POST", "/api/v1/plans", "tok3n", R"({"file": "f.yaml"})");
  EXPECT_EQ(no_yaml.status, 400);
  EXPECT_EQ(Call("POST", "/api/v1/approve", "tok3n", "{}").status, 400);
  EXPECT_EQ(Call("POST", "/api/v1/approve", "tok3n", "not json").status, 400);
  EXPECT_EQ(Call("POST", "/api/v1/approve", "tok3n", "[1]").status, 400);
  EXPECT_EQ(Call("POST", "/api/v1/rollback", "tok3n").status, 422);
  EXPECT_EQ(
      json::parse(Call("POST", "/api/v1/rollback", "tok3n", R"({"batch":"b"})").body)["batch"],
      "b");
}

TEST_F(ControlApiTest, ServerRoutingAndLimits) {
  EXPECT_EQ(Call("GET", "/nope", "").status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/pause", "tok3n").status, 405);
  EXPECT_EQ(Call("POST", "/small", "", std::string(16, 'x')).status, 200);
  auto big = Call("POST", "/small", "", std::string(17, 'x'));
  EXPECT_EQ(big.status, 413);
  EXPECT_THAT(big.body, HasSubstr("larger than 16 bytes"));
}

TEST(HttpClientTest, DaemonDownIsAClearError) {
  const std::string url = "http://127.0.0.1:" + std::to_string(FreePort());
  auto r = HttpRequestTo(url, "GET", "/", "", "", std::chrono::seconds(2));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("cannot reach the agent at " + url));
  auto bad = HttpRequestTo("ftp://x:1", "GET", "/", "", "", std::chrono::seconds(2));
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("only http:// and https://"));
  // https:// is tried (the agent's web config may turn TLS on); nothing listens there.
  const std::string tls_url = "https://127.0.0.1:" + std::to_string(FreePort());
  auto down = HttpRequestTo(tls_url, "GET", "/", "", "", std::chrono::seconds(2));
  ASSERT_FALSE(down);
  EXPECT_THAT(down.error().message, HasSubstr("cannot reach the agent at " + tls_url));
}

}  // namespace
}  // namespace slotguard::agent
