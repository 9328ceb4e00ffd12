// The real engine against a real loopback cluster, with faults injected at chosen protocol
// steps through FaultConnector. After every test the key-level check (LiveCluster::Whole) must
// find every key at its slot's owner, no stray key, no open slot and all views agreeing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/clock.h"
#include "agent/engine.h"
#include "agent/slot_load.h"
#include "cluster/connection_pool.h"
#include "cluster/info.h"
#include "tests/unit/fault_injection.h"
#include "tests/unit/live_cluster.h"

namespace slotguard::agent {
namespace {

using cluster::testing::FaultAction;
using cluster::testing::FaultConnector;
using cluster::testing::FaultInjector;
using cluster::testing::FaultRule;
using cluster::testing::LiveCluster;

uint64_t MyEpoch(cluster::Connection& c) {
  auto r = c.Command({"CLUSTER", "INFO"});
  if (!r || r->IsError()) return 0;
  auto info = cluster::ParseInfo(r->str);
  if (!info) return 0;
  return static_cast<uint64_t>(info->GetNumber("cluster_my_epoch").value_or(0));
}

struct Master {
  int index = 0;
  std::string id;
  cluster::Endpoint endpoint;
  uint64_t epoch = 0;
  std::vector<cluster::SlotRange> slots;
};

class LiveFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string binary;
    SLOTGUARD_REQUIRE_REDIS_SERVER(binary);
    cluster_ = LiveCluster::Start(3, 0);
    ASSERT_TRUE(cluster_) << "could not start a loopback cluster";
    for (int i = 0; i < cluster_->size(); ++i) {
      for (const auto& n : cluster_->Nodes(i)) {
        if (!n.flags.myself || !n.flags.master) continue;
        masters_.push_back({i, n.id, n.endpoint, MyEpoch(*cluster_->Connect(i)), n.slots});
      }
    }
    ASSERT_EQ(masters_.size(), 3u);
    std::sort(masters_.begin(), masters_.end(),
              [](const Master& a, const Master& b) { return a.epoch < b.epoch; });
    char tmpl[] = "/tmp/slotguard-fault-journal.XXXXXX";
    journal_ = mkdtemp(tmpl);
  }

  void TearDown() override {
    std::error_code ec;
    if (!journal_.empty()) std::filesystem::remove_all(journal_, ec);
  }

  // `per_slot` keys in each of `slots`, written at `owner`; values of `pad` bytes more.
  void Load(const Master& owner, const std::vector<int>& slots, int per_slot, size_t pad = 0) {
    auto c = cluster_->Connect(owner.index);
    std::vector<cluster::Argv> sets;
    for (const auto& [slot, keys] : LiveCluster::KeysFor(slots, per_slot)) {
      for (const auto& k : keys) {
        keys_[k] = "v-" + k + std::string(pad, 'x');
        sets.push_back({"SET", k, keys_[k]});
      }
    }
    auto r = c->Pipeline(sets);
    ASSERT_TRUE(r) << r.error().message;
    for (const auto& x : *r) ASSERT_TRUE(x.IsOk()) << x.str;
  }

  EngineOptions Options() const {
    EngineOptions o;
    o.seeds = {cluster_->endpoint(0)};
    o.journal_dir = journal_;
    o.group_slots = 200;
    o.rollback_timeout = std::chrono::seconds(60);
    return o;
  }

  std::unique_ptr<LiveCluster> cluster_;
  std::vector<Master> masters_;  // by config epoch, lowest first
  std::map<std::string, std::string> keys_;
  std::string journal_;
  cluster::ConnectionPool pool_{cluster::ConnectOptions{
      std::chrono::milliseconds(1000), std::chrono::milliseconds(5000), {}}};
  FaultInjector faults_;
  FaultConnector connector_{pool_, faults_};
  RealClock clock_;
  NullEngineObserver observer_;
};

std::vector<int> FirstSlots(const Master& m, int n) {
  std::vector<int> out;
  for (int s = m.slots.front().first; static_cast<int>(out.size()) < n; ++s) out.push_back(s);
  return out;
}

