#include "agent/plan_file.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "cluster/nodes.h"
#include "common/yaml_reader.h"

namespace slotguard::agent {

namespace {

using common::YamlFieldError;
using common::YamlReader;

bool ParseSlotNumber(std::string_view text, int& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && !text.empty();
}

bool ValidId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

class PlanParser {
 public:
  PlanParser(std::string file, int max_batch_slots)
      : reader_(std::move(file)), max_batch_slots_(max_batch_slots) {}

  PlanFile Parse(const std::string& text) {
    PlanFile plan;
    plan.file = reader_.file();
    const YAML::Node root = reader_.Parse(text);
    if (!root.IsDefined() || root.IsNull()) {
      throw YamlFieldError(reader_.file() + ": the plan is empty (expected `batches:`)");
    }
    reader_.ExpectMap(root, "", {"batches"});
    const YAML::Node batches = root["batches"];
    if (!batches) reader_.Fail(root, "batches", "required key is missing");
    reader_.ExpectSequence(batches, "batches");
    if (batches.size() == 0) reader_.Fail(batches, "batches", "the plan has no batches");
    // slot -> (batch path, line) of the batch that names it, to report overlaps precisely.
    std::map<int, std::pair<std::string, int>> owner;
    std::set<std::string> ids;
    for (size_t i = 0; i < batches.size(); ++i) {
      plan.batches.push_back(ParseBatch(batches[i], static_cast<int>(i), owner, ids));
    }
    return plan;
  }

 private:
  PlanFileBatch ParseBatch(const YAML::Node& n, int index,
                           std::map<int, std::pair<std::string, int>>& owner,
                           std::set<std::string>& ids) {
    const std::string path = "batches[" + std::to_string(index) + "]";
    reader_.ExpectMap(n, path, {"id", "from", "to", "slots", "ranges", "guards"});
    PlanFileBatch out;
    out.index = index;
    out.line = static_cast<int>(n.Mark().line) + 1;
    if (n["id"]) {
      out.batch.id = reader_.String(n["id"], path + ".id");
      if (!ValidId(out.batch.id)) {
        reader_.Fail(n["id"], path + ".id",
                     "'" + out.batch.id +
                         "' is not a valid id (letters, digits, '.', '_', '-'; at most 64)");
      }
      if (!ids.insert(out.batch.id).second) {
        reader_.Fail(n["id"], path + ".id", "'" + out.batch.id + "' is used by another batch");
      }
    }
    if (!n["from"]) reader_.Fail(n, path + ".from", "required key is missing");
    if (!n["to"]) reader_.Fail(n, path + ".to", "required key is missing");
    out.batch.from = reader_.NonEmptyString(n["from"], path + ".from");
    out.batch.to = reader_.NonEmptyString(n["to"], path + ".to");
    if (out.batch.from == out.batch.to) {
      reader_.Fail(n["to"], path + ".to", "is the same node as `from` (" + out.batch.from + ")");
    }
    const bool has_slots = static_cast<bool>(n["slots"]);
    const bool has_ranges = static_cast<bool>(n["ranges"]);
    if (has_slots == has_ranges) {
      reader_.Fail(n, path, "give exactly one of `slots: N` or `ranges: [...]`");
    }
    if (has_slots) {
      out.slot_count = static_cast<int>(reader_.Int(n["slots"], path + ".slots", 1, 16384));
      if (*out.slot_count > max_batch_slots_) {
        reader_.Fail(n["slots"], path + ".slots",
                     std::to_string(*out.slot_count) + " slots in one batch; at most " +
                         std::to_string(max_batch_slots_) + " (split it into several batches)");
      }
    } else {
      const YAML::Node& ranges = n["ranges"];
      reader_.ExpectSequence(ranges, path + ".ranges");
      if (ranges.size() == 0) reader_.Fail(ranges, path + ".ranges", "names no slots");
      std::set<int> mine;
      for (size_t r = 0; r < ranges.size(); ++r) {
        const std::string rpath = path + ".ranges[" + std::to_string(r) + "]";
        const std::string text = reader_.String(ranges[r], rpath);
        int first = 0, last = 0;
        const auto dash = text.find('-');
        const bool ok = dash == std::string::npos
                            ? ParseSlotNumber(text, first) && ParseSlotNumber(text, last)
                            : ParseSlotNumber(std::string_view(text).substr(0, dash), first) &&
                                  ParseSlotNumber(std::string_view(text).substr(dash + 1), last);
        if (!ok) {
          reader_.Fail(ranges[r], rpath, "expected a slot N or a range A-B, got '" + text + "'");
        }
        for (int s : {first, last}) {
          if (s < 0 || s >= cluster::kSlotCount) {
            reader_.Fail(ranges[r], rpath,
                         "slot " + std::to_string(s) + " is out of range (0..16383)");
          }
        }
        if (first > last) {
          reader_.Fail(ranges[r], rpath,
                       "range " + text + " is reversed (write " + std::to_string(last) + "-" +
                           std::to_string(first) + ")");
        }
        for (int s = first; s <= last; ++s) {
          if (!mine.insert(s).second) {
            reader_.Fail(ranges[r], rpath, "slot " + std::to_string(s) + " is named twice");
          }
          auto it = owner.find(s);
          if (it != owner.end()) {
            reader_.Fail(ranges[r], rpath,
                         "slot " + std::to_string(s) + " is also in " + it->second.first +
                             " (line " + std::to_string(it->second.second) + "): batches overlap");
          }
        }
        if (static_cast<int>(mine.size()) > max_batch_slots_) {
          reader_.Fail(ranges[r], path + ".ranges",
                       "more than " + std::to_string(max_batch_slots_) +
                           " slots in one batch (split it into several batches)");
        }
      }
      for (int s : mine) owner[s] = {path, out.line};
      out.batch.slots.assign(mine.begin(), mine.end());
    }
    if (n["guards"]) {
      const YAML::Node& g = n["guards"];
      const std::string gpath = path + ".guards";
      reader_.ExpectMap(g, gpath, {"coverage_grace", "migrate_failures", "convergence_timeout"});
      out.batch.guards = ReadGuardOverrides(reader_, g, gpath);
    }
    return out;
  }

