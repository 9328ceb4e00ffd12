#include "agent/journal.h"
#include "agent/json_read.h"
#include "agent/wall_time.h"
#include "cluster/nodes.h"
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
#include <sstream>

namespace slotguard::agent {
namespace {

std::string Errno() { return std::strerror(errno); }

}  // namespace

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

// Rewrites DIR/journal.jsonl with CompactRecords of it, atomically: a kill -9 at any point
// leaves the old or the new file whole. Called with the directory locked.
cluster::Result<void> Compact(const std::string& dir, const std::string& path) {
  auto records = Journal::Read(dir);
  if (!records) return tl::unexpected(records.error());
  std::string lines;
  for (const auto& r : CompactRecords(*records)) {
    lines += r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    lines.push_back('\n');
  }
  if (auto r = common::AtomicRewrite(path, lines, ".compact"); !r) {
    return cluster::MakeError("journal: " + r.error().message);
  }
  return {};
}

}  // namespace

cluster::Result<std::unique_ptr<Journal>> Journal::Open(const std::string& dir,
                                                        int64_t compact_above_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return cluster::MakeError("journal dir " + dir + ": " + ec.message());
  const std::string lock_path = dir + "/journal.lock";
  auto lock = common::FileLock::TryAcquire(lock_path);
  if (!lock) return cluster::MakeError("journal lock: " + lock.error().message);
  if (!*lock) {
    return cluster::MakeError("journal dir " + dir +
                              " is in use by another slotguard-agent (lock " + lock_path + ")");
  }
  const std::string path = dir + "/journal.jsonl";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return cluster::MakeError("journal " + path + ": " + Errno());
  std::unique_ptr<Journal> journal(new Journal(dir, path, fd, std::move(**lock)));
  // A kill -9 mid-write leaves a line without its newline: end it so the next record starts
  // on a line of its own (the torn line is skipped by Read).
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    char last = '\n';
    if (::pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n') {
      if (auto w = common::WriteAll(fd, "\n"); !w) {
        return cluster::MakeError("journal " + path + ": " + w.error().message);
      }
    }
  }
  if (::fdatasync(fd) != 0) return cluster::MakeError("journal " + path + ": fsync: " + Errno());
  (void)common::SyncDir(dir);  // the file's directory entry durable too (best effort)
  if (auto c = journal->CompactIfOver(compact_above_bytes); !c) return tl::unexpected(c.error());
  return journal;
}

cluster::Result<void> Journal::CompactIfOver(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || st.st_size <= bytes) return {};
  if (auto c = Compact(dir_, path_); !c) return c;
  // The old descriptor still points at the replaced file.
  int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return cluster::MakeError("journal " + path_ + ": " + Errno());
  ::close(fd_);
  fd_ = fd;
  return {};
}

cluster::Result<void> Journal::Append(nlohmann::json record) {
  std::vector<nlohmann::json> one;
  one.push_back(std::move(record));
  return AppendAll(std::move(one));
}

cluster::Result<void> Journal::AppendAll(std::vector<nlohmann::json> records) {
  std::string lines;
  const int64_t now = UnixMs();
  for (auto& record : records) {
    if (!record.contains("ts")) record["ts"] = now;
    // Replace invalid UTF-8 rather than throw: reasons may quote server replies.
    lines += record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    lines.push_back('\n');
  }
  if (lines.empty()) return {};
  std::lock_guard<std::mutex> lock(mutex_);
  if (!broken_.empty()) return cluster::MakeError(broken_);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return cluster::MakeError("journal " + path_ + ": stat: " + Errno());
  // A failed write or fsync is cut back to where it started: a half-written line would swallow
  // the next record, and a record that did not become durable must not describe a step the
  // caller is not going to run.
  auto cut_back = [&](const std::string& what) {
    const std::string error = "journal " + path_ + ": " + what + ": " + Errno();
    if (::ftruncate(fd_, st.st_size) != 0) {
      broken_ = error + " (and cutting it back failed: " + Errno() + "; reopen the journal)";
    }
    return cluster::MakeError(error);
  };
  // One write(2): a kill -9 tears at most the tail of it, never interleaves.
  if (!common::WriteAll(fd_, lines)) return cut_back("write");
  if (::fdatasync(fd_) != 0) return cut_back("fsync");
  return {};
}

