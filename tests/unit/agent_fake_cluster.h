#pragma once

// An in-memory Redis Cluster behind the cluster::Connector interface, for the engine's unit
// tests: enough of CLUSTER NODES/INFO/SETSLOT/BUMPEPOCH/GETKEYSINSLOT/COUNTKEYSINSLOT, MIGRATE
// (with BUSYKEY and injected IOERRs), DUMP, ASKING, GET/TYPE, DEL, INFO, CONFIG GET to run the
// real migrator, engine and recovery against. Every command is logged with its reply for
// ordering assertions. Thread-safe (the engine's guard thread reads it too).
//
// Epochs and gossip follow Redis 7.2's src/cluster.c, because the engine's safety depends on
// them: each node has its own current epoch, its config epoch, and the config epochs of the
// others as last gossiped to it. Only `SETSLOT NODE myself` on an importing node bumps
// (clusterBumpConfigEpochWithoutConsensus) and broadcasts at once; every other change reaches
// the other nodes with gossip, which either follows every command (Gossip::kAfterEveryCommand,
// the default: a cluster that converges between commands) or waits for DeliverGossip()
// (Gossip::kHeld: late gossip). On receipt a claim wins a slot when it outranks the owner's
// epoch as the receiver knows it (clusterUpdateSlotsConfigWith): importing slots are skipped,
// and a slot the receiver owned and still holds keys of is emptied (dirty slots). Replicas
// learn slots by gossip like everyone else. Faults (refused commands, lost replies) belong in
// tests/unit/fault_injection.h, not here.
//
// The migration lease's scripts (agent/lease.h) run on a store of their own, one for the whole
// cluster, answered by any node (no slot routing) and kept out of the nodes' keys so they do
// not count as data; its TTL does not run down by itself: ExpireLease() ends it.

#include <algorithm>
#include <array>
#include <atomic>
#include <bitset>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/lease.h"
#include "cluster/connection.h"
#include "cluster/key_slot.h"
#include "cluster/nodes.h"
#include "tests/unit/fake_replies.h"

namespace slotguard::agent::testing {

struct FakeNode {
  std::string id;
  cluster::Endpoint endpoint;
  bool master = true;
  std::string master_id;
  // Config epoch (a replica reports its master's, as it knows it). Set directly, the others
  // learn it by gossip; FakeCluster::SetConfigEpoch sets it as if gossip had converged.
  uint64_t epoch = 0;
  uint64_t current_epoch = 0;                    // never below `epoch` (read as the max of both)
  std::map<std::string, uint64_t> known_epochs;  // other node id -> its config epoch, as gossiped
  std::array<std::string, cluster::kSlotCount> view;  // owner id per slot, in this node's view
  // Slots whose owner (another node) gossiped without claiming them: any claim wins them
  // (Redis 7.2's owner_not_claiming_slot).
  std::bitset<cluster::kSlotCount> owner_not_claiming;
  std::map<int, std::string> migrating;  // slot -> peer id
  std::map<int, std::string> importing;  // slot -> peer id
  std::map<std::string, std::string> keys;
  bool stopped = false;  // every command fails like a timeout
  double migrate_failed_calls = 0;
  double ioerr = 0;
};

struct LoggedCommand {
  std::string node;  // node id
  cluster::Argv argv;
  cluster::Reply reply;  // what the fake answered (a FaultConnector's refusals never reach it)
};

// Keys a node deleted because a higher-epoch claim took a slot it still held keys of.
struct DirtySlot {
  std::string node;    // the node that lost the slot and deleted the keys
  std::string winner;  // the claimant
  int slot;
  uint64_t winner_epoch;
  uint64_t owner_epoch;  // the epoch the node knew its own claim by
  std::vector<std::string> keys;
};

class FakeCluster : public cluster::Connector {
 public:
  // `masters` masters with an even slot split, one replica each.
  explicit FakeCluster(int masters = 3) {
    int per = cluster::kSlotCount / masters;
    std::vector<std::string> ids;
    for (int m = 0; m < masters; ++m) {
      FakeNode n;
      n.id = std::string(40 - 1, 'a' + m) + std::to_string(m);
      n.endpoint = {"127.0.0.1", 7000 + m};
      n.epoch = static_cast<uint64_t>(m + 1);
      ids.push_back(n.id);
      nodes_.push_back(std::move(n));
    }
    for (int m = 0; m < masters; ++m) {
      FakeNode r;
      r.id = std::string(40 - 1, 'f') + std::to_string(m);
      r.endpoint = {"127.0.0.1", 7000 + masters + m};
      r.master = false;
      r.master_id = ids[m];
      r.epoch = static_cast<uint64_t>(m + 1);
      nodes_.push_back(std::move(r));
    }
    for (int s = 0; s < cluster::kSlotCount; ++s) {
      const std::string& owner = ids[std::min(masters - 1, s / per)];
      for (auto& n : nodes_) n.view[s] = owner;
    }
    for (auto& n : nodes_) {
      n.current_epoch = static_cast<uint64_t>(masters);
      for (const auto& x : nodes_) n.known_epochs[x.id] = x.epoch;
    }
  }

