#include "agent/daemon_connector.h"

#include <strings.h>

namespace slotguard::agent {

class DaemonConnector::GatedConnection final : public cluster::Connection {
 public:
  GatedConnection(DaemonConnector& owner, cluster::Connection& inner)
      : owner_(owner), inner_(inner) {}

  cluster::Result<cluster::Reply> Command(const cluster::Argv& argv) override {
    owner_.BeforeCommands({argv});
    return inner_.Command(argv);
  }

  cluster::Result<std::vector<cluster::Reply>> Pipeline(
      const std::vector<cluster::Argv>& commands) override {
    owner_.BeforeCommands(commands);
    return inner_.Pipeline(commands);
  }

  cluster::Result<void> Send(const std::vector<cluster::Argv>& commands) override {
    owner_.BeforeCommands(commands);
    return inner_.Send(commands);
  }

  cluster::Result<std::vector<cluster::Reply>> Receive(size_t count) override {
    return inner_.Receive(count);
  }

  const cluster::Endpoint& endpoint() const override { return inner_.endpoint(); }

 private:
  DaemonConnector& owner_;
  cluster::Connection& inner_;
};

DaemonConnector::DaemonConnector(cluster::Connector& inner, Clock& clock,
                                 std::chrono::milliseconds throttle)
    : inner_(inner), clock_(clock), throttle_(throttle) {}

DaemonConnector::~DaemonConnector() = default;

cluster::Connection& DaemonConnector::Get(const cluster::Endpoint& endpoint) {
  return Lane(endpoint, 0);
}

cluster::Connection& DaemonConnector::Lane(const cluster::Endpoint& endpoint, size_t lane) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = connections_[{endpoint, lane}];
  if (!slot) slot = std::make_unique<GatedConnection>(*this, inner_.Lane(endpoint, lane));
  return *slot;
}

void DaemonConnector::BeforeCommands(const std::vector<cluster::Argv>& commands) {
  if (throttle_.count() == 0 || !forward_) return;
  int importing = 0;
  for (const auto& argv : commands) {
    if (argv.size() >= 4 && strcasecmp(argv[0].c_str(), "CLUSTER") == 0 &&
        strcasecmp(argv[1].c_str(), "SETSLOT") == 0 &&
        strcasecmp(argv[3].c_str(), "IMPORTING") == 0) {
      ++importing;
    }
  }
  // Sleep in short steps so a rollback request or a shutdown (both clear forward_) is not
  // held up by the throttle.
  for (int i = 0; i < importing && forward_; ++i) {
    auto left = throttle_;
    while (left.count() > 0 && forward_) {
      const auto step = std::min(left, std::chrono::milliseconds(50));
      clock_.SleepFor(step);
      left -= step;
    }
  }
}

}  // namespace slotguard::agent
