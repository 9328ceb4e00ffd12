#include "agent/lease.h"
#include "agent/json_read.h"
#include "agent/wall_time.h"

#include <limits.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>

#include <nlohmann/json.hpp>

namespace slotguard::agent {
namespace {

std::string HostName() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

// "-MOVED 3620 127.0.0.1:7001" / "-ASK ..." -> the endpoint.
std::optional<cluster::Endpoint> RedirectTarget(const std::string& error) {
  auto space = error.rfind(' ');
  if (space == std::string::npos) return std::nullopt;
  auto e = cluster::ParseEndpoint(error.substr(space + 1));
  if (!e) return std::nullopt;
  return *e;
}

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

std::string LeaseHolder::Describe() const {
  return "host " + host + ", pid " + std::to_string(pid) + ", run " + run + ", journal " + journal +
         ", since " + UtcText(since_ms) + " (token " + std::to_string(token) + ")";
}

std::string LeaseHolderTail(const LeaseHolder& h) {
  nlohmann::json j = {{"host", h.host},
                      {"pid", h.pid},
                      {"run", h.run},
                      {"journal", h.journal},
                      {"since_ms", h.since_ms}};
  return j.dump().substr(1);  // without "{": the script puts the token first
}

std::string FormatLeaseHolder(const LeaseHolder& h) {
  return "{\"token\":" + std::to_string(h.token) + "," + LeaseHolderTail(h);
}

cluster::Result<LeaseHolder> ParseLeaseHolder(const std::string& value) {
  auto parsed = ParseJson(value);
  if (!parsed || !parsed->is_object()) {
    return cluster::MakeError("lease value is not a JSON object: " + value.substr(0, 200));
  }
  const nlohmann::json& j = *parsed;
  // Any client of the cluster can write the key: numbers are read checked (1e300 is no int64).
  const auto number = [&](const char* key, bool required) -> std::optional<int64_t> {
    auto it = j.find(key);
    if (it == j.end()) return required ? std::nullopt : std::optional<int64_t>(0);
    return WholeNumber(*it);
  };
  LeaseHolder h;
  try {
    const auto token = number("token", true), pid = number("pid", false),
               since = number("since_ms", false);
    if (!token || !pid || !since) {
      return cluster::MakeError("lease value " + value.substr(0, 200) +
                                ": token, pid and since_ms must be whole numbers");
    }
    h.token = *token;
    h.host = j.value("host", "");
    h.pid = *pid;
    h.run = j.value("run", "");
    h.journal = j.value("journal", "");
    h.since_ms = *since;
  } catch (const nlohmann::json::exception& e) {
    return cluster::MakeError("lease value " + value.substr(0, 200) + ": " + e.what());
  }
  return h;
}

FenceVerdict JudgeFence(std::chrono::steady_clock::duration since_confirmed,
                        std::chrono::milliseconds ttl) {
  // The renewal thread works at ttl/3; a check finding it later than that renews itself, and
  // past 3/4 of the TTL (clock drift, a stalled renewal) trusts nothing but a fresh renewal.
  if (since_confirmed < ttl / 3) return FenceVerdict::kHeld;
  if (since_confirmed < ttl * 3 / 4) return FenceVerdict::kRenewNow;
  return FenceVerdict::kExpired;
}

Lease::Lease(cluster::Connector& connector, std::vector<cluster::Endpoint> seeds,
             LeaseOptions options, std::string journal_dir)
    : connector_(connector), seeds_(std::move(seeds)), options_(std::move(options)) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(journal_dir, ec);
  journal_dir_ = ec ? journal_dir : abs.lexically_normal().string();
}

Lease::~Lease() {
  // An owner that wants its entry kept (a batch left open) has released already.
  Release();
  std::unique_lock<std::mutex> lock(mutex_);
  stopping_ = true;
  lock.unlock();
  wake_.notify_all();
  if (renewer_.joinable()) renewer_.join();
}

bool Lease::held() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return mine_.has_value() && !lost_;
}

std::vector<LeaseHolder> Lease::unreleased() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return unreleased_;
}