  // When the other nodes hear of a change (see the top of this file).
  enum class Gossip { kAfterEveryCommand, kHeld };
  void SetGossip(Gossip g) {
    std::lock_guard<std::mutex> lock(mutex_);
    gossip_ = g;
  }
  // Every master's claims (the slots it owns in its own view, at its config epoch, with its
  // current epoch) reach every other node, replicas included. Claims are taken before any is
  // applied, like PINGs in flight.
  void DeliverGossip() {
    std::lock_guard<std::mutex> lock(mutex_);
    DeliverLocked(nullptr);
  }
  // Only node `i`'s claims, to every other node.
  void DeliverGossipFrom(int i) {
    std::lock_guard<std::mutex> lock(mutex_);
    DeliverLocked(&nodes_[i]);
  }
  // Sets node `i`'s config epoch as if gossip had converged: every node knows it and has
  // current epoch at least `epoch`.
  void SetConfigEpoch(int i, uint64_t epoch) {
    std::lock_guard<std::mutex> lock(mutex_);
    gossip_pending_ = true;
    nodes_[i].epoch = epoch;
    for (auto& n : nodes_) {
      n.known_epochs[nodes_[i].id] = epoch;
      n.current_epoch = std::max(n.current_epoch, epoch);
    }
  }
  // A node's config epoch as node `at` knows it (its own when `id` is `at`'s; a replica's is
  // its master's).
  uint64_t KnownEpoch(const FakeNode& at, const std::string& id) const {
    const FakeNode* n = ById(id);
    if (n != nullptr && !n->master) return KnownEpoch(at, n->master_id);
    if (id == at.id) return at.epoch;
    auto it = at.known_epochs.find(id);
    return it == at.known_epochs.end() ? 0 : it->second;
  }

  // A test may change what it gets from node(), ById() or ByEndpoint(): gossip runs again.
  FakeNode& node(int i) {
    gossip_pending_ = true;
    return nodes_[i];
  }
  FakeNode* ById(const std::string& id) {
    gossip_pending_ = true;
    for (auto& n : nodes_) {
      if (n.id == id) return &n;
    }
    return nullptr;
  }
  const FakeNode* ById(const std::string& id) const {
    for (const auto& n : nodes_) {
      if (n.id == id) return &n;
    }
    return nullptr;
  }
  FakeNode* ByEndpoint(const cluster::Endpoint& e) {
    gossip_pending_ = true;
    return AtEndpoint(e);
  }
  std::mutex& mutex() { return mutex_; }

