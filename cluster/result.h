#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace slotguard::cluster {

// An error as a value: what went wrong, phrased for an operator (names the node, file, field).
struct Error {
  std::string message;
};

template <typename T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> MakeError(std::string message) {
  return tl::unexpected<Error>(Error{std::move(message)});
}

}  // namespace slotguard::cluster
