#include "agent/migrator.h"

#include <algorithm>
#include <future>
#include <set>
#include <string_view>

#include <spdlog/spdlog.h>

#include "cluster/info.h"
#include "cluster/key_slot.h"

namespace slotguard::agent {
namespace {

std::optional<std::string> DumpOf(const cluster::Result<std::vector<cluster::Reply>>& replies) {
  if (!replies || replies->size() < 2) return std::nullopt;
  const auto& r = (*replies)[1];
  if (r.type != cluster::Reply::Type::kString) return std::nullopt;
  return r.str;
}

std::string Slots(const std::map<int, std::string>& errors) {
  std::string out;
  int shown = 0;
  for (const auto& [slot, err] : errors) {
    if (shown++ == 3) {
      out += "; ...";
      break;
    }
    out += (out.empty() ? "" : "; ") + std::string("slot ") + std::to_string(slot) + ": " + err;
  }
  return out;
}

// A canonical text of a key's value: type and contents, members sorted where the type keeps no
// order. nullopt when the key is absent or of a type not compared here (then DUMP decides).
std::optional<std::string> Fingerprint(cluster::Connection& c, const std::string& key) {
  auto t = c.Pipeline({{"ASKING"}, {"TYPE", key}});
  if (!t || (*t)[1].IsError()) return std::nullopt;
  const std::string type = (*t)[1].str;
  cluster::Argv read;
  if (type == "string") {
    read = {"GET", key};
  } else if (type == "hash") {
    read = {"HGETALL", key};
  } else if (type == "list") {
    read = {"LRANGE", key, "0", "-1"};
  } else if (type == "set") {
    read = {"SMEMBERS", key};
  } else if (type == "zset") {
    read = {"ZRANGE", key, "0", "-1", "WITHSCORES"};
  } else {
    return std::nullopt;
  }
  auto r = c.Pipeline({{"ASKING"}, read});
  if (!r || (*r)[1].IsError()) return std::nullopt;
  const auto& v = (*r)[1];
  std::vector<std::string> parts;
  if (v.type == cluster::Reply::Type::kArray) {
    if (type == "hash") {
      for (size_t i = 0; i + 1 < v.elements.size(); i += 2) {
        const auto& f = v.elements[i].str;
        const auto& x = v.elements[i + 1].str;
        parts.push_back(std::to_string(f.size()) + ":" + f + std::to_string(x.size()) + ":" + x);
      }
    } else {
      for (const auto& e : v.elements) parts.push_back(std::to_string(e.str.size()) + ":" + e.str);
    }
    if (type == "hash" || type == "set") std::sort(parts.begin(), parts.end());
  } else if (v.type == cluster::Reply::Type::kString) {
    parts.push_back(v.str);
  } else {
    return std::nullopt;
  }
  std::string out = type + "|";
  for (const auto& p : parts) out += p + "|";
  return out;
}

std::string ShortKey(const std::string& key) {
  // Keys are binary-safe; show them printable and bounded.
  std::string out;
  for (char c : key.substr(0, 200)) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out.push_back(c);
    } else {
      constexpr const char* kHex = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  if (key.size() > 200) out += "...";
  return out;
}

}  // namespace

namespace {

// Only the last slot of the slots after the first keeps the importing path (see
// NodeOnTargetArgv); i indexes slots[1..].
bool MadeStableFirst(bool stable_first, size_t i, size_t n) { return stable_first && i + 1 < n; }

std::vector<int> AfterFirst(const std::vector<int>& slots) {
  return slots.size() > 1 ? std::vector<int>(slots.begin() + 1, slots.end()) : std::vector<int>{};
}

// CLUSTER SETSLOT <slot> `args` for each of `slots`.
std::vector<cluster::Argv> SetSlotArgvs(const std::vector<int>& slots,
                                        std::vector<std::string> args) {
  std::vector<cluster::Argv> out;
  for (int slot : slots) {
    cluster::Argv argv{"CLUSTER", "SETSLOT", std::to_string(slot)};
    argv.insert(argv.end(), args.begin(), args.end());
    out.push_back(std::move(argv));
  }
  return out;
}

std::vector<cluster::Argv> CountKeysArgvs(const std::vector<int>& slots) {
  std::vector<cluster::Argv> out;
  for (int slot : slots) out.push_back({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)});
  return out;
}

// Errors among replies[first, first+slots.size()), by slot.
std::map<int, std::string> ErrorsIn(const std::vector<cluster::Reply>& replies, size_t first,
                                    const std::vector<int>& slots, bool tolerate_replica) {
  std::map<int, std::string> errors;
  for (size_t i = 0; i < slots.size(); ++i) {
    const auto& r = replies[first + i];
    if (!r.IsError()) continue;
    if (tolerate_replica && IsReplicaReply(r.str)) continue;
    errors[slots[i]] = r.str;
  }
  return errors;
}

// Slots of `slots` where the target holds keys already (COUNTKEYSINSLOT replies at `first`).
std::vector<int> StraysIn(const std::vector<cluster::Reply>& replies, size_t first,
                          const std::vector<int>& slots) {
  std::vector<int> out;
  for (size_t i = 0; i < slots.size(); ++i) {
    const auto& r = replies[first + i];
    if (r.type == cluster::Reply::Type::kInteger && r.integer > 0) out.push_back(slots[i]);
  }
  return out;
}

}  // namespace

std::vector<cluster::Argv> NodeOnTargetArgv(const std::vector<int>& slots,
                                            const std::string& target_id, bool stable_first,
                                            bool with_first) {
  const std::vector<int> rest = with_first ? slots : AfterFirst(slots);
  std::vector<cluster::Argv> out;
  out.reserve(rest.size() * 2);
  for (size_t i = 0; i < rest.size(); ++i) {
    const std::string slot = std::to_string(rest[i]);
    if (MadeStableFirst(stable_first, i, rest.size()))
      out.push_back({"CLUSTER", "SETSLOT", slot, "STABLE"});
    out.push_back({"CLUSTER", "SETSLOT", slot, "NODE", target_id});
  }
  return out;
}

std::map<int, std::string> NodeOnTargetErrors(const std::vector<cluster::Reply>& replies,
                                              const std::vector<int>& slots, bool stable_first,
                                              bool with_first) {
  const std::vector<int> rest = with_first ? slots : AfterFirst(slots);
  std::map<int, std::string> errors;
  size_t r = 0;
  for (size_t i = 0; i < rest.size(); ++i) {
    const size_t n = MadeStableFirst(stable_first, i, rest.size()) ? 2 : 1;
    for (size_t k = 0; k < n && r < replies.size(); ++k, ++r) {
      if (replies[r].IsError() && !errors.count(rest[i])) errors[rest[i]] = replies[r].str;
    }
  }
  return errors;
}

std::optional<std::string> ClaimOutranksProblem(const cluster::Info& source_info,
                                                const cluster::Info& target_info) {
  auto source_epoch = source_info.GetNumber("cluster_my_epoch");
  auto target_epoch = target_info.GetNumber("cluster_my_epoch");
  if (!source_epoch || !target_epoch) return "CLUSTER INFO lacks cluster_my_epoch";
  if (*target_epoch > *source_epoch) return std::nullopt;
  return "the target's config epoch " + std::to_string(static_cast<uint64_t>(*target_epoch)) +
         " is not above the source's " + std::to_string(static_cast<uint64_t>(*source_epoch));
}

std::optional<std::string> EpochFenceProblem(const cluster::Info& source_info,
                                             const cluster::Info& target_info) {
  auto source_epoch = source_info.GetNumber("cluster_my_epoch");
  auto target_current = target_info.GetNumber("cluster_current_epoch");
  auto target_epoch = target_info.GetNumber("cluster_my_epoch");
  if (!source_epoch || !target_current || !target_epoch) {
    return "CLUSTER INFO lacks cluster_my_epoch / cluster_current_epoch";
  }
  if (*target_current < *source_epoch) {
    return "the target knows epochs up to " +
           std::to_string(static_cast<uint64_t>(*target_current)) +
           ", the source's config epoch is " + std::to_string(static_cast<uint64_t>(*source_epoch));
  }
  if (*target_epoch == *source_epoch) {
    return "source and target share config epoch " +
           std::to_string(static_cast<uint64_t>(*source_epoch));
  }
  return std::nullopt;
}

