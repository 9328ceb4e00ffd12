#include "cluster/info.h"

#include <cctype>
#include <charconv>
#include <cstdlib>

#include "cluster/line_reader.h"

namespace slotguard::cluster {
namespace {

constexpr size_t kMaxLineLength = 64 * 1024;

std::string Lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// strtod, but only when the whole string is a number (no "12abc", no empty string).
std::optional<double> ToNumber(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  const char first = text.front();
  if (!(std::isdigit(static_cast<unsigned char>(first)) || first == '-' || first == '+' ||
        first == '.')) {
    return std::nullopt;  // refuses "inf", "nan", hex words that strtod would accept
  }
  std::string copy(text);
  char* end = nullptr;
  double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size()) return std::nullopt;
  return value;
}

double NumberOr(std::string_view text, double fallback) {
  auto n = ToNumber(text);
  return n ? *n : fallback;
}

// "db12" -> 12, "slave0" -> 0: prefix followed by digits only.
std::optional<int> IndexedKey(std::string_view key, std::string_view prefix) {
  if (key.size() <= prefix.size() || key.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string_view digits = key.substr(prefix.size());
  int value = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  return value;
}

std::string HexByte(unsigned char u) {
  constexpr const char* kHex = "0123456789abcdef";
  return std::string{'0', 'x', kHex[u >> 4], kHex[u & 0xf]};
}

std::string LineError(size_t line, const std::string& what) {
  return "INFO line " + std::to_string(line) + ": " + what;
}

}  // namespace

Info::Info(std::vector<InfoField> fields) : fields_(std::move(fields)) {
  for (size_t i = 0; i < fields_.size(); ++i) index_.emplace(fields_[i].key, i);  // first wins
}

std::optional<std::string> Info::Get(std::string_view key) const {
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  return fields_[it->second].value;
}

std::optional<double> Info::GetNumber(std::string_view key) const {
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  return ToNumber(fields_[it->second].value);
}

Result<Info> ParseInfo(std::string_view text) {
  if (Trim(text).find_first_not_of("\r\n") == std::string_view::npos) {
    return MakeError("INFO reply is empty");
  }
  std::vector<InfoField> fields;
  std::string section;
  bool any_content = false;
  LineReader lines(text);
  std::string_view line;
  while (lines.Next(line)) {
    const size_t line_no = lines.number();
    if (line.size() > kMaxLineLength) {
      return MakeError(LineError(line_no, "longer than 64 KiB (" + std::to_string(line.size()) +
                                              " bytes); not INFO output"));
    }
    for (char c : line) {
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) {
        return MakeError(LineError(line_no, "binary byte " + HexByte(u) + "; not INFO output"));
      }
    }
    if (Trim(line).empty()) continue;
    if (line.front() == '#') {
      section = Lower(Trim(line.substr(1)));
      any_content = true;
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      std::string shown(line.substr(0, 40));
      return MakeError(
          LineError(line_no, "expected key:value or # Section, got \"" + shown + "\""));
    }
    if (colon == 0) return MakeError(LineError(line_no, "empty key before ':'"));
    fields.push_back(InfoField{section, std::string(line.substr(0, colon)),
                               std::string(line.substr(colon + 1))});
    any_content = true;
  }
  if (!any_content) return MakeError("INFO reply holds no key:value line");
  return Info(std::move(fields));
}

Result<std::vector<std::pair<std::string, std::string>>> ParseNestedValue(std::string_view value) {
  std::vector<std::pair<std::string, std::string>> out;
  if (value.empty()) return MakeError("empty nested value");
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    std::string_view item =
        comma == std::string_view::npos ? value.substr(pos) : value.substr(pos, comma - pos);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return MakeError("nested value item \"" + std::string(item.substr(0, 40)) +
                       "\": expected name=value");
    }
    out.emplace_back(std::string(item.substr(0, eq)), std::string(item.substr(eq + 1)));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::vector<CommandStat> CommandStats(const Info& info) {
  constexpr std::string_view kPrefix = "cmdstat_";
  std::vector<CommandStat> out;
  for (const auto& f : info.fields()) {
    std::string_view key = f.key;
    if (key.size() <= kPrefix.size() || key.substr(0, kPrefix.size()) != kPrefix) continue;
    auto pairs = ParseNestedValue(f.value);
    if (!pairs) continue;  // one odd line must not hide the others
    CommandStat stat;
    stat.command = Lower(key.substr(kPrefix.size()));
    for (const auto& [name, value] : *pairs) {
      if (name == "calls") {
        stat.calls = NumberOr(value, 0);
      } else if (name == "usec") {
        stat.usec = NumberOr(value, 0);
      } else if (name == "rejected_calls") {
        stat.rejected_calls = NumberOr(value, 0);
      } else if (name == "failed_calls") {
        stat.failed_calls = NumberOr(value, 0);
      }
    }
    out.push_back(std::move(stat));
  }
  return out;
}

