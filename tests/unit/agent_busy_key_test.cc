#include "agent/busy_key.h"

#include <gtest/gtest.h>

namespace slotguard::agent {
namespace {

BusyKeyFacts Facts(std::optional<std::string> from, std::optional<std::string> to) {
  BusyKeyFacts f;
  f.from_dump = std::move(from);
  f.to_dump = std::move(to);
  return f;
}

TEST(AgentBusyKey, ForwardEqualPayloadIsReplaced) {
  EXPECT_EQ(DecideBusyKey(BusyKeyPolicy::kForward, Facts("x", "x")), BusyKeyAction::kReplace);
}

TEST(AgentBusyKey, ForwardDifferentPayloadStopsUnlessAskedOrOurs) {
  EXPECT_EQ(DecideBusyKey(BusyKeyPolicy::kForward, Facts("x", "y")), BusyKeyAction::kConflict);
  auto replace = Facts("x", "y");
  replace.replace_requested = true;
  EXPECT_EQ(DecideBusyKey(BusyKeyPolicy::kForward, replace), BusyKeyAction::kReplace);
  auto ours = Facts("x", "y");
  ours.ours = true;
  EXPECT_EQ(DecideBusyKey(BusyKeyPolicy::kForward, ours), BusyKeyAction::kReplace);
}

TEST(AgentBusyKey, SameContentCountsAsEqual) {
  auto f = Facts("x", "y");
  f.same_content = true;
  EXPECT_EQ(DecideBusyKey(BusyKeyPolicy::kForward, f), BusyKeyAction::kReplace);
  EXPECT_EQ(DecideBusyKey(BusyKeyPolicy::kToOwner, f), BusyKeyAction::kDeleteFromCopy);
}

TEST(AgentBusyKey, ToOwnerNeverOverwritesTheOwner) {
  EXPECT_EQ(DecideBusyKey(BusyKeyPolicy::kToOwner, Facts("x", "x")),
            BusyKeyAction::kDeleteFromCopy);
  EXPECT_EQ(DecideBusyKey(BusyKeyPolicy::kToOwner, Facts("x", "y")), BusyKeyAction::kLeave);
  auto replace = Facts("x", "y");
  replace.replace_requested = true;  // --replace is about the target's strays, not the owner
  EXPECT_EQ(DecideBusyKey(BusyKeyPolicy::kToOwner, replace), BusyKeyAction::kLeave);
}

TEST(AgentBusyKey, VanishedKeyIsLookedAtAgain) {
  EXPECT_EQ(DecideBusyKey(BusyKeyPolicy::kForward, Facts(std::nullopt, "y")),
            BusyKeyAction::kRetry);
  EXPECT_EQ(DecideBusyKey(BusyKeyPolicy::kToOwner, Facts("x", std::nullopt)),
            BusyKeyAction::kRetry);
}

}  // namespace
}  // namespace slotguard::agent
