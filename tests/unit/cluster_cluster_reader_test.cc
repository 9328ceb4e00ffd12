// The cluster reader: discovery from seeds and known nodes, the membership rule, the ":port
// only" fix-up and the reply parsing, on captured server output.
#include "cluster/cluster_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "cluster/membership.h"
#include "tests/unit/exporter_fixtures.h"
#include "tests/unit/fake_replies.h"
#include "tests/unit/test_data.h"

namespace slotguard::cluster {
namespace {

using ::slotguard::testing::ErrorReply;
using ::slotguard::testing::StringReply;

using ::slotguard::testing::ReadData;
using ::testing::HasSubstr;

// A node that answers every command with one canned reply (CLUSTER NODES, for plans that ask
// nothing else), or by command from a captured node.
class FakeConnection : public Connection {
 public:
  FakeConnection(Endpoint endpoint, Result<Reply> answer)
      : endpoint_(std::move(endpoint)), answer_(std::move(answer)) {}
  Result<Reply> Command(const Argv& argv) override {
    std::lock_guard<std::mutex> lock(mutex_);
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
  size_t asked() {
    std::lock_guard<std::mutex> lock(mutex_);
    return commands_.size();
  }

 private:
  Endpoint endpoint_;
  Result<Reply> answer_;
  std::mutex mutex_;
  std::vector<Argv> commands_;
};

// Thread-safe: the reader asks for connections from its workers.
class FakeConnector : public Connector {
 public:
  void Set(const Endpoint& e, Result<Reply> answer) {
    std::lock_guard<std::mutex> lock(mutex_);
    conns_[e] = std::make_unique<FakeConnection>(e, std::move(answer));
  }
  Connection& Get(const Endpoint& e) override { return Conn(e); }
  FakeConnection& Conn(const Endpoint& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& c = conns_[e];
    if (!c) {
      c = std::make_unique<FakeConnection>(
          e, MakeError("connect to " + e.ToString() + ": Connection refused"));
    }
    return *c;
  }

