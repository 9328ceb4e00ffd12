#include "common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

namespace slotguard::common {
namespace {

constexpr std::array<std::string_view, 7> kLevels = {"trace", "debug",    "info", "warn",
                                                     "error", "critical", "off"};

// One JSON object a line; nlohmann escapes whatever the message holds.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const std::time_t seconds =
        std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char stamp[40];
    const size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(stamp + n, sizeof stamp - n, ".%03dZ", static_cast<int>(millis));

    const auto level = spdlog::level::to_string_view(msg.level);
    nlohmann::json line = {
        {"time", stamp},
        {"level", std::string(level.data(), level.size())},
        {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
        {"msg", std::string(msg.payload.data(), msg.payload.size())},
    };
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

void SetupLogging(const std::string& logger_name, const std::string& format,
                  const std::string& level) {
  // Not registered by name: a second call must not fail on "logger already exists".
  auto logger = std::make_shared<spdlog::logger>(
      logger_name, std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  // Lines reach the terminal or journald as they happen, not when a buffer fills.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

Result<std::string> CheckLogFormat(std::string_view text) {
  if (text == "text" || text == "json") return std::string(text);
  return MakeError("\"" + std::string(text) + "\": must be text or json");
}

Result<std::string> CheckLogLevel(std::string_view text) {
  for (std::string_view level : kLevels) {
    if (text == level) return std::string(text);
  }
  return MakeError("\"" + std::string(text) +
                   "\": must be one of trace, debug, info, warn, error, critical, off");
}

}  // namespace slotguard::common
