#pragma once

// A fault-injecting decorator over any cluster::Connector (the real ConnectionPool or the unit
// fake): at the Nth command matching a pattern, on a chosen node, the server refuses it with an
// error reply, the reply is lost after the command ran, the connection is cut before it is sent,
// the command is delayed, or a test callback runs first (kill a node, fail over its replica).
// Everything the engine sends passes through it, so a test can put a fault at any protocol step.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/connection.h"

namespace slotguard::cluster::testing {

enum class FaultAction {
  kRefuse,     // not executed; the reply is `error` (what -BUSY or -NOREPLICAS look like)
  kDropReply,  // executed, then the connection fails: the caller cannot know it ran
  kCut,        // the connection fails before the command is sent: it never runs
  kDelay,      // sent after `delay`
  kCallback,   // `callback` runs, then the command is sent as usual
};

struct FaultRule {
  std::optional<Endpoint> node;  // any node when unset
  // ECMAScript regex searched in the command's words joined by single spaces, e.g.
  // "^CLUSTER SETSLOT 100 NODE ".
  std::string pattern;
  int nth = 1;    // the first matching command that fires (1-based)
  int times = 1;  // how many matching commands fire from the nth on (0: every one)
  FaultAction action = FaultAction::kRefuse;
  std::string error = "BUSY Redis is busy running a script (injected)";
  std::chrono::milliseconds delay{0};
  std::function<void()> callback;
};

// What a rule did, for assertions.
struct FaultHit {
  Endpoint node;
  Argv argv;
  FaultAction action;
};

class FaultInjector {
 public:
  void Add(FaultRule rule) {
    std::lock_guard<std::mutex> lock(mutex_);
    rules_.push_back({std::move(rule), 0, std::regex()});
    rules_.back().re = std::regex(rules_.back().rule.pattern);
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    rules_.clear();
  }
  std::vector<FaultHit> hits() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return hits_;
  }

  // The rule that fires for this command, if any (counts the match).
  std::optional<FaultRule> Match(const Endpoint& node, const Argv& argv) {
    std::string text;
    for (const auto& a : argv) text += (text.empty() ? "" : " ") + a;
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& r : rules_) {
      if (r.rule.node && !(r.rule.node->host == node.host && r.rule.node->port == node.port)) {
        continue;
      }
      if (!std::regex_search(text, r.re)) continue;
      const int n = ++r.matched;
      if (n < r.rule.nth || (r.rule.times > 0 && n >= r.rule.nth + r.rule.times)) continue;
      hits_.push_back({node, argv, r.rule.action});
      return r.rule;
    }
    return std::nullopt;
  }

 private:
  struct Entry {
    FaultRule rule;
    int matched;
    std::regex re;
  };
  mutable std::mutex mutex_;
  std::vector<Entry> rules_;
  std::vector<FaultHit> hits_;
};

class FaultConnection final : public Connection {
 public:
  FaultConnection(Connection& inner, FaultInjector& faults) : inner_(inner), faults_(faults) {}

  Result<Reply> Command(const Argv& argv) override {
    auto r = Pipeline({argv});
    if (!r) return tl::unexpected(r.error());
    return std::move((*r)[0]);
  }

  // Runs the commands in order, in as few round trips as the faults allow.
  Result<std::vector<Reply>> Pipeline(const std::vector<Argv>& commands) override {
    std::vector<Reply> out;
    out.reserve(commands.size());
    std::vector<Argv> segment;
    auto flush = [&]() -> Result<void> {
      if (segment.empty()) return {};
      auto r = inner_.Pipeline(segment);
      segment.clear();
      if (!r) return tl::unexpected(r.error());
      for (auto& x : *r) out.push_back(std::move(x));
      return {};
    };
    for (const auto& argv : commands) {
      auto rule = faults_.Match(inner_.endpoint(), argv);
      if (!rule) {
        segment.push_back(argv);
        continue;
      }
      switch (rule->action) {
        case FaultAction::kRefuse: {
          if (auto f = flush(); !f) return tl::unexpected(f.error());
          Reply refused;
          refused.type = Reply::Type::kError;
          refused.str = rule->error;
          out.push_back(std::move(refused));
          break;
        }
        case FaultAction::kDropReply: {
          segment.push_back(argv);
          if (auto f = flush(); !f) return tl::unexpected(f.error());
          return MakeError(inner_.endpoint().ToString() + ": reply lost (injected)");
        }
        case FaultAction::kCut: {
          if (auto f = flush(); !f) return tl::unexpected(f.error());
          return MakeError(inner_.endpoint().ToString() + ": connection cut (injected)");
        }
        case FaultAction::kDelay:
          if (auto f = flush(); !f) return tl::unexpected(f.error());
          std::this_thread::sleep_for(rule->delay);
          segment.push_back(argv);
          break;
        case FaultAction::kCallback:
          if (auto f = flush(); !f) return tl::unexpected(f.error());
          if (rule->callback) rule->callback();
          segment.push_back(argv);
          break;
      }
    }
    if (auto f = flush(); !f) return tl::unexpected(f.error());
    return out;
  }

  const Endpoint& endpoint() const override { return inner_.endpoint(); }

 private:
  Connection& inner_;
  FaultInjector& faults_;
};

class FaultConnector final : public Connector {
 public:
  FaultConnector(Connector& inner, FaultInjector& faults) : inner_(inner), faults_(faults) {}

  Connection& Get(const Endpoint& endpoint) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& slot = connections_[endpoint.ToString()];
    Connection& inner = inner_.Get(endpoint);
    if (!slot || &slot->inner() != &inner) slot = std::make_unique<Wrapped>(inner, faults_);
    return slot->connection;
  }

 private:
  struct Wrapped {
    Wrapped(Connection& inner, FaultInjector& faults)
        : inner_ref(inner), connection(inner, faults) {}
    Connection& inner() { return inner_ref; }
    Connection& inner_ref;
    FaultConnection connection;
  };
  Connector& inner_;
  FaultInjector& faults_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Wrapped>> connections_;
};

}  // namespace slotguard::cluster::testing
