#include "agent/engine.h"

namespace slotguard::agent {

// Step-0 stub so the daemon can link against the interface; the engine lands next.
class EngineImpl {};

Engine::Engine(cluster::Connector& connector, Clock& clock, EngineOptions options,
               EngineObserver& observer)
    : Engine(connector, clock, std::move(options), observer, nullptr) {}

Engine::Engine(cluster::Connector& /*connector*/, Clock& /*clock*/, EngineOptions /*options*/,
               EngineObserver& /*observer*/, cluster::Connector* /*guard_connector*/)
    : impl_(std::make_unique<EngineImpl>()) {}

Engine::~Engine() = default;

cluster::Result<BatchOutcome> Engine::RunBatch(const Batch& /*batch*/) {
  return cluster::MakeError("engine not implemented yet");
}

void Engine::RequestRollback(RollbackTrigger /*trigger*/, std::string /*reason*/) {}

cluster::Result<RecoveryReport> Engine::Recover() { return RecoveryReport{}; }

}  // namespace slotguard::agent
