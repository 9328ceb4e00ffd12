#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace slotguard::common {

// An error as a value: what went wrong, phrased for an operator (names the node, file, field).
// The project's one error type; cluster::Result is this same type under its old name.
struct Error {
  std::string message;
};

template <typename T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> MakeError(std::string message) {
  return tl::unexpected<Error>(Error{std::move(message)});
}

}  // namespace slotguard::common