  // Puts `count` keys into `slot` on the node that owns it (in node 0's view).
  void AddKeys(int slot, int count, const std::string& value_prefix = "v") {
    std::lock_guard<std::mutex> lock(mutex_);
    FakeNode* owner = ById(nodes_[0].view[slot]);
    int found = 0;
    for (int i = 0; found < count; ++i) {
      std::string key = "k" + std::to_string(slot) + ":" + std::to_string(i);
      if (cluster::KeySlot(key) != slot) continue;
      owner->keys[key] = value_prefix + key;
      ++found;
    }
  }
  // A key in `slot` (for tests that need one).
  static std::string KeyIn(int slot, int n = 0) {
    int found = 0;
    for (int i = 0;; ++i) {
      std::string key = "x" + std::to_string(i);
      if (cluster::KeySlot(key) != slot) continue;
      if (found++ == n) return key;
    }
  }
  int64_t TotalKeys() {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t n = 0;
    for (auto& node : nodes_) n += node.master ? static_cast<int64_t>(node.keys.size()) : 0;
    return n;
  }
  std::vector<LoggedCommand> log() {
    std::lock_guard<std::mutex> lock(mutex_);
    return log_;
  }
  // How many SETSLOT NODE calls bumped an epoch, and how many broadcast a PONG, so far.
  int bumps() {
    std::lock_guard<std::mutex> lock(mutex_);
    return bumps_;
  }
  int broadcasts() {
    std::lock_guard<std::mutex> lock(mutex_);
    return broadcasts_;
  }
  std::vector<DirtySlot> dirty_slots() {
    std::lock_guard<std::mutex> lock(mutex_);
    return dirty_slots_;
  }
  void ClearLog() {
    std::lock_guard<std::mutex> lock(mutex_);
    log_.clear();
  }
  // The next `n` MIGRATEs fail with IOERR (nothing moves).
  void FailMigrates(int n) {
    std::lock_guard<std::mutex> lock(mutex_);
    fail_migrates_ = n;
  }
  // The lease key's value ("" when nobody holds it), and its end as if its TTL ran out.
  std::string LeaseValue() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lease_value_;
  }
  void ExpireLease() {
    std::lock_guard<std::mutex> lock(mutex_);
    lease_value_.clear();
  }
  std::map<std::string, std::string> LeaseUnreleased() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lease_unreleased_;
  }
  // Called before each command; return true to make it fail like a dead connection.
  std::function<bool(const FakeNode&, const cluster::Argv&)> before_command;

  cluster::Connection& Get(const cluster::Endpoint& endpoint) override;

  cluster::Result<cluster::Reply> Handle(const cluster::Endpoint& at, const cluster::Argv& argv);

 private:
  static cluster::Reply Ok() { return Status("OK"); }
  static cluster::Reply Status(std::string s) {
    return ::slotguard::testing::StatusReply(std::move(s));
  }
  static cluster::Reply Err(std::string s) {
    return ::slotguard::testing::ErrorReply(std::move(s));
  }
  static cluster::Reply Int(int64_t v) { return ::slotguard::testing::IntegerReply(v); }
  static cluster::Reply Str(std::string s) {
    return ::slotguard::testing::StringReply(std::move(s));
  }
  static cluster::Reply Nil() { return cluster::Reply{}; }
  static cluster::Reply Arr(const std::vector<std::string>& items) {
    cluster::Reply r;
    r.type = cluster::Reply::Type::kArray;
    for (const auto& i : items) r.elements.push_back(Str(i));
    return r;
  }

  FakeNode* AtEndpoint(const cluster::Endpoint& e) {
    for (auto& n : nodes_) {
      if (n.endpoint == e) return &n;
    }
    return nullptr;
  }
  std::string NodesText(const FakeNode& me) const;
  cluster::Reply Command(FakeNode& me, const cluster::Argv& a);
  cluster::Reply SetSlot(FakeNode& me, const cluster::Argv& a);
  cluster::Reply Migrate(FakeNode& me, const cluster::Argv& a);
  bool BumpEpoch(FakeNode& me);
  // Whether it changed any node's view or epochs.
  bool DeliverLocked(const FakeNode* only_from);

  std::mutex mutex_;
  std::vector<FakeNode> nodes_;
  std::vector<LoggedCommand> log_;
  std::vector<DirtySlot> dirty_slots_;
  Gossip gossip_ = Gossip::kAfterEveryCommand;
  // Whether gossip after a command could change anything: set by commands and test access
  // that may change claims or epochs, kept while a round still changes something. Saves the
  // full round on the many commands that change nothing (reads, MIGRATE).
  std::atomic<bool> gossip_pending_{true};
  int bumps_ = 0;
  int broadcasts_ = 0;
  int fail_migrates_ = 0;
  std::string lease_value_;
  int64_t lease_token_ = 0;
  std::map<std::string, std::string> lease_unreleased_;  // token -> value
  std::mutex conn_mutex_;
  std::map<cluster::Endpoint, std::unique_ptr<cluster::Connection>> conns_;
};