// Hazard 1: the target's two importing-path claims of a group (its first and last slot) are
// refused (-BUSY during a long script), while the target's config epoch is below the source's.
// Claiming the slots between at that epoch lets the source's next gossip take them back, and
// the target deletes their keys (dirty slots). The engine must claim nothing more once the first
// claim fails, and its rollback must bring every key home.
TEST_F(LiveFaultTest, RefusedFirstClaimLosesNoKey) {
  const Master& target = masters_.front();
  const Master& source = masters_.back();
  ASSERT_LT(target.epoch, source.epoch);
  const auto slots = FirstSlots(source, 6);
  Load(source, slots, 20);
  for (int s : {slots.front(), slots.back()}) {
    FaultRule rule;
    rule.node = target.endpoint;
    rule.pattern = "^CLUSTER SETSLOT " + std::to_string(s) + " NODE ";
    faults_.Add(rule);
  }
  Engine engine(connector_, clock_, Options(), observer_);
  auto outcome = engine.RunBatch({"b1", source.id, target.id, slots, std::nullopt});
  ASSERT_TRUE(outcome) << outcome.error().message;
  EXPECT_EQ(outcome->state, BatchState::kRolledBack) << outcome->reason;
  EXPECT_NE(outcome->reason.find("refused"), std::string::npos) << outcome->reason;
  EXPECT_EQ(cluster_->Whole(keys_), "");
}

// The reply of the first claim is lost after the target ran it: the engine cannot know whether
// the epoch moved, so it claims nothing more; the rollback converges the group.
TEST_F(LiveFaultTest, LostReplyOfTheFirstClaimStopsTheGroup) {
  const Master& target = masters_.front();
  const Master& source = masters_.back();
  const auto slots = FirstSlots(source, 5);
  Load(source, slots, 10);
  FaultRule rule;
  rule.node = target.endpoint;
  rule.pattern = "^CLUSTER SETSLOT " + std::to_string(slots.front()) + " NODE ";
  rule.action = FaultAction::kDropReply;
  faults_.Add(rule);
  Engine engine(connector_, clock_, Options(), observer_);
  auto outcome = engine.RunBatch({"b1", source.id, target.id, slots, std::nullopt});
  ASSERT_TRUE(outcome) << outcome.error().message;
  EXPECT_EQ(outcome->state, BatchState::kRolledBack) << outcome->reason;
  EXPECT_NE(outcome->reason.find("unknown"), std::string::npos) << outcome->reason;
  EXPECT_EQ(cluster_->Whole(keys_), "");
}

// No fault: the group moves, and the target's epoch ends above the source's.
TEST_F(LiveFaultTest, MovedGroupOutranksTheSource) {
  const Master& target = masters_.front();
  const Master& source = masters_.back();
  const auto slots = FirstSlots(source, 8);
  Load(source, slots, 10);
  Engine engine(connector_, clock_, Options(), observer_);
  auto outcome = engine.RunBatch({"b1", source.id, target.id, slots, std::nullopt});
  ASSERT_TRUE(outcome) << outcome.error().message;
  EXPECT_EQ(outcome->state, BatchState::kDone) << outcome->reason;
  EXPECT_GT(MyEpoch(*cluster_->Connect(target.index)), MyEpoch(*cluster_->Connect(source.index)));
  EXPECT_EQ(cluster_->Whole(keys_), "");
}

class FailureCounter final : public EngineObserver {
 public:
  void OnMigrateFailure(const std::string& reason) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++reasons_[reason];
  }
  int count(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mutex_);
    return reasons_[reason];
  }

 private:
  std::mutex mutex_;
  std::map<std::string, int> reasons_;
};