  YamlReader reader_;
  int max_batch_slots_;
};

}  // namespace

cluster::Result<PlanFile> ParsePlanFile(const std::string& text, const std::string& file,
                                        int max_batch_slots) {
  try {
    return PlanParser(file, max_batch_slots).Parse(text);
  } catch (const YamlFieldError& e) {
    return cluster::MakeError(e.what());
  } catch (const YAML::Exception& e) {
    return cluster::MakeError(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

cluster::Result<PlanFile> LoadPlanFile(const std::string& path, int max_batch_slots) {
  std::ifstream in(path);
  if (!in) return cluster::MakeError("cannot read " + path + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  return ParsePlanFile(text.str(), path, max_batch_slots);
}

cluster::Result<Plan> ResolvePlanFile(const PlanFile& plan, const ClusterSnapshot& snapshot) {
  std::set<int> named;
  for (const auto& b : plan.batches) named.insert(b.batch.slots.begin(), b.batch.slots.end());
  Plan out;
  for (const auto& b : plan.batches) {
    Batch batch = b.batch;
    if (b.slot_count) {
      const std::string where = plan.file + ":" + std::to_string(b.line) + ": batches[" +
                                std::to_string(b.index) + "].slots: ";
      const cluster::NodeEntry* source = snapshot.FindNode(batch.from);
      if (source == nullptr) {
        return cluster::MakeError(where + "unknown node '" + batch.from +
                                  "' (give a node id or host:port as CLUSTER NODES shows it)");
      }
      for (int s = 0;
           s < cluster::kSlotCount && static_cast<int>(batch.slots.size()) < *b.slot_count; ++s) {
        if (snapshot.judgement.Owner(s) == source->id && !named.count(s)) {
          batch.slots.push_back(s);
        }
      }
      if (static_cast<int>(batch.slots.size()) < *b.slot_count) {
        return cluster::MakeError(
            where + "node " + batch.from + " has only " + std::to_string(batch.slots.size()) +
            " slots not named by other batches; " + std::to_string(*b.slot_count) + " asked");
      }
      named.insert(batch.slots.begin(), batch.slots.end());
    }
    out.batches.push_back(std::move(batch));
  }
  return out;
}

}  // namespace slotguard::agent

namespace slotguard::agent {

std::string FormatPlanFile(const Plan& plan, const std::string& header,
                           const std::function<std::string(const std::string&)>& describe) {
  std::string out = "# " + header + "\nbatches:\n";
  auto node = [&](const std::string& id) {
    const std::string what = describe(id);
    return id + (what.empty() ? "" : "  # " + what) + "\n";
  };
  for (const auto& b : plan.batches) {
    out += "  - id: " + b.id + "\n    from: " + node(b.from) + "    to: " + node(b.to) +
           "    ranges: [";
    for (size_t i = 0; i < b.slots.size();) {
      size_t j = i;
      while (j + 1 < b.slots.size() && b.slots[j + 1] == b.slots[j] + 1) ++j;
      out += (i ? ", \"" : "\"") + std::to_string(b.slots[i]) +
             (j > i ? "-" + std::to_string(b.slots[j]) : "") + "\"";
      i = j + 1;
    }
    out += "]\n";
  }
  return out;
}

}  // namespace slotguard::agent