cluster::Result<Migrator::EpochRead> Migrator::ReadEpochs(const MoveEnds& ends,
                                                          std::vector<cluster::Argv> on_target) {
  auto& from = connector_.Get(ends.from);
  auto& to = connector_.Get(ends.to);
  const size_t first = on_target.size();
  on_target.push_back({"CLUSTER", "INFO"});
  on_target = WithSetSlotTimeout(SupportOf(ends.to), std::move(on_target),
                                 settings_.setslot_replica_timeout);
  // The source answers while the target works: one round trip for both.
  auto sent_from = from.Send({{"CLUSTER", "INFO"}});
  auto b = to.Pipeline(on_target);
  auto a = sent_from ? from.Receive(1) : tl::unexpected(sent_from.error());
  if (!b) return cluster::MakeError(ends.to.ToString() + ": " + b.error().message);
  EpochRead out;
  out.target_replies.assign(b->begin(), b->begin() + static_cast<long>(first));
  if (!a) return cluster::MakeError(ends.from.ToString() + ": " + a.error().message);
  const auto& ar = (*a)[0];
  const auto& br = (*b)[first];
  if (ar.IsError() || br.IsError()) {
    return cluster::MakeError("CLUSTER INFO refused: " + (ar.IsError() ? ar.str : br.str));
  }
  auto ai = cluster::ParseInfo(ar.str);
  if (!ai)
    return cluster::MakeError("CLUSTER INFO of " + ends.from.ToString() + ": " +
                              ai.error().message);
  auto bi = cluster::ParseInfo(br.str);
  if (!bi)
    return cluster::MakeError("CLUSTER INFO of " + ends.to.ToString() + ": " + bi.error().message);
  out.source = std::move(*ai);
  out.target = std::move(*bi);
  return out;
}

cluster::Result<Migrator::EpochRead> Migrator::AwaitEpochFence(const MoveEnds& ends,
                                                               const StepControl& ctl) {
  const auto deadline = clock_.Now() + settings_.epoch_fence_timeout;
  std::string problem;
  while (true) {
    auto read = ReadEpochs(ends, {});
    if (!read) {
      problem = read.error().message;
    } else if (auto p = EpochFenceProblem(read->source, read->target)) {
      problem = *p;
    } else {
      return read;
    }
    if (clock_.Now() >= deadline) break;
    if (ctl.stop) {
      if (auto why = ctl.stop()) return cluster::MakeError(*why);
    }
    clock_.SleepFor(std::chrono::milliseconds(5));
  }
  return cluster::MakeError("not giving the slots to " + ends.to.ToString() + ": " + problem +
                            " (after " + std::to_string(settings_.epoch_fence_timeout.count()) +
                            " ms; its new claim must outrank the source's, or a late claim of "
                            "the source would take the slots back and delete their keys there)");
}

cluster::Result<void> Migrator::ClaimFirst(const MoveEnds& ends, const std::vector<int>& group) {
  const std::string first = std::to_string(group.front());
  auto read = ReadEpochs(ends, {{"CLUSTER", "SETSLOT", first, "NODE", ends.to_id}});
  // -NOREPLICAS (Valkey 8): the target did not run it, a replica may have; sent again like
  // every other SETSLOT (Migrator::Run), twice.
  for (int again = 1; again <= 2 && read && !read->target_replies.empty() &&
                      SetSlotOutcomeUnknown(read->target_replies[0]);
       ++again) {
    spdlog::warn("{}: SETSLOT {} NODE answered \"{}\"; sending it again", ends.to.ToString(), first,
                 read->target_replies[0].str);
    read = ReadEpochs(ends, {{"CLUSTER", "SETSLOT", first, "NODE", ends.to_id}});
  }
  if (!read) {
    return cluster::MakeError("SETSLOT " + first + " NODE on " + ends.to.ToString() +
                              " (whether it ran is unknown): " + read.error().message);
  }
  if (read->target_replies.empty() || read->target_replies[0].IsError()) {
    const bool unknown =
        !read->target_replies.empty() && SetSlotOutcomeUnknown(read->target_replies[0]);
    return cluster::MakeError(
        "SETSLOT NODE on " + ends.to.ToString() +
        (unknown ? " left unknown (its replicas did not acknowledge it)" : " refused") + ": slot " +
        first + ": " +
        (read->target_replies.empty() ? std::string("no reply") : read->target_replies[0].str));
  }
  auto problem = ClaimOutranksProblem(read->source, read->target);
  if (!problem) return {};
  // The importing path bumps only when the target is not already the unique highest; it is not
  // above the source all the same (the source's epoch rose meanwhile): bump once more, read back.
  spdlog::warn("{} after SETSLOT {} NODE on {}: CLUSTER BUMPEPOCH", *problem, first,
               ends.to.ToString());
  auto again = ReadEpochs(ends, {{"CLUSTER", "BUMPEPOCH"}});
  if (!again) return cluster::MakeError("CLUSTER BUMPEPOCH: " + again.error().message);
  problem = ClaimOutranksProblem(again->source, again->target);
  if (!problem) return {};
  return cluster::MakeError("not giving slots " + std::to_string(group.front()) + "-" +
                            std::to_string(group.back()) + " to " + ends.to.ToString() + ": " +
                            *problem + " even after CLUSTER BUMPEPOCH");
}

bool Migrator::SameContent(const cluster::Endpoint& a, const cluster::Endpoint& b,
                           const std::string& key) {
  auto fa = Fingerprint(connector_.Get(a), key);
  if (!fa) return false;
  auto fb = Fingerprint(connector_.Get(b), key);
  return fb && *fa == *fb;
}

MigrateOutcome ClassifyMigrateReply(const cluster::Reply& reply) {
  if (reply.type == cluster::Reply::Type::kStatus) {
    if (reply.str == "NOKEY") return MigrateOutcome::kNoKey;
    return MigrateOutcome::kOk;
  }
  if (reply.IsError()) {
    if (reply.str.find("BUSYKEY") != std::string::npos) return MigrateOutcome::kBusyKey;
    if (reply.str.rfind("IOERR", 0) == 0) return MigrateOutcome::kIoErr;
    return MigrateOutcome::kError;
  }
  return MigrateOutcome::kError;
}

bool IsCredentialRefusal(const std::string& error) {
  // How the source words an error the target gave it: "ERR Target instance replied with
  // error: <the target's error>".
  constexpr std::string_view kTargetReplied = "replied with error: ";
  const std::string_view text = error;
  const auto passed_on = text.find(kTargetReplied);
  const std::string_view target_error = passed_on == std::string_view::npos
                                            ? std::string_view{}
                                            : text.substr(passed_on + kTargetReplied.size());
  auto starts_with = [](std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
  };
  for (std::string_view code : {"NOPERM", "NOAUTH", "WRONGPASS"}) {
    if (starts_with(text, code) || starts_with(target_error, code)) return true;
  }
  return false;
}

Migrator::Migrator(cluster::Connector& connector, Clock& clock, MigratorSettings settings,
                   EngineObserver& observer, MigrateCounters& counters)
    : connector_(connector),
      clock_(clock),
      settings_(std::move(settings)),
      observer_(observer),
      counters_(counters) {}

SetSlotSupport Migrator::SupportOf(const cluster::Endpoint& node) {
  {
    std::lock_guard<std::mutex> lock(support_mutex_);
    if (auto it = support_.find(node); it != support_.end()) return it->second;
  }
  auto probed = ProbeSetSlotSupport(connector_.Get(node));
  if (!probed) return {};  // not cached: asked again once the node answers
  if (probed->replicated) {
    spdlog::info(
        "{} replicates CLUSTER SETSLOT to its replicas before running it (Valkey 8): "
        "SETSLOT gets TIMEOUT {} ms, -NOREPLICAS means its outcome is unknown",
        node.ToString(), settings_.setslot_replica_timeout.count());
  }
  std::lock_guard<std::mutex> lock(support_mutex_);
  support_[node] = *probed;
  return *probed;
}

