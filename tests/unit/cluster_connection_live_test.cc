// RedisConnection against a real redis-server: pipelining, error replies as values, transport
// errors, reconnection, AUTH.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cluster/connection.h"
#include "cluster/connection_pool.h"
#include "tests/unit/cluster_live_server.h"

namespace slotguard::cluster {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ClusterConnectionLive : public ::testing::Test {
 protected:
  void StartServer(const std::vector<std::string>& config = {}) {
    std::string binary;
    SLOTGUARD_REQUIRE_REDIS_SERVER(binary);
    server_ = testing::LiveServer::Start(binary, /*cluster_enabled=*/false, config);
    ASSERT_NE(server_, nullptr) << "redis-server did not start";
  }

  std::unique_ptr<testing::LiveServer> server_;
};

TEST_F(ClusterConnectionLive, SendAndReceiveKeepTwoBatchesInFlight) {
  StartServer();
  if (IsSkipped() || HasFatalFailure()) return;
  RedisConnection conn(server_->endpoint());
  ASSERT_TRUE(conn.Send({{"SET", "n", "1"}, {"INCR", "n"}}));
  ASSERT_TRUE(conn.Send({{"INCR", "n"}, {"NOSUCHCOMMAND"}, {"GET", "n"}}));
  // Replies in flight would be taken for a pipeline's own: it refuses and starts over.
  auto refused = conn.Pipeline({{"PING"}});
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("unread"));
  ASSERT_TRUE(conn.Send({{"SET", "n", "10"}, {"INCR", "n"}}));
  ASSERT_TRUE(conn.Send({{"INCR", "n"}, {"GET", "n"}}));
  auto first = conn.Receive(2);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_TRUE((*first)[0].IsOk());
  EXPECT_EQ((*first)[1].integer, 11);
  auto second = conn.Receive(2);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ((*second)[0].integer, 12);
  EXPECT_EQ((*second)[1].str, "12");
  // More than was sent: an error, not a hang.
  auto none = conn.Receive(1);
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message, HasSubstr("no reply in flight"));
  auto again = conn.Command({"GET", "n"});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->str, "12");
}

TEST_F(ClusterConnectionLive, PipelineKeepsOrderAndErrorRepliesAreValues) {
  StartServer();
  if (IsSkipped() || HasFatalFailure()) return;
  RedisConnection conn(server_->endpoint());
  auto replies = conn.Pipeline({{"SET", "k", "41"},
                                {"INCR", "k"},
                                {"GET", "k"},
                                {"HSET", "k", "f", "v"},  // WRONGTYPE: an error value
                                {"GET", "missing"},
                                {"RPUSH", "list", "a", "b", "c"},
                                {"LRANGE", "list", "0", "-1"},
                                {"SET", "bin", std::string("a\0b\r\nc", 6)},
                                {"GET", "bin"}});
  ASSERT_TRUE(replies) << replies.error().message;
  ASSERT_EQ(replies->size(), 9u);
  const auto& r = *replies;
  EXPECT_TRUE(r[0].IsOk());
  EXPECT_EQ(r[1].type, Reply::Type::kInteger);
  EXPECT_EQ(r[1].integer, 42);
  EXPECT_EQ(r[2].type, Reply::Type::kString);
  EXPECT_EQ(r[2].str, "42");
  EXPECT_TRUE(r[3].IsError());
  EXPECT_THAT(r[3].str, ::testing::StartsWith("WRONGTYPE"));
  EXPECT_TRUE(r[4].IsNil());
  EXPECT_EQ(r[5].integer, 3);
  ASSERT_EQ(r[6].type, Reply::Type::kArray);
  ASSERT_EQ(r[6].elements.size(), 3u);
  EXPECT_EQ(r[6].elements[2].str, "c");
  EXPECT_EQ(r[8].str, std::string("a\0b\r\nc", 6));

  // The connection stays usable after an error reply.
  auto err = conn.Command({"NOSUCHCOMMAND"});
  ASSERT_TRUE(err);
  EXPECT_TRUE(err->IsError());
  auto pong = conn.Command({"PING"});
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->str, "PONG");

  // A long pipeline answers every command, in order.
  std::vector<Argv> many;
  for (int i = 0; i < 5000; ++i) many.push_back({"ECHO", std::to_string(i)});
  auto echoes = conn.Pipeline(many);
  ASSERT_TRUE(echoes) << echoes.error().message;
  ASSERT_EQ(echoes->size(), 5000u);
  for (int i = 0; i < 5000; i += 499) EXPECT_EQ((*echoes)[i].str, std::to_string(i));
}

TEST_F(ClusterConnectionLive, ClosedPortIsAnErrorValue) {
  const int port = testing::FreePort();
  ASSERT_GT(port, 0);
  RedisConnection conn(Endpoint{"127.0.0.1", port});
  auto r = conn.Command({"PING"});
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("127.0.0.1:" + std::to_string(port)));
  auto p = conn.Pipeline({{"PING"}, {"PING"}});
  EXPECT_FALSE(p);
}