class FakeConnection final : public cluster::Connection {
 public:
  FakeConnection(FakeCluster& cluster, cluster::Endpoint e) : cluster_(cluster), e_(std::move(e)) {}
  cluster::Result<cluster::Reply> Command(const cluster::Argv& argv) override {
    return cluster_.Handle(e_, argv);
  }
  cluster::Result<std::vector<cluster::Reply>> Pipeline(
      const std::vector<cluster::Argv>& commands) override {
    std::vector<cluster::Reply> out;
    for (const auto& c : commands) {
      auto r = cluster_.Handle(e_, c);
      if (!r) return tl::unexpected(r.error());
      out.push_back(std::move(*r));
    }
    return out;
  }
  const cluster::Endpoint& endpoint() const override { return e_; }

 private:
  FakeCluster& cluster_;
  cluster::Endpoint e_;
};

inline cluster::Connection& FakeCluster::Get(const cluster::Endpoint& endpoint) {
  std::lock_guard<std::mutex> lock(conn_mutex_);
  auto& c = conns_[endpoint];
  if (!c) c = std::make_unique<FakeConnection>(*this, endpoint);
  return *c;
}

inline cluster::Result<cluster::Reply> FakeCluster::Handle(const cluster::Endpoint& at,
                                                           const cluster::Argv& argv) {
  std::lock_guard<std::mutex> lock(mutex_);
  FakeNode* me = AtEndpoint(at);
  if (me == nullptr) return cluster::MakeError("connect to " + at.ToString() + ": refused");
  if (me->stopped || (before_command && before_command(*me, argv))) {
    return cluster::MakeError(at.ToString() + ": " + argv.front() + ": timed out");
  }
  cluster::Reply reply = Command(*me, argv);
  log_.push_back({me->id, argv, reply});
  if (argv[0] == "CLUSTER" && argv.size() > 1 && (argv[1] == "SETSLOT" || argv[1] == "BUMPEPOCH")) {
    gossip_pending_ = true;
  }
  if (gossip_ == Gossip::kAfterEveryCommand && gossip_pending_.exchange(false)) {
    if (DeliverLocked(nullptr)) gossip_pending_ = true;
  }
  return reply;
}

// clusterBumpConfigEpochWithoutConsensus: a new epoch unless this node's is already the
// greatest it knows of (a tie with another node does not bump).
inline bool FakeCluster::BumpEpoch(FakeNode& me) {
  me.current_epoch = std::max(me.current_epoch, me.epoch);
  uint64_t max_epoch = me.current_epoch;
  for (const auto& [id, e] : me.known_epochs) max_epoch = std::max(max_epoch, e);
  if (me.epoch != 0 && me.epoch == max_epoch) return false;
  me.epoch = ++me.current_epoch;
  ++bumps_;
  return true;
}