size_t Migrator::KeysPerMigrate(int slot) const {
  const auto most = static_cast<size_t>(std::max(1, settings_.keys_per_migrate));
  auto it = key_bytes_.find(slot);
  if (settings_.bytes_per_migrate <= 0 || it == key_bytes_.end() || it->second <= 0) return most;
  const auto fit = static_cast<size_t>(settings_.bytes_per_migrate / it->second);
  return std::clamp<size_t>(fit, 1, most);
}

cluster::Argv Migrator::ScanArgv(int slot, size_t skipped) const {
  return {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot),
          std::to_string(settings_.getkeys_count + skipped)};
}

cluster::Argv Migrator::MigrateArgv(const cluster::Endpoint& to, bool replace,
                                    const std::vector<std::string>& keys) const {
  cluster::Argv argv{"MIGRATE", to.host, std::to_string(to.port),
                     "",        "0",     std::to_string(settings_.migrate_timeout.count())};
  if (replace) argv.push_back("REPLACE");
  if (settings_.auth) {
    // The password only travels inside the command; it is never logged or journaled.
    if (settings_.auth->user) {
      argv.push_back("AUTH2");
      argv.push_back(*settings_.auth->user);
    } else {
      argv.push_back("AUTH");
    }
    argv.push_back(settings_.auth->password);
  }
  argv.push_back("KEYS");
  argv.insert(argv.end(), keys.begin(), keys.end());
  return argv;
}

void Migrator::CountFailure(const std::string& reason, bool counted, bool ioerr) {
  ++counters_.failed;
  if (counted) ++counters_.counted;
  if (ioerr) ++counters_.ioerr;
  observer_.OnMigrateFailure(reason);
}

void Migrator::Backoff(int consecutive) {
  auto wait = std::chrono::milliseconds(100) * std::min(consecutive, 10);
  clock_.SleepFor(wait);
}

cluster::Result<std::vector<cluster::Reply>> Migrator::RunLanes(
    const cluster::Endpoint& node, const std::vector<cluster::Argv>& commands,
    const std::vector<std::vector<size_t>>& lanes) {
  if (lanes.size() <= 1) return connector_.Get(node).Pipeline(commands);
  std::vector<bool> sent(lanes.size(), false);
  std::optional<cluster::Error> failed;
  for (size_t l = 0; l < lanes.size(); ++l) {
    std::vector<cluster::Argv> part;
    for (size_t i : lanes[l]) part.push_back(commands[i]);
    auto r = connector_.Lane(node, l).Send(part);
    sent[l] = r.has_value();
    if (!r && !failed) failed = r.error();
  }
  // Every lane's replies are read, even after one failed, so no connection is left with
  // replies in flight that the next command would take for its own.
  std::vector<cluster::Reply> out(commands.size());
  for (size_t l = 0; l < lanes.size(); ++l) {
    if (!sent[l]) continue;
    auto r = connector_.Lane(node, l).Receive(lanes[l].size());
    if (!r) {
      if (!failed) failed = r.error();
      continue;
    }
    for (size_t k = 0; k < lanes[l].size(); ++k) out[lanes[l][k]] = std::move((*r)[k]);
  }
  if (failed) return tl::unexpected(*failed);
  return out;
}

cluster::Result<std::vector<cluster::Reply>> Migrator::RunOnce(
    const cluster::Endpoint& node, const std::vector<cluster::Argv>& commands,
    const StepControl& ctl, const std::vector<std::vector<size_t>>& lanes) {
  for (int attempt = 1;; ++attempt) {
    auto replies = RunLanes(node, commands, lanes);
    if (replies) return replies;
    if (!ctl.deadline || clock_.Now() >= *ctl.deadline) return replies;
    // A stop (e.g. the engine's RequestStop) ends the retries: the journal has the step.
    if (ctl.stop && ctl.stop()) return replies;
    Backoff(attempt);
  }
}

cluster::Result<std::vector<cluster::Reply>> Migrator::Run(
    const cluster::Endpoint& node, const std::vector<cluster::Argv>& commands,
    const StepControl& ctl) {
  const SetSlotSupport support = SupportOf(node);
  const auto shaped = WithSetSlotTimeout(support, commands, settings_.setslot_replica_timeout);
  const size_t max_lanes = support.replicated ? settings_.setslot_lanes : 1;
  auto replies = RunOnce(node, shaped, ctl, SplitIntoLanes(shaped, max_lanes));
  if (!replies || !support.replicated) return replies;
  // -NOREPLICAS: the node did not run the SETSLOT (a replica may have); -UNBLOCKED: unknown.
  // Sending it again is what settles both: the node runs it, its replicas are told again, or a
  // node that turned replica says so. Retried until ctl.deadline, else twice.
  for (int round = 1;; ++round) {
    std::vector<size_t> unknown;
    for (size_t i = 0; i < replies->size(); ++i) {
      if (SetSlotOutcomeUnknown((*replies)[i])) unknown.push_back(i);
    }
    if (unknown.empty()) break;
    const bool more = ctl.deadline ? clock_.Now() < *ctl.deadline : round <= 2;
    if (!more || (ctl.stop && ctl.stop())) break;
    spdlog::warn(
        "{}: {} of {} SETSLOT commands answered \"{}\" (its replicas did not acknowledge "
        "within {} ms); sending them again",
        node.ToString(), unknown.size(), replies->size(), (*replies)[unknown[0]].str,
        settings_.setslot_replica_timeout.count());
    std::vector<cluster::Argv> again;
    for (size_t i : unknown) again.push_back(shaped[i]);
    auto r = RunOnce(node, again, ctl, SplitIntoLanes(again, max_lanes));
    if (!r) return r;
    for (size_t k = 0; k < unknown.size(); ++k) (*replies)[unknown[k]] = std::move((*r)[k]);
  }
  return replies;
}

cluster::Result<std::map<int, std::string>> Migrator::SetSlots(const cluster::Endpoint& node,
                                                               const std::vector<int>& slots,
                                                               const std::vector<std::string>& args,
                                                               const StepControl& ctl) {
  std::vector<cluster::Argv> commands;
  commands.reserve(slots.size());
  for (int slot : slots) {
    cluster::Argv argv{"CLUSTER", "SETSLOT", std::to_string(slot)};
    argv.insert(argv.end(), args.begin(), args.end());
    commands.push_back(std::move(argv));
  }
  std::map<int, std::string> errors;
  if (commands.empty()) return errors;
  auto replies = Run(node, commands, ctl);
  if (!replies) return tl::unexpected(replies.error());
  for (size_t i = 0; i < slots.size(); ++i) {
    if ((*replies)[i].IsError()) errors[slots[i]] = (*replies)[i].str;
  }
  return errors;
}

// One MoveKeys call: the state its passes share (skip, listed, the failure count) and, per pass,
// what the listing found. Each step of a pass is a member; Run calls them in the order the
// single loop had (list, MIGRATE rounds, BUSYKEY, end of pass), which is what keeps every key
// where clients find it.
class Migrator::KeyMove {
 public:
  KeyMove(Migrator& m, const MoveEnds& ends, const std::vector<int>& slots, BusyKeyPolicy policy,
          const StepControl& ctl, std::map<int, cluster::Reply> listed)
      : m_(m),
        ends_(ends),
        policy_(policy),
        ctl_(ctl),
        pending_(slots),
        listed_(std::move(listed)),
        replace_all_(policy == BusyKeyPolicy::kForward && m.settings_.replace),
        from_(m.connector_.Get(ends.from)) {}

