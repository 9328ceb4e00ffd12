#include "cluster/server_version.h"

#include <cctype>
#include <charconv>
#include <tuple>

namespace slotguard::cluster {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "7.2.6" -> {7,2,6}; "7.2" -> {7,2,0}; "8.0.0-rc1" -> {8,0,0} (a suffix after '-' is a
// release stage, not part of the number). Anything else fails.
Result<ServerVersion::Number> ParseNumber(std::string_view key, std::string_view text) {
  auto fail = [&] {
    return MakeError("INFO " + std::string(key) + " \"" + std::string(text.substr(0, 40)) +
                     "\": expected a dotted version like 7.2.6");
  };
  std::string_view numeric = text.substr(0, text.find('-'));
  int parts[3] = {0, 0, 0};
  size_t count = 0;
  size_t pos = 0;
  while (true) {
    if (count == 3) return fail();
    size_t dot = numeric.find('.', pos);
    std::string_view digits =
        numeric.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
    if (digits.empty()) return fail();
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), parts[count]);
    if (ec != std::errc() || ptr != digits.data() + digits.size()) return fail();
    ++count;
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  if (count < 2) return fail();
  return ServerVersion::Number{parts[0], parts[1], parts[2]};
}

}  // namespace

bool ServerVersion::Number::AtLeast(int want_major, int want_minor, int want_patch) const {
  return std::tie(major, minor, patch) >= std::tie(want_major, want_minor, want_patch);
}

int ServerVersion::RdbVersion() const {
  if (redis_number_.AtLeast(7, 4)) return 12;
  if (redis_number_.AtLeast(7, 2)) return 11;
  if (redis_number_.AtLeast(7, 0)) return 10;
  return 9;
}

bool ServerVersion::HasLatencyStats() const { return redis_number_.AtLeast(7, 0); }

bool ServerVersion::HasClusterLinks() const { return redis_number_.AtLeast(7, 0); }

std::string ServerVersion::ToString() const {
  std::string out = name_ + " " + version_;
  if (version_ != redis_version_) out += " (redis_version " + redis_version_ + ")";
  return out;
}

Result<ServerVersion> ServerVersionFromInfo(const Info& info) {
  auto redis_version = info.Get("redis_version");
  if (!redis_version) return MakeError("INFO has no redis_version (not INFO server output)");
  ServerVersion v;
  v.redis_version_ = *redis_version;
  auto redis_number = ParseNumber("redis_version", v.redis_version_);
  if (!redis_number) return tl::unexpected(redis_number.error());
  v.redis_number_ = *redis_number;

  if (auto name = info.Get("server_name"); name && !name->empty()) v.name_ = Lower(*name);
  // Valkey writes valkey_version; a later fork may write <name>_version the same way.
  auto own = info.Get(v.name_ + "_version");
  if (v.name_ == "redis" || !own || own->empty()) {
    v.version_ = v.redis_version_;
    v.number_ = v.redis_number_;
    return v;
  }
  v.version_ = *own;
  auto number = ParseNumber(v.name_ + "_version", v.version_);
  if (!number) return tl::unexpected(number.error());
  v.number_ = *number;
  return v;
}

Result<ServerVersion> ParseServerVersion(std::string_view info_text) {
  auto info = ParseInfo(info_text);
  if (!info) return tl::unexpected(info.error());
  return ServerVersionFromInfo(*info);
}

}  // namespace slotguard::cluster
