#pragma once

#include <chrono>
#include <string_view>

#include "common/error.h"

namespace slotguard::common {

// The one duration syntax of every flag and config key: a number and a unit, "250ms", "8s",
// "1.5s", "5m", "1h". A bare number is refused: "5" could mean seconds or milliseconds, and
// a config that guesses wrong waits a thousand times too long or too short.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

}  // namespace slotguard::common
