#include <gtest/gtest.h>

#include <string>

#include "cluster/key_slot.h"

namespace slotguard::cluster {
namespace {

TEST(ClusterCrc16, XmodemCheckValue) {
  EXPECT_EQ(Crc16("123456789"), 0x31C3);  // the CRC-16/XMODEM check value
  EXPECT_EQ(Crc16(""), 0);
}

// Expected values from CLUSTER KEYSLOT on redis-server 7.0.15.
TEST(ClusterKeySlot, KnownValues) {
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot("bar"), 5061);
  EXPECT_EQ(KeySlot("hello"), 866);
  EXPECT_EQ(KeySlot("123456789"), 12739);
  EXPECT_EQ(KeySlot(""), 0);
}

TEST(ClusterKeySlot, HashTags) {
  EXPECT_EQ(KeySlot("{user1000}.following"), 3443);
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("a{b}c"), KeySlot("b"));
  EXPECT_EQ(KeySlot("a{b}c"), 3300);
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("bar"));  // the first tag only
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), 4015);            // tag is "{bar"
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  // An empty tag means the whole key is hashed.
  EXPECT_EQ(KeySlot("{}foo"), 9500);
  EXPECT_EQ(KeySlot("foo{}{bar}"), 8363);
  EXPECT_EQ(KeySlot("{{}}"), 4092);
  // Unbalanced braces: the whole key.
  EXPECT_EQ(KeySlot("{bar"), 4015);
  EXPECT_EQ(KeySlot("bar}"), 6624);
}

TEST(ClusterKeySlot, BinaryKeysAndRange) {
  const std::string binary("\0\xff{\x01}\x80", 6);
  EXPECT_EQ(KeySlot(binary), KeySlot(std::string("\x01", 1)));
  for (int i = 0; i < 1000; ++i) {
    int slot = KeySlot("key:" + std::to_string(i));
    EXPECT_GE(slot, 0);
    EXPECT_LT(slot, 16384);
  }
}

}  // namespace
}  // namespace slotguard::cluster
