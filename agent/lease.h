#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/connection.h"
#include "cluster/endpoint.h"
#include "cluster/result.h"

namespace slotguard::agent {

// The cluster-wide migration lease: one key in the cluster itself, so every agent, on any host
// and with any journal, sees who is moving slots. Every mover (a reshard run, the daemon while a
// batch runs, a recovery) takes it before its first SETSLOT and renews it while it works.
// All three keys share the hash tag {slotguard} (slot 3620), so each script is atomic on the
// master that owns that slot; the agent follows -MOVED/-ASK (it may move that slot itself).
inline constexpr const char* kLeaseKey = "{slotguard}:lease";
// INCR'd on every acquisition: the fencing token, increasing for as long as the cluster lives.
inline constexpr const char* kLeaseTokenKey = "{slotguard}:lease:token";
// Hash token -> holder of every acquisition not released yet. An entry whose lease is gone names
// a holder that died mid-work (kill -9, host lost); it is dropped by the next holder whose
// preflight finds the cluster clean.
inline constexpr const char* kLeaseUnreleasedKey = "{slotguard}:lease:unreleased";

// KEYS lease, token, unreleased; ARGV holder JSON without its opening brace and token, TTL ms,
// the value of a holder proven dead that may be replaced ("" for none).
// Returns {1, value, {unreleased holders}} when taken, {0, value, pttl} when someone holds it.
inline constexpr const char* kLeaseAcquireScript =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur and cur ~= ARGV[3] then return {0, cur, redis.call('PTTL', KEYS[1])} end\n"
    "local token = redis.call('INCR', KEYS[2])\n"
    "local value = '{\"token\":' .. token .. ',' .. ARGV[1]\n"
    "redis.call('SET', KEYS[1], value, 'PX', ARGV[2])\n"
    "local dead = redis.call('HVALS', KEYS[3])\n"
    "redis.call('HSET', KEYS[3], token, value)\n"
    "return {1, value, dead}\n";
// KEYS lease; ARGV our value, TTL ms. 1 when still ours (and extended), else 0.
inline constexpr const char* kLeaseRenewScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "end\n"
    "return 0\n";
// KEYS lease, unreleased; ARGV our value, our token, "1" when we leave nothing open (else our
// entry stays, so the next holder learns whose journal to converge). Deletes the lease only when
// it is ours.
inline constexpr const char* kLeaseReleaseScript =
    "if ARGV[3] == '1' then redis.call('HDEL', KEYS[2], ARGV[2]) end\n"
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";
// KEYS lease, unreleased; ARGV our value, our token. Drops every other unreleased entry, only
// while the lease is ours.
inline constexpr const char* kLeaseForgetScript =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do\n"
    "  if f ~= ARGV[2] then redis.call('HDEL', KEYS[2], f) end\n"
    "end\n"
    "return 1\n";

// Who holds (or held) the lease. Stored as JSON, token first (the acquire script writes it).
struct LeaseHolder {
  int64_t token = 0;
  std::string host;
  int64_t pid = 0;
  std::string run;       // reshard run id, or "daemon"
  std::string journal;   // absolute journal dir
  int64_t since_ms = 0;  // unix ms when it was taken

  // "host h, pid p, run r, journal j, since 2026-... UTC (token n)"
  std::string Describe() const;
};

// The holder JSON without its opening brace and token: ARGV[1] of kLeaseAcquireScript.
std::string LeaseHolderTail(const LeaseHolder& holder);
std::string FormatLeaseHolder(const LeaseHolder& holder);
cluster::Result<LeaseHolder> ParseLeaseHolder(const std::string& value);

// How far a holder can trust its lease `since_confirmed` after the server last extended it (the
// time is taken before the renewal was sent, so the key lives at least `ttl` beyond it).
enum class FenceVerdict {
  kHeld,      // renewed recently: go on without a round trip
  kRenewNow,  // renew before the next step; a transport failure still leaves time
  kExpired,   // it may have expired: no step until a renewal proves it is still ours
};
FenceVerdict JudgeFence(std::chrono::steady_clock::duration since_confirmed,
                        std::chrono::milliseconds ttl);

struct LeaseOptions {
  bool enabled = true;
  std::chrono::milliseconds ttl{30000};
  std::string run = "daemon";  // shown to a refused agent
};

// One agent's hold on the lease: Acquire before the first step, Check before each step,
// Release when idle. A thread renews it every ttl/3 while held. Thread-safe.
class Lease {
 public:
  // `connector` is used from the renewal thread and from callers: it must hand out a connection
  // that no one else uses at the same time (the engine gives it a pool of its own).
  Lease(cluster::Connector& connector, std::vector<cluster::Endpoint> seeds, LeaseOptions options,
        std::string journal_dir);
  ~Lease();  // releases
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // Takes the lease unless held already. Refused (an error naming the holder) while another
  // agent holds it; nothing is changed then. `proven_dead` may clear a holder on this host with
  // this journal dir at once instead of after its TTL (see EngineImpl::TakeLease).
  cluster::Result<void> Acquire(
      const std::function<bool(const LeaseHolder&)>& proven_dead = nullptr);
  int64_t token() const;
  // The fencing check before a step: nullopt while the lease is still ours with our token;
  // otherwise why not (sticky: once lost, every later check fails until Release).
  std::optional<std::string> Check();
  // Deletes the lease when it is ours; forgets our unreleased entry when `clean` (nothing of ours
  // is left open). Best effort (a lease that cannot be deleted expires after its TTL).
  void Release(bool clean = true);
  // After a clean preflight: holders that never released it left nothing behind.
  void ForgetUnreleased();

  bool held() const;
  // Earlier holders that never released the lease, as seen when it was taken (not us).
  std::vector<LeaseHolder> unreleased() const;

 private:
  // Runs argv against the master that owns the lease's slot, following -MOVED/-ASK and
  // waiting out -TRYAGAIN (the slot is being moved) within a bound.
  cluster::Result<cluster::Reply> Send(const cluster::Argv& argv);
  // Renews now; false with `why` when the lease is no longer ours (sets lost_).
  cluster::Result<bool> RenewLocked(std::string& why);
  void RenewLoop();

  cluster::Connector& connector_;
  std::vector<cluster::Endpoint> seeds_;
  LeaseOptions options_;
  std::string journal_dir_;

  mutable std::mutex mutex_;  // the state below and the use of connector_
  std::condition_variable wake_;
  std::optional<cluster::Endpoint> owner_;  // last node that answered for the lease's slot
  std::optional<LeaseHolder> mine_;
  std::string value_;  // mine_ as stored
  std::chrono::steady_clock::time_point confirmed_{};
  std::optional<std::string> lost_;
  std::vector<LeaseHolder> unreleased_;
  bool stopping_ = false;
  std::thread renewer_;
};

}  // namespace slotguard::agent
