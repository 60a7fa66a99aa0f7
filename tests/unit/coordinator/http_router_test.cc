// Tests of coordinator/http_router.{h,cc}: HTTP routing without a socket.
//
// Unknown paths (404) and methods (405 with Allow), the API key (401 without or with a wrong key,
// by Bearer or x-api-key; /health needs none), a Content-Length over the limit (413) before the
// body is read, /health (200, 503 while draining), /metrics, /v1/models, a body that fails to
// parse, an unknown model name (404), and a good request handed on for the engine.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='HttpRouter*'
#include "coordinator/http_router.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace sieve::coordinator {
namespace {

namespace json = boost::json;

RouterContext Context(std::string key = "") {
  RouterContext c;
  c.model_name = "tiny";
  c.api_key = std::move(key);
  c.limits.max_body_bytes = 1000;
  c.health = [] { return HealthInfo{.serving = true, .stats = {.queued = 2, .in_flight = 1}}; };
  c.metrics_text = [] { return std::string("sieve_queue_depth 2\n"); };
  return c;
}

HttpReply HeadReply(const HttpHead& head, const RouterContext& c) {
  auto r = RouteHead(head, c);
  EXPECT_TRUE(std::holds_alternative<HttpReply>(r));
  return std::holds_alternative<HttpReply>(r) ? std::get<HttpReply>(r) : HttpReply{};
}

Endpoint HeadEndpoint(const HttpHead& head, const RouterContext& c) {
  auto r = RouteHead(head, c);
  EXPECT_TRUE(std::holds_alternative<Endpoint>(r))
      << (std::holds_alternative<HttpReply>(r) ? std::get<HttpReply>(r).body : "");
  return std::holds_alternative<Endpoint>(r) ? std::get<Endpoint>(r) : Endpoint::kHealth;
}

std::string Header(const HttpReply& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(HttpRouterTest, PathsAndMethods) {
  const RouterContext c = Context();
  EXPECT_EQ(HeadEndpoint({.method = "GET", .target = "/health"}, c), Endpoint::kHealth);
  EXPECT_EQ(HeadEndpoint({.method = "HEAD", .target = "/health"}, c), Endpoint::kHealth);
  EXPECT_EQ(HeadEndpoint({.method = "GET", .target = "/metrics?x=1"}, c), Endpoint::kMetrics);
  EXPECT_EQ(HeadEndpoint({.method = "GET", .target = "/v1/models"}, c), Endpoint::kModels);
  EXPECT_EQ(HeadEndpoint({.method = "POST", .target = "/v1/completions"}, c),
            Endpoint::kCompletions);
  EXPECT_EQ(HeadEndpoint({.method = "POST", .target = "/v1/chat/completions"}, c), Endpoint::kChat);
  HttpReply missing = HeadReply({.method = "GET", .target = "/v2/nothing"}, c);
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("no such endpoint: /v2/nothing"), std::string::npos);
  HttpReply wrong = HeadReply({.method = "GET", .target = "/v1/completions"}, c);
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(Header(wrong, "Allow"), "POST");
  EXPECT_EQ(HeadReply({.method = "DELETE", .target = "/health"}, c).status, 405);
}

TEST(HttpRouterTest, ApiKey) {
  const RouterContext c = Context("k3y");
  HttpReply none = HeadReply({.method = "POST", .target = "/v1/completions"}, c);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(Header(none, "WWW-Authenticate"), "Bearer");
  EXPECT_NE(none.body.find("missing API key"), std::string::npos);
  HttpReply bad =
      HeadReply({.method = "GET", .target = "/v1/models", .authorization = "Bearer k3z"}, c);
  EXPECT_EQ(bad.status, 401);
  EXPECT_NE(bad.body.find("invalid API key"), std::string::npos);
  EXPECT_EQ(HeadReply({.method = "GET", .target = "/metrics", .authorization = "k3y"}, c).status,
            401);
  EXPECT_EQ(
      HeadEndpoint({.method = "GET", .target = "/v1/models", .authorization = "Bearer k3y"}, c),
      Endpoint::kModels);
  EXPECT_EQ(HeadEndpoint({.method = "GET", .target = "/metrics", .x_api_key = "k3y"}, c),
            Endpoint::kMetrics);
  EXPECT_EQ(HeadEndpoint({.method = "GET", .target = "/health"}, c), Endpoint::kHealth);
}

TEST(HttpRouterTest, BodyLimitBeforeTheBody) {
  const RouterContext c = Context();
  HttpReply big = HeadReply(
      {.method = "POST", .target = "/v1/completions", .content_length = uint64_t{1001}}, c);
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("1001 bytes exceeds the limit of 1000"), std::string::npos);
  EXPECT_EQ(
      HeadEndpoint(
          {.method = "POST", .target = "/v1/completions", .content_length = uint64_t{1000}}, c),
      Endpoint::kCompletions);
}

TEST(HttpRouterTest, GetEndpoints) {
  RouterContext c = Context();
  auto health = std::get<HttpReply>(RouteBody(Endpoint::kHealth, "", c));
  EXPECT_EQ(health.status, 200);
  json::object h = json::parse(health.body).as_object();
  EXPECT_EQ(h.at("status"), "ok");
  EXPECT_EQ(h.at("queued"), 2);
  c.health = [] { return HealthInfo{.serving = false}; };
  auto draining = std::get<HttpReply>(RouteBody(Endpoint::kHealth, "", c));
  EXPECT_EQ(draining.status, 503);
  EXPECT_NE(draining.body.find("draining"), std::string::npos);
  auto metrics = std::get<HttpReply>(RouteBody(Endpoint::kMetrics, "", c));
  EXPECT_EQ(metrics.body, "sieve_queue_depth 2\n");
  EXPECT_EQ(metrics.content_type.rfind("text/plain", 0), 0u);
  auto models = std::get<HttpReply>(RouteBody(Endpoint::kModels, "", c));
  EXPECT_NE(models.body.find("\"id\":\"tiny\""), std::string::npos);
}

TEST(HttpRouterTest, GenerateBodies) {
  const RouterContext c = Context();
  auto ok =
      RouteBody(Endpoint::kCompletions, R"({"prompt": "d", "query": "q", "model": "tiny"})", c);
  ASSERT_TRUE(std::holds_alternative<ApiRequest>(ok));
  EXPECT_EQ(std::get<ApiRequest>(ok).request.document_text(), "d");
  auto model =
      RouteBody(Endpoint::kCompletions, R"({"prompt": "d", "query": "q", "model": "gpt-9"})", c);
  ASSERT_TRUE(std::holds_alternative<HttpReply>(model));
  EXPECT_EQ(std::get<HttpReply>(model).status, 404);
  EXPECT_NE(std::get<HttpReply>(model).body.find("'gpt-9' is not served here"), std::string::npos);
  auto bad = RouteBody(Endpoint::kChat, R"({"messages": 1})", c);
  ASSERT_TRUE(std::holds_alternative<HttpReply>(bad));
  EXPECT_EQ(std::get<HttpReply>(bad).status, 400);
  auto unknown =
      RouteBody(Endpoint::kCompletions, R"({"prompt": "d", "query": "q", "frobnicate": 1})", c);
  EXPECT_NE(std::get<HttpReply>(unknown).body.find("unknown field 'frobnicate'"),
            std::string::npos);
  HttpReply limited = ErrorReply(Status::ResourceExhausted("full"));
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(Header(limited, "Retry-After"), "1");
}

}  // namespace
}  // namespace sieve::coordinator