  MoveResult Run(const std::vector<int>& slots) {
    while (!pending_.empty()) {
      if (Interrupted()) return result_;
      pass_ = Pass{};
      ListKeys();
      MigrateChunks();
      for (int slot : pass_.busy_slots) listed_.erase(slot);
      m_.BaselineUnsettled(ends_);
      ResolveBusyKeys();
      m_.BaselineUnsettled(ends_);
      if (EndPass()) return result_;
    }
    if (auto r = m_.ReconcileUnsettled(ends_, slots, ctl_, result_.warnings); !r) {
      result_.status = MoveResult::Status::kError;
      result_.message = r.error().message;
    }
    return result_;
  }

 private:
  struct Chunk {
    int slot;
    std::vector<std::string> keys;
  };
  // What one pass found and did.
  struct Pass {
    bool failed = false;
    std::vector<Chunk> chunks;
    std::vector<int> still;
    std::map<int, int> complete;  // slot listed whole -> its chunks not yet acknowledged
    std::set<int> busy_slots;
  };
  // MIGRATEs go out in rounds, two rounds in flight so the source starts on the next round
  // while the replies of the last are read here: migrates_per_round MIGRATEs in flight at
  // most, half per round. After a failure, one MIGRATE at a time: each may wait the full
  // timeout on a target that stopped answering, and the guard should get its say between them.
  struct Round {
    size_t begin = 0;  // chunks[begin, end)
    size_t end = 0;
    std::vector<cluster::Argv> cmds;
    std::vector<int> rescan_at;  // per command: the slot it rescans, -1 for MIGRATEs
  };

  // A stop request, or transport failures past ctl.deadline: result_ says which.
  bool Interrupted() {
    if (ctl_.stop) {
      if (auto why = ctl_.stop()) {
        result_.status = MoveResult::Status::kStopped;
        result_.message = *why;
        return true;
      }
    }
    if (consecutive_failures_ > 0 && ctl_.deadline && m_.clock_.Now() >= *ctl_.deadline) {
      result_.status = MoveResult::Status::kError;
      result_.message = "gave up moving keys from " + ends_.from.ToString() + " to " +
                        ends_.to.ToString() + " (deadline passed): " + result_.message;
      return true;
    }
    return false;
  }

  // 1. Which keys are left: known from the GETKEYSINSLOT sent right after a slot's last
  // MIGRATE, else asked for, many slots per round trip.
  void ListKeys() {
    std::map<int, cluster::Reply> lists = ScanSlots();
    for (int slot : pending_) {
      auto it = lists.find(slot);
      if (it == lists.end()) {
        pass_.still.push_back(slot);  // its scan failed: again next pass
        continue;
      }
      const auto& r = it->second;
      if (r.IsError()) {
        pass_.failed = true;
        result_.message =
            "GETKEYSINSLOT " + std::to_string(slot) + " on " + ends_.from.ToString() + ": " + r.str;
        pass_.still.push_back(slot);
        continue;
      }
      std::vector<std::string> keys;
      for (const auto& e : r.elements) {
        if (!skip_[slot].count(e.str)) keys.push_back(e.str);
      }
      if (keys.empty()) {
        result_.finished.push_back(slot);
        continue;
      }
      pass_.still.push_back(slot);
      // Fewer keys than asked for: the list holds every key of the slot. The slot is MIGRATING
      // on ends.from, where a command on a missing key is sent on with -ASK, so no key can
      // appear there any more: once these MIGRATEs succeed the slot is empty, no need to ask.
      if (r.elements.size() <
          static_cast<size_t>(m_.settings_.getkeys_count) + skip_[slot].size()) {
        pass_.complete[slot] = 0;
      }
      const size_t per_migrate = m_.KeysPerMigrate(slot);
      for (size_t c = 0; c < keys.size(); c += per_migrate) {
        size_t ce = std::min(keys.size(), c + per_migrate);
        pass_.chunks.push_back(
            {slot, std::vector<std::string>(keys.begin() + c, keys.begin() + ce)});
        if (pass_.complete.count(slot)) ++pass_.complete[slot];
      }
    }
  }

  // The GETKEYSINSLOT replies of the pending slots: listed_ ones taken over, the others asked
  // for; a slot whose scan failed has none.
  std::map<int, cluster::Reply> ScanSlots() {
    std::map<int, cluster::Reply> lists;
    std::vector<int> to_scan;
    for (int slot : pending_) {
      if (auto it = listed_.find(slot); it != listed_.end()) {
        lists[slot] = std::move(it->second);
      } else {
        to_scan.push_back(slot);
      }
    }
    listed_.clear();
    const auto per_scan = static_cast<size_t>(m_.settings_.slots_per_scan);
    for (size_t i = 0; i < to_scan.size(); i += per_scan) {
      size_t end = std::min(to_scan.size(), i + per_scan);
      std::vector<cluster::Argv> scan;
      for (size_t k = i; k < end; ++k)
        scan.push_back(m_.ScanArgv(to_scan[k], skip_[to_scan[k]].size()));
      auto replies = from_.Pipeline(scan);
      if (!replies) {
        pass_.failed = true;
        result_.message = replies.error().message;
        break;
      }
      for (size_t k = i; k < end; ++k) lists[to_scan[k]] = std::move((*replies)[k - i]);
    }
    return lists;
  }

  // The pass's chunks as rounds of per_round MIGRATEs; after a slot's last chunk, a
  // GETKEYSINSLOT for it (normally empty) in the same round, unless it was listed whole.
  std::vector<Round> PlanRounds(size_t per_round) {
    const auto& chunks = pass_.chunks;
    std::vector<Round> rounds;
    for (size_t i = 0; i < chunks.size(); i += per_round) {
      Round round;
      round.begin = i;
      round.end = std::min(chunks.size(), i + per_round);
      for (size_t k = round.begin; k < round.end; ++k) {
        round.cmds.push_back(m_.MigrateArgv(ends_.to, replace_all_, chunks[k].keys));
        round.rescan_at.push_back(-1);
        const bool last_of_slot = k + 1 == chunks.size() || chunks[k + 1].slot != chunks[k].slot;
        if (last_of_slot && !pass_.complete.count(chunks[k].slot)) {
          round.cmds.push_back(m_.ScanArgv(chunks[k].slot, skip_[chunks[k].slot].size()));
          round.rescan_at.push_back(chunks[k].slot);
        }
      }
      rounds.push_back(std::move(round));
    }
    return rounds;
  }

  // 2. MIGRATE the listed keys, a few commands per round trip (see Round).
  void MigrateChunks() {
    const bool cautious = consecutive_failures_ > 0;
    const size_t in_flight =
        cautious ? 1 : static_cast<size_t>(std::max(1, m_.settings_.migrates_per_round));
    const size_t depth = in_flight > 1 ? 2 : 1;
    const std::vector<Round> rounds = PlanRounds(std::max<size_t>(1, in_flight / depth));
    size_t sent = 0;
    // A transport failure loses every round in flight: we cannot tell which of their MIGRATEs
    // ran, so their keys may now be on both nodes.
    auto lose = [&](size_t first, const std::string& why) {
      for (size_t q = first; q < sent; ++q) {
        for (size_t k = rounds[q].begin; k < rounds[q].end; ++k) {
          m_.NoteUnsettled(pass_.chunks[k].keys);
        }
      }
      bool timeout = why.find("timed out") != std::string::npos;
      m_.CountFailure(timeout ? "timeout" : "error", true, false);
      result_.message = "MIGRATE from " + ends_.from.ToString() + ": " + why;
      pass_.failed = true;
      listed_.clear();
    };
    auto send_next = [&](size_t received) {
      auto s = from_.Send(rounds[sent].cmds);
      ++sent;
      if (!s) lose(received, s.error().message);
      return s.has_value();
    };
    bool lost = false;
    while (sent < rounds.size() && sent < depth && !lost) lost = !send_next(0);
    for (size_t r = 0; r < sent && !lost; ++r) {
      const Round& round = rounds[r];
      auto replies = from_.Receive(round.cmds.size());
      if (!replies) {
        lose(r, replies.error().message);
        break;
      }
      size_t k = round.begin;
      for (size_t c = 0; c < round.cmds.size(); ++c) {
        const auto& reply = (*replies)[c];
        if (round.rescan_at[c] >= 0) {
          listed_[round.rescan_at[c]] = reply;
          continue;
        }
        OnMigrateReply(pass_.chunks[k++], reply);
      }
      // After a failure the round already in flight is still read; no new one is sent.
      if (!pass_.failed && sent < rounds.size()) lost = !send_next(r + 1);
    }
  }