// clusterProcessPacket's epoch updates, then clusterUpdateSlotsConfigWith, for PINGs/PONGs
// from masters. Not modelled: UPDATE messages (their effect is the owner's own gossip here),
// config epoch collision resolution, a master that lost its last slot turning replica, and
// replicas' PINGs (they carry what their master's already does).
inline bool FakeCluster::DeliverLocked(const FakeNode* only_from) {
  // Owners as indexes into nodes_ (-1: none), per node and slot: a round compares ints, not ids.
  const int count = static_cast<int>(nodes_.size());
  std::vector<std::vector<int8_t>> owners(nodes_.size(), std::vector<int8_t>(cluster::kSlotCount));
  for (int n = 0; n < count; ++n) {
    int8_t last = -1;
    for (int s = 0; s < cluster::kSlotCount; ++s) {
      const std::string& id = nodes_[n].view[s];
      if (last < 0 || id != nodes_[last].id) {
        last = -1;
        for (int k = 0; k < count; ++k) {
          if (nodes_[k].id == id) last = static_cast<int8_t>(k);
        }
      }
      owners[n][s] = last;
    }
  }
  struct Claim {
    int from;
    uint64_t epoch;
    uint64_t current;
  };
  std::vector<Claim> claims;
  for (int n = 0; n < count; ++n) {
    const FakeNode& x = nodes_[n];
    if (!x.master || x.stopped || (only_from != nullptr && &x != only_from)) continue;
    claims.push_back({n, x.epoch, std::max(x.current_epoch, x.epoch)});
  }
  const auto claimed = owners;  // as the claims left their senders
  bool changed = false;
  for (const auto& c : claims) {
    const FakeNode& from = nodes_[c.from];
    for (int ri = 0; ri < count; ++ri) {
      FakeNode& r = nodes_[ri];
      if (ri == c.from || r.stopped) continue;
      const uint64_t current = std::max({r.current_epoch, r.epoch, c.current});
      auto& known = r.known_epochs[from.id];
      changed |= current != r.current_epoch || c.epoch > known;
      r.current_epoch = current;
      known = std::max(known, c.epoch);
      std::vector<int> dirty;
      for (int s = 0; s < cluster::kSlotCount; ++s) {
        const int owner = owners[ri][s];
        if (claimed[c.from][s] != c.from) {
          if (owner == c.from && !r.owner_not_claiming[s]) {
            r.owner_not_claiming[s] = true;
            changed = true;
          }
          continue;
        }
        if (owner == c.from) {
          r.owner_not_claiming[s] = false;
          continue;
        }
        if (r.importing.count(s)) continue;
        const uint64_t owner_epoch = owner < 0 ? 0 : KnownEpoch(r, nodes_[owner].id);
        const bool unclaimed = owner < 0 || (owner != ri && r.owner_not_claiming[s]);
        if (!unclaimed && owner_epoch >= c.epoch) continue;
        if (owner == ri) {
          DirtySlot d{r.id, from.id, s, c.epoch, owner_epoch, {}};
          for (const auto& [k, v] : r.keys) {
            if (cluster::KeySlot(k) == s) d.keys.push_back(k);
          }
          if (!d.keys.empty()) {
            dirty.push_back(s);
            dirty_slots_.push_back(std::move(d));
          }
        }
        r.view[s] = from.id;
        owners[ri][s] = static_cast<int8_t>(c.from);
        r.owner_not_claiming[s] = false;
        changed = true;
      }
      // delKeysInSlot: the keys of a slot this node lost are gone.
      for (int s : dirty) {
        for (auto it = r.keys.begin(); it != r.keys.end();) {
          it = cluster::KeySlot(it->first) == s ? r.keys.erase(it) : std::next(it);
        }
      }
    }
  }
  return changed;
}

inline std::string FakeCluster::NodesText(const FakeNode& me) const {
  std::string out;
  for (const auto& n : nodes_) {
    std::string flags =
        (n.id == me.id ? "myself," : "") + std::string(n.master ? "master" : "slave");
    out += n.id + " " + n.endpoint.ToString() + "@1" + std::to_string(n.endpoint.port) + " " +
           flags + " " + (n.master ? "-" : n.master_id) + " 0 0 " +
           std::to_string(KnownEpoch(me, n.id)) + " connected";
    int s = 0;
    while (s < cluster::kSlotCount) {
      if (me.view[s] != n.id) {
        ++s;
        continue;
      }
      int e = s;
      while (e + 1 < cluster::kSlotCount && me.view[e + 1] == n.id) ++e;
      out += " " + (s == e ? std::to_string(s) : std::to_string(s) + "-" + std::to_string(e));
      s = e + 1;
    }
    if (n.id == me.id) {
      for (const auto& [slot, peer] : me.migrating)
        out += " [" + std::to_string(slot) + "->-" + peer + "]";
      for (const auto& [slot, peer] : me.importing)
        out += " [" + std::to_string(slot) + "-<-" + peer + "]";
    }
    out += "\n";
  }
  return out;
}