cluster::Result<cluster::Reply> Lease::Send(const cluster::Argv& argv) {
  std::vector<cluster::Endpoint> candidates;
  if (owner_) candidates.push_back(*owner_);
  for (const auto& s : seeds_) candidates.push_back(s);
  std::string last_error = "no seed node";
  for (const auto& start : candidates) {
    cluster::Endpoint node = start;
    bool asking = false;
    int tryagain = 0;
    for (int hop = 0; hop < 8; ++hop) {
      cluster::Result<cluster::Reply> r = cluster::MakeError("");
      if (asking) {
        auto p = connector_.Get(node).Pipeline({{"ASKING"}, argv});
        if (p) {
          r = p->size() == 2 ? cluster::Result<cluster::Reply>((*p)[1])
                             : cluster::MakeError("short pipeline reply");
        } else {
          r = tl::unexpected(p.error());
        }
      } else {
        r = connector_.Get(node).Command(argv);
      }
      asking = false;
      if (!r) {
        last_error = node.ToString() + ": " + r.error().message;
        break;  // next candidate
      }
      if (r->IsError() && StartsWith(r->str, "MOVED ")) {
        auto to = RedirectTarget(r->str);
        if (!to) return cluster::MakeError(node.ToString() + ": " + r->str);
        node = *to;
        owner_ = node;
        continue;
      }
      if (r->IsError() && StartsWith(r->str, "ASK ")) {
        auto to = RedirectTarget(r->str);
        if (!to) return cluster::MakeError(node.ToString() + ": " + r->str);
        node = *to;
        asking = true;
        continue;
      }
      if (r->IsError() && StartsWith(r->str, "TRYAGAIN") && ++tryagain < 50) {
        // The lease's keys are split across a move of their slot for a moment.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        --hop;
        continue;
      }
      if (!r->IsError()) owner_ = node;
      return r;
    }
    owner_.reset();
  }
  return cluster::MakeError("lease " + std::string(kLeaseKey) + ": " + last_error);
}

int64_t Lease::token() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return mine_ ? mine_->token : 0;
}

cluster::Result<void> Lease::Acquire(const std::function<bool(const LeaseHolder&)>& proven_dead) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (mine_ && !lost_) return {};
  mine_.reset();
  lost_.reset();
  LeaseHolder me;
  me.host = HostName();
  me.pid = static_cast<int64_t>(::getpid());
  me.run = options_.run;
  me.journal = journal_dir_;
  me.since_ms = UnixMs();
  auto sent = std::chrono::steady_clock::now();
  auto acquire = [&](const std::string& replaceable) {
    sent = std::chrono::steady_clock::now();
    return Send({"EVAL", kLeaseAcquireScript, "3", kLeaseKey, kLeaseTokenKey, kLeaseUnreleasedKey,
                 LeaseHolderTail(me), std::to_string(options_.ttl.count()), replaceable});
  };
  auto r = acquire("");
  if (!r) return cluster::MakeError("cannot take the migration lease: " + r.error().message);
  if (proven_dead && r->type == cluster::Reply::Type::kArray && r->elements.size() == 3 &&
      r->elements[0].integer == 0) {
    // Our own journal's previous process, killed: no need to wait out its TTL.
    auto holder = ParseLeaseHolder(r->elements[1].str);
    if (holder && holder->host == me.host && holder->journal == journal_dir_ &&
        proven_dead(*holder)) {
      spdlog::warn("migration lease: taking it over from a dead holder of this journal: {}",
                   holder->Describe());
      const std::string old = r->elements[1].str;
      r = acquire(old);
      if (!r) return cluster::MakeError("cannot take the migration lease: " + r.error().message);
    }
  }
  if (r->IsError()) {
    return cluster::MakeError("cannot take the migration lease " + std::string(kLeaseKey) + ": " +
                              r->str);
  }
  if (r->type != cluster::Reply::Type::kArray || r->elements.size() != 3) {
    return cluster::MakeError("cannot take the migration lease: unexpected reply to its script");
  }
  const auto& e = r->elements;
  if (e[0].integer != 1) {
    auto holder = ParseLeaseHolder(e[1].str);
    const std::string who = holder ? holder->Describe() : "a holder with value " + e[1].str;
    const int64_t ms = e[2].integer;
    return cluster::MakeError(
        "another slotguard agent is moving slots in this cluster: the migration lease " +
        std::string(kLeaseKey) + " is held by " + who +
        (ms > 0 ? ", for " + std::to_string((ms + 999) / 1000) + " s more unless renewed" : "") +
        ". Nothing was changed; run again once it has finished (see README, \"The migration "
        "lease\", to clear a lease whose holder is gone)");
  }
  auto mine = ParseLeaseHolder(e[1].str);
  if (!mine) return tl::unexpected(mine.error());
  unreleased_.clear();
  for (const auto& d : e[2].elements) {
    if (auto h = ParseLeaseHolder(d.str); h && h->token != mine->token) unreleased_.push_back(*h);
  }
  for (const auto& h : unreleased_) {
    spdlog::warn("migration lease: an earlier holder never released it (it died mid-work?): {}",
                 h.Describe());
  }
  mine_ = *mine;
  value_ = e[1].str;
  confirmed_ = sent;
  spdlog::info("migration lease {} taken (token {}, TTL {} ms)", kLeaseKey, mine_->token,
               options_.ttl.count());
  if (!renewer_.joinable()) renewer_ = std::thread([this] { RenewLoop(); });
  lock.unlock();
  wake_.notify_all();
  return {};
}