  void OnMigrateReply(const Chunk& chunk, const cluster::Reply& reply) {
    switch (ClassifyMigrateReply(reply)) {
      case MigrateOutcome::kOk:
        // Listed at the source this pass and now acknowledged: moved, and the target held
        // no copy of them (that would have been BUSYKEY). A key of a failed MIGRATE that a
        // client deleted at the source meanwhile is not listed, so it stays unsettled.
        for (const auto& k : chunk.keys) Moved(k);
        [[fallthrough]];
      case MigrateOutcome::kNoKey: {
        CountKeys(static_cast<int64_t>(chunk.keys.size()));
        if (auto it = pass_.complete.find(chunk.slot); it != pass_.complete.end()) --it->second;
        break;
      }
      case MigrateOutcome::kBusyKey:
        // Resolved key by key below; counted as a failure only when it cannot be.
        ++m_.counters_.failed;
        m_.observer_.OnMigrateFailure("busykey");
        pass_.busy_slots.insert(chunk.slot);
        break;
      case MigrateOutcome::kIoErr:
        m_.NoteUnsettled(chunk.keys);
        m_.CountFailure("ioerr", true, true);
        result_.message = MigrateError(chunk.slot, reply);
        pass_.failed = true;
        break;
      case MigrateOutcome::kError: {
        m_.NoteUnsettled(chunk.keys);
        // "ERR Target instance replied with error: OOM command not allowed when used
        // memory > 'maxmemory'": RESTORE is refused there (MIGRATE itself is not).
        const bool oom = reply.str.find("OOM") != std::string::npos;
        // "ERR Target instance replied with error: ERR DUMP payload version or checksum
        // are wrong": the target runs an older RDB format than the source.
        if (reply.str.find("payload version") != std::string::npos) {
          result_.unreadable = true;
        }
        result_.refused = result_.refused || IsCredentialRefusal(reply.str);
        m_.CountFailure(oom ? "oom" : "error", true, false);
        result_.message = MigrateError(chunk.slot, reply);
        if (oom) {
          result_.target_full = true;
          result_.message =
              ends_.to.ToString() + " is out of memory (maxmemory reached): " + result_.message;
        }
        pass_.failed = true;
        break;
      }
    }
  }

  std::string MigrateError(int slot, const cluster::Reply& reply) const {
    return "MIGRATE slot " + std::to_string(slot) + " from " + ends_.from.ToString() + " to " +
           ends_.to.ToString() + ": " + reply.str;
  }

  // `key` reached ends.to by a MIGRATE of its own: no longer unsettled, and the receiving
  // node's copy is ours now: if the key turns up again where it came from (a failover of the
  // source lets clients recreate it there), that newer copy wins over ours instead of stopping
  // the move as a conflict.
  void Moved(const std::string& key) {
    m_.unsettled_.erase(key);
    m_.ours_.insert(key);
  }

  void CountKeys(int64_t n) {
    result_.keys += n;
    if (ctl_.on_keys) ctl_.on_keys(n);
  }

  void CountFailed(MigrateOutcome o) {
    m_.CountFailure(o == MigrateOutcome::kIoErr ? "ioerr" : "error", true,
                    o == MigrateOutcome::kIoErr);
  }

  // 3. BUSYKEY: find the keys one by one and decide per key.
  void ResolveBusyKeys() {
    for (int slot : pass_.busy_slots) {
      auto keys = from_.Command({"CLUSTER", "GETKEYSINSLOT", std::to_string(slot),
                                 std::to_string(m_.settings_.getkeys_count + skip_[slot].size())});
      if (!keys || keys->IsError()) {
        pass_.failed = true;
        continue;
      }
      for (const auto& e : keys->elements) {
        if (skip_[slot].count(e.str)) continue;
        if (!MoveBusyKey(slot, e.str)) break;
      }
    }
  }

  // One key of a slot that answered BUSYKEY, MIGRATEd alone; false when the connection failed
  // (the rest of the slot waits for the next pass).
  bool MoveBusyKey(int slot, const std::string& key) {
    auto single = from_.Command(m_.MigrateArgv(ends_.to, replace_all_, {key}));
    if (!single) {
      m_.NoteUnsettled({key});
      m_.CountFailure("error", true, false);
      pass_.failed = true;
      return false;
    }
    auto outcome = ClassifyMigrateReply(*single);
    if (outcome == MigrateOutcome::kOk) Moved(key);  // this very key moved
    if (outcome == MigrateOutcome::kOk || outcome == MigrateOutcome::kNoKey) {
      CountKeys(1);
      return true;
    }
    if (outcome != MigrateOutcome::kBusyKey) {
      m_.NoteUnsettled({key});
      CountFailed(outcome);
      result_.message = "MIGRATE " + ShortKey(key) + ": " + single->str;
      pass_.failed = true;
      return true;
    }
    ++m_.counters_.failed;
    ActOnBusyKey(slot, key, DecideBusyKey(policy_, BusyFacts(key)));
    return true;
  }

  BusyKeyFacts BusyFacts(const std::string& key) {
    BusyKeyFacts facts;
    facts.replace_requested = m_.settings_.replace;
    facts.ours = m_.ours_.count(key) > 0;
    facts.from_dump = DumpOf(from_.Pipeline({{"ASKING"}, {"DUMP", key}}));
    facts.to_dump = DumpOf(m_.connector_.Get(ends_.to).Pipeline({{"ASKING"}, {"DUMP", key}}));
    if (facts.from_dump && facts.to_dump && *facts.from_dump != *facts.to_dump) {
      facts.same_content = m_.SameContent(ends_.from, ends_.to, key);
    }
    return facts;
  }

  void ActOnBusyKey(int slot, const std::string& key, BusyKeyAction action) {
    switch (action) {
      case BusyKeyAction::kReplace: {
        auto again = from_.Command(m_.MigrateArgv(ends_.to, true, {key}));
        auto o = again ? ClassifyMigrateReply(*again) : MigrateOutcome::kError;
        if (o == MigrateOutcome::kOk) Moved(key);
        if (o == MigrateOutcome::kOk || o == MigrateOutcome::kNoKey) {
          CountKeys(1);
        } else {
          CountFailed(o);
          pass_.failed = true;
        }
        break;
      }
      case BusyKeyAction::kDeleteFromCopy:
        (void)from_.Pipeline({{"ASKING"}, {"DEL", key}});
        m_.unsettled_.erase(key);  // the receiving node's copy is the live one now
        break;
      case BusyKeyAction::kLeave:
        skip_[slot].insert(key);
        result_.left_keys.push_back(key);
        result_.warnings.push_back("key " + ShortKey(key) + " (slot " + std::to_string(slot) +
                                   ") left on " + ends_.from.ToString() + ": " +
                                   ends_.to.ToString() + " has a different value under that name");
        break;
      case BusyKeyAction::kConflict:
        skip_[slot].insert(key);
        result_.conflict_keys.push_back(key);
        break;
      case BusyKeyAction::kRetry:
        break;
    }
  }

