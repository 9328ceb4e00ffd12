#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace slotguard::testing {

// A file of tests/data (real server output captured by scripts/capture-testdata.sh).
inline std::string ReadData(const std::string& name) {
  std::ifstream in(std::string(SLOTGUARD_TEST_DATA) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in) << "missing test data " << name << " (scripts/capture-testdata.sh makes it)";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// name=value lines written by scripts/capture-testdata.sh beside the captures.
inline std::map<std::string, std::string> ReadEnv(const std::string& name) {
  std::map<std::string, std::string> out;
  std::istringstream in(ReadData(name));
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

}  // namespace slotguard::testing
