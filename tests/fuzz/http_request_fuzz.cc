// libFuzzer target: the HTTP front end's parsing, everything a client's bytes reach before the
// engine. The first input byte picks the entry point, the rest is the input:
//   0  sieve-run's JSON request parser (coordinator/request_parser.h)
//   1  POST /v1/completions body (coordinator/openai_api.h)
//   2  POST /v1/chat/completions body
//   3+ raw HTTP/1.1 bytes through Beast's request parser (the server's limits, fed in pieces the
//      input chooses) and the router (coordinator/http_router.h), head then body
// Invariant checked on every accepted request: the protobuf validator (coordinator/
// proto_request.h) accepts it unchanged, so both front ends mean the same by a request; and the
// response renderers take it (error bodies for every rejection).
//
//   build/fuzz/sieve-fuzz-http -max_total_time=60 build/fuzz/corpus-http tests/fuzz/corpus/http
// Run by tests/fuzz/run_fuzz.sh (CTest label fuzz).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/beast/http.hpp>

#include "coordinator/beast_head.h"
#include "coordinator/http_router.h"
#include "coordinator/openai_api.h"
#include "coordinator/proto_request.h"
#include "coordinator/request_parser.h"

namespace {

using namespace sieve;
using namespace sieve::coordinator;
namespace http = boost::beast::http;

RequestLimits Limits() {
  RequestLimits l;
  l.max_body_bytes = 1 << 16;
  l.max_document_bytes = 1 << 14;
  l.max_document_ids = 1 << 12;
  l.max_new_tokens = 4096;
  return l;
}

[[noreturn]] void Broken(const char* what, const proto::GenerateRequest& r, const Status& s) {
  std::fprintf(stderr, "invariant broken: %s: %s\n%s\n", what, s.ToString().c_str(),
               r.DebugString().c_str());
  std::abort();
}

void CheckAccepted(const proto::GenerateRequest& request, const RequestLimits& limits) {
  proto::GenerateRequest copy = request;
  const Status s = ValidateGenerateRequest(&copy, limits);
  if (!s.ok()) Broken("the protobuf validator rejects what the JSON parser accepted", request, s);
  if (copy.SerializeAsString() != request.SerializeAsString()) {
    Broken("the protobuf validator changed an accepted request", request, s);
  }
}

void CheckRejected(const Status& s) {
  if (s.ok()) std::abort();
  if (s.message().empty()) std::abort();  // every error says what was wrong
  (void)ApiErrorBody(s, "id");
}

void Check(const StatusOr<ApiRequest>& r, const RequestLimits& limits) {
  if (r.ok()) {
    CheckAccepted(r->request, limits);
  } else {
    CheckRejected(r.status());
  }
}

RouterContext Context() {
  RouterContext c;
  c.model_name = "tiny-llama3";
  c.api_key = "fuzz-key";
  c.limits = Limits();
  c.health = [] { return HealthInfo{}; };
  c.metrics_text = [] { return std::string("sieve_queue_depth 0\n"); };
  return c;
}

void FuzzHttp(std::string_view bytes) {
  static const RouterContext context = Context();
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(static_cast<uint64_t>(context.limits.max_body_bytes));
  parser.eager(true);
  // Feed in pieces whose sizes come from the input itself, as a socket would deliver them.
  size_t pos = 0;
  size_t piece = bytes.empty() ? 1 : (static_cast<unsigned char>(bytes[0]) % 64) + 1;
  std::string pending;
  bool head_done = false;
  Endpoint endpoint = Endpoint::kHealth;
  while (pos < bytes.size()) {
    pending.append(bytes.substr(pos, piece));
    pos += piece;
    boost::system::error_code ec;
    const size_t used = parser.put(boost::asio::buffer(pending), ec);
    pending.erase(0, used);
    if (ec == http::error::need_more) continue;
    if (ec) return;  // the server answers 400/413/431 and closes
    if (!head_done && parser.is_header_done()) {
      head_done = true;
      const HttpHead head = HeadOf(parser);
      auto routed = RouteHead(head, context);
      if (std::holds_alternative<HttpReply>(routed)) return;
      endpoint = std::get<Endpoint>(routed);
    }
    if (parser.is_done()) {
      auto result = RouteBody(endpoint, parser.get().body(), context);
      if (auto* api = std::get_if<ApiRequest>(&result)) CheckAccepted(api->request, context.limits);
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const RequestLimits limits = Limits();
  switch (data[0] % 4) {
    case 0: {
      auto r = ParseGenerateRequest(input, limits);
      if (r.ok()) {
        CheckAccepted(*r, limits);
      } else {
        CheckRejected(r.status());
      }
      break;
    }
    case 1:
      Check(ParseCompletionsRequest(input, limits), limits);
      break;
    case 2:
      Check(ParseChatRequest(input, limits), limits);
      break;
    default:
      FuzzHttp(input);
      break;
  }
  return 0;
}
