#include "cluster/nodes.h"

#include <charconv>

#include "cluster/line_reader.h"

namespace slotguard::cluster {
namespace {

// Built by appending: GCC 12 at -O3 reports a false -Wrestrict on `"\"" + std::string(...)`.
std::string Quote(std::string_view text) {
  constexpr size_t kMaxShown = 60;
  const bool cut = text.size() > kMaxShown;
  std::string out;
  out.reserve(kMaxShown + 5);
  out.append(1, '"').append(cut ? text.substr(0, kMaxShown) : text).append(cut ? "...\"" : "\"");
  return out;
}

std::string HexByte(unsigned char u) {
  constexpr const char* kHex = "0123456789abcdef";
  return std::string{'0', 'x', kHex[u >> 4], kHex[u & 0xf]};
}

template <typename T>
bool ParseInt(std::string_view text, T& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

bool ParseSlot(std::string_view text, int& slot) {
  return ParseInt(text, slot) && slot >= 0 && slot < kSlotCount;
}

std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t start = line.find_first_not_of(' ', pos);
    if (start == std::string_view::npos) break;
    size_t end = line.find(' ', start);
    if (end == std::string_view::npos) end = line.size();
    out.push_back(line.substr(start, end - start));
    pos = end;
  }
  return out;
}

// "ip:port@cport[,hostname[,aux...]]". Returns an error text, empty on success.
std::string ParseAddress(std::string_view text, NodeEntry& node) {
  std::string_view addr = text;
  size_t comma = addr.find(',');
  if (comma != std::string_view::npos) {
    std::string_view rest = addr.substr(comma + 1);
    // 7.2 persists more ",name=value" aux fields in nodes.conf; only the hostname matters here.
    size_t next = rest.find(',');
    std::string_view hostname = next == std::string_view::npos ? rest : rest.substr(0, next);
    if (hostname.find('=') == std::string_view::npos) node.hostname = std::string(hostname);
    addr = addr.substr(0, comma);
  }
  size_t at = addr.find('@');
  if (at != std::string_view::npos) {
    std::string_view cport = addr.substr(at + 1);
    if (!ParseInt(cport, node.cluster_port) || node.cluster_port < 0 || node.cluster_port > 65535) {
      return "bad cluster bus port " + Quote(cport);
    }
    addr = addr.substr(0, at);
  }
  std::string_view host;
  std::string_view port;
  if (!addr.empty() && addr.front() == '[') {
    size_t close = addr.find(']');
    if (close == std::string_view::npos || close + 1 >= addr.size() || addr[close + 1] != ':') {
      return "bad address " + Quote(text) + " (expected [ipv6]:port)";
    }
    host = addr.substr(1, close - 1);
    port = addr.substr(close + 2);
  } else {
    size_t colon = addr.rfind(':');
    if (colon == std::string_view::npos) return "bad address " + Quote(text) + " (no port)";
    host = addr.substr(0, colon);
    port = addr.substr(colon + 1);
  }
  int port_value = 0;
  if (!ParseInt(port, port_value) || port_value < 0 || port_value > 65535) {
    return "bad port " + Quote(port) + " in address " + Quote(text);
  }
  node.endpoint = Endpoint{std::string(host), port_value};
  return {};
}

std::string ParseFlags(std::string_view text, NodeEntry& node) {
  size_t pos = 0;
  while (true) {
    size_t comma = text.find(',', pos);
    std::string_view flag =
        comma == std::string_view::npos ? text.substr(pos) : text.substr(pos, comma - pos);
    if (flag.empty()) return "empty flag in " + Quote(text);
    node.raw_flags.emplace_back(flag);
    if (flag == "myself") {
      node.flags.myself = true;
    } else if (flag == "master") {
      node.flags.master = true;
    } else if (flag == "slave") {
      node.flags.replica = true;
    } else if (flag == "fail?") {
      node.flags.pfail = true;
    } else if (flag == "fail") {
      node.flags.fail = true;
    } else if (flag == "handshake") {
      node.flags.handshake = true;
    } else if (flag == "noaddr") {
      node.flags.noaddr = true;
    } else if (flag == "nofailover") {
      node.flags.nofailover = true;
    }
    // "noflags" and flags of newer servers are kept in raw_flags only.
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return {};
}

// "N", "N-M", "[N->-id]", "[N-<-id]".
std::string ParseSlotEntry(std::string_view text, NodeEntry& node) {
  if (text.front() == '[') {
    if (text.size() < 2 || text.back() != ']') return "bad open slot " + Quote(text);
    std::string_view inner = text.substr(1, text.size() - 2);
    OpenSlot open;
    size_t arrow = inner.find("->-");
    if (arrow != std::string_view::npos) {
      open.direction = OpenDirection::kMigrating;
    } else {
      arrow = inner.find("-<-");
      if (arrow == std::string_view::npos) return "bad open slot " + Quote(text);
      open.direction = OpenDirection::kImporting;
    }
    if (!ParseSlot(inner.substr(0, arrow), open.slot)) {
      return "open slot " + Quote(text) + " is not a slot number 0-16383";
    }
    open.peer_id = std::string(inner.substr(arrow + 3));
    if (open.peer_id.empty()) return "open slot " + Quote(text) + " names no node";
    node.open_slots.push_back(std::move(open));
    return {};
  }
  SlotRange range;
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    if (!ParseSlot(text, range.first)) return "slot " + Quote(text) + " is not 0-16383";
    range.last = range.first;
  } else {
    if (!ParseSlot(text.substr(0, dash), range.first) ||
        !ParseSlot(text.substr(dash + 1), range.last)) {
      return "slot range " + Quote(text) + " is not within 0-16383";
    }
    if (range.first > range.last) return "slot range " + Quote(text) + " is reversed";
  }
  node.slots.push_back(range);
  return {};
}

}  // namespace

