#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/result.h"
#include "common/http_server.h"

namespace slotguard::agent {

// A label matcher in Alertmanager's syntax: name="v", name!="v", name=~"re", name!~"re"
// (regexes are anchored, as Alertmanager anchors them). A missing label counts as "".
class LabelMatcher {
 public:
  enum class Op { kEqual, kNotEqual, kRegex, kNotRegex };
  static cluster::Result<LabelMatcher> Parse(std::string_view text);
  static LabelMatcher Equal(std::string name, std::string value);

  bool Matches(const std::map<std::string, std::string>& labels) const;
  std::string ToString() const;

 private:
  std::string name_;
  Op op_ = Op::kEqual;
  std::string value_;
  std::regex regex_;
};

// One alert of an Alertmanager webhook notification.
struct WebhookAlert {
  std::string status;  // "firing" or "resolved"
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string starts_at;
  std::string fingerprint;  // Alertmanager >= 0.19 sends it; may be empty
  // What identifies one firing episode of this alert: fingerprint (or a hash of the sorted
  // labels when absent) plus startsAt, so a re-notification is the same key and a new episode
  // after resolution is a new one.
  std::string DedupKey() const;
  std::string Name() const;  // the alertname label, or "(unnamed)"
};

// Alertmanager's webhook payload, version "4".
struct WebhookNotification {
  std::string version;
  std::string status;
  std::string receiver;
  std::string group_key;
  std::vector<WebhookAlert> alerts;
};

// Validates and parses a body. The error is a reason fit for a 400 response.
cluster::Result<WebhookNotification> ParseWebhookNotification(std::string_view body);

struct WebhookRules {
  std::vector<LabelMatcher> matchers;  // all must match; default slotguard_action="rollback"
  // When set, only alerts with label cluster_label == cluster act (other clusters' alerts are
  // ignored, so one Alertmanager can serve several agents).
  std::string cluster_label = "cluster";
  std::optional<std::string> cluster;
};

struct WebhookDecision {
  bool act = false;  // roll back the running batch and pause the queue
  std::string reason;
  std::vector<std::string> new_keys;  // dedup keys to remember once acted on
};

// Pure: decides what a notification means. `already_seen(key)` says whether an alert episode
// has already acted (the daemon persists these keys so a restart does not act twice).
WebhookDecision DecideWebhook(const WebhookNotification& notification, const WebhookRules& rules,
                              const std::function<bool(const std::string&)>& already_seen);

// Remembers the last `capacity` dedup keys in insertion order.
class AlertMemory {
 public:
  explicit AlertMemory(size_t capacity = 1000) : capacity_(capacity) {}
  bool Contains(const std::string& key) const { return set_.count(key) > 0; }
  void Add(const std::string& key);
  std::vector<std::string> Keys() const { return {order_.begin(), order_.end()}; }

 private:
  size_t capacity_;
  std::deque<std::string> order_;
  std::set<std::string> set_;
};

// The HTTP side of the webhook: token, size limit (enforced by the route), JSON validation,
// decision, then `act(reason, new_keys)`; counts every notification by result through
// `count("accepted"|"ignored"|"rejected")`. Thread-safe as long as the callbacks are.
class Webhook {
 public:
  struct Callbacks {
    std::function<bool(const std::string& key)> already_seen;
    // Performs the rollback + pause; returns a short description of what it did.
    std::function<std::string(const std::string& reason, const std::vector<std::string>& keys)> act;
    std::function<void(const std::string& result)> count;
  };
  Webhook(std::string token, WebhookRules rules, Callbacks callbacks);

  // The route's auth hook: the bearer token, checked before the body is read; a refusal is
  // counted as "rejected".
  std::optional<common::HttpResponse> Authorize(const common::HttpRequest& request);
  // A notification whose sender Authorize let through.
  common::HttpResponse Handle(const common::HttpRequest& request);

 private:
  std::string token_;
  WebhookRules rules_;
  Callbacks callbacks_;
  std::mutex mutex_;  // one decision at a time, so two deliveries of one alert act once
};

}  // namespace slotguard::agent
