#include "common/yaml_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

namespace slotguard::common {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

// The message of the YamlFieldError `read` throws, "" when it throws none.
std::string FailureOf(const std::function<void()>& read) {
  try {
    read();
  } catch (const YamlFieldError& e) {
    return e.what();
  }
  return "";
}

TEST(CommonYamlReader, UnknownAndDuplicateKeysNameFileAndLine) {
  const YamlReader reader("f.yaml");
  EXPECT_THAT(FailureOf([&] {
                reader.ExpectMap(reader.Parse("a: 1\nweb:\n  listn: x\n")["web"], "web",
                                 {"listen"});
              }),
              HasSubstr("f.yaml:3: web.listn: unknown key (allowed here: listen)"));
  EXPECT_THAT(FailureOf([&] { reader.ExpectMap(reader.Parse("a: 1\na: 2\n"), "", {"a"}); }),
              HasSubstr("f.yaml:2: a: duplicate key"));
  EXPECT_THAT(FailureOf([&] { reader.Parse("a: [1\n"); }), HasSubstr("f.yaml:"));
}

TEST(CommonYamlReader, ScalarsAndDurations) {
  const YamlReader reader("f.yaml");
  const YAML::Node doc = reader.Parse("t: 250ms\nbare: 5\nb: yes\nn: 7\n");
  EXPECT_EQ(reader.Duration(doc["t"], "t", milliseconds(0), milliseconds(1000)), milliseconds(250));
  EXPECT_THAT(
      FailureOf([&] { reader.Duration(doc["bare"], "bare", milliseconds(0), milliseconds(1000)); }),
      HasSubstr("f.yaml:2: bare: \"5\" has no unit"));
  EXPECT_THAT(
      FailureOf([&] { reader.Duration(doc["t"], "t", milliseconds(500), milliseconds(1000)); }),
      HasSubstr("must be between"));
  EXPECT_TRUE(reader.Bool(doc["b"], "b"));
  EXPECT_EQ(reader.Int(doc["n"], "n", 0, 10), 7);
  EXPECT_THAT(FailureOf([&] { reader.Int(doc["n"], "n", 0, 5); }), HasSubstr("between 0 and 5"));
}

}  // namespace
}  // namespace slotguard::common