inline cluster::Reply FakeCluster::SetSlot(FakeNode& me, const cluster::Argv& a) {
  if (!me.master) return Err("ERR Please use SETSLOT only with masters.");
  int slot = std::stoi(a[2]);
  const std::string sub = a[3];
  auto count = [&] {
    int64_t n = 0;
    for (const auto& [k, v] : me.keys) n += cluster::KeySlot(k) == slot ? 1 : 0;
    return n;
  };
  if (sub == "MIGRATING") {
    if (me.view[slot] != me.id) return Err("ERR I'm not the owner of hash slot " + a[2]);
    me.migrating[slot] = a[4];
  } else if (sub == "IMPORTING") {
    if (me.view[slot] == me.id) return Err("ERR I'm already the owner of hash slot " + a[2]);
    me.importing[slot] = a[4];
  } else if (sub == "STABLE") {
    me.migrating.erase(slot);
    me.importing.erase(slot);
  } else if (sub == "NODE") {
    const std::string& n = a[4];
    const FakeNode* to = ById(n);
    if (to == nullptr) return Err("ERR Unknown node " + n);
    if (!to->master) return Err("ERR Target node is not a master");
    if (me.view[slot] == me.id && n != me.id && count() != 0) {
      return Err("ERR Can't assign hashslot " + a[2] +
                 " to a different node while I still hold keys for this hash slot.");
    }
    if (count() == 0) me.migrating.erase(slot);
    me.view[slot] = n;
    me.owner_not_claiming[slot] = false;
    // Only the importing path bumps and broadcasts; any other claim is made at the current
    // config epoch and travels with the next ping.
    if (n == me.id && me.importing.count(slot)) {
      BumpEpoch(me);
      me.importing.erase(slot);
      ++broadcasts_;
      DeliverLocked(&me);
    }
  } else {
    return Err("ERR unknown SETSLOT subcommand");
  }
  return Ok();
}

inline cluster::Reply FakeCluster::Migrate(FakeNode& me, const cluster::Argv& a) {
  cluster::Endpoint to{a[1], std::stoi(a[2])};
  FakeNode* target = AtEndpoint(to);
  bool replace = false;
  size_t i = 6;
  for (; i < a.size() && a[i] != "KEYS"; ++i) {
    if (a[i] == "REPLACE") replace = true;
    if (a[i] == "AUTH") ++i;
    if (a[i] == "AUTH2") i += 2;
  }
  std::vector<std::string> keys(a.begin() + static_cast<long>(i) + 1, a.end());
  if (fail_migrates_ > 0 || target == nullptr || target->stopped) {
    if (fail_migrates_ > 0) --fail_migrates_;
    ++me.migrate_failed_calls;
    ++me.ioerr;
    return Err("IOERR error or timeout reading to target instance");
  }
  bool any = false;
  for (const auto& k : keys) {
    auto it = me.keys.find(k);
    if (it == me.keys.end()) continue;
    any = true;
    if (target->keys.count(k) && !replace) {
      ++me.migrate_failed_calls;
      return Err("ERR Target instance replied with error: BUSYKEY Target key name already exists.");
    }
    target->keys[k] = it->second;
    me.keys.erase(it);
  }
  return any ? Ok() : Status("NOKEY");
}

