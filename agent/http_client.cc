#include "agent/http_client.h"

#include <civetweb.h>
#include <signal.h>

#include <memory>
#include <mutex>

#include "cluster/endpoint.h"

namespace slotguard::agent {

namespace {

struct ConnectionCloser {
  void operator()(mg_connection* conn) const { mg_close_connection(conn); }
};

}  // namespace

cluster::Result<HttpClientResponse> HttpRequestTo(
    const std::string& base_url, const std::string& method, const std::string& path,
    const std::string& bearer_token, const std::string& json_body,
    std::chrono::milliseconds timeout, const HttpClientTls& tls) {
  static std::once_flag once;
  std::call_once(once, [] {
    // An agent that refuses the TLS handshake (no client certificate) closes the socket under
    // our write: that is an error to report, not a reason to die of SIGPIPE.
    signal(SIGPIPE, SIG_IGN);
    mg_init_library(0);
  });

  std::string rest = base_url;
  bool https = false;
  if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  } else if (rest.rfind("https://", 0) == 0) {
    rest = rest.substr(8);
    https = true;
    static std::once_flag tls_once;
    std::call_once(tls_once, [] { mg_init_library(MG_FEATURES_TLS); });
  } else if (rest.find("://") != std::string::npos) {
    return cluster::MakeError("agent URL " + base_url +
                              ": only http:// and https:// are supported");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  auto endpoint = cluster::ParseEndpoint(rest);
  if (!endpoint) {
    return cluster::MakeError("bad agent URL " + base_url + ": " + endpoint.error().message);
  }
  std::string host = endpoint->host;
  char error[256] = {0};
  std::unique_ptr<mg_connection, ConnectionCloser> conn;
  if (https) {
    mg_client_options options{};
    options.host = host.c_str();
    options.port = endpoint->port;
    options.client_cert = tls.cert_file.empty() ? nullptr : tls.cert_file.c_str();
    options.server_cert = tls.ca_file.empty() ? nullptr : tls.ca_file.c_str();
    options.host_name = host.c_str();
    conn.reset(mg_connect_client_secure(&options, error, sizeof(error)));
  } else {
    conn.reset(mg_connect_client(host.c_str(), endpoint->port, 0, error, sizeof(error)));
  }
  if (!conn) {
    return cluster::MakeError("cannot reach the agent at " + base_url + " (" + error +
                              "); is `slotguard-agent run` running there?");
  }
  std::string head =
      method + " " + path + " HTTP/1.1\r\nHost: " + rest +
      "\r\nConnection: close\r\nContent-Length: " + std::to_string(json_body.size()) + "\r\n";
  if (!json_body.empty()) head += "Content-Type: application/json\r\n";
  if (!bearer_token.empty()) head += "Authorization: Bearer " + bearer_token + "\r\n";
  head += "\r\n";
  if (mg_write(conn.get(), head.data(), head.size()) <= 0 ||
      (!json_body.empty() && mg_write(conn.get(), json_body.data(), json_body.size()) <= 0)) {
    return cluster::MakeError("cannot send the request to the agent at " + base_url);
  }
  if (mg_get_response(conn.get(), error, sizeof(error), static_cast<int>(timeout.count())) < 0) {
    return cluster::MakeError("no answer from the agent at " + base_url + " (" + error + ")");
  }
  HttpClientResponse response;
  response.status = mg_get_response_info(conn.get())->status_code;
  char buffer[8192];
  while (true) {
    const int n = mg_read(conn.get(), buffer, sizeof(buffer));
    if (n <= 0) break;
    response.body.append(buffer, static_cast<size_t>(n));
  }
  return response;
}

}  // namespace slotguard::agent
