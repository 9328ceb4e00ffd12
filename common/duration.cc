#include "common/duration.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

namespace slotguard::common {

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  const std::string quoted = "\"" + std::string(text) + "\"";
  const std::string expected = quoted + " is not a duration like 250ms, 8s, 5m or 1h";
  // from_chars would take "inf", "nan" and "1e3": only plain decimals are durations.
  size_t digits = 0;
  bool dot = false;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) ||
                                  (text[digits] == '.' && !dot))) {
    dot = dot || text[digits] == '.';
    ++digits;
  }
  if (digits == 0 || text.front() == '.') return MakeError(expected);
  const std::string_view unit = text.substr(digits);
  double factor = 0;
  if (unit == "ms") {
    factor = 1;
  } else if (unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = 60'000;
  } else if (unit == "h") {
    factor = 3'600'000;
  } else if (unit.empty()) {
    return MakeError(quoted + " has no unit: write it as e.g. " + std::string(text) + "s or " +
                     std::string(text) + "ms");
  } else {
    return MakeError(expected + " (units: ms, s, m, h)");
  }
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (ec != std::errc() || ptr != text.data() + digits) return MakeError(expected);
  const double ms = value * factor;
  // Far beyond any timeout, and below int64's range whatever the rounding.
  if (!std::isfinite(ms) || ms > 1e15) return MakeError(quoted + " is too large");
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
}

}  // namespace slotguard::common