std::vector<nlohmann::json> Journal::ParseRecords(std::string_view text, int* skipped) {
  std::vector<nlohmann::json> out;
  if (skipped) *skipped = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.empty()) continue;
    auto parsed = ParseJson(line);
    if (!parsed || !parsed->is_object() || !parsed->contains("type")) {
      if (skipped) ++*skipped;
      continue;
    }
    out.push_back(std::move(*parsed));
  }
  return out;
}

cluster::Result<std::vector<nlohmann::json>> Journal::Read(const std::string& dir, int* skipped) {
  const std::string path = dir + "/journal.jsonl";
  if (skipped) *skipped = 0;
  std::ifstream in(path);
  if (!in) {
    if (!std::filesystem::exists(path)) return std::vector<nlohmann::json>{};
    return cluster::MakeError("journal " + path + ": cannot be read");
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseRecords(text.str(), skipped);
}

const JournalBatch* JournalState::FindBatch(const std::string& id) const {
  for (const auto& b : batches) {
    if (b.id == id) return &b;
  }
  return nullptr;
}

std::vector<const JournalBatch*> JournalState::OpenBatches() const {
  std::vector<const JournalBatch*> out;
  for (const auto& b : batches) {
    if (b.open()) out.push_back(&b);
  }
  return out;
}

const JournalRun* JournalState::LastUnfinishedRun() const {
  return runs.empty() || runs.back().finished() ? nullptr : &runs.back();
}

namespace {

std::string Str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<int> Slots(const nlohmann::json& j, const char* key = "slots") {
  std::vector<int> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  // Only slot numbers: recovery indexes per-slot tables with these (a damaged line may say 1e9).
  for (const auto& v : *it) {
    if (auto slot = WholeNumber(v, 0, cluster::kSlotCount - 1))
      out.push_back(static_cast<int>(*slot));
  }
  return out;
}

cluster::Endpoint Ep(const nlohmann::json& j, const char* key) {
  auto e = cluster::ParseEndpoint(Str(j, key));
  return e ? *e : cluster::Endpoint{};
}

}  // namespace

JournalState ReplayJournal(const std::vector<nlohmann::json>& records) {
  JournalState state;
  std::map<std::string, size_t> index;
  std::map<std::string, size_t> run_index;
  for (const auto& r : records) {
    const std::string type = Str(r, "type");
    if (type == "run") {
      JournalRun run;
      run.id = Str(r, "run");
      run.from = Str(r, "from");
      run.to = Str(r, "to");
      if (r.contains("request")) run.request = r["request"];
      if (auto it = r.find("batches"); it != r.end() && it->is_array()) {
        for (const auto& b : *it) run.batches.emplace_back(Str(b, "id"), Slots(b));
      }
      run_index[run.id] = state.runs.size();
      state.runs.push_back(std::move(run));
      continue;
    }
    if (type == "run_end") {
      if (auto it = run_index.find(Str(r, "run")); it != run_index.end()) {
        state.runs[it->second].end = Str(r, "state");
        if (auto ts = r.find("ts"); ts != r.end() && ts->is_number_integer()) {
          state.runs[it->second].end_ms = ts->get<int64_t>();
        }
      }
      continue;
    }
    const std::string id = Str(r, "batch");
    if (id.empty()) continue;
    if (type == "batch") {
      JournalBatch b;
      b.id = id;
      b.source_id = Str(r, "source_id");
      b.source = Ep(r, "source");
      b.target_id = Str(r, "target_id");
      b.target = Ep(r, "target");
      b.slots = Slots(r);
      for (const char* end : {"source_replicas", "target_replicas"}) {
        auto& out = std::string(end) == "source_replicas" ? b.source_replicas : b.target_replicas;
        if (auto f = r.find(end); f != r.end() && f->is_array()) {
          for (const auto& x : *f) {
            if (x.is_string()) out.push_back(x.get<std::string>());
          }
        }
      }
      if (auto it = index.find(id); it != index.end()) {
        state.batches[it->second] = std::move(b);  // a new incarnation replaces the old one
      } else {
        index[id] = state.batches.size();
        state.batches.push_back(std::move(b));
      }
      continue;
    }
    auto it = index.find(id);
    if (it == index.end()) continue;  // a record for a batch whose start was never written
    JournalBatch& b = state.batches[it->second];
    if (type == "step") {
      auto slots = Slots(r);
      auto& set = b.steps[Str(r, "step")];
      set.insert(slots.begin(), slots.end());
      b.touched.insert(slots.begin(), slots.end());
    } else if (type == "rollback") {
      b.rollback = true;
      b.trigger = Str(r, "trigger");
      b.reason = Str(r, "reason");
    } else if (type == "end") {
      b.end = ParseBatchState(Str(r, "state"));
      if (!b.end) b.end = BatchState::kFailed;
      if (b.reason.empty()) b.reason = Str(r, "reason");
    }
  }
  return state;
}

std::vector<nlohmann::json> CompactRecords(const std::vector<nlohmann::json>& records) {
  // Which incarnation of its batch each record belongs to (0 for none), and the last one's.
  std::map<std::string, int> incarnations;
  std::vector<int> incarnation(records.size(), 0);
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string id = Str(records[i], "batch");
    const std::string type = Str(records[i], "type");
    if (id.empty() || type == "run" || type == "run_end") continue;
    if (type == "batch") ++incarnations[id];
    auto it = incarnations.find(id);
    incarnation[i] = it == incarnations.end() ? 0 : it->second;
  }
  const JournalState state = ReplayJournal(records);
  std::vector<nlohmann::json> out;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    const std::string type = Str(r, "type");
    const std::string id = Str(r, "batch");
    if (type == "run" || type == "run_end" || id.empty()) {
      out.push_back(r);  // runs, and records of types this version does not know
      continue;
    }
    if (incarnation[i] == 0 || incarnation[i] != incarnations[id]) continue;
    const JournalBatch* b = state.FindBatch(id);
    if (!b) continue;
    if (b->open() || type != "step") out.push_back(r);
  }
  return out;
}