inline cluster::Reply FakeCluster::Command(FakeNode& me, const cluster::Argv& a) {
  const std::string& c = a[0];
  if (c == "ASKING") return Ok();
  if (c == "CLUSTER" && a[1] == "NODES") return Str(NodesText(me));
  if (c == "CLUSTER" && a[1] == "INFO") {
    const uint64_t my_epoch = KnownEpoch(me, me.id);
    return Str("cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:" +
               std::to_string(nodes_.size()) + "\r\ncluster_current_epoch:" +
               std::to_string(std::max({me.current_epoch, me.epoch, my_epoch})) +
               "\r\ncluster_my_epoch:" + std::to_string(my_epoch) + "\r\n");
  }
  if (c == "CLUSTER" && a[1] == "SETSLOT") return SetSlot(me, a);
  if (c == "CLUSTER" && a[1] == "BUMPEPOCH") {
    const bool bumped = BumpEpoch(me);
    return Status((bumped ? "BUMPED " : "STILL ") + std::to_string(me.epoch));
  }
  if (c == "CLUSTER" && (a[1] == "GETKEYSINSLOT" || a[1] == "COUNTKEYSINSLOT")) {
    int slot = std::stoi(a[2]);
    std::vector<std::string> out;
    for (const auto& [k, v] : me.keys) {
      if (cluster::KeySlot(k) == slot) out.push_back(k);
    }
    if (a[1] == "COUNTKEYSINSLOT") return Int(static_cast<int64_t>(out.size()));
    size_t n = std::stoul(a[3]);
    if (out.size() > n) out.resize(n);
    return Arr(out);
  }
  if (c == "MIGRATE") return Migrate(me, a);
  if (c == "GET" && a[1] == kLeaseKey) return lease_value_.empty() ? Nil() : Str(lease_value_);
  if (c == "DUMP" || c == "GET") {
    auto it = me.keys.find(a[1]);
    if (it == me.keys.end()) return Nil();
    return Str(c == "DUMP" ? "dump:" + it->second : it->second);
  }
  if (c == "TYPE") return Status(me.keys.count(a[1]) ? "string" : "none");
  if (c == "DEL") return Int(static_cast<int64_t>(me.keys.erase(a[1])));
  if (c == "EXISTS") return Int(static_cast<int64_t>(me.keys.count(a[1])));
  if (c == "EVAL" && a[1] == kLeaseAcquireScript) {
    cluster::Reply r;
    r.type = cluster::Reply::Type::kArray;
    if (!lease_value_.empty() && lease_value_ != a[8]) {
      r.elements = {Int(0), Str(lease_value_), Int(std::stoll(a[7]))};
      return r;
    }
    const std::string token = std::to_string(++lease_token_);
    lease_value_ = "{\"token\":" + token + "," + a[6];
    std::vector<std::string> dead;
    for (const auto& [t, v] : lease_unreleased_) dead.push_back(v);
    lease_unreleased_[token] = lease_value_;
    r.elements = {Int(1), Str(lease_value_), Arr(dead)};
    return r;
  }
  if (c == "EVAL" && a[1] == kLeaseRenewScript) return Int(lease_value_ == a[4] ? 1 : 0);
  if (c == "EVAL" && a[1] == kLeaseReleaseScript) {
    if (a[7] == "1") lease_unreleased_.erase(a[6]);
    if (lease_value_ != a[5]) return Int(0);
    lease_value_.clear();
    return Int(1);
  }
  if (c == "EVAL" && a[1] == kLeaseForgetScript) {
    if (lease_value_ != a[5]) return Int(0);
    std::erase_if(lease_unreleased_, [&](const auto& e) { return e.first != a[6]; });
    return Int(1);
  }
  if (c == "EVAL" && a.size() == 5 && a[2] == "1") {
    // Only the migrator's compare-and-delete script: DEL KEYS[1] when its DUMP is ARGV[1].
    auto it = me.keys.find(a[3]);
    if (it == me.keys.end() || "dump:" + it->second != a[4]) return Int(0);
    me.keys.erase(it);
    return Int(1);
  }
  if (c == "SET") {
    me.keys[a[1]] = a[2];
    return Ok();
  }
  if (c == "CONFIG") {
    if (a[2] == "cluster-node-timeout") return Arr({a[2], "15000"});
    if (a[2] == "cluster-require-full-coverage") return Arr({a[2], "no"});
    return Arr({a[2], "1"});
  }
  if (c == "INFO") {
    if (a.size() > 1 && a[1] == "commandstats") {
      return Str(
          "# Commandstats\r\ncmdstat_migrate:calls=1,usec=1,usec_per_call=1.00,"
          "rejected_calls=0,failed_calls=" +
          std::to_string(static_cast<int64_t>(me.migrate_failed_calls)) + "\r\n");
    }
    if (a.size() > 1 && a[1] == "errorstats") {
      return Str("# Errorstats\r\nerrorstat_IOERR:count=" +
                 std::to_string(static_cast<int64_t>(me.ioerr)) + "\r\n");
    }
    if (a.size() > 1 && a[1] == "memory") return Str("# Memory\r\nused_memory:1000000\r\n");
    return Str("# Server\r\nredis_version:7.0.15\r\n");
  }
  if (c == "MEMORY") return Int(100);
  if (c == "DBSIZE") return Int(static_cast<int64_t>(me.keys.size()));
  return Err("ERR unknown command '" + c + "'");
}

}  // namespace slotguard::agent::testing
