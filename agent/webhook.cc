#include "agent/webhook.h"

#include <spdlog/spdlog.h>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "agent/json_read.h"
#include "agent/token.h"

namespace slotguard::agent {

namespace {

using nlohmann::json;

bool IsLabelNameChar(char c, bool first) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (!first && c >= '0' && c <= '9');
}

// FNV-1a: stable across builds, unlike std::hash, because the keys are persisted.
uint64_t Fnv1a(std::string_view data, uint64_t hash = 14695981039346656037ull) {
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

cluster::Result<std::map<std::string, std::string>> StringMap(const json& value,
                                                              const std::string& where) {
  if (value.is_null()) return std::map<std::string, std::string>{};
  if (!value.is_object()) return cluster::MakeError(where + " must be an object");
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : value.items()) {
    if (!v.is_string()) return cluster::MakeError(where + "." + k + " must be a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

std::string OptionalString(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

cluster::Result<LabelMatcher> LabelMatcher::Parse(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  const size_t name_start = i;
  while (i < text.size() && IsLabelNameChar(text[i], i == name_start)) ++i;
  LabelMatcher m;
  m.name_ = std::string(text.substr(name_start, i - name_start));
  if (m.name_.empty()) {
    return cluster::MakeError("matcher '" + std::string(text) +
                              "': expected a label name, as in slotguard_action=\"rollback\"");
  }
  while (i < text.size() && text[i] == ' ') ++i;
  std::string_view rest = text.substr(i);
  if (rest.rfind("=~", 0) == 0) {
    m.op_ = Op::kRegex;
    rest.remove_prefix(2);
  } else if (rest.rfind("!~", 0) == 0) {
    m.op_ = Op::kNotRegex;
    rest.remove_prefix(2);
  } else if (rest.rfind("!=", 0) == 0) {
    m.op_ = Op::kNotEqual;
    rest.remove_prefix(2);
  } else if (rest.rfind("=", 0) == 0) {
    m.op_ = Op::kEqual;
    rest.remove_prefix(1);
  } else {
    return cluster::MakeError("matcher '" + std::string(text) + "': expected =, !=, =~ or !~");
  }
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  if (rest.size() >= 2 && rest.front() == '"' && rest.back() == '"') {
    rest = rest.substr(1, rest.size() - 2);
  } else if (!rest.empty() && (rest.front() == '"' || rest.back() == '"')) {
    return cluster::MakeError("matcher '" + std::string(text) + "': unbalanced quotes");
  }
  m.value_ = std::string(rest);
  if (m.op_ == Op::kRegex || m.op_ == Op::kNotRegex) {
    try {
      m.regex_ = std::regex(m.value_, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return cluster::MakeError("matcher '" + std::string(text) + "': bad regex: " + e.what());
    }
  }
  return m;
}

LabelMatcher LabelMatcher::Equal(std::string name, std::string value) {
  LabelMatcher m;
  m.name_ = std::move(name);
  m.value_ = std::move(value);
  return m;
}

bool LabelMatcher::Matches(const std::map<std::string, std::string>& labels) const {
  auto it = labels.find(name_);
  const std::string& actual = it == labels.end() ? std::string() : it->second;
  switch (op_) {
    case Op::kEqual:
      return actual == value_;
    case Op::kNotEqual:
      return actual != value_;
    case Op::kRegex:
      return std::regex_match(actual, regex_);
    case Op::kNotRegex:
      return !std::regex_match(actual, regex_);
  }
  return false;
}

std::string LabelMatcher::ToString() const {
  const char* op = op_ == Op::kEqual      ? "="
                   : op_ == Op::kNotEqual ? "!="
                   : op_ == Op::kRegex    ? "=~"
                                          : "!~";
  return name_ + op + "\"" + value_ + "\"";
}

std::string WebhookAlert::DedupKey() const {
  std::string id = fingerprint;
  if (id.empty()) {
    uint64_t h = Fnv1a("");
    for (const auto& [k, v] : labels) {
      h = Fnv1a(k, h);
      h = Fnv1a(std::string_view("\0", 1), h);
      h = Fnv1a(v, h);
      h = Fnv1a(std::string_view("\0", 1), h);
    }
    char buf[24];
    std::snprintf(buf, sizeof(buf), "h%016llx", static_cast<unsigned long long>(h));
    id = buf;
  }
  return id + "@" + starts_at;
}

std::string WebhookAlert::Name() const {
  auto it = labels.find("alertname");
  return it == labels.end() || it->second.empty() ? "(unnamed)" : it->second;
}

cluster::Result<WebhookNotification> ParseWebhookNotification(std::string_view body) {
  auto parsed = ParseJson(body);
  if (!parsed) return cluster::MakeError("body is " + parsed.error().message);
  const json& doc = *parsed;
  if (!doc.is_object()) return cluster::MakeError("body must be a JSON object");
  WebhookNotification n;
  auto version = doc.find("version");
  if (version == doc.end() || !version->is_string()) {
    return cluster::MakeError("missing \"version\" (Alertmanager webhook payloads carry \"4\")");
  }
  n.version = version->get<std::string>();
  if (n.version != "4") {
    return cluster::MakeError("unsupported payload version \"" + n.version + "\" (expected \"4\")");
  }
  n.status = OptionalString(doc, "status");
  n.receiver = OptionalString(doc, "receiver");
  n.group_key = OptionalString(doc, "groupKey");
  auto alerts = doc.find("alerts");
  if (alerts == doc.end() || !alerts->is_array()) {
    return cluster::MakeError("missing \"alerts\" array");
  }
  for (size_t i = 0; i < alerts->size(); ++i) {
    const json& a = (*alerts)[i];
    const std::string where = "alerts[" + std::to_string(i) + "]";
    if (!a.is_object()) return cluster::MakeError(where + " must be an object");
    WebhookAlert alert;
    alert.status = OptionalString(a, "status");
    if (alert.status != "firing" && alert.status != "resolved") {
      return cluster::MakeError(where + ".status must be \"firing\" or \"resolved\"");
    }
    auto labels = StringMap(a.value("labels", json()), where + ".labels");
    if (!labels) return tl::unexpected(labels.error());
    alert.labels = std::move(*labels);
    auto annotations = StringMap(a.value("annotations", json()), where + ".annotations");
    if (!annotations) return tl::unexpected(annotations.error());
    alert.annotations = std::move(*annotations);
    auto starts = a.find("startsAt");
    if (starts == a.end() || !starts->is_string()) {
      return cluster::MakeError(where + ".startsAt must be a string");
    }
    alert.starts_at = starts->get<std::string>();
    alert.fingerprint = OptionalString(a, "fingerprint");
    n.alerts.push_back(std::move(alert));
  }
  return n;
}

WebhookDecision DecideWebhook(const WebhookNotification& notification, const WebhookRules& rules,
                              const std::function<bool(const std::string&)>& already_seen) {
  WebhookDecision decision;
  int firing = 0, matching = 0, repeated = 0, other_cluster = 0;
  std::vector<std::string> names;
  std::string summary;
  for (const WebhookAlert& alert : notification.alerts) {
    if (alert.status != "firing") continue;
    ++firing;
    bool match = true;
    for (const LabelMatcher& m : rules.matchers) match = match && m.Matches(alert.labels);
    if (!match) continue;
    if (rules.cluster) {
      auto it = alert.labels.find(rules.cluster_label);
      if (it == alert.labels.end() || it->second != *rules.cluster) {
        ++other_cluster;
        continue;
      }
    }
    ++matching;
    const std::string key = alert.DedupKey();
    if (already_seen(key)) {
      ++repeated;
      continue;
    }
    decision.new_keys.push_back(key);
    names.push_back(alert.Name());
    if (summary.empty()) {
      auto it = alert.annotations.find("summary");
      if (it != alert.annotations.end()) summary = it->second;
    }
  }
  if (!decision.new_keys.empty()) {
    decision.act = true;
    std::string list;
    for (const auto& name : names) list += (list.empty() ? "" : ", ") + name;
    decision.reason = "alertmanager: " + list + (summary.empty() ? "" : " (" + summary + ")");
    return decision;
  }
  if (notification.alerts.empty()) {
    decision.reason = "no alerts in the notification";
  } else if (firing == 0) {
    decision.reason = "only resolved alerts";
  } else if (matching == 0 && other_cluster > 0) {
    decision.reason = "firing alerts are for another cluster";
  } else if (matching == 0) {
    decision.reason = "no firing alert matches the matchers";
  } else {
    decision.reason = "already acted on these alerts (" + std::to_string(repeated) + " repeated)";
  }
  return decision;
}

void AlertMemory::Add(const std::string& key) {
  if (!set_.insert(key).second) return;
  order_.push_back(key);
  while (order_.size() > capacity_) {
    set_.erase(order_.front());
    order_.pop_front();
  }
}

Webhook::Webhook(std::string token, WebhookRules rules, Callbacks callbacks)
    : token_(std::move(token)), rules_(std::move(rules)), callbacks_(std::move(callbacks)) {}

std::optional<common::HttpResponse> Webhook::Authorize(const common::HttpRequest& request) {
  if (BearerMatches(request.authorization, token_)) return std::nullopt;
  callbacks_.count("rejected");
  spdlog::warn("webhook: rejected a notification: missing or wrong bearer token");
  return common::JsonError(401, "missing or wrong bearer token");
}

common::HttpResponse Webhook::Handle(const common::HttpRequest& request) {
  auto notification = ParseWebhookNotification(request.body);
  if (!notification) {
    callbacks_.count("rejected");
    spdlog::warn("webhook: rejected a notification: {}", notification.error().message);
    return common::JsonError(400, notification.error().message);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  WebhookDecision decision = DecideWebhook(*notification, rules_, callbacks_.already_seen);
  if (!decision.act) {
    callbacks_.count("ignored");
    spdlog::info("webhook: ignored a notification from receiver '{}' ({} alerts): {}",
                 notification->receiver, notification->alerts.size(), decision.reason);
    return common::HttpResponse{200, "application/json",
                                json{{"result", "ignored"}, {"reason", decision.reason}}.dump()};
  }
  const std::string done = callbacks_.act(decision.reason, decision.new_keys);
  callbacks_.count("accepted");
  spdlog::warn("webhook: accepted a notification: {}; {}", decision.reason, done);
  return common::HttpResponse{
      200, "application/json",
      json{{"result", "accepted"}, {"reason", decision.reason}, {"action", done}}.dump()};
}

}  // namespace slotguard::agent