TEST_F(ClusterConnectionLive, ReconnectsAfterClientKill) {
  StartServer();
  if (IsSkipped() || HasFatalFailure()) return;
  RedisConnection conn(server_->endpoint());
  RedisConnection admin(server_->endpoint());
  auto id = conn.Command({"CLIENT", "ID"});
  ASSERT_TRUE(id) << id.error().message;
  ASSERT_EQ(id->type, Reply::Type::kInteger);

  auto killed = admin.Command({"CLIENT", "KILL", "ID", std::to_string(id->integer)});
  ASSERT_TRUE(killed);
  ASSERT_EQ(killed->integer, 1);

  // The first command on the dead socket fails as a value; the next one reconnects.
  auto broken = conn.Command({"PING"});
  EXPECT_FALSE(broken);
  if (!broken) {
    EXPECT_THAT(broken.error().message, HasSubstr(server_->endpoint().ToString()));
  }
  auto again = conn.Command({"CLIENT", "ID"});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_NE(again->integer, id->integer);
}

TEST_F(ClusterConnectionLive, ReadTimeoutDiscardsAndReconnects) {
  StartServer();
  if (IsSkipped() || HasFatalFailure()) return;
  RedisConnection conn(server_->endpoint(),
                       ConnectOptions{std::chrono::milliseconds(1000),
                                      std::chrono::milliseconds(100), std::nullopt});
  auto slow = conn.Command({"DEBUG", "SLEEP", "0.5"});
  ASSERT_FALSE(slow);
  EXPECT_THAT(slow.error().message, HasSubstr("timed out"));
  conn.SetIoTimeout(std::chrono::milliseconds(2000));
  // The late +OK of DEBUG SLEEP must not be read as the answer to this ECHO.
  auto echo = conn.Command({"ECHO", "after"});
  ASSERT_TRUE(echo) << echo.error().message;
  EXPECT_EQ(echo->str, "after");
}

TEST_F(ClusterConnectionLive, AuthWithPassword) {
  const std::string password = "s3cret-Pw-for-unit-test";
  StartServer({"requirepass " + password});
  if (IsSkipped() || HasFatalFailure()) return;

  RedisConnection no_auth(server_->endpoint());
  auto denied = no_auth.Command({"PING"});
  ASSERT_TRUE(denied) << denied.error().message;  // NOAUTH is a reply, not a transport error
  EXPECT_TRUE(denied->IsError());
  EXPECT_THAT(denied->str, HasSubstr("NOAUTH"));

  ConnectOptions good;
  good.credentials = Credentials{std::nullopt, password};
  RedisConnection authed(server_->endpoint(), good);
  auto pong = authed.Command({"PING"});
  ASSERT_TRUE(pong) << pong.error().message;
  EXPECT_EQ(pong->str, "PONG");

  ConnectOptions acl;
  acl.credentials = Credentials{std::string("default"), password};
  RedisConnection acl_conn(server_->endpoint(), acl);
  auto who = acl_conn.Command({"ACL", "WHOAMI"});
  ASSERT_TRUE(who) << who.error().message;
  EXPECT_EQ(who->str, "default");

  const std::string wrong = "wrong-Pw-must-not-leak";
  ConnectOptions bad;
  bad.credentials = Credentials{std::nullopt, wrong};
  RedisConnection bad_conn(server_->endpoint(), bad);
  auto refused = bad_conn.Command({"PING"});
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("AUTH"));
  EXPECT_THAT(refused.error().message, HasSubstr(server_->endpoint().ToString()));
  EXPECT_THAT(refused.error().message, Not(HasSubstr(wrong)));
  EXPECT_THAT(refused.error().message, Not(HasSubstr(password)));

  ConnectOptions bad_user;
  bad_user.credentials = Credentials{std::string("nobody"), password};
  RedisConnection bad_user_conn(server_->endpoint(), bad_user);
  auto refused_user = bad_user_conn.Command({"PING"});
  ASSERT_FALSE(refused_user);
  EXPECT_THAT(refused_user.error().message, Not(HasSubstr(password)));
}

TEST_F(ClusterConnectionLive, PoolHandsOutOneConnectionPerEndpoint) {
  StartServer();
  if (IsSkipped() || HasFatalFailure()) return;
  ConnectionPool pool(ConnectOptions{});
  Connection& a = pool.Get(server_->endpoint());
  Connection& b = pool.Get(server_->endpoint());
  EXPECT_EQ(&a, &b);
  auto pong = a.Command({"PING"});
  ASSERT_TRUE(pong) << pong.error().message;
  EXPECT_EQ(a.endpoint(), server_->endpoint());
  pool.Retain({});
  Connection& c = pool.Get(server_->endpoint());
  auto again = c.Command({"PING"});
  ASSERT_TRUE(again) << again.error().message;
}

}  // namespace
}  // namespace slotguard::cluster
