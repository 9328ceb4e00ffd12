#pragma once

#include "common/error.h"

namespace slotguard::cluster {

// The cluster library reports errors with the project's common error type; these names keep
// its signatures short and let callers mix cluster and common results freely.
using Error = common::Error;
template <typename T>
using Result = common::Result<T>;
using common::MakeError;

}  // namespace slotguard::cluster
