#include "cluster/cluster_reader.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <set>

#include "cluster/fan_out.h"
#include "cluster/membership.h"
#include "cluster/nodes.h"

namespace slotguard::cluster {
namespace {

double Seconds(ReadClock::duration d) { return std::chrono::duration<double>(d).count(); }

NodeRead Down(const Endpoint& dialed, std::string error) {
  NodeRead r;
  r.dialed = dialed;
  r.address = dialed;
  r.error = std::move(error);
  return r;
}

std::string Name(const Argv& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

// The text of a bulk/status reply, or why there is none.
Result<std::string_view> Text(const Reply& reply, const Argv& command, const ReadPlan& plan) {
  if (reply.IsError()) return MakeError(Refusal(Name(command), reply.str, plan.acl_user));
  if (reply.type != Reply::Type::kString && reply.type != Reply::Type::kStatus) {
    return MakeError(Name(command) + ": unexpected reply type");
  }
  return std::string_view(reply.str);
}

bool SendsInfo(const ReadPlan& plan, const Endpoint& dialed) {
  if (plan.info_sections.empty()) return false;
  return plan.info_only_at.empty() || std::find(plan.info_only_at.begin(), plan.info_only_at.end(),
                                                dialed) != plan.info_only_at.end();
}

// The results of one round of parallel reads. Shared with the tasks, so a straggler writing
// after the round gave up writes into memory that is still alive and then dropped.
struct Round {
  std::mutex mutex;
  std::condition_variable done_cv;
  std::vector<std::optional<NodeRead>> results;
  size_t done = 0;
};

NodeRead ReadOne(Connector& connector, const ReadPlan& plan, const Endpoint& endpoint,
                 std::optional<ReadClock::time_point> deadline) {
  if (deadline && ReadClock::now() >= *deadline) {
    return Down(endpoint, "the deadline passed before the node was read");
  }
  Connection& connection = connector.Get(endpoint);
  connection.SetDeadline(deadline);
  struct Clear {
    Connection& c;
    ~Clear() { c.SetDeadline(std::nullopt); }
  } clear{connection};
  const auto commands = NodeCommands(plan, endpoint);
  auto replies = connection.Pipeline(commands);
  if (!replies) return Down(endpoint, replies.error().message);
  NodeRead read = ParseNodeReplies(endpoint, plan, *replies);
  if (!read.up() || !plan.follow_up) return read;
  const auto more = plan.follow_up(read);
  if (more.empty()) return read;
  if (deadline && ReadClock::now() >= *deadline) {
    read.follow_up_error = "no time left";
    return read;
  }
  auto more_replies = connection.Pipeline(more);
  if (!more_replies) {
    read.follow_up_error = more_replies.error().message;
  } else if (more_replies->size() != more.size()) {
    read.follow_up_error = "wrong number of replies";
  } else {
    read.follow_up_replies = std::move(*more_replies);
  }
  return read;
}

}  // namespace

std::string Refusal(std::string_view command, const std::string& error, std::string_view acl_user) {
  std::string out = std::string(command) + " refused: " + error;
  if (error.rfind("NOPERM", 0) == 0) {
    out += " (" + std::string(acl_user) +
           " needs this command: see README, Least-privilege ACL users)";
  }
  return out;
}

std::vector<Argv> NodeCommands(const ReadPlan& plan, const Endpoint& dialed) {
  std::vector<Argv> out;
  if (SendsInfo(plan, dialed)) {
    for (const auto& section : plan.info_sections) out.push_back({"INFO", section});
  }
  if (plan.cluster_info) out.push_back({"CLUSTER", "INFO"});
  out.push_back({"CLUSTER", "NODES"});
  return out;
}

NodeRead ParseNodeReplies(const Endpoint& dialed, const ReadPlan& plan,
                          const std::vector<Reply>& replies) {
  const auto commands = NodeCommands(plan, dialed);
  if (replies.size() != commands.size()) {
    return Down(dialed, "expected " + std::to_string(commands.size()) + " replies, got " +
                            std::to_string(replies.size()));
  }
  NodeRead r = Down(dialed, "");
  auto fail = [&r](std::string why) {
    if (r.error.empty()) r.error = std::move(why);
  };
  size_t i = 0;
  if (SendsInfo(plan, dialed)) {
    for (; i < plan.info_sections.size(); ++i) {
      auto text = Text(replies[i], commands[i], plan);
      auto info = text ? ParseInfo(*text) : Result<Info>(tl::unexpected(text.error()));
      if (!info) {
        fail(text ? Name(commands[i]) + ": " + info.error().message : text.error().message);
        r.info.emplace_back();
        continue;
      }
      r.info.emplace_back(std::move(*info));
    }
  }
  if (plan.cluster_info) {
    auto text = Text(replies[i], commands[i], plan);
    auto info = text ? ParseInfo(*text) : Result<Info>(tl::unexpected(text.error()));
    if (info) {
      r.cluster_info = std::move(*info);
    } else {
      fail(text ? "CLUSTER INFO: " + info.error().message : text.error().message);
    }
    ++i;
  }
  // Without a view the node did not answer at all: its error is why there is no view.
  auto text = Text(replies[i], commands[i], plan);
  if (!text) {
    r.error = text.error().message;
    return r;
  }
  auto nodes = ParseClusterNodes(*text);
  if (!nodes) {
    r.error = nodes.error().message;  // "CLUSTER NODES line 3: ..."
    return r;
  }
  NodesView view;
  view.reporter = dialed;
  auto myself =
      std::find_if(nodes->begin(), nodes->end(), [](const NodeEntry& n) { return n.flags.myself; });
  if (myself == nodes->end()) {
    fail("CLUSTER NODES: no myself line");
  } else {
    // The one ":port only" fix-up: a node never met by another does not know its own IP and
    // writes ":port"; the address we reached it at is the best there is.
    if (myself->endpoint.host.empty()) myself->endpoint.host = dialed.host;
    if (myself->endpoint.port <= 0) myself->endpoint.port = dialed.port;
    view.reporter_id = myself->id;
    view.reporter = myself->endpoint;
    r.address = myself->endpoint;
  }
  view.nodes = std::move(*nodes);
  r.view = std::move(view);
  return r;
}

struct ClusterReader::NodeLock {
  std::timed_mutex mutex;  // one read at a time on the node's connection
};

std::shared_ptr<Connector> Borrow(Connector& connector) {
  return std::shared_ptr<Connector>(&connector, [](Connector*) {});
}

ClusterReader::ClusterReader(std::shared_ptr<Connector> connector, ReadPlan plan)
    : connector_(std::move(connector)), plan_(std::make_shared<const ReadPlan>(std::move(plan))) {}

std::shared_ptr<ClusterReader::NodeLock> ClusterReader::LockFor(const Endpoint& endpoint) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& l = locks_[endpoint];
  if (!l) l = std::make_shared<NodeLock>();
  return l;
}

std::vector<NodeRead> ClusterReader::ReadNodes(const std::vector<Endpoint>& endpoints,
                                               std::optional<ReadClock::time_point> deadline) {
  const auto start = ReadClock::now();
  auto round = std::make_shared<Round>();
  round->results.resize(endpoints.size());
  for (size_t i = 0; i < endpoints.size(); ++i) {
    auto work = [round, i, deadline, connector = connector_, plan = plan_,
                 node = LockFor(endpoints[i]), endpoint = endpoints[i]]() {
      const auto t0 = ReadClock::now();
      NodeRead result;
      try {
        std::unique_lock<std::timed_mutex> lock(node->mutex, std::defer_lock);
        const bool locked = deadline ? lock.try_lock_until(*deadline) : (lock.lock(), true);
        result = locked ? ReadOne(*connector, *plan, endpoint, deadline)
                        : Down(endpoint,
                               "still busy with an earlier read that has not finished (the "
                               "node is slow or stopped)");
      } catch (const std::exception& e) {
        result = Down(endpoint, std::string("internal error: ") + e.what());
      }
      result.seconds = Seconds(ReadClock::now() - t0);
      {
        std::lock_guard<std::mutex> lock(round->mutex);
        round->results[i] = std::move(result);
        ++round->done;
      }
      round->done_cv.notify_all();
    };
    FanOut::Shared().Post(std::move(work));
  }

  std::unique_lock<std::mutex> lock(round->mutex);
  auto all_done = [&] { return round->done == endpoints.size(); };
  if (plan_->abandon_stragglers && deadline) {
    round->done_cv.wait_until(lock, *deadline, all_done);
  } else {
    round->done_cv.wait(lock, all_done);
  }
  std::vector<NodeRead> out;
  out.reserve(endpoints.size());
  for (size_t i = 0; i < endpoints.size(); ++i) {
    if (round->results[i]) {
      out.push_back(std::move(*round->results[i]));
    } else {
      out.push_back(Down(endpoints[i], "no answer within the deadline"));
      out.back().seconds = Seconds(ReadClock::now() - start);
    }
  }
  return out;
}

ClusterRead ClusterReader::Read(const std::vector<Endpoint>& seeds,
                                const std::vector<Endpoint>& known,
                                std::optional<ReadClock::time_point> deadline) {
  std::vector<Endpoint> targets = known;
  bool asked_seeds = targets.empty();
  if (asked_seeds) targets = seeds;

  std::map<Endpoint, NodeRead> by_address;
  std::set<Endpoint> dialed;
  auto merge = [&](std::vector<NodeRead> results) {
    for (auto& r : results) {
      dialed.insert(r.dialed);
      auto it = by_address.find(r.address);
      // A seed written as another name of a node already read: keep the answer that is up.
      if (it == by_address.end()) {
        by_address.emplace(r.address, std::move(r));
      } else if (!it->second.up() && r.up()) {
        it->second = std::move(r);
      }
    }
  };
  // Pointers into by_address's values (stable while the map lives): no view is copied.
  auto member_views = [&] {
    ViewRefs answered;
    for (const auto& [address, r] : by_address) {
      if (r.up()) answered.push_back(&*r.view);
    }
    return MemberViews(answered);
  };

  // Round one reads the known nodes (or the seeds); later rounds read what the answers named
  // that was not read yet. Three rounds cover: known nodes, seeds, newly named nodes.
  ViewRefs views;
  for (int round = 0; round < 3 && !targets.empty() && (!deadline || ReadClock::now() < *deadline);
       ++round) {
    merge(ReadNodes(targets, deadline));
    views = member_views();
    targets.clear();
    if (views.empty()) {
      if (!asked_seeds) {
        asked_seeds = true;
        for (const auto& seed : seeds) {
          if (!dialed.count(seed)) targets.push_back(seed);
        }
      }
      continue;
    }
    for (const auto& e : EndpointsInViews(views)) {
      if (!dialed.count(e) && !by_address.count(e)) targets.push_back(e);
    }
  }
  // Named by the cluster but never read (the deadline came first): they count as down.
  for (const auto& e : targets) {
    if (!by_address.count(e)) by_address.emplace(e, Down(e, "not read: the deadline came first"));
  }

  ClusterRead out;
  out.discovery_ok = !views.empty();
  for (const NodesView* v : views) by_address.at(v->reporter).member = true;
  out.nodes.reserve(by_address.size());
  for (auto& [address, r] : by_address) out.nodes.push_back(std::move(r));
  return out;
}

void ClusterReader::Retain(const std::vector<Endpoint>& keep) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Endpoint> kept = keep;
  // Declared first, destroyed last: each lock below must outlive its unique_lock.
  std::vector<std::shared_ptr<NodeLock>> held;
  std::vector<std::unique_lock<std::timed_mutex>> dropping;
  for (auto it = locks_.begin(); it != locks_.end();) {
    if (std::find(keep.begin(), keep.end(), it->first) != keep.end()) {
      ++it;
      continue;
    }
    std::unique_lock<std::timed_mutex> node(it->second->mutex, std::try_to_lock);
    if (!node.owns_lock()) {
      kept.push_back(it->first);  // a straggler still reads it: next time
      ++it;
      continue;
    }
    held.push_back(it->second);
    dropping.push_back(std::move(node));
    it = locks_.erase(it);
  }
  connector_->Retain(kept);
}

}  // namespace slotguard::cluster