// Hazard 5: a MIGRATE times out after the target applied it, so the key is on both nodes; a
// client then deletes it at the source (still the owner). The engine must not hand the slot
// over with the target's stale copy, which would bring the deleted key back.
TEST_F(LiveFaultTest, KeyDeletedAfterATimedOutMigrateStaysDeleted) {
  const Master& target = masters_.front();
  const Master& source = masters_.back();
  const auto slots = FirstSlots(source, 2);
  Load(source, slots, 10);
  const std::string victim = LiveCluster::KeysFor({slots[0]}, 1).at(slots[0]).front();
  ASSERT_EQ(keys_.count(victim), 1u);

  // The target sleeps through the first MIGRATE: the source gives up after 200 ms (IOERR),
  // the target applies the RESTORE when it wakes.
  auto sleeper = cluster_->Connect(target.index);
  FaultRule slow;
  slow.node = source.endpoint;
  slow.pattern = "^MIGRATE ";
  slow.action = FaultAction::kCallback;
  slow.callback = [&] {
    ASSERT_TRUE(sleeper->Send({{"DEBUG", "SLEEP", "1"}}));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let it start sleeping
  };
  faults_.Add(slow);
  // Before the engine looks at the slot again, a client deletes the key at the source.
  auto client = cluster_->Connect(source.index);
  FaultRule del;
  del.node = source.endpoint;
  del.pattern = "^CLUSTER GETKEYSINSLOT " + std::to_string(slots[0]) + " ";
  del.nth = 2;
  del.action = FaultAction::kCallback;
  del.callback = [&] {
    auto r = client->Command({"DEL", victim});
    ASSERT_TRUE(r && r->integer == 1) << "the victim was not at the source";
  };
  faults_.Add(del);

  auto options = Options();
  options.migrate_timeout = std::chrono::milliseconds(200);
  FailureCounter failures;
  Engine engine(connector_, clock_, options, failures);
  auto outcome = engine.RunBatch({"b1", source.id, target.id, slots, std::nullopt});
  ASSERT_TRUE(outcome) << outcome.error().message;
  (void)sleeper->Receive(1);
  ASSERT_GE(failures.count("ioerr"), 1) << "the injected MIGRATE timeout did not happen";
  ASSERT_EQ(faults_.hits().size(), 2u) << "the client's delete was not injected";
  EXPECT_EQ(outcome->state, BatchState::kDone) << outcome->reason;
  keys_.erase(victim);
  EXPECT_EQ(cluster_->Whole(keys_), "");
  auto at_target = cluster_->Connect(target.index)->Command({"EXISTS", victim});
  ASSERT_TRUE(at_target);
  EXPECT_EQ(at_target->integer, 0) << "the deleted key came back with the slot";
}

// Hazard 3: a BUSYKEY conflict mid-move (the target got a different value under a name the
// source still holds) stops the move, and the rollback cannot finish the slot forward either.
// Settling at the source used to make the source STABLE and then pull the moved keys back:
// meanwhile every key already at the target read as missing. The slot must stay open (every
// key reachable through -ASK) until the operator resolves the key; a rerun then converges.
TEST_F(LiveFaultTest, ConflictMidMoveNeverHidesTheMovedKeys) {
  const Master& target = masters_.front();
  const Master& source = masters_.back();
  const std::vector<int> slots = FirstSlots(source, 1);
  Load(source, slots, 150);  // two MIGRATEs of 100 and 50 keys
  // The last key of the slot goes in the second MIGRATE (GETKEYSINSLOT lists in order).
  auto lister = cluster_->Connect(source.index);
  auto listed = lister->Command({"CLUSTER", "GETKEYSINSLOT", std::to_string(slots[0]), "1000"});
  ASSERT_TRUE(listed && listed->elements.size() == 150u);
  const std::string conflict = listed->elements.back().str;
  const std::string moved = listed->elements.front().str;

  auto writer = cluster_->Connect(target.index);
  FaultRule plant;
  plant.node = source.endpoint;
  plant.pattern = "^MIGRATE ";
  plant.nth = 2;
  plant.action = FaultAction::kCallback;
  plant.callback = [&] {
    auto r = writer->Pipeline({{"ASKING"}, {"SET", conflict, "planted-on-target"}});
    ASSERT_TRUE(r && (*r)[1].IsOk());
  };
  faults_.Add(plant);
  // If the source is ever made STABLE while moved keys sit at the target, a client reading one
  // of them right then finds nothing.
  auto reader = cluster_->Connect(source.index);
  std::vector<std::string> missed;
  FaultRule watch;
  watch.node = target.endpoint;
  watch.pattern = "^MIGRATE ";
  watch.times = 0;
  watch.action = FaultAction::kCallback;
  watch.callback = [&] {
    auto r = reader->Command({"GET", moved});
    if (r && r->IsNil()) missed.push_back(moved);
  };
  faults_.Add(watch);

  {
    Engine engine(connector_, clock_, Options(), observer_);
    auto outcome = engine.RunBatch({"b1", source.id, target.id, slots, std::nullopt});
    ASSERT_TRUE(outcome) << outcome.error().message;
    EXPECT_EQ(outcome->state, BatchState::kFailed) << outcome->reason;
    EXPECT_NE(outcome->reason.find("left open"), std::string::npos) << outcome->reason;
  }
  EXPECT_TRUE(missed.empty()) << "a moved key read as missing at the source";
  // Still reachable: the source answers -ASK for the moved key, the target serves it.
  auto at_source = reader->Command({"GET", moved});
  ASSERT_TRUE(at_source);
  EXPECT_TRUE(at_source->IsError() && at_source->str.rfind("ASK", 0) == 0) << at_source->str;
  auto at_target = writer->Pipeline({{"ASKING"}, {"GET", moved}});
  ASSERT_TRUE(at_target);
  EXPECT_EQ((*at_target)[1].str, keys_[moved]);

  // The operator drops the planted copy; the next run converges the batch from its journal.
  ASSERT_TRUE(writer->Pipeline({{"ASKING"}, {"DEL", conflict}}));
  faults_.Clear();
  Engine again(connector_, clock_, Options(), observer_);
  auto recovered = again.Recover();
  ASSERT_TRUE(recovered) << recovered.error().message;
  EXPECT_EQ(cluster_->Whole(keys_), "");
}

