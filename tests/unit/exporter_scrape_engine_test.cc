// The scrape engine against a fake cluster made of captured replies: discovery from a seed,
// joins and departures, dead and stuck nodes, seed fallback, concurrent scrapes, what it logs.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "exporter/collectors.h"
#include "exporter/scrape_engine.h"
#include "tests/unit/exporter_fixtures.h"

namespace slotguard::exporter {
namespace {

using cluster::Reply;
using std::chrono::milliseconds;

class FakeCluster : public std::enable_shared_from_this<FakeCluster> {
 public:
  enum class Mode { kAnswer, kDead, kStuck };

  void Answer(const std::string& addr, testing::CapturedNode node) {
    std::lock_guard<std::mutex> lock(mutex_);
    nodes_[addr] = std::move(node);
    modes_[addr] = Mode::kAnswer;
  }
  void SetMode(const std::string& addr, Mode mode) {
    std::lock_guard<std::mutex> lock(mutex_);
    modes_[addr] = mode;
  }
  // Edits what a node answers from now on.
  template <typename F>
  void Edit(const std::string& addr, F edit) {
    std::lock_guard<std::mutex> lock(mutex_);
    edit(nodes_.at(addr));
  }
  // Lets stuck calls return, and waits until no call is in flight.
  void ReleaseAndDrain() {
    std::unique_lock<std::mutex> lock(mutex_);
    released_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return in_flight_ == 0; });
  }
  // Waits until a call to `addr` is stuck (so a test knows the straggler exists).
  void WaitStuck(const std::string& addr) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return stuck_.count(addr) != 0; });
  }
  bool overlapped() const { return overlapped_; }
  int calls(const std::string& addr) {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_[addr];
  }

  std::shared_ptr<cluster::Connector> Connector();

  cluster::Result<std::vector<Reply>> Call(const std::string& addr,
                                           const std::vector<cluster::Argv>& commands) {
    std::unique_lock<std::mutex> lock(mutex_);
    ++in_flight_;
    ++calls_[addr];
    struct Done {
      FakeCluster* self;
      ~Done() {
        --self->in_flight_;
        self->cv_.notify_all();
      }
    } done{this};
    Mode mode = modes_.count(addr) ? modes_[addr] : Mode::kDead;
    if (mode == Mode::kDead) return cluster::MakeError("connect to " + addr + ": refused");
    if (mode == Mode::kStuck) {
      // Ignores its timeout, like a thread stuck in a kernel call: the engine must not wait.
      stuck_.insert(addr);
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_; });
      return cluster::MakeError(addr + ": timed out");
    }
    std::vector<Reply> replies;
    for (const auto& argv : commands) {
      Reply r;
      const auto& node = nodes_.at(addr);
      if (argv == cluster::Argv{"INFO", "all"}) {
        r.type = Reply::Type::kString;
        r.str = node.info;
      } else if (argv == cluster::Argv{"CLUSTER", "INFO"}) {
        r.type = Reply::Type::kString;
        r.str = node.cluster_info;
      } else if (argv == cluster::Argv{"CLUSTER", "NODES"}) {
        r.type = Reply::Type::kString;
        r.str = node.cluster_nodes;
      } else {
        r.type = Reply::Type::kInteger;
        r.integer = 5;
      }
      replies.push_back(r);
    }
    return replies;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, testing::CapturedNode> nodes_;
  std::map<std::string, Mode> modes_;
  std::map<std::string, int> calls_;
  std::set<std::string> stuck_;
  int in_flight_ = 0;
  bool released_ = false;
  std::atomic<bool> overlapped_{false};

  friend class FakeClient;
};

class FakeClient : public cluster::Connection {
 public:
  FakeClient(std::shared_ptr<FakeCluster> cluster, cluster::Endpoint endpoint)
      : cluster_(std::move(cluster)), endpoint_(std::move(endpoint)) {}

  cluster::Result<Reply> Command(const cluster::Argv& argv) override {
    auto r = Pipeline({argv});
    if (!r) return tl::unexpected(r.error());
    return r->front();
  }
  cluster::Result<std::vector<Reply>> Pipeline(
      const std::vector<cluster::Argv>& commands) override {
    // The engine promises one user per connection at a time.
    if (busy_.exchange(true)) cluster_->overlapped_ = true;
    std::this_thread::sleep_for(milliseconds(1));  // widens the window for an overlap
    auto result = cluster_->Call(endpoint_.ToString(), commands);
    busy_ = false;
    return result;
  }
  const cluster::Endpoint& endpoint() const override { return endpoint_; }

