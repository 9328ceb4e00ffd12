#include "common/yaml_reader.h"

#include <charconv>
#include <set>

#include "common/duration.h"

namespace slotguard::common {

namespace {

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    default:
      return "an undefined value";
  }
}

}  // namespace

YAML::Node YamlReader::Parse(const std::string& text) const {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    // e.mark.line is 0-based; e.msg is the bare reason without yaml-cpp's own position text.
    throw YamlFieldError(file_ + ":" + std::to_string(e.mark.line + 1) +
                         ": not valid YAML: " + e.msg);
  }
}

std::string YamlReader::Where(const YAML::Node& node) const {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) return file_;
  return file_ + ":" + std::to_string(mark.line + 1);
}

void YamlReader::Fail(const YAML::Node& at, const std::string& path,
                      const std::string& what) const {
  throw YamlFieldError(Where(at) + ": " + (path.empty() ? "" : path + ": ") + what);
}

void YamlReader::ExpectMap(const YAML::Node& node, const std::string& path,
                           std::initializer_list<std::string_view> allowed) const {
  if (!node.IsMap()) Fail(node, path, "expected a map, got " + Describe(node));
  std::set<std::string> seen;
  for (const auto& item : node) {
    const YAML::Node& key = item.first;
    if (!key.IsScalar()) Fail(key, path, "keys must be plain strings");
    const std::string name = key.Scalar();
    const std::string field = path.empty() ? name : path + "." + name;
    bool known = false;
    for (std::string_view a : allowed) known = known || a == name;
    if (!known) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      Fail(key, field, "unknown key (allowed here: " + list + ")");
    }
    if (!seen.insert(name).second) Fail(key, field, "duplicate key");
  }
}

void YamlReader::ExpectSequence(const YAML::Node& node, const std::string& path) const {
  if (!node.IsSequence()) Fail(node, path, "expected a list, got " + Describe(node));
}

std::string YamlReader::String(const YAML::Node& node, const std::string& path) const {
  if (!node.IsScalar()) Fail(node, path, "expected a string, got " + Describe(node));
  return node.Scalar();
}

std::string YamlReader::NonEmptyString(const YAML::Node& node, const std::string& path) const {
  std::string s = String(node, path);
  if (s.empty()) Fail(node, path, "must not be empty");
  if (s.find_first_of(" \t\r\n") != std::string::npos) Fail(node, path, "must not contain spaces");
  return s;
}

int64_t YamlReader::Int(const YAML::Node& node, const std::string& path, int64_t min,
                        int64_t max) const {
  if (!node.IsScalar()) Fail(node, path, "expected an integer, got " + Describe(node));
  const std::string& s = node.Scalar();
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) {
    Fail(node, path, "expected an integer, got " + Describe(node));
  }
  if (value < min || value > max) {
    Fail(node, path,
         "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + s);
  }
  return value;
}

bool YamlReader::Bool(const YAML::Node& node, const std::string& path) const {
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    Fail(node, path, "expected true or false, got " + Describe(node));
  }
  return value;
}

std::chrono::milliseconds YamlReader::Duration(const YAML::Node& node, const std::string& path,
                                               std::chrono::milliseconds min,
                                               std::chrono::milliseconds max) const {
  if (!node.IsScalar()) Fail(node, path, "expected a duration like 60s, got " + Describe(node));
  auto parsed = ParseDuration(node.Scalar());
  if (!parsed) Fail(node, path, parsed.error().message);
  if (*parsed < min || *parsed > max) {
    Fail(node, path,
         "must be between " + std::to_string(min.count()) + "ms and " +
             std::to_string(max.count()) + "ms, got " + node.Scalar());
  }
  return *parsed;
}

}  // namespace slotguard::common
