// KeySlot against the server's own CLUSTER KEYSLOT, on a real cluster-enabled redis-server.
#include <gtest/gtest.h>

#include <random>

#include "cluster/key_slot.h"
#include "tests/unit/cluster_live_server.h"

namespace slotguard::cluster {
namespace {

std::string RandomKey(std::mt19937& rng) {
  static const std::string kChars =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:._-{}{}{}";
  std::string key(rng() % 40, '\0');
  for (auto& c : key) {
    // Mostly printable with many braces; now and then any byte at all.
    c = rng() % 10 == 0 ? static_cast<char>(rng() % 256) : kChars[rng() % kChars.size()];
  }
  switch (rng() % 4) {
    case 0:
      return "{" + key + "}" + std::to_string(rng() % 100);
    case 1:
      return "user:{" + std::to_string(rng() % 50) + "}:" + key;
    default:
      return key;
  }
}

TEST(ClusterKeySlotLive, MatchesClusterKeyslotForRandomKeys) {
  std::string binary;
  SLOTGUARD_REQUIRE_REDIS_SERVER(binary);
  auto server = testing::LiveServer::Start(binary, /*cluster_enabled=*/true);
  ASSERT_NE(server, nullptr) << "redis-server did not start";
  RedisConnection conn(server->endpoint());

  std::mt19937 rng(20240601);
  std::vector<std::string> keys = {"", "foo", "{}", "{}{a}", "{a}{}", "}{", "{{}}", "{user1000}.x"};
  while (keys.size() < 2000) keys.push_back(RandomKey(rng));
  std::vector<Argv> commands;
  for (const auto& k : keys) commands.push_back({"CLUSTER", "KEYSLOT", k});

  auto replies = conn.Pipeline(commands);
  ASSERT_TRUE(replies) << replies.error().message;
  ASSERT_EQ(replies->size(), keys.size());
  int mismatches = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    const Reply& r = (*replies)[i];
    ASSERT_EQ(r.type, Reply::Type::kInteger) << r.str;
    if (r.integer != KeySlot(keys[i])) {
      ++mismatches;
      ADD_FAILURE() << "key #" << i << " " << ::testing::PrintToString(keys[i]) << ": server "
                    << r.integer << ", KeySlot " << KeySlot(keys[i]);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace slotguard::cluster