cluster::Result<bool> Lease::RenewLocked(std::string& why) {
  const auto sent = std::chrono::steady_clock::now();
  auto r = Send(
      {"EVAL", kLeaseRenewScript, "1", kLeaseKey, value_, std::to_string(options_.ttl.count())});
  if (!r) return tl::unexpected(r.error());
  if (r->IsError()) return cluster::MakeError("renewing the lease: " + r->str);
  if (r->integer == 1) {
    confirmed_ = sent;
    return true;
  }
  // Not ours any more: say who has it now, if anyone.
  why = "the migration lease (token " + std::to_string(mine_->token) + ") is no longer ours";
  if (auto cur = Send({"GET", kLeaseKey}); cur && cur->type == cluster::Reply::Type::kString) {
    if (auto h = ParseLeaseHolder(cur->str)) why += ": now held by " + h->Describe();
  } else {
    why += ": it expired";
  }
  lost_ = why;
  spdlog::error("{}", why);
  return false;
}

std::optional<std::string> Lease::Check() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!mine_) return std::string("the migration lease is not held");
  if (lost_) return lost_;
  const auto verdict = JudgeFence(std::chrono::steady_clock::now() - confirmed_, options_.ttl);
  if (verdict == FenceVerdict::kHeld) return std::nullopt;
  std::string why;
  auto renewed = RenewLocked(why);
  if (renewed && *renewed) return std::nullopt;
  if (renewed) return lost_;
  if (verdict == FenceVerdict::kRenewNow) return std::nullopt;  // still inside the TTL
  lost_ = "the migration lease could not be renewed in time (" + renewed.error().message +
          "): another agent may take it";
  spdlog::error("{}", *lost_);
  return lost_;
}

void Lease::Release(bool clean) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!mine_) return;
  auto r = Send({"EVAL", kLeaseReleaseScript, "2", kLeaseKey, kLeaseUnreleasedKey, value_,
                 std::to_string(mine_->token), clean ? "1" : "0"});
  if (!r || r->IsError()) {
    spdlog::warn("migration lease not released (it expires after its TTL): {}",
                 r ? r->str : r.error().message);
  } else {
    spdlog::debug("migration lease released (token {})", mine_->token);
  }
  mine_.reset();
  lost_.reset();
  value_.clear();
}

void Lease::ForgetUnreleased() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!mine_ || lost_ || unreleased_.empty()) return;
  auto r = Send({"EVAL", kLeaseForgetScript, "2", kLeaseKey, kLeaseUnreleasedKey, value_,
                 std::to_string(mine_->token)});
  if (r && !r->IsError()) unreleased_.clear();
}

void Lease::RenewLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.ttl / 3);
    if (stopping_) break;
    if (!mine_ || lost_) continue;
    std::string why;
    auto r = RenewLocked(why);
    if (!r) spdlog::warn("migration lease not renewed (will retry): {}", r.error().message);
  }
}

}  // namespace slotguard::agent
