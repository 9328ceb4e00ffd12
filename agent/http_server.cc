#include "agent/http_server.h"

#include <civetweb.h>

#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cluster/endpoint.h"

namespace slotguard::agent {

namespace {

const char* StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 503:
      return "Service Unavailable";
    default:
      return status >= 500 ? "Internal Server Error" : "Error";
  }
}

void InitLibraryOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mg_init_library(0); });
}

}  // namespace

HttpResponse JsonError(int status, const std::string& message) {
  return HttpResponse{status, "application/json", nlohmann::json{{"error", message}}.dump()};
}

void HttpServer::ContextDeleter::operator()(mg_context* context) const { mg_stop(context); }

cluster::Result<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen_address,
                                                               std::vector<HttpRoute> routes,
                                                               int threads) {
  auto endpoint = cluster::ParseEndpoint(listen_address);
  if (!endpoint) {
    return cluster::MakeError("bad listen address '" + listen_address +
                              "': " + endpoint.error().message);
  }
  InitLibraryOnce();
  std::unique_ptr<HttpServer> server(new HttpServer());
  for (auto& route : routes) server->routes_.emplace(route.path, std::move(route));

  // civetweb wants "[::1]:port" for IPv6 and "host:port" otherwise: Endpoint::ToString does both.
  const std::string ports = endpoint->ToString();
  const std::string thread_count = std::to_string(threads);
  const char* options[] = {"listening_ports",
                           ports.c_str(),
                           "num_threads",
                           thread_count.c_str(),
                           "request_timeout_ms",
                           "10000",
                           "enable_keep_alive",
                           "no",
                           nullptr};
  mg_callbacks callbacks{};
  mg_init_data init{&callbacks, server.get(), options};
  unsigned code = 0;
  char text[256] = {0};
  mg_error_data error{&code, text, sizeof(text)};
  mg_context* context = mg_start2(&init, &error);
  if (context == nullptr) {
    return cluster::MakeError("cannot listen on " + ports + ": " + text);
  }
  server->context_.reset(context);
  mg_set_request_handler(context, "/", &HttpServer::Dispatch, server.get());
  mg_server_port port_info[4];
  const int n = mg_get_server_ports(context, 4, port_info);
  if (n > 0) server->port_ = port_info[0].port;
  return server;
}

HttpServer::~HttpServer() = default;

int HttpServer::Dispatch(mg_connection* conn, void* self) {
  HttpResponse response;
  try {
    response = static_cast<HttpServer*>(self)->Handle(conn);
  } catch (const std::exception& e) {
    response = JsonError(500, std::string("internal error: ") + e.what());
  } catch (...) {
    response = JsonError(500, "internal error");
  }
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            response.status, StatusText(response.status), response.content_type.c_str(),
            response.body.size());
  mg_write(conn, response.body.data(), response.body.size());
  return response.status;
}

HttpResponse HttpServer::Handle(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest request;
  request.method = info->request_method ? info->request_method : "";
  request.path = info->local_uri ? info->local_uri : "";
  request.query = info->query_string ? info->query_string : "";
  if (const char* auth = mg_get_header(conn, "Authorization")) request.authorization = auth;
  if (const char* type = mg_get_header(conn, "Content-Type")) request.content_type = type;

  auto [first, last] = routes_.equal_range(request.path);
  if (first == last) return JsonError(404, "no such endpoint: " + request.path);
  const HttpRoute* route = nullptr;
  std::string allowed;
  for (auto it = first; it != last; ++it) {
    if (it->second.method == request.method) route = &it->second;
    allowed += (allowed.empty() ? "" : ", ") + it->second.method;
  }
  if (route == nullptr) return JsonError(405, "use " + allowed + " on " + request.path);

  auto refuse = [route](HttpResponse response) {
    if (route->on_refused) route->on_refused(response);
    return response;
  };
  const std::string too_large =
      "body larger than " + std::to_string(route->max_body_bytes) + " bytes";
  // Refuse oversized bodies before reading them; chunked bodies are cut at the limit + 1.
  if (info->content_length > static_cast<long long>(route->max_body_bytes)) {
    return refuse(JsonError(413, too_large));
  }
  char buffer[8192];
  while (true) {
    const int n = mg_read(conn, buffer, sizeof(buffer));
    if (n <= 0) break;
    request.body.append(buffer, static_cast<size_t>(n));
    if (request.body.size() > route->max_body_bytes) {
      return JsonError(413, "body larger than " + std::to_string(route->max_body_bytes) + " bytes");
    }
  }
  // civetweb's worker threads have small stacks, and handlers may build a ClusterSnapshot
  // (half a megabyte of slot owners) on theirs: run the handler on a thread of the default
  // size. Requests here are rare (control commands, scrapes, alerts), a thread each is cheap.
  HttpResponse response;
  std::exception_ptr error;
  std::thread worker([&] {
    try {
      response = route->handler(request);
    } catch (...) {
      error = std::current_exception();
    }
  });
  worker.join();
  if (error) std::rethrow_exception(error);
  return response;
}

}  // namespace slotguard::agent
