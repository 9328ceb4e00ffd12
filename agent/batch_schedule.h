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
};

// Pure: the pairs whose next batch runs in the next round. A node takes part in at most one
// running batch (a source sends one batch at a time, a target receives one at a time, and a node
// is never both). Pairs with the most slots left go first, so the longest move is never the
// one left to run alone at the end; ties keep plan order. Empty when no batch is left.
std::vector<size_t> NextRound(const std::vector<PairWork>& pairs, const ScheduleLimits& limits);

}  // namespace slotguard::agent
