#pragma once

#include <chrono>
#include <string>

#include "cluster/result.h"

namespace slotguard::agent {

struct HttpClientResponse {
  int status = 0;
  std::string body;
};

// A minimal HTTP/1.1 client (civetweb's) for the control CLI. `base_url` is
// "http://host:port" (no TLS: the agent listens on loopback or behind a proxy).
// Fails only when the daemon cannot be reached or answers garbage; HTTP errors are a status.
cluster::Result<HttpClientResponse> HttpRequestTo(const std::string& base_url,
                                                  const std::string& method,
                                                  const std::string& path,
                                                  const std::string& bearer_token,
                                                  const std::string& json_body,
                                                  std::chrono::milliseconds timeout);

}  // namespace slotguard::agent
