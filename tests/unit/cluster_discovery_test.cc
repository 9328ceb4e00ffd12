#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "cluster/discovery.h"
#include "tests/unit/test_data.h"

namespace slotguard::cluster {
namespace {

using ::slotguard::testing::ReadData;
using ::slotguard::testing::ReadEnv;

using ::testing::HasSubstr;

// A node that answers CLUSTER NODES with a canned result.
class FakeConnection : public Connection {
 public:
  FakeConnection(Endpoint endpoint, Result<Reply> answer)
      : endpoint_(std::move(endpoint)), answer_(std::move(answer)) {}
  Result<Reply> Command(const Argv& argv) override {
    commands_.push_back(argv);
    return answer_;
  }
  Result<std::vector<Reply>> Pipeline(const std::vector<Argv>& commands) override {
    std::vector<Reply> out;
    for (const auto& c : commands) {
      auto r = Command(c);
      if (!r) return tl::unexpected(r.error());
      out.push_back(*r);
    }
    return out;
  }
  const Endpoint& endpoint() const override { return endpoint_; }
  const std::vector<Argv>& commands() const { return commands_; }

 private:
  Endpoint endpoint_;
  Result<Reply> answer_;
  std::vector<Argv> commands_;
};

class FakeConnector : public Connector {
 public:
  void Set(const Endpoint& e, Result<Reply> answer) {
    conns_[e] = std::make_unique<FakeConnection>(e, std::move(answer));
  }
  Connection& Get(const Endpoint& e) override {
    auto& c = conns_[e];
    if (!c)
      c = std::make_unique<FakeConnection>(
          e, MakeError("connect to " + e.ToString() + ": Connection refused"));
    order_.push_back(e);
    return *c;
  }
  std::vector<Endpoint> order_;

 private:
  std::map<Endpoint, std::unique_ptr<FakeConnection>> conns_;
};

Reply Bulk(std::string s) {
  Reply r;
  r.type = Reply::Type::kString;
  r.str = std::move(s);
  return r;
}

Reply Err(std::string s) {
  Reply r;
  r.type = Reply::Type::kError;
  r.str = std::move(s);
  return r;
}

const Endpoint kA{"127.0.0.1", 7000};
const Endpoint kB{"127.0.0.1", 7001};
const Endpoint kC{"127.0.0.1", 7002};

TEST(ClusterDiscover, FirstAnsweringSeedWins) {
  FakeConnector connector;
  connector.Set(kB, Bulk(ReadData("redis70_failed_nodes_0.txt")));
  connector.Set(kC, Bulk(ReadData("redis70_healthy_nodes_0.txt")));
  auto t = Discover(connector, {kA, kB, kC});
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->answered_by, kB);
  EXPECT_EQ(t->nodes.size(), 6u);
  EXPECT_EQ(connector.order_, (std::vector<Endpoint>{kA, kB}));  // C never asked
  // The failed node is still listed: it must be reported as down.
  const auto endpoints = t->Endpoints();
  EXPECT_EQ(endpoints.size(), 6u);
  EXPECT_TRUE(std::is_sorted(endpoints.begin(), endpoints.end()));
}

TEST(ClusterDiscover, KnownNodesAfterSeeds) {
  FakeConnector connector;
  connector.Set(kC, Bulk(ReadData("redis70_healthy_nodes_1.txt")));
  auto t = Discover(connector, {kA}, {kB, kA, kC});
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->answered_by, kC);
  EXPECT_EQ(connector.order_, (std::vector<Endpoint>{kA, kB, kC}));  // A asked once
}

TEST(ClusterDiscover, FailureNamesEveryCandidate) {
  FakeConnector connector;
  connector.Set(kB, Err("ERR This instance has cluster support disabled"));
  connector.Set(kC, Bulk("garbage"));
  auto t = Discover(connector, {kA, kB, kC});
  ASSERT_FALSE(t);
  const std::string& m = t.error().message;
  EXPECT_THAT(m, HasSubstr("127.0.0.1:7000: connect to 127.0.0.1:7000: Connection refused"));
  EXPECT_THAT(m, HasSubstr("127.0.0.1:7001: CLUSTER NODES refused: ERR This instance has cluster"));
  EXPECT_THAT(m, HasSubstr("127.0.0.1:7002: CLUSTER NODES line 1"));
  EXPECT_FALSE(Discover(connector, {}));
}

TEST(ClusterDiscover, LoneNodeLearnsItsHostFromTheSeed) {
  FakeConnector connector;
  connector.Set(kA, Bulk("abc :7000@17000 myself,master - 0 0 0 connected\n"));
  auto t = Discover(connector, {kA});
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->Endpoints(), (std::vector<Endpoint>{kA}));
}

TEST(ClusterTopology, EndpointsSkipNodesWithoutAddress) {
  Topology t;
  auto nodes = ParseClusterNodes(
      "a 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-16383\n"
      "b :0@0 noaddr - 0 0 0 disconnected\n"
      "c 127.0.0.1:7000@17000 slave,fail a 0 0 1 disconnected\n"
      "d 127.0.0.1:7000@17000 handshake - 0 0 0 disconnected\n");
  ASSERT_TRUE(nodes);
  t.nodes = *nodes;
  EXPECT_EQ(t.Endpoints(), (std::vector<Endpoint>{kA, kB}));
}

}  // namespace
}  // namespace slotguard::cluster
