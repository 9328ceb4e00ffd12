#include "common/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <thread>

namespace slotguard::common {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Sends `request` raw to 127.0.0.1:port and returns everything the server answers.
std::string Exchange(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) >= 0) {
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) answer.append(buffer, n);
  }
  ::close(fd);
  return answer;
}

class CommonHttpServer : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options = {}) {
    std::vector<HttpRoute> routes;
    routes.push_back({"GET", "/hello", [](const HttpRequest& r) {
                        return HttpResponse{200, "text/plain", "hello " + r.query};
                      }});
    HttpRoute echo{"POST", "/echo", [](const HttpRequest& r) {
                     return HttpResponse{200, "text/plain", r.body};
                   }};
    echo.max_body_bytes = 16;
    echo.on_refused = [this](const HttpResponse& response) { refused_ = response.status; };
    routes.push_back(echo);
    HttpRoute locked{"POST", "/locked", [](const HttpRequest&) { return HttpResponse{}; }};
    locked.max_body_bytes = 16;
    locked.auth = [](const HttpRequest& r) -> std::optional<HttpResponse> {
      if (r.authorization == "Bearer yes") return std::nullopt;
      EXPECT_EQ(r.body, "");  // hooks run before the body is read
      return JsonError(401, "no");
    };
    routes.push_back(locked);
    routes.push_back({"GET", "/throws", [](const HttpRequest&) -> HttpResponse {
                        throw std::runtime_error("boom");
                      }});
    auto server = HttpServer::Start({"127.0.0.1", 0}, routes, std::move(options));
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(*server);
  }

  std::string Get(const std::string& target, const std::string& method = "GET") {
    return Exchange(server_->port(), method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  std::string Post(const std::string& path, const std::string& body,
                   const std::string& extra = "") {
    return Exchange(server_->port(), "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + extra +
                                         "Content-Length: " + std::to_string(body.size()) +
                                         "\r\n\r\n" + body);
  }

  std::unique_ptr<HttpServer> server_;
  std::atomic<int> refused_{0};
};

TEST_F(CommonHttpServer, RoutesMethodsAndHead) {
  Start();
  EXPECT_THAT(Get("/hello?x=1"), StartsWith("HTTP/1.1 200 OK"));
  EXPECT_THAT(Get("/hello?x=1"), HasSubstr("\r\n\r\nhello x=1"));
  const std::string head = Get("/hello", "HEAD");
  EXPECT_THAT(head, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(head, HasSubstr("Content-Length: 6"));
  EXPECT_THAT(head, ::testing::EndsWith("\r\n\r\n"));  // no body
  EXPECT_THAT(Get("/nothing"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(Post("/hello", ""), StartsWith("HTTP/1.1 405"));
  EXPECT_THAT(Post("/hello", ""), HasSubstr("use GET, HEAD on /hello"));
  EXPECT_THAT(Get("/throws"), StartsWith("HTTP/1.1 500"));
  EXPECT_THAT(Get("/hello"), HasSubstr("Connection: close"));
}

TEST_F(CommonHttpServer, BodyLimitAndAuthHook) {
  Start();
  EXPECT_THAT(Post("/echo", "0123456789"), HasSubstr("\r\n\r\n0123456789"));
  EXPECT_THAT(Post("/echo", std::string(17, 'x')), StartsWith("HTTP/1.1 413"));
  EXPECT_EQ(refused_.load(), 413);
  refused_ = 0;
  // A client waiting for "100 Continue" is refused before it sends the body.
  EXPECT_THAT(Exchange(server_->port(),
                       "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                       "Expect: 100-continue\r\n\r\n"),
              StartsWith("HTTP/1.1 413"));
  EXPECT_EQ(refused_.load(), 413);
  // The hook refuses before the (too large) body is looked at.
  EXPECT_THAT(Post("/locked", std::string(100, 'x')), StartsWith("HTTP/1.1 401"));
  EXPECT_THAT(Post("/locked", "ok", "Authorization: Bearer yes\r\n"), StartsWith("HTTP/1.1 200"));
}

TEST_F(CommonHttpServer, ServerWideHookAndErrorWording) {
  HttpServerOptions options;
  options.auth = [](const HttpRequest& r) -> std::optional<HttpResponse> {
    if (r.path == "/hello") return std::nullopt;
    return TextError(403, "forbidden here");
  };
  options.error_response = TextError;
  Start(std::move(options));
  EXPECT_THAT(Get("/hello"), StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(Post("/echo", "x"), HasSubstr("403 Forbidden"));
  const std::string missing = Get("/nothing");
  EXPECT_THAT(missing, HasSubstr("text/plain"));
  EXPECT_THAT(missing, HasSubstr("no such endpoint: /nothing\n"));
}

TEST_F(CommonHttpServer, AddressNamesThePortTheKernelChose) {
  Start();  // on 127.0.0.1:0
  ASSERT_GT(server_->port(), 0);
  EXPECT_EQ(server_->address().ToString(), "127.0.0.1:" + std::to_string(server_->port()));
}

TEST_F(CommonHttpServer, PortInUseAndIpv6AreToldApart) {
  Start();
  auto again = HttpServer::Start({"127.0.0.1", server_->port()}, {});
  ASSERT_FALSE(again);
  EXPECT_THAT(again.error().message, HasSubstr("already in use"));
  auto elsewhere = HttpServer::Start({"192.0.2.1", 0}, {});  // TEST-NET: not on this host
  ASSERT_FALSE(elsewhere);
  EXPECT_THAT(elsewhere.error().message, HasSubstr("not an address of this host"));
  auto v6 = HttpServer::Start({"::1", 0, true}, {});
  if (v6) {
    EXPECT_GT((*v6)->port(), 0);
    EXPECT_EQ((*v6)->address().ToString(), "[::1]:" + std::to_string((*v6)->port()));
  } else {  // a host without IPv6 (some containers): said so, not mistaken for a busy port
    EXPECT_THAT(v6.error().message, ::testing::AnyOf(HasSubstr("no IPv6 support"),
                                                     HasSubstr("not an address of this host")));
    EXPECT_THAT(v6.error().message, ::testing::Not(HasSubstr("already in use")));
  }
}

// Connects to 127.0.0.1:port and sends `head` (which may be unfinished); -1 on failure.
int Open(int port, const std::string& head) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::send(fd, head.data(), head.size(), MSG_NOSIGNAL) < 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Waits (up to 20 s) for the server to close `fd`; returns what it sent before.
std::string UntilClosed(int fd) {
  timeval tv{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string answer;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) answer.append(buffer, n);
  ::close(fd);
  return n == 0 || errno == ECONNRESET ? answer : "still open";
}

TEST_F(CommonHttpServer, TricklingHeadsAndBodiesAreDroppedAtTheirDeadlines) {
  HttpServerOptions options;
  options.request_timeout = std::chrono::milliseconds(1000);
  options.body_timeout = std::chrono::milliseconds(1000);
  Start(std::move(options));
  // A head that never ends, sent a byte at a time more often than the silence timeout.
  const int head = Open(server_->port(), "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  const int body =
      Open(server_->port(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01");
  ASSERT_GE(head, 0);
  ASSERT_GE(body, 0);
  std::atomic<bool> done{false};
  std::thread trickle([&] {
    while (!done) {
      ::send(head, "x", 1, MSG_NOSIGNAL);
      ::send(body, "2", 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  });
  // Others are answered meanwhile.
  EXPECT_THAT(Get("/hello"), StartsWith("HTTP/1.1 200"));
  const int body_copy = ::dup(body);
  EXPECT_EQ(UntilClosed(::dup(head)), "");
  EXPECT_THAT(UntilClosed(body_copy), ::testing::Not(HasSubstr("200 OK")));
  done = true;
  trickle.join();
  ::close(head);
  ::close(body);
  EXPECT_EQ(refused_.load(), 408);
}

TEST_F(CommonHttpServer, ChunkedBodiesOverTheLimitGet413) {
  Start();
  const std::string chunk(10, 'x');
  EXPECT_THAT(Exchange(server_->port(),
                       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "a\r\n" +
                           chunk + "\r\na\r\n" + chunk + "\r\n0\r\n\r\n"),
              StartsWith("HTTP/1.1 413"));
  EXPECT_EQ(refused_.load(), 413);
  EXPECT_THAT(Exchange(server_->port(),
                       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "a\r\n" +
                           chunk + "\r\n0\r\n\r\n"),
              HasSubstr("\r\n\r\n" + chunk));
}

}  // namespace
}  // namespace slotguard::common