std::vector<ErrorStat> ErrorStats(const Info& info) {
  constexpr std::string_view kPrefix = "errorstat_";
  std::vector<ErrorStat> out;
  for (const auto& f : info.fields()) {
    std::string_view key = f.key;
    if (key.size() <= kPrefix.size() || key.substr(0, kPrefix.size()) != kPrefix) continue;
    auto pairs = ParseNestedValue(f.value);
    if (!pairs) continue;
    for (const auto& [name, value] : *pairs) {
      if (name != "count") continue;
      if (auto n = ToNumber(value))
        out.push_back(ErrorStat{std::string(key.substr(kPrefix.size())), *n});
    }
  }
  return out;
}

std::vector<LatencyPercentile> LatencyPercentiles(const Info& info) {
  // The server writes "latency_percentiles_usec_"; the singular is accepted too.
  constexpr std::string_view kPrefixes[] = {"latency_percentiles_usec_",
                                            "latency_percentile_usec_"};
  std::vector<LatencyPercentile> out;
  for (const auto& f : info.fields()) {
    std::string_view key = f.key;
    std::string_view command;
    for (auto prefix : kPrefixes) {
      if (key.size() > prefix.size() && key.substr(0, prefix.size()) == prefix) {
        command = key.substr(prefix.size());
        break;
      }
    }
    if (command.empty()) continue;
    auto pairs = ParseNestedValue(f.value);
    if (!pairs) continue;
    for (const auto& [name, value] : *pairs) {
      if (auto n = ToNumber(value)) out.push_back(LatencyPercentile{Lower(command), name, *n});
    }
  }
  return out;
}

std::vector<KeyspaceDb> Keyspace(const Info& info) {
  std::vector<KeyspaceDb> out;
  for (const auto& f : info.fields()) {
    auto db = IndexedKey(f.key, "db");
    if (!db) continue;
    auto pairs = ParseNestedValue(f.value);
    if (!pairs) continue;
    KeyspaceDb entry;
    entry.db = *db;
    for (const auto& [name, value] : *pairs) {
      if (name == "keys") {
        entry.keys = NumberOr(value, 0);
      } else if (name == "expires") {
        entry.expires = NumberOr(value, 0);
      } else if (name == "avg_ttl") {
        entry.avg_ttl = NumberOr(value, 0);
      }
    }
    out.push_back(entry);
  }
  return out;
}

std::vector<ReplicaLine> Replicas(const Info& info) {
  std::vector<ReplicaLine> out;
  for (const auto& f : info.fields()) {
    if (!IndexedKey(f.key, "slave")) continue;
    auto pairs = ParseNestedValue(f.value);
    if (!pairs) continue;
    ReplicaLine replica;
    bool has_port = false;
    for (const auto& [name, value] : *pairs) {
      if (name == "ip") {
        replica.ip = value;
      } else if (name == "port") {
        auto n = ToNumber(value);
        if (n && *n >= 0 && *n <= 65535) {
          replica.port = static_cast<int>(*n);
          has_port = true;
        }
      } else if (name == "state") {
        replica.state = value;
      } else if (name == "offset") {
        replica.offset = NumberOr(value, 0);
      } else if (name == "lag") {
        replica.lag = NumberOr(value, 0);
      }
    }
    if (replica.ip.empty() || !has_port) continue;  // unusable as an address
    out.push_back(std::move(replica));
  }
  return out;
}

}  // namespace slotguard::cluster
