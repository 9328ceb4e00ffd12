#include "agent/pair_engines.h"

#include <algorithm>

namespace slotguard::agent {

size_t PairEngines::PairOf(const std::string& batch_id) const {
  for (size_t i = 0; i < pairs.size(); ++i) {
    for (const auto& b : pairs[i].batches) {
      if (b.id == batch_id) return i;
    }
  }
  return pairs.size();
}

PairEngines MakePairEngines(const std::vector<Batch>& batches, const PairEngineSettings& settings,
                            Clock& clock, EngineObserver& observer) {
  PairEngines out;
  for (const auto& b : batches) {
    auto it = std::find_if(out.pairs.begin(), out.pairs.end(), [&](const PairMove& p) {
      return p.source_id == b.from && p.target_id == b.to;
    });
    if (it != out.pairs.end()) {
      it->batches.push_back(b);
      continue;
    }
    out.pools.push_back(std::make_unique<cluster::ConnectionPool>(settings.connect));
    cluster::Connector* connector = out.pools.back().get();
    if (settings.wrap) {
      out.connectors.push_back(settings.wrap(*connector));
      connector = out.connectors.back().get();
    }
    EngineOptions o = settings.engine;
    o.shared = settings.shared;
    // The snapshot that verified this engine's previous batch may show a sibling's slots open.
    o.reuse_verified_snapshot = false;
    out.engines.push_back(std::make_unique<Engine>(*connector, clock, o, observer));
    out.pairs.push_back({b.from, b.to, {b}, out.engines.back().get()});
    if (!o.lease.run.empty()) {
      out.run_ids.push_back(o.lease.run + "-p" + std::to_string(out.pairs.size()));
    }
  }
  return out;
}

}  // namespace slotguard::agent