  // 4. What is left for the next pass; true when the call ends here (conflict, or an error
  // no retry can help).
  bool EndPass() {
    if (!result_.conflict_keys.empty()) {
      result_.status = MoveResult::Status::kConflict;
      result_.message = m_.ConflictMessage(ends_, result_.conflict_keys);
      return true;
    }
    pending_.clear();
    for (int slot : pass_.still) {
      // Listed whole and every chunk acknowledged: empty.
      auto it = pass_.complete.find(slot);
      if (it != pass_.complete.end() && it->second == 0 && !pass_.busy_slots.count(slot)) {
        result_.finished.push_back(slot);
      } else {
        pending_.push_back(slot);
      }
    }
    if (result_.refused) {
      result_.message +=
          " (the ACL user slotguard connects as, or its password, is refused for "
          "MIGRATE: see README \"Least-privilege ACL users\"; no retry can help)";
    }
    if (result_.target_full || result_.unreadable || result_.refused) {
      // Every key is still where clients find it (the refused ones stayed on ends.from).
      result_.status = MoveResult::Status::kError;
      return true;
    }
    if (pass_.failed) {
      ++consecutive_failures_;
      if (consecutive_failures_ == 1 || consecutive_failures_ % 10 == 0) {
        spdlog::warn("moving the keys of {} slot(s) {} -> {}: {} (pass {} failed, retrying)",
                     pending_.size(), ends_.from.ToString(), ends_.to.ToString(),
                     result_.message.empty() ? "a MIGRATE failed" : result_.message,
                     consecutive_failures_);
      }
      m_.Backoff(consecutive_failures_);
    } else {
      consecutive_failures_ = 0;
    }
    return false;
  }

  Migrator& m_;
  const MoveEnds& ends_;
  const BusyKeyPolicy policy_;
  const StepControl& ctl_;
  std::vector<int> pending_;
  // By slot, a GETKEYSINSLOT run after the slot was MIGRATING: the caller's, then those sent
  // after a slot's last MIGRATE.
  std::map<int, cluster::Reply> listed_;
  const bool replace_all_;
  cluster::Connection& from_;
  std::map<int, std::set<std::string>> skip_;  // keys deliberately left on ends.from
  int consecutive_failures_ = 0;
  MoveResult result_;
  Pass pass_;
};

MoveResult Migrator::MoveKeys(const MoveEnds& ends, const std::vector<int>& slots,
                              BusyKeyPolicy policy, const StepControl& ctl,
                              std::map<int, cluster::Reply> listed) {
  return KeyMove(*this, ends, slots, policy, ctl, std::move(listed)).Run(slots);
}

void Migrator::NoteUnsettled(const std::vector<std::string>& keys) {
  ours_.insert(keys.begin(), keys.end());
  to_baseline_.insert(to_baseline_.end(), keys.begin(), keys.end());
}

void Migrator::BaselineUnsettled(const MoveEnds& ends) {
  if (to_baseline_.empty()) return;
  std::vector<std::string> keys;
  keys.swap(to_baseline_);
  // What a failed MIGRATE carried is the sending node's value, which it still holds (it deletes
  // a key only once the receiving node acknowledged it). Read there rather than at the
  // receiving node, which may apply the MIGRATE only later (it was slow: that is why it timed
  // out). A key already gone from the sending node was moved: the receiving copy is live.
  std::vector<cluster::Argv> dumps;
  for (const auto& k : keys) dumps.push_back({"DUMP", k});
  auto r = connector_.Get(ends.from).Pipeline(dumps);
  for (size_t i = 0; i < keys.size(); ++i) {
    const cluster::Reply* d = r ? &(*r)[i] : nullptr;
    if (d && d->type == cluster::Reply::Type::kString) {
      unsettled_[keys[i]] = {ends.to.ToString(), d->str};
    } else {
      unsettled_.erase(keys[i]);
      if (!d) {
        spdlog::warn("key {}: value on {} unknown after a failed MIGRATE", ShortKey(keys[i]),
                     ends.from.ToString());
      }
    }
  }
}

cluster::Result<void> Migrator::ReconcileUnsettled(const MoveEnds& ends,
                                                   const std::vector<int>& slots,
                                                   const StepControl& ctl,
                                                   std::vector<std::string>& warnings) {
  const std::set<int> mine(slots.begin(), slots.end());
  std::vector<std::pair<std::string, std::string>> candidates;
  for (const auto& [key, copy] : unsettled_) {
    if (copy.first == ends.to.ToString() && mine.count(cluster::KeySlot(key))) {
      candidates.emplace_back(key, copy.second);
    }
  }
  if (candidates.empty()) return {};
  // Still on the sending node (left there on purpose): not a duplicate. -ASK from a MIGRATING
  // node, or 0, means gone.
  std::vector<cluster::Argv> exists;
  for (const auto& c : candidates) exists.push_back({"EXISTS", c.first});
  auto there = Run(ends.from, exists, ctl);
  if (!there)
    return cluster::MakeError("reconciling keys of failed MIGRATEs: " + there.error().message);
  // Deleted at the receiving node only if it still holds exactly what the failed MIGRATE put
  // there: compared and deleted in one script, so a client's write (through -ASK) since is kept.
  std::vector<cluster::Argv> dels;
  std::vector<std::string> keys;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const auto& e = (*there)[i];
    if (e.type == cluster::Reply::Type::kInteger && e.integer > 0) continue;
    dels.push_back({"ASKING"});
    dels.push_back({"EVAL",
                    "if redis.call('DUMP', KEYS[1]) == ARGV[1] then return redis.call('DEL', "
                    "KEYS[1]) end return 0",
                    "1", candidates[i].first, candidates[i].second});
    keys.push_back(candidates[i].first);
  }
  if (!dels.empty()) {
    auto r = Run(ends.to, dels, ctl);
    if (!r) return cluster::MakeError("reconciling keys of failed MIGRATEs: " + r.error().message);
    for (size_t i = 0; i < keys.size(); ++i) {
      const auto& x = (*r)[2 * i + 1];
      if (x.IsError()) {
        return cluster::MakeError("reconciling key " + ShortKey(keys[i]) + " on " +
                                  ends.to.ToString() + ": " + x.str);
      }
      if (x.integer > 0) {
        warnings.push_back("key " + ShortKey(keys[i]) + ": gone from " + ends.from.ToString() +
                           " (deleted or expired) after a failed MIGRATE had copied it to " +
                           ends.to.ToString() + "; that stale copy was removed");
      }
    }
  }
  for (const auto& c : candidates) unsettled_.erase(c.first);
  return {};
}

cluster::Result<std::vector<std::string>> Migrator::StrayConflicts(const MoveEnds& ends,
                                                                   const std::vector<int>& slots,
                                                                   const StepControl& ctl) {
  std::vector<std::string> conflicts;
  std::vector<cluster::Argv> counts;
  for (int slot : slots) counts.push_back({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)});
  auto c = Run(ends.to, counts, ctl);
  if (!c) return tl::unexpected(c.error());
  for (size_t i = 0; i < slots.size(); ++i) {
    if ((*c)[i].type != cluster::Reply::Type::kInteger || (*c)[i].integer == 0) continue;
    auto listed = Run(
        ends.to,
        {{"CLUSTER", "GETKEYSINSLOT", std::to_string(slots[i]), std::to_string((*c)[i].integer)}},
        ctl);
    if (!listed) return tl::unexpected(listed.error());
    std::vector<cluster::Argv> on_to;
    std::vector<cluster::Argv> on_from;
    std::vector<std::string> keys;
    for (const auto& k : (*listed)[0].elements) {
      keys.push_back(k.str);
      on_to.push_back({"ASKING"});
      on_to.push_back({"DUMP", k.str});
      on_from.push_back({"DUMP", k.str});
    }
    if (keys.empty()) continue;
    auto t = Run(ends.to, on_to, ctl);
    if (!t) return tl::unexpected(t.error());
    auto f = Run(ends.from, on_from, ctl);
    if (!f) return tl::unexpected(f.error());
    for (size_t k = 0; k < keys.size(); ++k) {
      const auto& to_dump = (*t)[2 * k + 1];
      const auto& from_dump = (*f)[k];
      // Absent at the source (nil, or -ASK when it is already MIGRATING): no clash.
      if (from_dump.type != cluster::Reply::Type::kString) continue;
      if (to_dump.type != cluster::Reply::Type::kString) continue;
      if (to_dump.str == from_dump.str || ours_.count(keys[k])) continue;
      if (SameContent(ends.from, ends.to, keys[k])) continue;
      conflicts.push_back(keys[k]);
    }
  }
  return conflicts;
}

