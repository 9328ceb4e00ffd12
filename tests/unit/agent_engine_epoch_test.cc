// Hazard 1 of issue 8, against the fake's per-node epochs and gossip: a slot the target claims
// without an epoch bump is only safe once the target's config epoch is above the source's, or
// the source's next ping takes the slot back and the target deletes its keys.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "agent/engine.h"
#include "agent_fake_cluster.h"
#include "cluster/info.h"
#include "fault_injection.h"

namespace slotguard::agent {
namespace {

using cluster::testing::FaultAction;
using cluster::testing::FaultConnector;
using cluster::testing::FaultInjector;
using cluster::testing::FaultRule;
using testing::FakeCluster;
using testing::FakeNode;
using testing::LoggedCommand;

std::string TempDir() {
  std::string tmpl = std::filesystem::temp_directory_path() / "slotguard-epoch-test-XXXXXX";
  return mkdtemp(tmpl.data());
}

std::vector<int> Range(int first, int last) {
  std::vector<int> out;
  for (int s = first; s <= last; ++s) out.push_back(s);
  return out;
}

// Moves from node 0, whose config epoch (5) is above the target's (node 1, 2), through a
// FaultConnector; the guards read the fake directly.
struct EpochFixture {
  FakeCluster fake;
  FaultInjector faults;
  FaultConnector connector{fake, faults};
  FakeClock clock;
  NullEngineObserver observer;
  std::string dir = TempDir();
  EngineOptions options;
  static constexpr uint64_t kSourceEpoch = 5;

