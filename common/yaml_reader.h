#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

namespace slotguard::common {

// Strict reading of a YAML document for config and plan files: every error names the file,
// the line and the field ("plan.yaml:7: batches[1].ranges[0]: ..."), unknown and duplicate
// keys are errors. It throws YamlFieldError; the parse functions that use it catch that and
// return a common::Error, so no exception leaves them. The one strict reader of the project:
// exporter.yaml, agent.yaml and plan files all go through it.
class YamlFieldError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  // Parses `text`; YAML syntax errors become a YamlFieldError naming file and line.
  YAML::Node Parse(const std::string& text) const;

  [[noreturn]] void Fail(const YAML::Node& at, const std::string& path,
                         const std::string& what) const;

  // `node` must be a map whose keys are all in `allowed`, each at most once.
  void ExpectMap(const YAML::Node& node, const std::string& path,
                 std::initializer_list<std::string_view> allowed) const;
  void ExpectSequence(const YAML::Node& node, const std::string& path) const;

  std::string String(const YAML::Node& node, const std::string& path) const;
  // A non-empty string without surrounding whitespace.
  std::string NonEmptyString(const YAML::Node& node, const std::string& path) const;
  int64_t Int(const YAML::Node& node, const std::string& path, int64_t min, int64_t max) const;
  bool Bool(const YAML::Node& node, const std::string& path) const;
  // A duration as ParseDuration reads it ("250ms", "60s", "5m", "1h"; no bare numbers).
  std::chrono::milliseconds Duration(const YAML::Node& node, const std::string& path,
                                     std::chrono::milliseconds min,
                                     std::chrono::milliseconds max) const;

  // "file:line" of a node (the line is 1-based).
  std::string Where(const YAML::Node& node) const;
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

}  // namespace slotguard::common