int NodeEntry::SlotCount() const {
  int count = 0;
  for (const auto& r : slots) count += r.last - r.first + 1;
  return count;
}

std::vector<int> NodeEntry::SlotsNotOwned() const {
  std::vector<bool> owned(kSlotCount, false);
  for (const auto& r : slots) {
    for (int s = r.first; s <= r.last; ++s) owned[s] = true;
  }
  std::vector<int> out;
  for (int s = 0; s < kSlotCount; ++s) {
    if (!owned[s]) out.push_back(s);
  }
  return out;
}

Result<std::vector<NodeEntry>> ParseClusterNodes(std::string_view text) {
  std::vector<NodeEntry> nodes;
  LineReader lines(text);
  std::string_view line;
  while (lines.Next(line)) {
    const size_t line_no = lines.number();
    const std::string where = "CLUSTER NODES line " + std::to_string(line_no) + ": ";
    for (char c : line) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) {
        return MakeError(where + "binary byte " + HexByte(u) + "; not CLUSTER NODES output");
      }
    }
    auto fields = SplitFields(line);
    if (fields.empty()) continue;  // the trailing newline, or a blank line
    if (fields.size() < 8) {
      return MakeError(where + "expected at least 8 fields (id addr flags master ping_sent " +
                       "pong_recv config_epoch link_state), got " + std::to_string(fields.size()));
    }
    NodeEntry node;
    node.id = std::string(fields[0]);
    if (auto err = ParseAddress(fields[1], node); !err.empty()) {
      return MakeError(where + "field addr: " + err);
    }
    if (auto err = ParseFlags(fields[2], node); !err.empty()) {
      return MakeError(where + "field flags: " + err);
    }
    if (fields[3] != "-") node.master_id = std::string(fields[3]);
    if (!ParseInt(fields[4], node.ping_sent) || node.ping_sent < 0) {
      return MakeError(where + "field ping_sent: " + Quote(fields[4]) + " is not a number");
    }
    if (!ParseInt(fields[5], node.pong_recv) || node.pong_recv < 0) {
      return MakeError(where + "field pong_recv: " + Quote(fields[5]) + " is not a number");
    }
    if (!ParseInt(fields[6], node.config_epoch)) {
      return MakeError(where + "field config_epoch: " + Quote(fields[6]) + " is not a number");
    }
    if (fields[7] == "connected") {
      node.link_connected = true;
    } else if (fields[7] != "disconnected") {
      return MakeError(where + "field link_state: " + Quote(fields[7]) +
                       " is neither connected nor disconnected");
    }
    for (size_t i = 8; i < fields.size(); ++i) {
      if (auto err = ParseSlotEntry(fields[i], node); !err.empty()) {
        return MakeError(where + "field slot " + std::to_string(i - 7) + ": " + err);
      }
    }
    nodes.push_back(std::move(node));
  }
  if (nodes.empty()) return MakeError("CLUSTER NODES reply is empty");
  return nodes;
}

const NodeEntry* FindMyself(const std::vector<NodeEntry>& nodes) {
  for (const auto& n : nodes) {
    if (n.flags.myself) return &n;
  }
  return nullptr;
}

}  // namespace slotguard::cluster
