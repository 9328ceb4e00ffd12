#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace slotguard::agent {

// One source -> target move of a parallel run, as the scheduler sees it.
struct PairWork {
  std::string source;  // node id
  std::string target;  // node id
  size_t batches_left = 0;
  int slots_left = 0;
};

struct ScheduleLimits {
  // Most batches running at once; 0: as many as disjoint pairs allow.
  int parallel = 0;
  // Batches a target receives at once, each from another source (1: one at a time, the
  // runbook's rule). More lets several sources fill one new master together; each batch's
  // memory headroom check on the target then sees only its own batch.
  int per_target = 1;
};

// Pure: the pairs whose next batch runs in the next round. A source sends one batch at a time, a
// target receives at most limits.per_target at a time, and a node is never source and target at
// once. Pairs with the most slots left go first, so the longest move is never the
// one left to run alone at the end; ties keep plan order. Empty when no batch is left.
std::vector<size_t> NextRound(const std::vector<PairWork>& pairs, const ScheduleLimits& limits);

}  // namespace slotguard::agent