std::string Migrator::ConflictMessage(const MoveEnds& ends,
                                      const std::vector<std::string>& keys) const {
  std::string names;
  for (size_t i = 0; i < keys.size() && i < 10; ++i) names += (i ? ", " : "") + ShortKey(keys[i]);
  if (keys.size() > 10) names += ", ... (" + std::to_string(keys.size()) + " keys)";
  return "BUSYKEY: " + ends.to.ToString() + " already holds a different value for key(s) " + names +
         " (nothing overwritten; --replace overwrites)";
}

MoveResult Migrator::MoveGroup(const MoveEnds& ends, const std::vector<int>& slots,
                               const StepControl& ctl) {
  return MoveSlots(ends, {slots}, ctl, nullptr);
}

std::vector<std::string> Migrator::NodeOnOthers(const MoveEnds& ends, const std::vector<int>& slots,
                                                const std::vector<cluster::Endpoint>& others) {
  std::vector<std::string> warnings;
  StepControl once;  // no deadline: others learn by gossip too, never wait on them
  for (const auto& m : others) {
    auto no = SetSlots(m, slots, {"NODE", ends.to_id}, once);
    if (!no) {
      warnings.push_back("SETSLOT NODE on " + m.ToString() + ": " + no.error().message +
                         " (it will learn by gossip)");
      continue;
    }
    for (const auto& [slot, err] : *no) {
      if (!IsReplicaReply(err)) {
        warnings.push_back("SETSLOT " + std::to_string(slot) + " NODE on " + m.ToString() + ": " +
                           err);
      }
    }
  }
  return warnings;
}

// Over 100 lines on purpose: the order of its SETSLOT rounds, journal records and crash points is
// the move protocol (DESIGN.md) and reads top to bottom here; what is left inside shares result,
// ctl and the prelisted keys. Its pure argv and reply helpers are above (SetSlotArgvs ...).
// One MoveSlots call: its groups go through their SETSLOT rounds in order, each group's
// NODE rounds opening the next group in the same round trips.
class Migrator::SlotMove {
 public:
  SlotMove(Migrator& m, const MoveEnds& ends, const std::vector<std::vector<int>>& groups,
           const StepControl& ctl,
           const std::function<void(const std::vector<int>&)>& on_group_done)
      : m_(m),
        ends_(ends),
        groups_(groups),
        ctl_(ctl),
        on_group_done_(on_group_done),
        t0_(std::chrono::steady_clock::now()) {}

  MoveResult Run() {
    if (groups_.empty() || groups_.front().empty()) return result_;
    if (!OpenFirst()) return result_;
    for (size_t k = 0; k < groups_.size(); ++k) {
      if (!RunGroup(k)) return result_;
    }
    JoinOthers();
    Lap(groups_.back(), "others joined");
    return result_;
  }

 private:
  // What the target's NODE round learnt about opening the next group.
  struct NextGroup {
    std::string error;
    std::vector<std::string> conflicts;
    std::optional<std::string> stop;
  };

  void JoinOthers() {
    if (others_.valid()) {
      for (auto& w : others_.get()) result_.warnings.push_back(std::move(w));
    }
  }
  // Ends the move: false, for the caller to return result_.
  bool Finish(MoveResult::Status status, std::string message) {
    JoinOthers();
    result_.status = status;
    result_.message = std::move(message);
    return false;
  }
  bool Fail(std::string message) { return Finish(MoveResult::Status::kError, std::move(message)); }
  bool Conflict(const std::vector<std::string>& keys) {
    result_.conflict_keys = keys;
    return Finish(MoveResult::Status::kConflict, m_.ConflictMessage(ends_, keys));
  }
  cluster::Result<void> Journal(std::vector<JournalStep> steps) const {
    if (!ctl_.journal) return {};
    for (auto& s : steps) s.step = ctl_.step_prefix + s.step;
    return ctl_.journal(steps);
  }
  void Crash(const char* point) const {
    if (ctl_.crash_point) ctl_.crash_point(point);
  }
  std::optional<std::string> Stopped() const { return ctl_.stop ? ctl_.stop() : std::nullopt; }
  void Lap(const std::vector<int>& g, const char* what) const {
    spdlog::debug(
        "  {}{}-{}: {} at {:.2f} ms", ctl_.step_prefix, g.front(), g.back(), what,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count());
  }
  // Keys the target already holds in a slot it does not own would meet MIGRATE as BUSYKEY half
  // way through: compare them while the group is only IMPORTING, before any key or client moves.
  cluster::Result<std::vector<std::string>> ConflictsIn(const std::vector<int>& stray_slots) {
    if (stray_slots.empty() || m_.settings_.replace) return std::vector<std::string>{};
    return m_.StrayConflicts(ends_, stray_slots, ctl_);
  }
  std::vector<cluster::Argv> WithScans(std::vector<cluster::Argv> cmds,
                                       const std::vector<int>& slots) const {
    if (prelist_) {
      for (int slot : slots) cmds.push_back(m_.ScanArgv(slot, 0));
    }
    return cmds;
  }
  std::map<int, cluster::Reply> ListedIn(const std::vector<cluster::Reply>& replies, size_t at,
                                         const std::vector<int>& slots) const {
    std::map<int, cluster::Reply> out;
    if (!prelist_) return out;
    for (size_t i = 0; i < slots.size() && at + i < replies.size(); ++i) {
      out[slots[i]] = replies[at + i];
    }
    return out;
  }

  // Round 0: open the first group (IMPORTING on the target, then MIGRATING on the source).
  bool OpenFirst() {
    const auto& first = groups_.front();
    if (auto j = Journal({{"importing", first}, {"migrating", first}}); !j) {
      return Fail(j.error().message);
    }
    {
      auto cmds = SetSlotArgvs(first, {"IMPORTING", ends_.from_id});
      auto c = CountKeysArgvs(first);
      cmds.insert(cmds.end(), c.begin(), c.end());
      auto replies = m_.Run(ends_.to, cmds, ctl_);
      if (!replies) {
        return Fail("SETSLOT IMPORTING on " + ends_.to.ToString() + ": " + replies.error().message);
      }
      if (auto e = ErrorsIn(*replies, 0, first, false); !e.empty()) {
        return Fail("SETSLOT IMPORTING on " + ends_.to.ToString() + " refused: " + Slots(e));
      }
      Lap(first, "importing");
      Crash("after_importing");
      auto conflicts = ConflictsIn(StraysIn(*replies, first.size(), first));
      if (!conflicts) return Fail(conflicts.error().message);
      if (!conflicts->empty()) return Conflict(*conflicts);
    }
    if (auto why = Stopped()) return Finish(MoveResult::Status::kStopped, *why);
    // Where SETSLOT runs at once (not replicated), each slot's first GETKEYSINSLOT follows its
    // MIGRATING in the same pipeline: run after it, so no key can appear at the source after the
    // listing (a command on a missing key of a MIGRATING slot gets -ASK), and MoveKeys starts on
    // these lists without a scan round trip of its own. A replicated SETSLOT may answer
    // -NOREPLICAS and run only when sent again, after the listing: there MoveKeys scans itself.
    prelist_ = !m_.SupportOf(ends_.from).replicated;
    auto mig =
        m_.Run(ends_.from, WithScans(SetSlotArgvs(first, {"MIGRATING", ends_.to_id}), first), ctl_);
    if (!mig) {
      return Fail("SETSLOT MIGRATING on " + ends_.from.ToString() + ": " + mig.error().message);
    }
    if (auto e = ErrorsIn(*mig, 0, first, false); !e.empty()) {
      return Fail("SETSLOT MIGRATING on " + ends_.from.ToString() + " refused: " + Slots(e));
    }
    listed_ = ListedIn(*mig, first.size(), first);
    Lap(first, "migrating");
    Crash("after_migrating");
    return true;
  }

