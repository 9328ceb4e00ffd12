#include "agent/forget.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_data.h"

namespace slotguard::agent {
namespace {

using ::slotguard::testing::ReadData;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(ParseClientList, ReadsARealServersLines) {
  // Redis 6.2.16: the replica's link to its master (M), an application (name app-7) and the
  // connection that asked (CLIENT ID 35).
  auto clients = ParseClientList(ReadData("redis62_client_list_replica.txt"));
  ASSERT_THAT(clients, SizeIs(3));
  EXPECT_EQ(clients[0].flags, "M");
  EXPECT_EQ(clients[1].name, "app-7");
  EXPECT_EQ(clients[1].cmd, "ping");
  EXPECT_EQ(clients[1].addr, "127.0.0.1:59294");
  EXPECT_EQ(clients[2].id, 35);
}

ForgetFacts Drained() {
  ForgetFacts f;
  f.node = "127.0.0.1:7006 (abcd)";
  f.clients = ParseClientList(ReadData("redis62_client_list_master.txt"));  // S link + itself
  f.own_client_id = 46;
  f.now_ms = 100 * 3600 * 1000;
  f.drained_at_ms = f.now_ms - 25 * 3600 * 1000;
  f.min_age = std::chrono::hours(24);
  return f;
}

TEST(ForgetRefusals, ADrainedQuietNodePastTheWindowGoes) {
  EXPECT_THAT(ForgetRefusals(Drained()), IsEmpty());
  auto replica = Drained();
  replica.keys = 5000;  // a replica's keys are its master's copy
  EXPECT_THAT(ForgetRefusals(replica), IsEmpty());
}

TEST(ForgetRefusals, EachReasonIsNamed) {
  auto f = Drained();
  f.master = true;
  f.owned_slots = 3;
  f.keys = 2;
  f.followers = 1;
  f.clients = ParseClientList(ReadData("redis62_client_list_replica.txt"));
  f.own_client_id = 35;
  f.drained_at_ms = f.now_ms - 3600 * 1000;
  auto why = ForgetRefusals(f);
  ASSERT_THAT(why, SizeIs(5));
  EXPECT_THAT(why[0], HasSubstr("owns 3 slot(s)"));
  EXPECT_THAT(why[1], HasSubstr("holds 2 key(s)"));
  EXPECT_THAT(why[2], HasSubstr("1 replica(s)"));
  EXPECT_THAT(why[3], HasSubstr("1 client(s) other than slotguard: 127.0.0.1:59294 name=app-7"));
  EXPECT_THAT(why[4], HasSubstr("drained 1 h ago, within the observation window (--min-age 24 h)"));
}

TEST(ForgetRefusals, NoDrainInTheJournalNeedsAnExplicitWindow) {
  auto f = Drained();
  f.drained_at_ms.reset();
  auto why = ForgetRefusals(f);
  ASSERT_THAT(why, SizeIs(1));
  EXPECT_THAT(why[0], HasSubstr("--min-age 0s"));
  f.min_age = std::chrono::milliseconds(0);
  EXPECT_THAT(ForgetRefusals(f), IsEmpty());
}

}  // namespace
}  // namespace slotguard::agent
