// How the agent tells a node that replicates SETSLOT (Valkey 8) from one that does not, on the
// servers' own COMMAND DOCS replies, and how it spreads SETSLOTs over connections.
#include "agent/setslot_support.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_data.h"

namespace slotguard::agent {
namespace {

// The captured reply (a JSON array of strings, integers and arrays, as RESP2 sent it).
cluster::Reply FromJson(const nlohmann::json& j) {
  cluster::Reply r;
  if (j.is_array()) {
    r.type = cluster::Reply::Type::kArray;
    for (const auto& e : j) r.elements.push_back(FromJson(e));
  } else if (j.is_number_integer()) {
    r.type = cluster::Reply::Type::kInteger;
    r.integer = j.get<int64_t>();
  } else if (j.is_object() && j.contains("error")) {
    r.type = cluster::Reply::Type::kError;
    r.str = j["error"].get<std::string>();
  } else {
    r.type = cluster::Reply::Type::kString;
    r.str = j.get<std::string>();
  }
  return r;
}

cluster::Reply Captured(const std::string& name) {
  return FromJson(nlohmann::json::parse(slotguard::testing::ReadData(name)));
}

TEST(SetSlotSupport, Valkey8ReplicatesSetSlot) {
  EXPECT_TRUE(SetSlotSupportFrom(Captured("valkey80_command_docs_setslot.json")).replicated);
}

TEST(SetSlotSupport, Redis70DoesNot) {
  // 7.0's docs list SETSLOT's arguments without TIMEOUT.
  auto docs = Captured("redis70_command_docs_setslot.json");
  ASSERT_EQ(docs.type, cluster::Reply::Type::kArray);
  EXPECT_FALSE(SetSlotSupportFrom(docs).replicated);
}

TEST(SetSlotSupport, AnErrorReplyMeansNotReplicated) {
  // 6.2 has no COMMAND DOCS.
  cluster::Reply error{cluster::Reply::Type::kError,
                       "ERR Unknown subcommand or wrong number of "
                       "arguments for 'DOCS'. Try COMMAND HELP."};
  EXPECT_FALSE(SetSlotSupportFrom(error).replicated);
}

TEST(SetSlotSupport, TimeoutOnlyOnSetSlotOfReplicatingNodes) {
  std::vector<cluster::Argv> cmds = {{"CLUSTER", "SETSLOT", "7", "NODE", "abc"},
                                     {"CLUSTER", "COUNTKEYSINSLOT", "7"},
                                     {"CLUSTER", "SETSLOT", "8", "STABLE"}};
  auto same = WithSetSlotTimeout({false}, cmds, std::chrono::milliseconds(3000));
  EXPECT_EQ(same, cmds);
  auto shaped = WithSetSlotTimeout({true}, cmds, std::chrono::milliseconds(3000));
  EXPECT_EQ(shaped[0],
            (cluster::Argv{"CLUSTER", "SETSLOT", "7", "NODE", "abc", "TIMEOUT", "3000"}));
  EXPECT_EQ(shaped[1], cmds[1]);
  EXPECT_EQ(shaped[2], (cluster::Argv{"CLUSTER", "SETSLOT", "8", "STABLE", "TIMEOUT", "3000"}));
}

TEST(SetSlotSupport, NoReplicasAndUnblockedLeaveTheOutcomeUnknown) {
  using T = cluster::Reply::Type;
  EXPECT_TRUE(SetSlotOutcomeUnknown({T::kError, "NOREPLICAS Not enough good replicas to write."}));
  EXPECT_TRUE(SetSlotOutcomeUnknown(
      {T::kError, "UNBLOCKED force unblock from blocking operation, instance state changed"}));
  EXPECT_FALSE(SetSlotOutcomeUnknown({T::kError, "ERR I'm not the owner of hash slot 7"}));
  EXPECT_FALSE(SetSlotOutcomeUnknown({T::kStatus, "OK"}));
}

TEST(SetSlotSupport, LanesKeepEachSlotInOrderAndSpreadTheSlots) {
  std::vector<cluster::Argv> cmds;
  for (int slot = 100; slot < 110; ++slot) {
    cmds.push_back({"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", "a"});
    cmds.push_back({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)});
  }
  auto lanes = SplitIntoLanes(cmds, 4);
  ASSERT_EQ(lanes.size(), 4u);
  size_t total = 0;
  for (const auto& lane : lanes) {
    total += lane.size();
    for (size_t k = 1; k < lane.size(); ++k) EXPECT_LT(lane[k - 1], lane[k]);  // sent in order
  }
  EXPECT_EQ(total, cmds.size());
  // Both commands of a slot share its lane; consecutive slots do not.
  EXPECT_EQ(lanes[0], (std::vector<size_t>{0, 1, 8, 9, 16, 17}));
  EXPECT_EQ(lanes[1], (std::vector<size_t>{2, 3, 10, 11, 18, 19}));
}

TEST(SetSlotSupport, ACommandWithoutASlotKeepsOneLane) {
  std::vector<cluster::Argv> cmds = {{"CLUSTER", "SETSLOT", "1", "STABLE"},
                                     {"CLUSTER", "SETSLOT", "2", "STABLE"},
                                     {"CLUSTER", "INFO"}};
  auto lanes = SplitIntoLanes(cmds, 8);
  ASSERT_EQ(lanes.size(), 1u);
  EXPECT_EQ(lanes[0], (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(SplitIntoLanes(cmds, 1).size(), 1u);
}

}  // namespace
}  // namespace slotguard::agent