// Hazard 7: the target stops answering right after it was made IMPORTING, before the source
// was ever MIGRATING. Clients are safe (the source owns every slot and sends nobody away), so
// the batch must end at once saying so, not retry the dead node for the whole rollback
// timeout; the next run, with the target back, clears its IMPORTING state.
TEST_F(LiveFaultTest, DeadTargetBeforeMigratingEndsPromptlyWithClientsSafe) {
  const Master& target = masters_.front();
  const Master& source = masters_.back();
  const auto slots = FirstSlots(source, 4);
  Load(source, slots, 5);
  FaultRule die;
  die.node = target.endpoint;
  die.pattern = "^CLUSTER SETSLOT \\d+ IMPORTING ";
  die.action = FaultAction::kCallback;
  die.callback = [&] {
    FaultRule gone;  // from the next command on, the target never answers
    gone.node = target.endpoint;
    gone.pattern = ".";
    gone.times = 0;
    gone.action = FaultAction::kCut;
    faults_.Add(gone);
  };
  faults_.Add(die);
  auto options = Options();
  options.rollback_timeout = std::chrono::seconds(20);
  {
    Engine engine(connector_, clock_, options, observer_);
    auto outcome = engine.RunBatch({"b1", source.id, target.id, slots, std::nullopt});
    ASSERT_TRUE(outcome) << outcome.error().message;
    EXPECT_EQ(outcome->state, BatchState::kFailed) << outcome->reason;
    EXPECT_NE(outcome->reason.find("clients are safe"), std::string::npos) << outcome->reason;
  }
  // Clients are safe meanwhile: every key reads back at the source.
  auto reader = cluster_->Connect(source.index);
  for (const auto& [key, value] : keys_) {
    auto r = reader->Command({"GET", key});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->str, value) << key;
  }
  faults_.Clear();  // the target answers again
  Engine again(connector_, clock_, Options(), observer_);
  auto recovered = again.Recover();
  ASSERT_TRUE(recovered) << recovered.error().message;
  EXPECT_EQ(cluster_->Whole(keys_), "");
}

// The keys of each MIGRATE the engine sent (its words after KEYS).
std::vector<size_t> KeysPerMigrate(const std::vector<cluster::testing::FaultHit>& hits) {
  std::vector<size_t> out;
  for (const auto& h : hits) {
    auto at = std::find(h.argv.begin(), h.argv.end(), "KEYS");
    if (!h.argv.empty() && h.argv[0] == "MIGRATE" && at != h.argv.end()) {
      out.push_back(static_cast<size_t>(h.argv.end() - at - 1));
    }
  }
  return out;
}

