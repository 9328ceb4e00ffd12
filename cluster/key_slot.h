#pragma once

#include <cstdint>
#include <string_view>

namespace slotguard::cluster {

// CRC16 (XMODEM) as Redis Cluster uses it.
uint16_t Crc16(std::string_view data);

// The hash slot of a key, honouring the first non-empty "{hash tag}".
int KeySlot(std::string_view key);

}  // namespace slotguard::cluster