 private:
  std::shared_ptr<FakeCluster> cluster_;
  cluster::Endpoint endpoint_;
  std::atomic<bool> busy_{false};
};

// One FakeClient per endpoint, made on first use (from the reader's workers).
class FakeConnector : public cluster::Connector {
 public:
  explicit FakeConnector(std::shared_ptr<FakeCluster> cluster) : cluster_(std::move(cluster)) {}
  cluster::Connection& Get(const cluster::Endpoint& e) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& c = clients_[e];
    if (!c) c = std::make_unique<FakeClient>(cluster_, e);
    return *c;
  }
  void Retain(const std::vector<cluster::Endpoint>& keep) override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = clients_.begin(); it != clients_.end();) {
      const bool kept = std::find(keep.begin(), keep.end(), it->first) != keep.end();
      it = kept ? std::next(it) : clients_.erase(it);
    }
  }

 private:
  std::shared_ptr<FakeCluster> cluster_;
  std::mutex mutex_;
  std::map<cluster::Endpoint, std::unique_ptr<FakeClient>> clients_;
};

std::shared_ptr<cluster::Connector> FakeCluster::Connector() {
  return std::make_shared<FakeConnector>(shared_from_this());
}

std::string Addr(int port) { return "127.0.0.1:" + std::to_string(port); }

std::shared_ptr<FakeCluster> HealthyCluster() {
  auto fake = std::make_shared<FakeCluster>();
  for (const auto& [addr, node] : testing::LoadCapture("exporter_healthy.txt")) {
    fake->Answer(addr, node);
  }
  return fake;
}

const NodeResult* Find(const ScrapeResult& r, const std::string& label) {
  for (const auto& n : r.nodes) {
    if (n.label == label) return &n;
  }
  return nullptr;
}

int UpCount(const ScrapeResult& r) {
  return static_cast<int>(
      std::count_if(r.nodes.begin(), r.nodes.end(), [](const NodeResult& n) { return n.up; }));
}

// Removes the CLUSTER NODES line of `port` (a node forgotten by the others).
void Forget(testing::CapturedNode& node, int port) {
  std::string kept;
  std::istringstream in(node.cluster_nodes);
  for (std::string line; std::getline(in, line);) {
    if (line.find(" " + Addr(port) + "@") == std::string::npos) kept += line + "\n";
  }
  node.cluster_nodes = kept;
}

class ExporterScrapeEngine : public ::testing::Test {
 protected:
  void TearDown() override {
    if (fake_) fake_->ReleaseAndDrain();
  }
  std::shared_ptr<FakeCluster> fake_ = HealthyCluster();
};

TEST_F(ExporterScrapeEngine, DiscoversTheWholeClusterFromOneSeedInTheFirstScrape) {
  ScrapeEngine engine({{"127.0.0.1", 23100}}, milliseconds(2000), fake_->Connector());
  auto r = engine.Scrape();
  EXPECT_TRUE(r.discovery_ok);
  EXPECT_EQ(r.nodes.size(), 6u);
  EXPECT_EQ(UpCount(r), 6);
  EXPECT_EQ(r.known_nodes, 6);
  ASSERT_TRUE(r.judgement);
  EXPECT_EQ(r.judgement->covered, 16384);
  EXPECT_EQ(engine.KnownNodes().size(), 6u);
  EXPECT_EQ(fake_->calls(Addr(23100)), 1);  // the seed is not read twice
}

TEST_F(ExporterScrapeEngine, SeedUnderAnotherNameIsReportedOnceUnderTheAnnouncedAddress) {
  fake_->Answer("localhost:23100", testing::LoadCapture("exporter_healthy.txt").at(Addr(23100)));
  ScrapeEngine engine({{"localhost", 23100}}, milliseconds(2000), fake_->Connector());
  auto r = engine.Scrape();
  EXPECT_EQ(r.nodes.size(), 6u);
  EXPECT_EQ(UpCount(r), 6);
  EXPECT_EQ(Find(r, "localhost:23100"), nullptr);
  EXPECT_EQ(fake_->calls(Addr(23100)), 0);
  engine.Scrape();  // from now on the cluster's own addresses
  EXPECT_EQ(fake_->calls(Addr(23100)), 1);
  EXPECT_EQ(fake_->calls("localhost:23100"), 1);
}

