#include "agent/http_client.h"

#include <signal.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string_view>

#include "cluster/endpoint.h"
#include "cluster/tls_context.h"
#include "cluster/transport.h"

namespace slotguard::agent {

namespace {

// The status code and body of a whole HTTP/1.1 response read up to the server's close (the
// request says Connection: close). The agent's server always sends Content-Length.
cluster::Result<HttpClientResponse> ParseResponse(const std::string& raw) {
  const size_t head_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos || raw.size() < 12) {
    return cluster::MakeError("not an HTTP response");
  }
  HttpClientResponse response;
  char* end = nullptr;
  response.status = static_cast<int>(std::strtol(raw.c_str() + 9, &end, 10));
  if (end != raw.c_str() + 12 || response.status < 100 || response.status > 599) {
    return cluster::MakeError("not an HTTP status line");
  }
  std::string head = raw.substr(0, head_end);
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
    return cluster::MakeError("a chunked response (not what a slotguard agent sends)");
  }
  response.body = raw.substr(head_end + 4);
  const size_t length_at = head.find("\r\ncontent-length:");
  if (length_at != std::string::npos) {
    const size_t length = std::strtoul(head.c_str() + length_at + 17, nullptr, 10);
    if (response.body.size() < length) return cluster::MakeError("the response was cut short");
    response.body.resize(length);
  }
  return response;
}

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
  });

  std::string rest = base_url;
  bool https = false;
  if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  } else if (rest.rfind("https://", 0) == 0) {
    rest = rest.substr(8);
    https = true;
  } else if (rest.find("://") != std::string::npos) {
    return cluster::MakeError("agent URL " + base_url +
                              ": only http:// and https:// are supported");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  auto endpoint = cluster::ParseEndpoint(rest);
  if (!endpoint) {
    return cluster::MakeError("bad agent URL " + base_url + ": " + endpoint.error().message);
  }
  // The same TLS client as every Redis connection: the certificate is checked against the CA
  // and the URL's host name or address.
  std::shared_ptr<const cluster::TlsContext> context;
  if (https) {
    cluster::TlsSettings settings;
    settings.ca_file = tls.ca_file;
    settings.cert_file = tls.cert_file;
    settings.key_file = tls.cert_file;  // one PEM file holds both
    settings.insecure_skip_verify = tls.ca_file.empty();
    auto created = cluster::TlsContext::Create(settings);
    if (!created) return tl::unexpected(created.error());
    context = *created;
  }
  auto transport = cluster::Transport::Connect(*endpoint, timeout, context.get());
  if (!transport) {
    return cluster::MakeError("cannot reach the agent at " + base_url + " (" +
                              transport.error().message +
                              "); is `slotguard-agent run` running there?");
  }
  std::string request =
      method + " " + path + " HTTP/1.1\r\nHost: " + rest +
      "\r\nConnection: close\r\nContent-Length: " + std::to_string(json_body.size()) + "\r\n";
  if (!json_body.empty()) request += "Content-Type: application/json\r\n";
  if (!bearer_token.empty()) request += "Authorization: Bearer " + bearer_token + "\r\n";
  request += "\r\n" + json_body;
  if (auto t = (*transport)->SetIoTimeout(timeout); !t) return tl::unexpected(t.error());
  if (auto w = (*transport)->Write(request); !w) {
    return cluster::MakeError("cannot send the request to the agent at " + base_url + " (" +
                              w.error().message + ")");
  }
  std::string raw;
  char buffer[8192];
  while (true) {
    auto n = (*transport)->Read(buffer, sizeof(buffer));
    if (!n) break;  // the agent closed the connection: the response is whole (or cut: below)
    raw.append(buffer, *n);
  }
  if (raw.empty()) {
    return cluster::MakeError("no answer from the agent at " + base_url +
                              " (the connection closed, or the agent took longer than " +
                              std::to_string(timeout.count() / 1000) + " s)");
  }
  auto response = ParseResponse(raw);
  if (!response) {
    return cluster::MakeError("bad answer from the agent at " + base_url + ": " +
                              response.error().message);
  }
  return response;
}

}  // namespace slotguard::agent
