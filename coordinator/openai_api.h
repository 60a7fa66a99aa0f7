// The OpenAI-compatible HTTP API's bodies: request JSON -> GenerateRequest, and GenerateResponse
// -> completion JSON (whole, or server-sent-event chunks). Pure: no sockets (STYLE rule 25).
//
// POST /v1/completions takes sieve-run's request object (coordinator/request_parser.h) with
// OpenAI's field names added:
//   prompt       the document: a string (= "document"), an array of token ids (= "document_ids"),
//                or an array holding exactly one of those; giving it with document(_ids) is an
//                error
//   query        required, as in sieve-run (Sieve answers a query over the document; there is no
//                implicit split of the prompt)
//   max_tokens   = max_new_tokens (not both)
//   stop         a string or an array of strings
//   temperature, top_p, seed, stream, model     as in sieve-run
//   n, best_of   must be 1;  echo false;  suffix null/"";  logprobs null/0;
//   presence_penalty, frequency_penalty 0;  logit_bias null/{}   (neutral values only: anything
//                else is rejected with the field named, never silently ignored)
//   user         accepted and ignored;  stream_options {"include_usage": bool}
// POST /v1/chat/completions: "messages" instead of prompt/document/query: the last message must
// come from the user and is the query; the contents of every earlier message (any role, in
// order, joined by a blank line) are the document. Content is a string or an array of
// {"type": "text", "text": ...} parts. max_completion_tokens is another name for max_tokens.
// Unknown fields are rejected by name, as everywhere.
//
// Responses: "text_completion" / "chat.completion" objects with choices[0], usage
// (prompt_tokens = document + query tokens) and a "sieve" member holding sieve-run's response
// object (coordinator/response_json.h: generated_ids, accounting). finish_reason: eos and stop
// strings -> "stop", max_new_tokens -> "length". Streams: "data: {chunk}\n\n" per text piece, a
// final chunk with finish_reason and "sieve", a usage chunk with stream_options.include_usage,
// then "data: [DONE]\n\n"; progress during prefill as SSE comments (": progress 3/8"), which
// OpenAI clients ignore. Errors: {"error": {"message", "type", "param", "code", "status"}}.
//
// Tested by tests/unit/coordinator/openai_api_test.cc, the fuzz target
// tests/fuzz/http_request_fuzz.cc and tests/cli/service_test.sh.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "comm/status.h"
#include "coordinator/request_parser.h"
#include "proto/sieve.pb.h"

namespace sieve::coordinator {

enum class ApiKind { kCompletions, kChat };

struct ApiRequest {
  ApiKind kind = ApiKind::kCompletions;
  proto::GenerateRequest request;  // validated, defaults filled (request_parser.h)
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

StatusOr<ApiRequest> ParseCompletionsRequest(std::string_view body, const RequestLimits& limits);
StatusOr<ApiRequest> ParseChatRequest(std::string_view body, const RequestLimits& limits);

// "eos" / "stop" -> "stop"; "length" -> "length"; anything else as is.
std::string OpenAiFinishReason(const std::string& reason);

// The whole (non-streaming) response body.
std::string CompletionBody(ApiKind kind, const proto::GenerateResponse& response, int64_t created);

// Stream chunks (JSON objects, to be wrapped with SseData).
std::string StreamRoleChunk(const std::string& id, const std::string& model, int64_t created);
std::string StreamTextChunk(ApiKind kind, const std::string& id, const std::string& model,
                            int64_t created, std::string_view text);
std::string StreamFinalChunk(ApiKind kind, const proto::GenerateResponse& response,
                             int64_t created);
std::string StreamUsageChunk(ApiKind kind, const proto::GenerateResponse& response,
                             int64_t created);

// Server-sent-event framing.
std::string SseData(std::string_view json);     // "data: <json>\n\n"
std::string SseComment(std::string_view text);  // ": <text>\n\n" (newlines replaced)
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// GET /v1/models.
std::string ModelsBody(const std::string& model, int64_t created);

// {"error": {"message", "type", "param", "code", "status"[, "request_id"]}}.
std::string ApiErrorBody(const Status& status, const std::string& request_id = "");

}  // namespace sieve::coordinator