TEST_F(ExporterScrapeEngine, DeadNodeIsDownAndTheRestIntact) {
  fake_->SetMode(Addr(23104), FakeCluster::Mode::kDead);
  ScrapeEngine engine({{"127.0.0.1", 23100}}, milliseconds(2000), fake_->Connector());
  auto r = engine.Scrape();
  ASSERT_NE(Find(r, Addr(23104)), nullptr);
  EXPECT_FALSE(Find(r, Addr(23104))->up);
  EXPECT_NE(Find(r, Addr(23104))->error.find("refused"), std::string::npos);
  EXPECT_EQ(UpCount(r), 5);
  EXPECT_TRUE(r.discovery_ok);
}

TEST_F(ExporterScrapeEngine, StuckNodeDoesNotHoldTheScrapeAndRecoversLater) {
  ScrapeEngine engine({{"127.0.0.1", 23100}}, milliseconds(300), fake_->Connector());
  ASSERT_EQ(UpCount(engine.Scrape()), 6);
  fake_->SetMode(Addr(23103), FakeCluster::Mode::kStuck);

  // The stuck call never returns until released: if Scrape() waited for it, this would hang.
  auto r = engine.Scrape();
  EXPECT_FALSE(Find(r, Addr(23103))->up);
  EXPECT_EQ(UpCount(r), 5);
  fake_->WaitStuck(Addr(23103));

  // Its connection is still busy with the straggler: the next scrape leaves it alone (no
  // second call on a connection in use) and reports the node down.
  const int calls_before = fake_->calls(Addr(23103));
  r = engine.Scrape();
  EXPECT_FALSE(Find(r, Addr(23103))->up);
  EXPECT_FALSE(Find(r, Addr(23103))->error.empty());
  EXPECT_EQ(fake_->calls(Addr(23103)), calls_before);
  EXPECT_EQ(UpCount(r), 5);

  fake_->SetMode(Addr(23103), FakeCluster::Mode::kAnswer);
  fake_->ReleaseAndDrain();
  EXPECT_EQ(UpCount(engine.Scrape()), 6);
}

TEST_F(ExporterScrapeEngine, FallsBackToTheSeedsWhenNoKnownNodeAnswers) {
  fake_->Answer("seed.example:7000", testing::LoadCapture("exporter_healthy.txt").at(Addr(23100)));
  ScrapeEngine engine({{"seed.example", 7000}}, milliseconds(2000), fake_->Connector());
  ASSERT_EQ(UpCount(engine.Scrape()), 6);
  for (int port = 23100; port <= 23105; ++port) {
    fake_->SetMode(Addr(port), FakeCluster::Mode::kDead);
  }
  auto r = engine.Scrape();
  EXPECT_TRUE(r.discovery_ok);  // the seed answered
  EXPECT_EQ(fake_->calls("seed.example:7000"), 2);
  EXPECT_TRUE(Find(r, Addr(23100))->up);  // the seed is 23100 under another name
  EXPECT_EQ(UpCount(r), 1);
}

TEST_F(ExporterScrapeEngine, NothingAnsweringIsNoDiscoveryAndTheSeedsDown) {
  for (int port = 23100; port <= 23105; ++port) {
    fake_->SetMode(Addr(port), FakeCluster::Mode::kDead);
  }
  ScrapeEngine engine({{"127.0.0.1", 23100}, {"127.0.0.1", 23101}}, milliseconds(2000),
                      fake_->Connector());
  auto r = engine.Scrape();
  EXPECT_FALSE(r.discovery_ok);
  EXPECT_FALSE(r.judgement);
  EXPECT_EQ(r.nodes.size(), 2u);
  EXPECT_EQ(UpCount(r), 0);
  EXPECT_TRUE(engine.KnownNodes().empty());
}

TEST_F(ExporterScrapeEngine, FollowsADepartureAndAJoin) {
  ScrapeEngine engine({{"127.0.0.1", 23100}}, milliseconds(2000), fake_->Connector());
  ASSERT_EQ(engine.Scrape().nodes.size(), 6u);

  // 23105 leaves: every other node forgets it, it is reset to a cluster of its own.
  for (int port = 23100; port <= 23104; ++port) {
    fake_->Edit(Addr(port), [](testing::CapturedNode& n) { Forget(n, 23105); });
  }
  fake_->Edit(Addr(23105), [](testing::CapturedNode& n) {
    n.cluster_nodes =
        "5c839d41d3238bc388aa02b8b7d7c674377eba71 127.0.0.1:23105@33105 "
        "myself,master - 0 0 0 connected\n";
  });
  auto r = engine.Scrape();  // still read this time (it was known), but not a member
  ASSERT_TRUE(r.judgement);
  EXPECT_EQ(r.judgement->covered, 16384);
  EXPECT_TRUE(r.judgement->consistent);
  EXPECT_EQ(r.known_nodes, 5);
  r = engine.Scrape();
  EXPECT_EQ(r.nodes.size(), 5u);
  EXPECT_EQ(Find(r, Addr(23105)), nullptr);

  // It joins again: 23100 lists it, so the same scrape reads it.
  const auto original = testing::LoadCapture("exporter_healthy.txt");
  fake_->Edit(Addr(23100), [&](testing::CapturedNode& n) { n = original.at(Addr(23100)); });
  fake_->Edit(Addr(23105), [&](testing::CapturedNode& n) { n = original.at(Addr(23105)); });
  r = engine.Scrape();
  EXPECT_EQ(r.nodes.size(), 6u);
  EXPECT_TRUE(Find(r, Addr(23105))->up);
}

