#pragma once

#include <cstddef>
#include <string_view>

namespace slotguard::cluster {

// Walks server text output line by line (LF or CRLF), numbering lines from 1 so parse errors
// can name them. A final line without a terminator is still a line.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}

  // The next line without its terminator; false at the end of the text.
  bool Next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    ++number_;
    size_t nl = text_.find('\n', pos_);
    line = nl == std::string_view::npos ? text_.substr(pos_) : text_.substr(pos_, nl - pos_);
    pos_ = nl == std::string_view::npos ? text_.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return true;
  }

  size_t number() const { return number_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  size_t number_ = 0;
};

}  // namespace slotguard::cluster
