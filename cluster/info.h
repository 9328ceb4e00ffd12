#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/result.h"

namespace slotguard::cluster {

// The output of INFO (any sections) or CLUSTER INFO, as written by the server:
// "# Section" headers, "key:value" lines, CRLF or LF. Keys keep their order of appearance.
struct InfoField {
  std::string section;  // lower case, "" for CLUSTER INFO which has no headers
  std::string key;
  std::string value;
};

class Info {
 public:
  Info() = default;
  explicit Info(std::vector<InfoField> fields);

  const std::vector<InfoField>& fields() const { return fields_; }
  std::optional<std::string> Get(std::string_view key) const;
  // The value as a number, nullopt when absent or not numeric.
  std::optional<double> GetNumber(std::string_view key) const;

 private:
  std::vector<InfoField> fields_;
  std::map<std::string, size_t, std::less<>> index_;
};

// Fails on input that is not INFO output at all (no key:value line, binary garbage, a line
// over 64 KiB), with a message saying what was wrong and on which line.
Result<Info> ParseInfo(std::string_view text);

// "calls=3,usec=20,usec_per_call=6.67,rejected_calls=0,failed_calls=1" -> ordered pairs.
Result<std::vector<std::pair<std::string, std::string>>> ParseNestedValue(std::string_view value);

struct CommandStat {
  std::string command;  // lower case, subcommands as "cluster|setslot"
  double calls = 0;
  double usec = 0;
  double rejected_calls = 0;  // 0 on 6.0 which lacks the field
  double failed_calls = 0;
};
std::vector<CommandStat> CommandStats(const Info& info);

struct ErrorStat {
  std::string error;  // "ERR", "MOVED", "ASK", "IOERR", ...
  double count = 0;
};
std::vector<ErrorStat> ErrorStats(const Info& info);

struct LatencyPercentile {
  std::string command;
  std::string quantile;  // "p50", "p99", "p99.9" as the server wrote it
  double usec = 0;
};
std::vector<LatencyPercentile> LatencyPercentiles(const Info& info);

struct KeyspaceDb {
  int db = 0;
  double keys = 0;
  double expires = 0;
  double avg_ttl = 0;
};
std::vector<KeyspaceDb> Keyspace(const Info& info);

// slaveN lines of a master's INFO REPLICATION.
struct ReplicaLine {
  std::string ip;
  int port = 0;
  std::string state;
  double offset = 0;
  double lag = 0;
};
std::vector<ReplicaLine> Replicas(const Info& info);

}  // namespace slotguard::cluster
