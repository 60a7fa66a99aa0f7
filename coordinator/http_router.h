// The HTTP API's routing: request line + headers + body -> a reply, or a request for the engine.
// Pure: no sockets (STYLE rule 25); coordinator/http_server.h owns the connections.
//
//   GET  /health               200 {"status": "ok", ...}; 503 {"status": "draining"} on shutdown
//   GET  /metrics              Prometheus text (coordinator/metrics.h)
//   GET  /v1/models            the served model
//   POST /v1/completions       coordinator/openai_api.h
//   POST /v1/chat/completions  coordinator/openai_api.h
// Other paths 404, other methods 405 (with Allow). With an API key configured, every endpoint
// but /health needs "Authorization: Bearer KEY" (or "x-api-key: KEY"), else 401 before the body
// is read. A Content-Length over the body limit is 413 before the body is read.
//
// Tested by tests/unit/coordinator/http_router_test.cc, the fuzz target
// tests/fuzz/http_request_fuzz.cc and tests/cli/service_test.sh.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "comm/status.h"
#include "coordinator/engine.h"
#include "coordinator/openai_api.h"
#include "coordinator/request_parser.h"

namespace sieve::coordinator {

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
};

enum class Endpoint { kHealth, kMetrics, kModels, kCompletions, kChat };

struct HttpHead {
  std::string_view method;
  std::string_view target;         // path, optionally with ?query
  std::string_view authorization;  // "" when absent
  std::string_view x_api_key;      // "" when absent
  std::optional<uint64_t> content_length;
};

struct HealthInfo {
  bool serving = true;  // false once shutdown began
  EngineStats stats;
};

// What routing needs from the service. The callbacks are called on the routing thread.
struct RouterContext {
  std::string model_name;
  std::string api_key;  // empty: no key needed
  RequestLimits limits;
  int64_t started_unix_s = 0;                 // "created" of /v1/models
  std::function<HealthInfo()> health;         // may be null (always serving)
  std::function<std::string()> metrics_text;  // may be null (empty text)
};

// Before the body: the endpoint, or the reply that ends the exchange (404, 405, 401, 413).
std::variant<Endpoint, HttpReply> RouteHead(const HttpHead& head, const RouterContext& context);

// After the body: a reply (GET endpoints, bad requests) or the request to run.
std::variant<HttpReply, ApiRequest> RouteBody(Endpoint endpoint, std::string_view body,
                                              const RouterContext& context);

// The JSON error reply for `status` (HttpStatusFor gives the code).
HttpReply ErrorReply(const Status& status, const std::string& request_id = "");

}  // namespace sieve::coordinator
