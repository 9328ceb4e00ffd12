#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cluster/result.h"

namespace slotguard::agent {

// Reading JSON that comes from outside (HTTP bodies, queue.json and the journal on disk, values
// in Redis) past the two ways nlohmann fails on hostile input without a parse error: it copies
// and dumps nested values recursively (a 200 KB body of '[' overflows the stack), and get<int>()
// casts 1e300 unchecked (undefined behaviour).

// Deeper nesting than this is refused; slotguard's own documents nest 4 levels at most.
inline constexpr int kMaxJsonDepth = 64;

// Parses without exceptions. The error is "not valid JSON" or "nested deeper than 64 levels".
cluster::Result<nlohmann::json> ParseJson(std::string_view text);

// `value` as a whole number within [min, max]; nullopt for a float, a string, or out of range.
std::optional<int64_t> WholeNumber(const nlohmann::json& value,
                                   int64_t min = std::numeric_limits<int64_t>::min(),
                                   int64_t max = std::numeric_limits<int64_t>::max());

}  // namespace slotguard::agent