 private:
  std::mutex mutex_;
  std::map<Endpoint, std::unique_ptr<FakeConnection>> conns_;
};

ReadPlan NodesOnly() {
  ReadPlan plan;
  plan.cluster_info = false;
  return plan;
}

const NodeRead* Find(const ClusterRead& read, const std::string& address) {
  for (const auto& n : read.nodes) {
    if (n.address.ToString() == address) return &n;
  }
  return nullptr;
}

const Endpoint kA{"127.0.0.1", 7000};
const Endpoint kB{"127.0.0.1", 7001};
const Endpoint kC{"127.0.0.1", 7002};

TEST(ClusterReader, ReadsEveryNodeTheAnsweringSeedNamesFailedOnesDown) {
  FakeConnector connector;
  connector.Set(kB, StringReply(ReadData("redis70_failed_nodes_0.txt")));
  ClusterReader reader(Borrow(connector), NodesOnly());
  auto read = reader.Read({kA, kB}, {}, std::nullopt);
  ASSERT_TRUE(read.discovery_ok);
  // The six nodes the view names (the failed one included: it must be reported down), plus the
  // seed that did not answer.
  EXPECT_TRUE(std::is_sorted(read.nodes.begin(), read.nodes.end(),
                             [](const auto& a, const auto& b) { return a.address < b.address; }));
  const NodeRead* b = nullptr;
  for (const auto& n : read.nodes) {
    if (n.dialed == kB) b = &n;
  }
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->up());
  EXPECT_TRUE(b->member);
  const auto named = EndpointsInViews({&*b->view});
  EXPECT_EQ(named.size(), 6u);
  for (const auto& e : named) {
    ASSERT_NE(Find(read, e.ToString()), nullptr) << e.ToString();
  }
  EXPECT_EQ(read.nodes.size(), 7u);  // and the seed that did not answer
  EXPECT_FALSE(Find(read, "127.0.0.1:7000")->up());
}

TEST(ClusterReader, KnownNodesFirstSeedsOnlyWhenNoneAnswers) {
  FakeConnector connector;
  connector.Set(kC,
                StringReply("c 127.0.0.1:7002@17002 myself,master - 0 0 1 connected 0-16383\n"));
  ClusterReader reader(Borrow(connector), NodesOnly());
  auto read = reader.Read({kC}, {kA, kB}, std::nullopt);
  ASSERT_TRUE(read.discovery_ok);
  EXPECT_EQ(connector.Conn(kA).asked(), 1u);
  EXPECT_EQ(connector.Conn(kB).asked(), 1u);
  EXPECT_EQ(connector.Conn(kC).asked(), 1u);  // the seed, asked once no known node answered
  EXPECT_TRUE(Find(read, "127.0.0.1:7002")->member);
}

TEST(ClusterReader, EachFailureSaysWhy) {
  FakeConnector connector;
  connector.Set(kB, ErrorReply("ERR This instance has cluster support disabled"));
  connector.Set(kC, StringReply("garbage"));
  ClusterReader reader(Borrow(connector), NodesOnly());
  auto read = reader.Read({kA, kB, kC}, {}, std::nullopt);
  ASSERT_FALSE(read.discovery_ok);
  ASSERT_EQ(read.nodes.size(), 3u);
  EXPECT_THAT(read.nodes[0].error, HasSubstr("connect to 127.0.0.1:7000: Connection refused"));
  EXPECT_THAT(read.nodes[1].error,
              HasSubstr("CLUSTER NODES refused: ERR This instance has cluster"));
  EXPECT_THAT(read.nodes[2].error, HasSubstr("CLUSTER NODES line 1"));
}

TEST(ClusterReader, LoneNodeLearnsItsHostFromTheDialedAddress) {
  FakeConnector connector;
  connector.Set(kA, StringReply("abc :7000@17000 myself,master - 0 0 0 connected\n"));
  ClusterReader reader(Borrow(connector), NodesOnly());
  auto read = reader.Read({kA}, {}, std::nullopt);
  ASSERT_EQ(read.nodes.size(), 1u);
  EXPECT_EQ(read.nodes[0].address, kA);
  EXPECT_EQ(read.nodes[0].view->reporter, kA);
  EXPECT_EQ(FindMyself(read.nodes[0].view->nodes)->endpoint, kA);
}

TEST(ClusterReader, SeedUnderAnotherNameIsReadOnce) {
  FakeConnector connector;
  const std::string view = "a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-16383\n";
  connector.Set({"localhost", 7000}, StringReply(view));
  connector.Set(kA, StringReply(view));
  ClusterReader reader(Borrow(connector), NodesOnly());
  auto read = reader.Read({{"localhost", 7000}}, {}, std::nullopt);
  ASSERT_EQ(read.nodes.size(), 1u);
  EXPECT_EQ(read.nodes[0].address, kA);
  EXPECT_EQ(read.nodes[0].dialed, (Endpoint{"localhost", 7000}));
  EXPECT_EQ(connector.Conn(kA).asked(), 0u);
}

TEST(ClusterMembership, EndpointsSkipNodesWithoutAddress) {
  auto nodes = ParseClusterNodes(
      "a 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-16383\n"
      "b :0@0 noaddr - 0 0 0 disconnected\n"
      "c 127.0.0.1:7000@17000 slave,fail a 0 0 1 disconnected\n"
      "d 127.0.0.1:7000@17000 handshake - 0 0 0 disconnected\n");
  ASSERT_TRUE(nodes);
  NodesView v{"a", kB, *nodes};
  EXPECT_EQ(EndpointsInViews({&v}), (std::vector<Endpoint>{kA, kB}));
}

// Captured 3+3 views, one per node, with 23105 forgotten by the others and reset.
std::vector<NodesView> DepartedViews() {
  std::vector<NodesView> views;
  for (auto& [addr, node] : exporter::testing::LoadCapture("exporter_healthy.txt")) {
    std::string text;
    if (addr == "127.0.0.1:23105") {
      text =
          "5c839d41d3238bc388aa02b8b7d7c674377eba71 127.0.0.1:23105@33105 "
          "myself,master - 0 0 0 connected\n";
    } else {
      std::istringstream in(node.cluster_nodes);
      for (std::string line; std::getline(in, line);) {
        if (line.find(" 127.0.0.1:23105@") == std::string::npos) text += line + "\n";
      }
    }
    NodeRead read = ParseNodeReplies(*ParseEndpoint(addr), NodesOnly(), {StringReply(text)});
    EXPECT_TRUE(read.up()) << read.error;
    views.push_back(*read.view);
  }
  return views;
}

TEST(ClusterMembership, ADepartedNodeIsNoMemberAFailedOneIs) {
  const auto views = DepartedViews();
  ViewRefs refs;
  for (const auto& v : views) refs.push_back(&v);
  const ViewRefs members = MemberViews(refs);
  ASSERT_EQ(members.size(), 5u);
  for (const auto* v : members) EXPECT_NE(v->reporter.port, 23105);
  const auto judgement = JudgeClusterRefs(members);
  EXPECT_EQ(judgement.covered, kSlotCount);
  EXPECT_TRUE(judgement.consistent);
  // A node nobody else answers for is kept: one view is all there is.
  EXPECT_EQ(MemberViews({refs.back()}).size(), 1u);
}

TEST(ClusterReaderParse, CapturedRepliesFillEveryPart) {
  const auto node = exporter::testing::LoadCapture("exporter_healthy.txt").at("127.0.0.1:23100");
  ReadPlan plan;
  plan.info_sections = {"all"};
  const Endpoint dialed{"127.0.0.1", 23100};
  EXPECT_EQ(NodeCommands(plan, dialed),
            (std::vector<Argv>{{"INFO", "all"}, {"CLUSTER", "INFO"}, {"CLUSTER", "NODES"}}));
  auto read = ParseNodeReplies(
      dialed, plan,
      {StringReply(node.info), StringReply(node.cluster_info), StringReply(node.cluster_nodes)});
  EXPECT_TRUE(read.error.empty()) << read.error;
  ASSERT_EQ(read.info.size(), 1u);
  ASSERT_TRUE(read.info[0]);
  EXPECT_EQ(read.info[0]->Get("redis_version"), "7.0.15");
  ASSERT_TRUE(read.cluster_info);
  EXPECT_EQ(read.cluster_info->Get("cluster_state"), "ok");
  ASSERT_TRUE(read.view);
  EXPECT_EQ(read.view->reporter_id, "3ddad39989712a19a34eace447518ddd01d8e600");
}

TEST(ClusterReaderParse, InfoOnlyWhereAskedEachSectionOnItsOwn) {
  ReadPlan plan = NodesOnly();
  plan.info_sections = {"commandstats", "errorstats"};
  plan.info_only_at = {kA};
  EXPECT_EQ(NodeCommands(plan, kB), (std::vector<Argv>{{"CLUSTER", "NODES"}}));
  ASSERT_EQ(NodeCommands(plan, kA).size(), 3u);
  // A section the node refuses is missing alone; the other and the view are kept.
  auto read = ParseNodeReplies(
      kA, plan,
      {StringReply("# Commandstats\r\ncmdstat_migrate:calls=3,usec=20,failed_calls=1\r\n"),
       ErrorReply("ERR unknown section"),
       StringReply("a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-16383\n")});
  ASSERT_EQ(read.info.size(), 2u);
  EXPECT_TRUE(read.info[0]);
  EXPECT_FALSE(read.info[1]);
  EXPECT_TRUE(read.up());
  EXPECT_THAT(read.error, HasSubstr("INFO errorstats refused: ERR unknown section"));
}

TEST(ClusterReaderParse, ANodeWithoutAViewSaysWhyThereIsNone) {
  ReadPlan plan;  // CLUSTER INFO, then CLUSTER NODES
  auto read = ParseNodeReplies(kA, plan, {ErrorReply("NOPERM no"), ErrorReply("NOPERM no")});
  EXPECT_FALSE(read.up());
  EXPECT_THAT(read.error, HasSubstr("CLUSTER NODES refused: NOPERM"));
  EXPECT_THAT(read.error, HasSubstr("the ACL user needs this command"));
}

}  // namespace
}  // namespace slotguard::cluster