nlohmann::json BatchRecord(const std::string& batch_id, const std::string& source_id,
                           const cluster::Endpoint& source, const std::string& target_id,
                           const cluster::Endpoint& target, const std::vector<int>& slots,
                           const std::vector<std::string>& source_replicas,
                           const std::vector<std::string>& target_replicas) {
  return {{"type", "batch"},
          {"batch", batch_id},
          {"source_id", source_id},
          {"source", source.ToString()},
          {"target_id", target_id},
          {"target", target.ToString()},
          {"slots", slots},
          {"source_replicas", source_replicas},
          {"target_replicas", target_replicas}};
}

nlohmann::json StepRecord(const std::string& batch_id, const std::string& step,
                          const std::vector<int>& slots) {
  return {{"type", "step"}, {"batch", batch_id}, {"step", step}, {"slots", slots}};
}

nlohmann::json RollbackRecord(const std::string& batch_id, RollbackTrigger trigger,
                              const std::string& reason) {
  return {{"type", "rollback"},
          {"batch", batch_id},
          {"trigger", ToString(trigger)},
          {"reason", reason}};
}

nlohmann::json EndRecord(const std::string& batch_id, BatchState state, const std::string& reason) {
  return {{"type", "end"}, {"batch", batch_id}, {"state", ToString(state)}, {"reason", reason}};
}

}  // namespace slotguard::agent
