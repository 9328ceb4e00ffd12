#pragma once

#include <chrono>
#include <string>

#include "cluster/result.h"

namespace slotguard::agent {

struct HttpClientResponse {
  int status = 0;
  std::string body;
};

// For an https:// agent (its web config turns on TLS).
struct HttpClientTls {
  // Verifies the agent's certificate: signed by this CA and naming the URL's host (a DNS name
  // or IP address in its subjectAltName). "" = not verified.
  std::string ca_file;
  std::string cert_file;  // client certificate and its key in one PEM file; "" = none
};

// A minimal HTTP/1.1 client for the control CLI, over the Redis connections' transport (one TLS
// client in the project). `base_url` is
// "http://host:port" or "https://host:port".
// Fails only when the daemon cannot be reached or answers garbage; HTTP errors are a status.
cluster::Result<HttpClientResponse> HttpRequestTo(
    const std::string& base_url, const std::string& method, const std::string& path,
    const std::string& bearer_token, const std::string& json_body,
    std::chrono::milliseconds timeout, const HttpClientTls& tls = {});

}  // namespace slotguard::agent
