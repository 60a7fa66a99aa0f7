// HTTP routing of the service (see http_router.h).
#include "coordinator/http_router.h"

#include <boost/json.hpp>

#include "coordinator/api_key.h"

namespace sieve::coordinator {
namespace json = boost::json;
namespace {

struct RouteEntry {
  std::string_view path;
  std::string_view method;
  Endpoint endpoint;
};

constexpr RouteEntry kRoutes[] = {
    {"/health", "GET", Endpoint::kHealth},
    {"/metrics", "GET", Endpoint::kMetrics},
    {"/v1/models", "GET", Endpoint::kModels},
    {"/v1/completions", "POST", Endpoint::kCompletions},
    {"/v1/chat/completions", "POST", Endpoint::kChat},
};

std::string_view PathOf(std::string_view target) {
  const size_t q = target.find_first_of("?#");
  return q == std::string_view::npos ? target : target.substr(0, q);
}

std::string Printable(std::string_view s, size_t max) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? static_cast<char>(c) : '?';
  }
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace

HttpReply ErrorReply(const Status& status, const std::string& request_id) {
  HttpReply reply;
  reply.status = HttpStatusFor(status.code());
  reply.body = ApiErrorBody(status, request_id);
  if (status.code() == StatusCode::kUnauthenticated) {
    reply.headers.emplace_back("WWW-Authenticate", "Bearer");
  }
  if (status.code() == StatusCode::kResourceExhausted ||
      status.code() == StatusCode::kUnavailable) {
    reply.headers.emplace_back("Retry-After", "1");
  }
  return reply;
}

std::variant<Endpoint, HttpReply> RouteHead(const HttpHead& head, const RouterContext& context) {
  const std::string_view path = PathOf(head.target);
  const RouteEntry* found = nullptr;
  for (const RouteEntry& r : kRoutes) {
    if (r.path == path) found = &r;
  }
  if (!found) {
    return ErrorReply(Status::NotFound(
        StrFormat("no such endpoint: %s (endpoints: GET /health, /metrics, /v1/models; POST "
                  "/v1/completions, /v1/chat/completions)",
                  Printable(path, 200).c_str())));
  }
  const bool head_ok = head.method == "HEAD" && found->method == "GET";
  if (head.method != found->method && !head_ok) {
    HttpReply reply = ErrorReply(Status(
        StatusCode::kInvalidArgument,
        StrFormat("method %s is not allowed on %s (use %s)", Printable(head.method, 16).c_str(),
                  std::string(found->path).c_str(), std::string(found->method).c_str())));
    reply.status = 405;
    reply.headers.emplace_back("Allow", std::string(found->method));
    return reply;
  }
  if (!context.api_key.empty() && found->endpoint != Endpoint::kHealth) {
    std::string_view presented = head.x_api_key;
    if (auto bearer = BearerToken(head.authorization)) presented = *bearer;
    // Compare even when nothing was presented, so timing says nothing either way.
    const bool match = ConstantTimeEquals(context.api_key, presented);
    if (!match || presented.empty()) {
      return ErrorReply(Status::Unauthenticated(
          presented.empty() ? "missing API key: send \"Authorization: Bearer KEY\""
                            : "invalid API key"));
    }
  }
  if (head.content_length &&
      *head.content_length > static_cast<uint64_t>(context.limits.max_body_bytes)) {
    return ErrorReply(
        Status::PayloadTooLarge(StrFormat("request body of %llu bytes exceeds the limit of %lld",
                                          static_cast<unsigned long long>(*head.content_length),
                                          static_cast<long long>(context.limits.max_body_bytes))));
  }
  return found->endpoint;
}

std::variant<HttpReply, ApiRequest> RouteBody(Endpoint endpoint, std::string_view body,
                                              const RouterContext& context) {
  switch (endpoint) {
    case Endpoint::kHealth: {
      const HealthInfo info = context.health ? context.health() : HealthInfo{};
      HttpReply reply;
      reply.status = info.serving ? 200 : 503;
      reply.body = json::serialize(json::object{{"status", info.serving ? "ok" : "draining"},
                                                {"model", context.model_name},
                                                {"queued", info.stats.queued},
                                                {"in_flight", info.stats.in_flight}});
      return reply;
    }
    case Endpoint::kMetrics: {
      HttpReply reply;
      reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
      reply.body = context.metrics_text ? context.metrics_text() : std::string();
      return reply;
    }
    case Endpoint::kModels: {
      HttpReply reply;
      reply.body = ModelsBody(context.model_name, context.started_unix_s);
      return reply;
    }
    case Endpoint::kCompletions:
    case Endpoint::kChat: {
      auto parsed = endpoint == Endpoint::kChat ? ParseChatRequest(body, context.limits)
                                                : ParseCompletionsRequest(body, context.limits);
      if (!parsed.ok()) return ErrorReply(parsed.status());
      const std::string& model = parsed->request.model();
      if (!model.empty() && model != context.model_name) {
        return ErrorReply(
            Status::NotFound(StrFormat("model: '%s' is not served here (this service runs '%s')",
                                       Printable(model, 200).c_str(), context.model_name.c_str())));
      }
      return std::move(parsed).value();
    }
  }
  return ErrorReply(Status::Internal("unrouted endpoint"));
}

}  // namespace sieve::coordinator