// Hazard 6, bytes per MIGRATE: a slot of 100 KB values goes 2 keys per MIGRATE under a
// 256 KiB bound (measured in preflight: the batch carries no sizes), while a slot of small keys
// in the same batch still goes 100 per MIGRATE.
TEST_F(LiveFaultTest, BigKeysGoFewPerMigrate) {
  const Master& target = masters_.front();
  const Master& source = masters_.back();
  const auto slots = FirstSlots(source, 2);
  Load(source, {slots[0]}, 20, 100 * 1024);
  Load(source, {slots[1]}, 150);
  FaultRule watch;  // records every MIGRATE
  watch.node = source.endpoint;
  watch.pattern = "^MIGRATE ";
  watch.times = 0;
  watch.action = FaultAction::kCallback;
  faults_.Add(watch);
  auto options = Options();
  options.migrate_bytes = 256 * 1024;
  Engine engine(connector_, clock_, options, observer_);
  auto outcome = engine.RunBatch({"b1", source.id, target.id, slots, std::nullopt});
  ASSERT_TRUE(outcome) << outcome.error().message;
  EXPECT_EQ(outcome->state, BatchState::kDone) << outcome->reason;
  EXPECT_EQ(outcome->keys_moved, 170);
  const auto sizes = KeysPerMigrate(faults_.hits());
  ASSERT_FALSE(sizes.empty());
  // Each big key counts about 100 KB (MEMORY USAGE), so 256 KiB holds 2.
  EXPECT_EQ(std::count(sizes.begin(), sizes.end(), 2u), 10) << "MIGRATEs of 2 big keys";
  EXPECT_EQ(std::count(sizes.begin(), sizes.end(), 100u), 1) << "small keys: 100 per MIGRATE";
  EXPECT_EQ(cluster_->Whole(keys_), "");
}

void SetConfig(cluster::Connection& c, const std::string& name, const std::string& value) {
  auto r = c.Command({"CONFIG", "SET", name, value});
  ASSERT_TRUE(r && r->IsOk()) << name << ": " << (r ? r->str : r.error().message);
}

// maxmemory = the node's used_memory now plus `room` bytes, noeviction.
void LeaveRoom(cluster::Connection& c, int64_t room) {
  auto m = ReadNodeMemory(c);
  ASSERT_TRUE(m) << m.error().message;
  SetConfig(c, "maxmemory-policy", "noeviction");
  SetConfig(c, "maxmemory", std::to_string(m->used_memory + room));
}

// Hazard 6, preflight: a batch whose estimated bytes do not fit the target's maxmemory is
// refused before anything changes, with the reason named (and, under an evicting policy, that
// unrelated keys would go).
TEST_F(LiveFaultTest, PreflightRefusesABatchTheTargetHasNoRoomFor) {
  const Master& target = masters_.front();
  const Master& source = masters_.back();
  const auto slots = FirstSlots(source, 4);
  Load(source, slots, 10, 64 * 1024);  // about 2.7 MB
  auto admin = cluster_->Connect(target.index);
  LeaveRoom(*admin, 1 << 20);
  {
    Engine engine(connector_, clock_, Options(), observer_);
    auto outcome = engine.RunBatch({"b1", source.id, target.id, slots, std::nullopt});
    ASSERT_FALSE(outcome) << "not refused: " << ToString(outcome->state) << " " << outcome->reason;
    const std::string& why = outcome.error().message;
    EXPECT_NE(why.find("preflight for batch b1: target " + target.endpoint.ToString()),
              std::string::npos)
        << why;
    EXPECT_NE(why.find("no memory headroom"), std::string::npos) << why;
    EXPECT_NE(why.find("maxmemory-policy noeviction"), std::string::npos) << why;
  }
  SetConfig(*admin, "maxmemory-policy", "allkeys-lru");
  {
    Engine engine(connector_, clock_, Options(), observer_);
    auto outcome = engine.RunBatch({"b2", source.id, target.id, slots, std::nullopt});
    ASSERT_FALSE(outcome) << "not refused: " << outcome->reason;
    EXPECT_NE(outcome.error().message.find("would evict unrelated keys"), std::string::npos)
        << outcome.error().message;
  }
  // Nothing moved: every key at the source, no slot opened.
  auto src = cluster_->Connect(source.index);
  for (int slot : slots) {
    auto n = src->Command({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)});
    ASSERT_TRUE(n);
    EXPECT_EQ(n->integer, 10) << "slot " << slot;
  }
  EXPECT_EQ(cluster_->Whole(keys_), "");
}

