#include "agent/json_read.h"

#include <algorithm>
#include <string>

namespace slotguard::agent {
namespace {

// The deepest nesting of arrays and objects, strings skipped; counted before parsing so that
// nothing deeper is ever built.
int Nesting(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

cluster::Result<nlohmann::json> ParseJson(std::string_view text) {
  if (Nesting(text) > kMaxJsonDepth) {
    return cluster::MakeError("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return cluster::MakeError("not valid JSON");
  return doc;
}

std::optional<int64_t> WholeNumber(const nlohmann::json& value, int64_t min, int64_t max) {
  if (value.is_number_unsigned()) {
    const auto u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    const auto i = static_cast<int64_t>(u);
    if (i >= min && i <= max) return i;
    return std::nullopt;
  }
  if (value.is_number_integer()) {
    const auto i = value.get<int64_t>();
    if (i >= min && i <= max) return i;
  }
  return std::nullopt;
}

}  // namespace slotguard::agent