TEST_F(ExporterScrapeEngine, ConcurrentScrapesAllSucceedAndNeverShareAConnection) {
  ScrapeEngine engine({{"127.0.0.1", 23100}}, milliseconds(5000), fake_->Connector());
  std::atomic<int> complete{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        auto r = engine.Scrape();
        if (r.discovery_ok && r.nodes.size() == 6 && UpCount(r) == 6) ++complete;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(complete, 20);
  EXPECT_FALSE(fake_->overlapped());
}

// Runs `f` on a thread with a stack of `bytes`; a handler that needs more dies of a stack
// overflow.
void OnSmallStack(size_t bytes, const std::function<void()>& f) {
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, bytes), 0);
  pthread_t thread;
  auto run = [](void* arg) -> void* {
    (*static_cast<const std::function<void()>*>(arg))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, run, const_cast<std::function<void()>*>(&f)), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

// The exporter answers /metrics on the HTTP server's threads. They have default (8 MiB) stacks
// since libmicrohttpd replaced civetweb (whose workers had 100 KiB), but a scrape's stack use
// stays bounded (slot owners live on the heap): a whole scrape and its rendering fit 64 KiB.
TEST_F(ExporterScrapeEngine, AScrapeAndItsRenderingFitACivetwebWorkerStack) {
  ScrapeEngine engine({{"127.0.0.1", 23100}}, milliseconds(2000), fake_->Connector());
  std::string first, second;
  OnSmallStack(64 * 1024, [&] {
    first = RenderMetrics(engine.Scrape());   // discovery from the seed
    second = RenderMetrics(engine.Scrape());  // the known nodes
  });
  EXPECT_NE(first.find("slotguard_exporter_discovery_ok 1"), std::string::npos);
  EXPECT_NE(second.find("redis_cluster_slots_covered 16384"), std::string::npos)
      << second.substr(0, 2000);
}

// spdlog's default logger writes into a string for the lifetime of this object.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    sink->set_pattern("%v");
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  int Count(const std::string& line) const {
    std::istringstream in(out_.str());
    int n = 0;
    for (std::string l; std::getline(in, l);) n += l == line;
    return n;
  }
  std::string text() const { return out_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream out_;
};

TEST_F(ExporterScrapeEngine, EachNodesServerIsLoggedOnceAndAgainWhenItChanges) {
  CapturedLog log;
  ScrapeEngine engine({{"127.0.0.1", 23100}}, milliseconds(2000), fake_->Connector());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(UpCount(engine.Scrape()), 6);
  for (int port = 23100; port <= 23105; ++port) {
    EXPECT_EQ(log.Count("node " + Addr(port) + " runs redis 7.0.15"), 1) << log.text();
  }
  // Upgraded in place to Valkey 8: said once more, with what it was.
  auto node = testing::LoadCapture("exporter_healthy.txt").at(Addr(23102));
  const std::string old_version = "redis_version:7.0.15";
  node.info.replace(node.info.find(old_version), old_version.size(),
                    "server_name:valkey\r\nredis_version:7.2.4\r\nvalkey_version:8.0.1");
  fake_->Answer(Addr(23102), node);
  for (int i = 0; i < 2; ++i) ASSERT_EQ(UpCount(engine.Scrape()), 6);
  EXPECT_EQ(log.Count("node " + Addr(23102) +
                      " runs valkey 8.0.1 (redis_version 7.2.4) (was redis 7.0.15)"),
            1)
      << log.text();
  EXPECT_EQ(log.Count("node " + Addr(23101) + " runs redis 7.0.15"), 1);
}

}  // namespace
}  // namespace slotguard::exporter