// Hazard 6, rollback from a full target: the target (noeviction) fills up while the batch's
// second group moves in, so MIGRATE fails with -OOM half way through it. The rollback used to
// finish that open group forward first, into the full target, and could not; it must move the
// first group (owned by the target) back first, which makes room, then finish and return the
// open one.
TEST_F(LiveFaultTest, RollbackFromAFullTargetBringsEveryKeyHome) {
  const Master& target = masters_.front();
  const Master& source = masters_.back();
  const auto slots = FirstSlots(source, 4);
  Load(source, slots, 10, 100 * 1024);  // about 1 MB a slot
  auto admin = cluster_->Connect(target.index);
  FaultRule fill;  // when the second group opens, the target has room for about 1.3 slots more
  fill.node = target.endpoint;
  fill.pattern = "^CLUSTER SETSLOT " + std::to_string(slots[2]) + " IMPORTING ";
  fill.action = FaultAction::kCallback;
  fill.callback = [&] { LeaveRoom(*admin, 1300 * 1024); };
  faults_.Add(fill);
  auto options = Options();
  options.group_slots = 2;
  options.rollback_timeout = std::chrono::seconds(15);
  Engine engine(connector_, clock_, options, observer_);
  auto outcome = engine.RunBatch({"b1", source.id, target.id, slots, std::nullopt});
  ASSERT_TRUE(outcome) << outcome.error().message;
  ASSERT_EQ(faults_.hits().size(), 1u) << "the target was not made full";
  EXPECT_NE(outcome->reason.find("out of memory"), std::string::npos) << outcome->reason;
  EXPECT_EQ(outcome->state, BatchState::kRolledBack) << outcome->reason;
  EXPECT_EQ(cluster_->Whole(keys_), "");
}

// Where clients find `key`: at `owner`, following one -ASK.
std::string ReadFollowingAsk(const LiveCluster& c, int owner, const std::string& key) {
  auto r = c.Connect(owner)->Command({"GET", key});
  if (!r) return "(" + r.error().message + ")";
  if (r->IsError() && r->str.rfind("ASK ", 0) == 0) {
    auto to = cluster::ParseEndpoint(r->str.substr(r->str.rfind(' ') + 1));
    if (!to) return "(bad ASK " + r->str + ")";
    cluster::RedisConnection there(*to);
    auto a = there.Pipeline({{"ASKING"}, {"GET", key}});
    if (!a) return "(" + a.error().message + ")";
    return (*a)[1].IsNil() ? "(nil at " + to->ToString() + ")" : (*a)[1].str;
  }
  return r->IsNil() ? "(nil)" : r->str;
}

// Hazard 6, a target too full for even one slot of the open group: the rollback cannot bring
// those keys home (only through the target), so it stops with the slots open and says why;
// every key stays reachable. Once memory is freed the next run converges the batch.
TEST_F(LiveFaultTest, TargetTooFullForOneSlotLeavesEveryKeyReachable) {
  const Master& target = masters_.front();
  const Master& source = masters_.back();
  const auto slots = FirstSlots(source, 3);
  Load(source, slots, 10, 100 * 1024);
  auto admin = cluster_->Connect(target.index);
  FaultRule fill;  // room for half a slot once the group is open
  fill.node = source.endpoint;
  fill.pattern = "^CLUSTER SETSLOT " + std::to_string(slots[0]) + " MIGRATING ";
  fill.action = FaultAction::kCallback;
  fill.callback = [&] { LeaveRoom(*admin, 500 * 1024); };
  faults_.Add(fill);
  auto options = Options();
  options.rollback_timeout = std::chrono::seconds(15);
  {
    Engine engine(connector_, clock_, options, observer_);
    auto outcome = engine.RunBatch({"b1", source.id, target.id, slots, std::nullopt});
    ASSERT_TRUE(outcome) << outcome.error().message;
    ASSERT_EQ(faults_.hits().size(), 1u) << "the target was not made full";
    EXPECT_EQ(outcome->state, BatchState::kFailed) << outcome->reason;
    EXPECT_NE(outcome->reason.find("does not fit there even alone"), std::string::npos)
        << outcome->reason;
    EXPECT_NE(outcome->reason.find("every key reachable"), std::string::npos) << outcome->reason;
  }
  for (const auto& [key, value] : keys_) {
    EXPECT_EQ(ReadFollowingAsk(*cluster_, source.index, key), value) << key;
  }
  SetConfig(*admin, "maxmemory", "0");
  faults_.Clear();
  Engine again(connector_, clock_, options, observer_);
  auto recovered = again.Recover();
  ASSERT_TRUE(recovered) << recovered.error().message;
  EXPECT_EQ(cluster_->Whole(keys_), "");
}

}  // namespace
}  // namespace slotguard::agent