  // Group k: its keys, then its NODE rounds (which open group k+1); false once the move ends.
  bool RunGroup(size_t k) {
    const auto& g = groups_[k];
    const std::vector<int>* next = k + 1 < groups_.size() ? &groups_[k + 1] : nullptr;
    if (!MoveGroupKeys(g, next)) return false;
    std::vector<cluster::Reply> to_replies;
    NextGroup n;
    if (!NodeOnTarget(g, next, to_replies, n)) return false;
    std::vector<cluster::Reply> from_replies;
    const bool open_next = next && n.error.empty() && n.conflicts.empty() && !n.stop;
    if (!NodeOnSource(g, next, open_next, from_replies)) return false;

    if (!next) return true;
    if (!n.error.empty()) return Fail(n.error);
    if (!n.conflicts.empty()) return Conflict(n.conflicts);
    if (n.stop) return Finish(MoveResult::Status::kStopped, *n.stop);
    if (auto e = ErrorsIn(from_replies, g.size(), *next, false); !e.empty()) {
      return Fail("SETSLOT MIGRATING on " + ends_.from.ToString() + " refused: " + Slots(e));
    }
    listed_ = ListedIn(from_replies, g.size() + next->size(), *next);
    Lap(*next, "opened");
    return true;
  }

  bool MoveGroupKeys(const std::vector<int>& g, const std::vector<int>* next) {
    // The records of the coming SETSLOT rounds are written (and fsync'd) while the keys move.
    std::vector<JournalStep> steps{{"node_target", g}};
    if (next) steps.push_back({"importing", *next});
    steps.push_back({"node_source", g});
    if (next) steps.push_back({"migrating", *next});
    if (!ctl_.other_masters.empty()) steps.push_back({"node_others", g});
    auto journaled = std::async(std::launch::async, [this, steps] { return Journal(steps); });

    MoveResult keys = m_.MoveKeys(ends_, g, BusyKeyPolicy::kForward, ctl_, std::move(listed_));
    listed_.clear();
    auto jr = journaled.get();
    Lap(g, "keys");
    result_.keys += keys.keys;
    for (auto& w : keys.warnings) result_.warnings.push_back(std::move(w));
    if (!keys.ok()) {
      result_.conflict_keys = keys.conflict_keys;
      result_.left_keys = keys.left_keys;
      result_.target_full = keys.target_full;
      result_.unreadable = keys.unreadable;
      result_.refused = keys.refused;
      return Finish(keys.status, keys.message);  // no slot of this group changed owner
    }
    if (!jr) return Fail(jr.error().message);
    return true;
  }

  // Every key of g moved. The new owner learns first, so it serves the slots before the
  // source starts answering MOVED; the next group is opened in the same round trips.
  bool NodeOnTarget(const std::vector<int>& g, const std::vector<int>* next,
                    std::vector<cluster::Reply>& to_replies, NextGroup& n) {
    auto fence = m_.AwaitEpochFence(ends_, ctl_);
    if (!fence) return Fail(fence.error().message);
    // Where SETSLOT is replicated, STABLE would cost a replica round trip per slot.
    const bool stable_first = !m_.SupportOf(ends_.to).replicated;
    // The first slot's claim bumps the target's epoch; the rest claim at that epoch without a
    // bump, so they go out only once the bump is read back above the source's. Where the fence
    // read (the round trip just before) shows the target's epoch above the source's already
    // (every batch of a run after its first), no claim needs a bump: the first slot goes STABLE
    // and NODE with the others, saving a round trip and a PONG broadcast that makes every node
    // rewrite and fsync nodes.conf.
    const bool with_first =
        stable_first && !ClaimOutranksProblem(fence->source, fence->target).has_value();
    if (!with_first) {
      if (auto claimed = m_.ClaimFirst(ends_, g); !claimed) return Fail(claimed.error().message);
    }
    std::vector<cluster::Argv> to_cmds = NodeOnTargetArgv(g, ends_.to_id, stable_first, with_first);
    const size_t node_cmds = to_cmds.size();
    if (next) {
      auto imp = SetSlotArgvs(*next, {"IMPORTING", ends_.from_id});
      auto c = CountKeysArgvs(*next);
      to_cmds.insert(to_cmds.end(), imp.begin(), imp.end());
      to_cmds.insert(to_cmds.end(), c.begin(), c.end());
    }
    auto replies = to_cmds.empty()
                       ? cluster::Result<std::vector<cluster::Reply>>(std::vector<cluster::Reply>{})
                       : m_.Run(ends_.to, to_cmds, ctl_);
    if (!replies) {
      return Fail("SETSLOT NODE on " + ends_.to.ToString() + ": " + replies.error().message);
    }
    if (auto e = NodeOnTargetErrors(*replies, g, stable_first, with_first); !e.empty()) {
      return Fail("SETSLOT NODE on " + ends_.to.ToString() + " refused: " + Slots(e));
    }
    to_replies = std::move(*replies);
    Lap(g, "node_target");
    Crash("after_target_node");

    if (next) {
      if (auto e = ErrorsIn(to_replies, node_cmds, *next, false); !e.empty()) {
        n.error = "SETSLOT IMPORTING on " + ends_.to.ToString() + " refused: " + Slots(e);
      } else {
        auto c = ConflictsIn(StraysIn(to_replies, node_cmds + next->size(), *next));
        if (!c) {
          n.error = c.error().message;
        } else {
          n.conflicts = *c;
        }
      }
    }
    n.stop = next ? Stopped() : std::nullopt;
    return true;
  }

  // The source hands g over (and opens the next group when `open_next`); the other masters
  // learn asynchronously, joined before the next group's or the move's end.
  bool NodeOnSource(const std::vector<int>& g, const std::vector<int>* next, bool open_next,
                    std::vector<cluster::Reply>& from_replies) {
    std::vector<cluster::Argv> from_cmds = SetSlotArgvs(g, {"NODE", ends_.to_id});
    if (open_next) {
      auto mig = WithScans(SetSlotArgvs(*next, {"MIGRATING", ends_.to_id}), *next);
      from_cmds.insert(from_cmds.end(), mig.begin(), mig.end());
    }
    auto replies = m_.Run(ends_.from, from_cmds, ctl_);
    if (!replies) {
      return Fail("SETSLOT NODE on " + ends_.from.ToString() + ": " + replies.error().message);
    }
    // The source may have been demoted meanwhile; its new master learns by gossip.
    if (auto e = ErrorsIn(*replies, 0, g, true); !e.empty()) {
      return Fail("SETSLOT NODE on " + ends_.from.ToString() + " refused: " + Slots(e));
    }
    from_replies = std::move(*replies);
    Lap(g, "node_source");
    Crash("after_source_node");

    JoinOthers();
    if (!ctl_.other_masters.empty()) {
      others_ =
          std::async(std::launch::async, [&m = m_, ends = ends_, g, list = ctl_.other_masters] {
            return m.NodeOnOthers(ends, g, list);
          });
    }
    result_.finished.insert(result_.finished.end(), g.begin(), g.end());
    if (on_group_done_) on_group_done_(g);
    return true;
  }

  Migrator& m_;
  const MoveEnds& ends_;
  const std::vector<std::vector<int>>& groups_;
  const StepControl& ctl_;
  const std::function<void(const std::vector<int>&)>& on_group_done_;
  const std::chrono::steady_clock::time_point t0_;
  MoveResult result_;
  std::future<std::vector<std::string>> others_;  // SETSLOT NODE on the other masters, async
  bool prelist_ = false;                          // see OpenFirst
  std::map<int, cluster::Reply> listed_;          // the next MoveKeys' first lists
};

MoveResult Migrator::MoveSlots(const MoveEnds& ends, const std::vector<std::vector<int>>& groups,
                               const StepControl& ctl,
                               const std::function<void(const std::vector<int>&)>& on_group_done) {
  return SlotMove(*this, ends, groups, ctl, on_group_done).Run();
}

}  // namespace slotguard::agent