  EpochFixture() {
    fake.SetConfigEpoch(0, kSourceEpoch);
    options.seeds = {fake.node(0).endpoint};
    options.journal_dir = dir;
    options.group_slots = 6;
    options.guards.interval = std::chrono::milliseconds(20);
    options.rollback_timeout = std::chrono::seconds(5);
  }
  ~EpochFixture() { std::filesystem::remove_all(dir); }
  std::unique_ptr<Engine> MakeEngine() {
    return std::make_unique<Engine>(connector, clock, options, observer, &fake);
  }
  Batch MakeBatch(std::vector<int> slots) {
    return Batch{"b1", fake.node(0).id, fake.node(1).endpoint.ToString(), std::move(slots),
                 std::nullopt};
  }
  const std::string& source() { return fake.node(0).id; }
  const std::string& target() { return fake.node(1).id; }
  void Refuse(const std::string& pattern) {
    FaultRule rule;
    rule.node = fake.node(1).endpoint;
    rule.pattern = pattern;
    rule.action = FaultAction::kRefuse;
    rule.error =
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN "
        "NOSAVE. (injected)";
    faults.Add(std::move(rule));
  }
  std::map<std::string, std::string> AllKeys() {
    std::lock_guard<std::mutex> lock(fake.mutex());
    std::map<std::string, std::string> out;
    for (int n = 0; n < 3; ++n) out.insert(fake.node(n).keys.begin(), fake.node(n).keys.end());
    return out;
  }
  // What made keys disappear, in words (empty when nothing did).
  std::string DirtySlots() {
    std::ostringstream out;
    for (const auto& d : fake.dirty_slots()) {
      out << "\n  " << (d.node == target() ? "target" : d.node) << " deleted " << d.keys.size()
          << " keys of slot " << d.slot << ": a claim of "
          << (d.winner == source() ? "the source" : d.winner) << " at epoch " << d.winner_epoch
          << " outranked its own at epoch " << d.owner_epoch;
    }
    return out.str();
  }
  // Every node names one owner for `slot` (the owner, or "" when they disagree).
  std::string AgreedOwner(int slot) {
    std::lock_guard<std::mutex> lock(fake.mutex());
    const std::string owner = fake.node(0).view[slot];
    for (int n = 1; n < 6; ++n) {
      if (fake.node(n).view[slot] != owner) return "";
    }
    return owner;
  }
};

TEST(EngineEpochTest, RefusedFirstClaimLosesNoKey) {
  EpochFixture f;
  const auto slots = Range(0, 5);  // one group: 0 and 5 take the importing path, 1-4 do not
  for (int s : slots) f.fake.AddKeys(s, 3);
  const auto before = f.AllKeys();
  ASSERT_EQ(before.size(), 18u);
  // The target is busy (a long script) when the group's two importing-path claims arrive,
  // once each: a later attempt (a retry, or the rollback's) runs.
  f.Refuse("^CLUSTER SETSLOT 0 NODE " + f.target() + "$");
  f.Refuse("^CLUSTER SETSLOT 5 NODE " + f.target() + "$");
  auto engine = f.MakeEngine();
  auto out = engine->RunBatch(f.MakeBatch(slots));
  engine.reset();
  // Whatever the engine ended with, the cluster's gossip has its say.
  f.fake.DeliverGossip();
  const auto hits = f.faults.hits();
  ASSERT_FALSE(hits.empty()) << "the injected -BUSY did not fire";
  ASSERT_EQ(hits[0].argv[2], "0") << "the first refusal must hit the group's first claim";

  const std::string why = (out ? "; engine ended " + ToString(out->state) + ": " + out->reason
                               : "; engine error: " + out.error().message) +
                          f.DirtySlots();
  EXPECT_TRUE(f.fake.dirty_slots().empty())
      << "a node deleted keys of a slot a higher-epoch claim took from it" << why;
  for (int s : slots) EXPECT_NE(f.AgreedOwner(s), "") << "views disagree on slot " << s << why;
  // Every key is where a client finds it: at its slot's owner, or, while the slot is still open,
  // at the node the owner sends ASK to.
  std::lock_guard<std::mutex> lock(f.fake.mutex());
  std::vector<std::string> lost;
  for (const auto& [key, value] : before) {
    const int slot = cluster::KeySlot(key);
    const FakeNode* owner = f.fake.ById(f.fake.node(0).view[slot]);
    const FakeNode* at = owner;
    if (!owner->keys.count(key) && owner->migrating.count(slot)) {
      const FakeNode* asked = f.fake.ById(owner->migrating.at(slot));
      if (asked->importing.count(slot)) at = asked;
    }
    auto it = at->keys.find(key);
    if (it == at->keys.end() || it->second != value) lost.push_back(key);
  }
  EXPECT_TRUE(lost.empty()) << lost.size() << " of " << before.size()
                            << " keys are not where clients find them" << why;
}

// Claims the target made without a bump (SETSLOT NODE itself on a slot it was not importing)
// before the agent had read back its config epoch strictly above the source's: the last
// cluster_my_epoch of each in the log's CLUSTER INFO replies (a BUMPEPOCH reply, "BUMPED 6" or
// "STILL 6", also reads the target's back).
std::vector<std::string> UnfencedClaims(const std::vector<LoggedCommand>& log,
                                        const std::string& source, const std::string& target) {
  std::set<int> importing;   // on the target
  double source_epoch = -1;  // the last read, -1 before any
  double target_epoch = -1;
  std::vector<std::string> out;
  for (size_t i = 0; i < log.size(); ++i) {
    const auto& c = log[i];
    const auto& a = c.argv;
    if (c.reply.IsError() || a.size() < 2 || a[0] != "CLUSTER") continue;
    if (a[1] == "INFO" && (c.node == source || c.node == target)) {
      auto info = cluster::ParseInfo(c.reply.str);
      auto epoch = info ? info->GetNumber("cluster_my_epoch") : std::nullopt;
      (c.node == source ? source_epoch : target_epoch) = epoch ? *epoch : -1;
      continue;
    }
    if (a[1] == "BUMPEPOCH" && c.node == target) {
      const size_t space = c.reply.str.find(' ');
      if (space != std::string::npos) target_epoch = std::stod(c.reply.str.substr(space + 1));
      continue;
    }
    if (c.node != target || a[1] != "SETSLOT" || a.size() < 4) continue;
    const int slot = std::stoi(a[2]);
    if (a[3] == "IMPORTING") importing.insert(slot);
    if (a[3] == "STABLE") importing.erase(slot);
    if (a[3] != "NODE" || a.size() < 5 || a[4] != target) continue;
    if (!importing.count(slot) && !(source_epoch >= 0 && target_epoch > source_epoch)) {
      auto shown = [](double e) {
        return e < 0 ? std::string("none") : std::to_string(static_cast<int64_t>(e));
      };
      out.push_back("#" + std::to_string(i) + " SETSLOT " + a[2] +
                    " NODE target, last read my_epochs: target " + shown(target_epoch) +
                    ", source " + shown(source_epoch));
    }
    importing.erase(slot);
  }
  return out;
}

TEST(EngineEpochTest, NoClaimWithoutABumpBeforeTheTargetEpochIsReadAboveTheSource) {
  EpochFixture f;
  const auto slots = Range(0, 11);  // two groups of six
  for (int s : slots) f.fake.AddKeys(s, 2);
  auto engine = f.MakeEngine();
  auto out = engine->RunBatch(f.MakeBatch(slots));
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->state, BatchState::kDone) << out->reason;
  for (int s : slots) EXPECT_EQ(f.AgreedOwner(s), f.target()) << s;
  EXPECT_EQ(f.fake.node(1).keys.size(), 24u) << f.DirtySlots();
  EXPECT_EQ(f.fake.node(0).epoch, EpochFixture::kSourceEpoch);  // a forward move never bumps it
  std::string claims;
  for (const auto& c : UnfencedClaims(f.fake.log(), f.source(), f.target())) claims += "\n  " + c;
  EXPECT_EQ(claims, "") << "the target claimed slots without a bump before its epoch was seen "
                           "above the source's:";
}

}  // namespace
}  // namespace slotguard::agent
