#include "agent/queue.h"
#include "agent/json_read.h"
#include "agent/wall_time.h"
#include "common/file_io.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace slotguard::agent {

namespace {

using nlohmann::json;

constexpr size_t kMaxHistory = 200;
constexpr size_t kMaxAlertKeys = 1000;
constexpr int kFormatVersion = 1;

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

json GuardsToJson(const GuardOverrides& g) {
  json j = json::object();
  if (g.coverage_grace) j["coverage_grace_s"] = g.coverage_grace->count();
  if (g.migrate_failures) j["migrate_failures"] = *g.migrate_failures;
  if (g.convergence_timeout) j["convergence_timeout_s"] = g.convergence_timeout->count();
  return j;
}

// A damaged or hand-edited queue.json. nlohmann's get<int>() casts a float (1e300) or a too
// large integer without a check, which is undefined behaviour, so numbers are read with Whole.
class BadQueueJson : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `v` as a whole number within [min, max]; anything else throws BadQueueJson naming `what`.
template <typename T>
T Whole(const json& v, const std::string& what, T min = std::numeric_limits<T>::min(),
        T max = std::numeric_limits<T>::max()) {
  if (auto n = WholeNumber(v, min, max)) return static_cast<T>(*n);
  throw BadQueueJson(what + " must be a whole number from " + std::to_string(min) + " to " +
                     std::to_string(max) + ", not " + v.dump());
}

// The field `key` of object `j` as Whole reads it, `fallback` when absent.
template <typename T>
T WholeField(const json& j, const char* key, T fallback, T min = std::numeric_limits<T>::min(),
             T max = std::numeric_limits<T>::max()) {
  auto it = j.find(key);
  return it == j.end() ? fallback : Whole<T>(*it, key, min, max);
}

GuardOverrides GuardsFromJson(const json& j) {
  // The bounds a plan file's guards have (plan_file.cc).
  GuardOverrides g;
  if (j.contains("coverage_grace_s")) {
    g.coverage_grace = std::chrono::seconds(
        Whole<int64_t>(j["coverage_grace_s"], "guards.coverage_grace_s", 0, 86'400));
  }
  if (j.contains("migrate_failures")) {
    g.migrate_failures = Whole<int>(j["migrate_failures"], "guards.migrate_failures", 0, 1'000'000);
  }
  if (j.contains("convergence_timeout_s")) {
    g.convergence_timeout = std::chrono::seconds(
        Whole<int64_t>(j["convergence_timeout_s"], "guards.convergence_timeout_s", 1, 86'400));
  }
  return g;
}

}  // namespace

namespace {

// A queue item's "state": a BatchState name, or "running" as queue.json had it before the queue
// and the engine shared one vocabulary (the engine's state then was in "phase").
std::optional<BatchState> ParseItemState(const std::string& state, const std::string& phase) {
  if (state == "running") {
    auto p = ParseBatchState(phase);
    return p && IsRunning(*p) ? *p : BatchState::kPreflight;
  }
  auto s = ParseBatchState(state);
  if (s == BatchState::kAwaitingApproval) return BatchState::kQueued;  // a display form only
  return s;
}

}  // namespace

std::string QueueItem::DisplayState() const {
  if (AwaitingApproval()) return "awaiting_approval";
  return ToString(state);
}

json ToJson(const QueueItem& item) {
  json j{{"id", item.batch.id},
         {"from", item.batch.from},
         {"to", item.batch.to},
         {"slots", item.batch.slots},
         {"plan_id", item.plan_id},
         {"plan_file", item.plan_file},
         {"state", ToString(item.state)},
         {"display_state", item.DisplayState()},
         {"needs_approval", item.needs_approval},
         {"approved", item.approved},
         {"rollback_requested", item.rollback_requested},
         {"attempts", item.attempts},
         {"enqueued_at_ms", item.enqueued_at_ms},
         {"approved_at_ms", item.approved_at_ms},
         {"started_at_ms", item.started_at_ms},
         {"finished_at_ms", item.finished_at_ms},
         {"message", item.message}};
  if (item.batch.guards) j["guards"] = GuardsToJson(*item.batch.guards);
  return j;
}

cluster::Result<QueueItem> ItemFromJson(const json& j) {
  try {
    QueueItem item;
    item.batch.id = j.at("id").get<std::string>();
    item.batch.from = j.at("from").get<std::string>();
    item.batch.to = j.at("to").get<std::string>();
    const json& slots = j.at("slots");
    if (!slots.is_array()) return cluster::MakeError("bad queue item: slots must be an array");
    // Recovery and rollback index per-slot tables with these.
    for (const auto& slot : slots) item.batch.slots.push_back(Whole<int>(slot, "slot", 0, 16'383));
    if (j.contains("guards")) item.batch.guards = GuardsFromJson(j["guards"]);
    item.plan_id = j.value("plan_id", "");
    item.plan_file = j.value("plan_file", "");
    auto state = ParseItemState(j.at("state").get<std::string>(), j.value("phase", ""));
    if (!state) return cluster::MakeError("unknown state " + j.at("state").dump());
    item.state = *state;
    item.needs_approval = j.value("needs_approval", false);
    item.approved = j.value("approved", false);
    item.rollback_requested = j.value("rollback_requested", false);
    item.attempts = WholeField<int>(j, "attempts", 0);
    item.enqueued_at_ms = WholeField<int64_t>(j, "enqueued_at_ms", 0);
    item.approved_at_ms = WholeField<int64_t>(j, "approved_at_ms", 0);
    item.started_at_ms = WholeField<int64_t>(j, "started_at_ms", 0);
    item.finished_at_ms = WholeField<int64_t>(j, "finished_at_ms", 0);
    item.message = j.value("message", "");
    return item;
  } catch (const json::exception& e) {
    return cluster::MakeError(std::string("bad queue item: ") + e.what());
  } catch (const BadQueueJson& e) {
    return cluster::MakeError(std::string("bad queue item: ") + e.what());
  }
}

Queue::Queue(std::string dir, WallClock wall_clock, common::FileLock lock)
    : dir_(std::move(dir)),
      path_(dir_ + "/queue.json"),
      wall_clock_(wall_clock ? std::move(wall_clock) : WallClock(&UnixMs)),
      lock_(std::move(lock)) {}

Queue::~Queue() = default;

cluster::Result<std::unique_ptr<Queue>> Queue::Open(const std::string& dir, WallClock wall_clock) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return cluster::MakeError("cannot create journal dir " + dir + ": " + ec.message());
  const std::string lock_path = dir + "/daemon.lock";
  auto lock = common::FileLock::TryAcquire(lock_path);
  if (!lock) return tl::unexpected(lock.error());
  if (!*lock) {
    return cluster::MakeError("another slotguard-agent daemon already uses the journal dir " + dir +
                              " (" + lock_path + " is locked)");
  }
  std::unique_ptr<Queue> queue(new Queue(dir, std::move(wall_clock), std::move(**lock)));
  auto loaded = queue->Load();
  if (!loaded) return tl::unexpected(loaded.error());
  return queue;
}

cluster::Result<QueueState> ParseQueueState(const std::string& text, const std::string& path) {
  auto parsed = ParseJson(text);
  if (!parsed || !parsed->is_object()) {
    return cluster::MakeError(path +
                              " is damaged (not a JSON object); move it away to start "
                              "with an empty queue");
  }
  json& doc = *parsed;
  try {
    QueueState state;
    if (!doc.contains("version") || !doc["version"].is_number_integer() ||
        doc["version"] != kFormatVersion) {
      return cluster::MakeError(path + ": unsupported queue format version " +
                                doc.value("version", json()).dump());
    }
    state.paused = doc.value("paused", false);
    state.pause_reason = doc.value("pause_reason", "");
    state.next_plan_seq = WholeField<int64_t>(doc, "next_plan_seq", 1, 1);
    state.alert_keys = doc.value("alert_keys", std::vector<std::string>{});
    for (const auto& j : doc.at("items")) {
      auto item = ItemFromJson(j);
      if (!item) return cluster::MakeError(path + ": " + item.error().message);
      state.items.push_back(std::move(*item));
    }
    return state;
  } catch (const json::exception& e) {
    return cluster::MakeError(path + " is damaged: " + e.what());
  } catch (const BadQueueJson& e) {
    return cluster::MakeError(path + " is damaged: " + e.what());
  }
}

cluster::Result<void> Queue::Load() {
  std::ifstream in(path_);
  if (!in) {
    if (errno == ENOENT) return {};  // a fresh queue
    return cluster::MakeError(Errno("cannot read " + path_));
  }
  std::stringstream text;
  text << in.rdbuf();
  auto state = ParseQueueState(text.str(), path_);
  if (!state) return tl::unexpected(state.error());
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = std::move(*state);
  return {};
}

cluster::Result<void> Queue::Persist(const QueueState& state) const {
  json doc{{"version", kFormatVersion},          {"paused", state.paused},
           {"pause_reason", state.pause_reason}, {"next_plan_seq", state.next_plan_seq},
           {"alert_keys", state.alert_keys},     {"items", json::array()}};
  for (const auto& item : state.items) doc["items"].push_back(ToJson(item));
  const std::string data = doc.dump(1) + "\n";
  return common::AtomicRewrite(path_, data, ".tmp");
}

void Queue::TrimHistory(QueueState& state) {
  size_t finished = 0;
  for (const auto& item : state.items) finished += item.Terminal() ? 1 : 0;
  for (auto it = state.items.begin(); finished > kMaxHistory && it != state.items.end();) {
    if (it->Terminal()) {
      it = state.items.erase(it);
      --finished;
    } else {
      ++it;
    }
  }
}

cluster::Result<void> Queue::Mutate(
    const std::function<cluster::Result<void>(QueueState&)>& change) {
  std::lock_guard<std::mutex> lock(mutex_);
  QueueState next = state_;
  auto changed = change(next);
  if (!changed) return changed;
  TrimHistory(next);
  auto persisted = Persist(next);
  if (!persisted) return persisted;
  state_ = std::move(next);
  changed_.notify_all();
  return {};
}

cluster::Result<std::string> Queue::Enqueue(const Plan& plan, const std::string& plan_file,
                                            bool needs_approval) {
  std::string plan_id;
  auto r = Mutate([&](QueueState& s) -> cluster::Result<void> {
    if (plan.batches.empty()) return cluster::MakeError("the plan has no batches");
    plan_id = "p" + std::to_string(s.next_plan_seq);
    std::set<std::string> ids;
    std::map<int, std::string> busy;  // slot -> unfinished batch that moves it
    for (const auto& item : s.items) {
      ids.insert(item.batch.id);
      if (!item.Terminal()) {
        for (int slot : item.batch.slots) busy[slot] = item.batch.id;
      }
    }
    const int64_t now = wall_clock_();
    int n = 0;
    for (const Batch& b : plan.batches) {
      ++n;
      QueueItem item;
      item.batch = b;
      if (item.batch.id.empty()) item.batch.id = plan_id + "-b" + std::to_string(n);
      if (!ids.insert(item.batch.id).second) {
        return cluster::MakeError("batch id '" + item.batch.id +
                                  "' is already in the queue; give the batch another id");
      }
      for (int slot : item.batch.slots) {
        auto it = busy.find(slot);
        if (it != busy.end()) {
          return cluster::MakeError("batch " + item.batch.id + ": slot " + std::to_string(slot) +
                                    " is already moved by queued batch " + it->second);
        }
      }
      item.plan_id = plan_id;
      item.plan_file = plan_file;
      item.needs_approval = needs_approval;
      item.enqueued_at_ms = now;
      s.items.push_back(std::move(item));
    }
    ++s.next_plan_seq;
    return {};
  });
  if (!r) return tl::unexpected(r.error());
  return plan_id;
}

cluster::Result<std::vector<std::string>> Queue::Approve(const std::string& id) {
  std::vector<std::string> approved;
  auto r = Mutate([&](QueueState& s) -> cluster::Result<void> {
    std::string plan_id;
    for (const auto& item : s.items) {
      if (item.plan_id == id || item.batch.id == id) plan_id = item.plan_id;
    }
    if (plan_id.empty()) return cluster::MakeError("no batch or plan '" + id + "' in the queue");
    const int64_t now = wall_clock_();
    bool any_waiting = false;
    for (auto& item : s.items) {
      if (item.plan_id != plan_id || item.Terminal()) continue;
      if (item.AwaitingApproval()) {
        any_waiting = true;
        item.approved = true;
        item.approved_at_ms = now;
        approved.push_back(item.batch.id);
      }
    }
    if (!any_waiting) {
      return cluster::MakeError("plan " + plan_id + " has no batch waiting for approval");
    }
    return {};
  });
  if (!r) return tl::unexpected(r.error());
  return approved;
}

cluster::Result<void> Queue::Pause(const std::string& reason) {
  return Mutate([&](QueueState& s) -> cluster::Result<void> {
    s.paused = true;
    s.pause_reason = reason;
    return {};
  });
}

cluster::Result<void> Queue::Resume() {
  return Mutate([&](QueueState& s) -> cluster::Result<void> {
    s.paused = false;
    s.pause_reason.clear();
    return {};
  });
}

cluster::Result<void> Queue::Cancel(const std::string& batch_id, const std::string& why) {
  return Mutate([&](QueueState& s) -> cluster::Result<void> {
    for (auto& item : s.items) {
      if (item.batch.id != batch_id) continue;
      if (item.state != BatchState::kQueued) {
        return cluster::MakeError("batch " + batch_id + " is " + item.DisplayState() +
                                  ", not queued: it cannot be cancelled");
      }
      item.state = BatchState::kCancelled;
      item.finished_at_ms = wall_clock_();
      item.message = why;
      return {};
    }
    return cluster::MakeError("no batch '" + batch_id + "' in the queue");
  });
}

std::vector<QueueItem> RunnableItems(const QueueState& state) {
  std::vector<QueueItem> out;
  if (state.paused) return out;
  for (const auto& item : state.items) {
    if (item.Terminal()) continue;
    const bool runnable = item.state == BatchState::kQueued && !item.AwaitingApproval();
    if (!runnable || (!out.empty() && item.plan_id != out.front().plan_id)) break;
    out.push_back(item);
  }
  return out;
}

std::vector<QueueItem> Queue::WaitForRunnableItems(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  std::vector<QueueItem> items = RunnableItems(state_);
  if (items.empty()) {
    changed_.wait_for(lock, timeout);
    items = RunnableItems(state_);
  }
  return items;
}

std::optional<QueueItem> Queue::WaitForRunnable(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto runnable = [&]() -> const QueueItem* {
    if (state_.paused) return nullptr;
    for (const auto& item : state_.items) {
      if (item.Terminal()) continue;
      if (item.state == BatchState::kQueued && !item.AwaitingApproval()) return &item;
      return nullptr;  // strictly in order: the head waits (approval) or already runs
    }
    return nullptr;
  };
  const QueueItem* item = runnable();
  if (item == nullptr) {
    changed_.wait_for(lock, timeout);
    item = runnable();
  }
  if (item == nullptr) return std::nullopt;
  return *item;
}

void Queue::Wake() {
  std::lock_guard<std::mutex> lock(mutex_);
  changed_.notify_all();
}

namespace {

cluster::Result<QueueItem*> FindItem(QueueState& s, const std::string& batch_id) {
  for (auto& item : s.items) {
    if (item.batch.id == batch_id) return &item;
  }
  return cluster::MakeError("no batch '" + batch_id + "' in the queue");
}

}  // namespace

cluster::Result<void> Queue::MarkRunning(const std::string& batch_id) {
  return Mutate([&](QueueState& s) -> cluster::Result<void> {
    auto item = FindItem(s, batch_id);
    if (!item) return tl::unexpected(item.error());
    if ((*item)->state != BatchState::kQueued) {
      return cluster::MakeError("batch " + batch_id + " is " + ToString((*item)->state) +
                                ", not queued");
    }
    (*item)->state = BatchState::kPreflight;
    (*item)->attempts += 1;
    (*item)->started_at_ms = wall_clock_();
    (*item)->message.clear();
    return {};
  });
}

cluster::Result<void> Queue::SetPhase(const std::string& batch_id, BatchState phase) {
  if (!IsRunning(phase)) {
    return cluster::MakeError("batch " + batch_id + ": " + ToString(phase) +
                              " is not a running state");
  }
  return Mutate([&](QueueState& s) -> cluster::Result<void> {
    auto item = FindItem(s, batch_id);
    if (!item) return tl::unexpected(item.error());
    if ((*item)->Running()) (*item)->state = phase;
    return {};
  });
}

cluster::Result<void> Queue::Finish(const std::string& batch_id, BatchState state,
                                    const std::string& message) {
  if (state != BatchState::kDone && state != BatchState::kRolledBack &&
      state != BatchState::kFailed) {
    return cluster::MakeError("batch " + batch_id + ": cannot end as " + ToString(state));
  }
  return Mutate([&](QueueState& s) -> cluster::Result<void> {
    auto item = FindItem(s, batch_id);
    if (!item) return tl::unexpected(item.error());
    (*item)->state = state;
    (*item)->finished_at_ms = wall_clock_();
    (*item)->message = message;
    return {};
  });
}

cluster::Result<void> Queue::Requeue(const std::string& batch_id, const std::string& message,
                                     const std::optional<std::vector<int>>& remaining) {
  return Mutate([&](QueueState& s) -> cluster::Result<void> {
    auto item = FindItem(s, batch_id);
    if (!item) return tl::unexpected(item.error());
    if (remaining) {
      if (remaining->empty()) return cluster::MakeError("batch " + batch_id + ": nothing left");
      (*item)->batch.slots = *remaining;
    }
    (*item)->state = BatchState::kQueued;
    (*item)->message = message;
    return {};
  });
}

cluster::Result<void> Queue::MarkRollbackRequested(const std::string& batch_id) {
  return Mutate([&](QueueState& s) -> cluster::Result<void> {
    auto item = FindItem(s, batch_id);
    if (!item) return tl::unexpected(item.error());
    (*item)->rollback_requested = true;
    return {};
  });
}

cluster::Result<std::string> Queue::InsertRevert(const std::string& batch_id,
                                                 const std::vector<int>& slots) {
  std::string id;
  auto r = Mutate([&](QueueState& s) -> cluster::Result<void> {
    auto original = FindItem(s, batch_id);
    if (!original) return tl::unexpected(original.error());
    if (slots.empty()) return cluster::MakeError("batch " + batch_id + " has no slot to revert");
    QueueItem item;
    item.batch.from = (*original)->batch.to;
    item.batch.to = (*original)->batch.from;
    item.batch.slots = slots;
    item.batch.guards = (*original)->batch.guards;
    item.plan_id = (*original)->plan_id;
    item.plan_file = (*original)->plan_file;
    item.enqueued_at_ms = wall_clock_();
    item.message = "reverts " + batch_id;
    for (int n = 1;; ++n) {
      id = batch_id + "-revert" + (n == 1 ? "" : std::to_string(n));
      bool used = false;
      for (const auto& other : s.items) used = used || other.batch.id == id;
      if (!used) break;
    }
    item.batch.id = id;
    auto pos = s.items.begin();
    while (pos != s.items.end() && pos->Terminal()) ++pos;
    // Never in front of a running batch: right behind the running ones.
    while (pos != s.items.end() && (pos->Terminal() || pos->Running())) ++pos;
    s.items.insert(pos, std::move(item));
    return {};
  });
  if (!r) return tl::unexpected(r.error());
  return id;
}

bool Queue::AlertSeen(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& k : state_.alert_keys) {
    if (k == key) return true;
  }
  return false;
}

cluster::Result<void> Queue::RememberAlerts(const std::vector<std::string>& keys) {
  return Mutate([&](QueueState& s) -> cluster::Result<void> {
    for (const auto& key : keys) {
      bool seen = false;
      for (const auto& k : s.alert_keys) seen = seen || k == key;
      if (!seen) s.alert_keys.push_back(key);
    }
    while (s.alert_keys.size() > kMaxAlertKeys) s.alert_keys.erase(s.alert_keys.begin());
    return {};
  });
}

QueueState Queue::Snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

std::optional<QueueItem> Queue::Find(const std::string& batch_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& item : state_.items) {
    if (item.batch.id == batch_id) return item;
  }
  return std::nullopt;
}

std::optional<QueueItem> Queue::Running() const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& item : state_.items) {
    if (item.Running()) return item;
  }
  return std::nullopt;
}

QueueStats Queue::Stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  QueueStats stats;
  int64_t oldest = 0;
  for (const auto& item : state_.items) {
    if (item.Terminal()) continue;
    stats.batches += 1;
    stats.slots += static_cast<int>(item.batch.slots.size());
    if (item.AwaitingApproval() && (oldest == 0 || item.enqueued_at_ms < oldest)) {
      oldest = item.enqueued_at_ms;
    }
  }
  if (oldest != 0) {
    const int64_t age = wall_clock_() - oldest;
    stats.approval_wait_seconds = age > 0 ? static_cast<double>(age) / 1000.0 : 0.0;
  }
  return stats;
}

}  // namespace slotguard::agent
