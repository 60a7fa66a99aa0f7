// Tests of coordinator/openai_api.{h,cc}: the OpenAI-compatible request mapping and responses.
//
// /v1/completions: prompt as a string, token ids, or a one-element array; max_tokens; stop as a
// string; the neutral OpenAI fields accepted and non-neutral ones refused by name; sieve-run
// fields as they are; conflicts (prompt + document, max_tokens + max_new_tokens); a missing
// query; unknown fields named; errors reported under the client's field names.
// /v1/chat/completions: the last user message is the query and the earlier ones the document
// (joined by a blank line, text parts concatenated); the errors of each malformed message.
// Responses: the completion and chat bodies, stream chunks, SSE framing, models, error bodies.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='OpenAiApi*'
#include "coordinator/openai_api.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>

namespace sieve::coordinator {
namespace {

namespace json = boost::json;

ApiRequest CompletionsOk(std::string_view body) {
  auto r = ParseCompletionsRequest(body, {});
  EXPECT_TRUE(r.ok()) << body << " -> " << r.status().ToString();
  return r.ok() ? *r : ApiRequest{};
}

ApiRequest ChatOk(std::string_view body) {
  auto r = ParseChatRequest(body, {});
  EXPECT_TRUE(r.ok()) << body << " -> " << r.status().ToString();
  return r.ok() ? *r : ApiRequest{};
}

void ExpectError(const StatusOr<ApiRequest>& r, StatusCode code, std::string_view fragment) {
  ASSERT_FALSE(r.ok()) << "accepted";
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find(fragment), std::string::npos)
      << r.status().message() << "\n  does not contain: " << fragment;
}

void CompletionsError(std::string_view body, StatusCode code, std::string_view fragment,
                      const RequestLimits& limits = {}) {
  SCOPED_TRACE(std::string(body));
  ExpectError(ParseCompletionsRequest(body, limits), code, fragment);
}

void ChatError(std::string_view body, StatusCode code, std::string_view fragment) {
  SCOPED_TRACE(std::string(body));
  ExpectError(ParseChatRequest(body, {}), code, fragment);
}

TEST(OpenAiApiTest, CompletionsPromptIsTheDocument) {
  ApiRequest a = CompletionsOk(R"({"model": "m", "prompt": "the doc", "query": "q?",
      "max_tokens": 7, "stop": "\n", "temperature": 0.5, "top_p": 0.9, "seed": 3,
      "stream": true, "n": 1, "user": "u", "echo": false, "best_of": 1, "suffix": null,
      "logprobs": null, "presence_penalty": 0, "frequency_penalty": 0.0, "logit_bias": {},
      "stream_options": {"include_usage": true}})");
  EXPECT_EQ(a.kind, ApiKind::kCompletions);
  EXPECT_EQ(a.request.document_text(), "the doc");
  EXPECT_EQ(a.request.query_text(), "q?");
  EXPECT_EQ(a.request.model(), "m");
  EXPECT_EQ(a.request.max_new_tokens(), 7);
  ASSERT_EQ(a.request.stop_size(), 1);
  EXPECT_EQ(a.request.stop(0), "\n");
  EXPECT_FLOAT_EQ(a.request.temperature(), 0.5f);
  EXPECT_FLOAT_EQ(a.request.top_p(), 0.9f);
  EXPECT_EQ(a.request.seed(), 3u);
  EXPECT_TRUE(a.stream);
  EXPECT_TRUE(a.include_usage);
  // Defaults as sieve-run fills them.
  EXPECT_EQ(a.request.sieve().keep_chunks(), 3);
}

TEST(OpenAiApiTest, CompletionsPromptForms) {
  EXPECT_EQ(
      CompletionsOk(R"({"prompt": [1, 2, 3], "query": "q"})").request.document_ids().ids_size(), 3);
  EXPECT_EQ(CompletionsOk(R"({"prompt": ["one"], "query": "q"})").request.document_text(), "one");
  EXPECT_EQ(CompletionsOk(R"({"prompt": [[5, 6]], "query": "q"})").request.document_ids().ids(1),
            6);
  // sieve-run's own fields as they are.
  ApiRequest a = CompletionsOk(
      R"({"document_ids": [4, 5], "query_ids": [6], "max_new_tokens": 2, "sieve": {"mode": "full"}})");
  EXPECT_EQ(a.request.document_ids().ids_size(), 2);
  EXPECT_EQ(a.request.sieve().mode(), proto::PREFILL_MODE_FULL);
  EXPECT_FALSE(a.stream);
}

TEST(OpenAiApiTest, CompletionsErrorsNameTheField) {
  CompletionsError(R"({"prompt": "d"})", StatusCode::kInvalidArgument, "query: required");
  CompletionsError(R"({"query": "q"})", StatusCode::kInvalidArgument, "document: required");
  CompletionsError(R"({"prompt": "", "query": "q"})", StatusCode::kInvalidArgument,
                   "prompt: empty");
  CompletionsError(R"({"prompt": [], "query": "q"})", StatusCode::kInvalidArgument,
                   "prompt: empty");
  CompletionsError(R"({"prompt": ["a", "b"], "query": "q"})", StatusCode::kInvalidArgument,
                   "prompt: one prompt per request");
  CompletionsError(R"({"prompt": 5, "query": "q"})", StatusCode::kInvalidArgument,
                   "prompt: expected a string or an array of token ids");
  CompletionsError(R"({"prompt": [1, -2], "query": "q"})", StatusCode::kInvalidArgument,
                   "prompt[1]: token id must be in [0, 2^31)");
  CompletionsError(R"({"prompt": [1, "x"], "query": "q"})", StatusCode::kInvalidArgument,
                   "prompt[1]: expected an integer token id");
  CompletionsError(R"({"prompt": "d", "document": "e", "query": "q"})",
                   StatusCode::kInvalidArgument, "prompt, document: give one of them");
  CompletionsError(R"({"prompt": "d", "query": "q", "max_tokens": 0})",
                   StatusCode::kInvalidArgument, "max_tokens: must be an integer in [1, 32768]");
  CompletionsError(R"({"prompt": "d", "query": "q", "max_tokens": 99999999999999999999})",
                   StatusCode::kInvalidArgument, "max_tokens");
  CompletionsError(R"({"prompt": "d", "query": "q", "max_tokens": "5"})",
                   StatusCode::kInvalidArgument, "max_tokens: expected an integer, got a string");
  CompletionsError(R"({"prompt": "d", "query": "q", "max_tokens": 5, "max_new_tokens": 5})",
                   StatusCode::kInvalidArgument, "max_tokens, max_new_tokens");
  CompletionsError(R"({"prompt": "d", "query": "q", "n": 2})", StatusCode::kInvalidArgument,
                   "n: only 1");
  CompletionsError(R"({"prompt": "d", "query": "q", "presence_penalty": 0.5})",
                   StatusCode::kInvalidArgument, "presence_penalty: not supported");
  CompletionsError(R"({"prompt": "d", "query": "q", "echo": true})", StatusCode::kInvalidArgument,
                   "echo");
  CompletionsError(R"({"prompt": "d", "query": "q", "logprobs": 5})", StatusCode::kInvalidArgument,
                   "logprobs");
  CompletionsError(R"({"prompt": "d", "query": "q", "logit_bias": {"1": 2}})",
                   StatusCode::kInvalidArgument, "logit_bias");
  CompletionsError(R"({"prompt": "d", "query": "q", "stream_options": {"x": 1}})",
                   StatusCode::kInvalidArgument, "unknown field 'stream_options.x'");
  CompletionsError(R"({"prompt": "d", "query": "q", "tools": []})", StatusCode::kInvalidArgument,
                   "unknown field 'tools'");
  CompletionsError(R"({"prompt": "d", "query": "q", "temperature": "hot"})",
                   StatusCode::kInvalidArgument, "temperature: expected a number, got a string");
  CompletionsError(R"({"prompt": "d", "query": "q", "temperature": 1e300})",
                   StatusCode::kInvalidArgument, "temperature: must be in");
  CompletionsError(R"({"prompt": "d", "query": "q", "stop": [1]})", StatusCode::kInvalidArgument,
                   "stop[0]: expected a string");
  CompletionsError(R"({"prompt": "d", "query": "q", "user": 5})", StatusCode::kInvalidArgument,
                   "user: expected a string");
  CompletionsError(R"([1, 2])", StatusCode::kInvalidArgument, "expected a JSON object");
  CompletionsError(R"({"prompt": "d", "query": )", StatusCode::kInvalidArgument, "invalid JSON");
  CompletionsError("{\"prompt\": \"\xc3\x28\", \"query\": \"q\"}", StatusCode::kInvalidArgument,
                   "invalid UTF-8");
  RequestLimits small;
  small.max_document_bytes = 4;
  CompletionsError(R"({"prompt": "12345", "query": "q"})", StatusCode::kPayloadTooLarge,
                   "prompt: 5 bytes exceed the limit of 4", small);
}

TEST(OpenAiApiTest, ChatLastUserMessageIsTheQuery) {
  ApiRequest a = ChatOk(R"({"model": "m", "messages": [
      {"role": "system", "content": "System text."},
      {"role": "user", "content": [{"type": "text", "text": "Part one. "}, {"type": "text", "text": "Part two."}]},
      {"role": "assistant", "content": "", "name": "bot"},
      {"role": "user", "content": "The question?"}],
      "max_completion_tokens": 5, "stream": true})");
  EXPECT_EQ(a.kind, ApiKind::kChat);
  EXPECT_EQ(a.request.document_text(), "System text.\n\nPart one. Part two.");
  EXPECT_EQ(a.request.query_text(), "The question?");
  EXPECT_EQ(a.request.max_new_tokens(), 5);
  EXPECT_TRUE(a.stream);
}

TEST(OpenAiApiTest, ChatErrorsNameTheMessage) {
  ChatError(R"({})", StatusCode::kInvalidArgument, "messages: required");
  ChatError(R"({"messages": {}})", StatusCode::kInvalidArgument, "messages: expected an array");
  ChatError(R"({"messages": []})", StatusCode::kInvalidArgument, "messages: empty");
  ChatError(R"({"messages": [{"role": "user", "content": "q"}]})", StatusCode::kInvalidArgument,
            "messages: no document");
  ChatError(
      R"({"messages": [{"role": "user", "content": "d"}, {"role": "assistant", "content": "a"}]})",
      StatusCode::kInvalidArgument, "messages[1].role: the last message must come from the user");
  ChatError(R"({"messages": [{"role": "user", "content": "d"}, {"role": "user", "content": ""}]})",
            StatusCode::kInvalidArgument, "messages[1].content: empty");
  ChatError(
      R"({"messages": [{"role": "wizard", "content": "d"}, {"role": "user", "content": "q"}]})",
      StatusCode::kInvalidArgument, "messages[0].role: expected system");
  ChatError(
      R"({"messages": [{"role": "user", "content": "d", "extra": 1}, {"role": "user", "content": "q"}]})",
      StatusCode::kInvalidArgument, "unknown field 'messages[0].extra'");
  ChatError(
      R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}, {"role": "user", "content": "q"}]})",
      StatusCode::kInvalidArgument, "messages[0].content[0].type: only \"text\" parts");
  ChatError(R"({"messages": [{"role": "user", "content": 3}, {"role": "user", "content": "q"}]})",
            StatusCode::kInvalidArgument, "messages[0].content: expected a string or an array");
  ChatError(R"({"messages": [{"role": "user"}, {"role": "user", "content": "q"}]})",
            StatusCode::kInvalidArgument, "messages[0].content: required");
  ChatError(
      R"({"messages": [{"role": "user", "content": "d"}, {"role": "user", "content": "q"}], "prompt": "x"})",
      StatusCode::kInvalidArgument, "prompt: not accepted by /v1/chat/completions");
  ChatError(
      R"({"messages": [{"role": "user", "content": "d"}, {"role": "user", "content": "q"}], "max_tokens": 1, "max_completion_tokens": 1})",
      StatusCode::kInvalidArgument, "max_tokens, max_completion_tokens");
  ChatError(
      R"({"messages": [{"role": "user", "content": "d"}, {"role": "user", "content": "q"}], "response_format": {"type": "json_object"}})",
      StatusCode::kInvalidArgument, "response_format");
  ChatError(
      R"({"messages": [{"role": "user", "content": "d"}, {"role": "user", "content": "q"}], "logprobs": true})",
      StatusCode::kInvalidArgument, "logprobs");
}

proto::GenerateResponse SampleResponse() {
  proto::GenerateResponse r;
  r.set_request_id("cmpl-1");
  r.set_model("tiny");
  r.set_text("Paris.");
  r.add_generated_ids(11);
  r.add_generated_ids(12);
  r.set_finish_reason("eos");
  r.mutable_accounting()->set_document_tokens(100);
  r.mutable_accounting()->set_query_tokens(5);
  r.mutable_accounting()->set_generated_tokens(2);
  return r;
}

TEST(OpenAiApiTest, CompletionAndChatBodies) {
  const proto::GenerateResponse r = SampleResponse();
  json::object c = json::parse(CompletionBody(ApiKind::kCompletions, r, 1700)).as_object();
  EXPECT_EQ(c.at("id"), "cmpl-1");
  EXPECT_EQ(c.at("object"), "text_completion");
  EXPECT_EQ(c.at("created"), 1700);
  EXPECT_EQ(c.at("model"), "tiny");
  const json::object& choice = c.at("choices").as_array()[0].as_object();
  EXPECT_EQ(choice.at("text"), "Paris.");
  EXPECT_EQ(choice.at("finish_reason"), "stop");
  EXPECT_EQ(c.at("usage").at("prompt_tokens"), 105);
  EXPECT_EQ(c.at("usage").at("completion_tokens"), 2);
  EXPECT_EQ(c.at("usage").at("total_tokens"), 107);
  EXPECT_EQ(c.at("sieve").at("generated_ids").as_array().size(), 2u);
  json::object chat = json::parse(CompletionBody(ApiKind::kChat, r, 1700)).as_object();
  EXPECT_EQ(chat.at("object"), "chat.completion");
  EXPECT_EQ(chat.at("choices").as_array()[0].at("message").at("content"), "Paris.");
  EXPECT_EQ(chat.at("choices").as_array()[0].at("message").at("role"), "assistant");
  EXPECT_EQ(OpenAiFinishReason("length"), "length");
  EXPECT_EQ(OpenAiFinishReason("stop"), "stop");
}

TEST(OpenAiApiTest, StreamChunksAndFraming) {
  const proto::GenerateResponse r = SampleResponse();
  json::object t =
      json::parse(StreamTextChunk(ApiKind::kCompletions, "id", "m", 5, "Par")).as_object();
  EXPECT_EQ(t.at("choices").as_array()[0].at("text"), "Par");
  EXPECT_TRUE(t.at("choices").as_array()[0].at("finish_reason").is_null());
  json::object d = json::parse(StreamTextChunk(ApiKind::kChat, "id", "m", 5, "Par")).as_object();
  EXPECT_EQ(d.at("object"), "chat.completion.chunk");
  EXPECT_EQ(d.at("choices").as_array()[0].at("delta").at("content"), "Par");
  json::object role = json::parse(StreamRoleChunk("id", "m", 5)).as_object();
  EXPECT_EQ(role.at("choices").as_array()[0].at("delta").at("role"), "assistant");
  json::object fin = json::parse(StreamFinalChunk(ApiKind::kCompletions, r, 5)).as_object();
  EXPECT_EQ(fin.at("choices").as_array()[0].at("finish_reason"), "stop");
  EXPECT_EQ(fin.at("sieve").at("text"), "Paris.");
  json::object usage = json::parse(StreamUsageChunk(ApiKind::kChat, r, 5)).as_object();
  EXPECT_TRUE(usage.at("choices").as_array().empty());
  EXPECT_EQ(usage.at("usage").at("total_tokens"), 107);
  EXPECT_EQ(SseData("{}"), "data: {}\n\n");
  EXPECT_EQ(SseComment("progress 1/2\nx"), ": progress 1/2 x\n\n");
  json::object models = json::parse(ModelsBody("tiny", 9)).as_object();
  EXPECT_EQ(models.at("data").as_array()[0].at("id"), "tiny");
}

TEST(OpenAiApiTest, ErrorBodies) {
  json::object e =
      json::parse(ApiErrorBody(Status::InvalidArgument("sieve.kv_pool: must be odd"), "r1"))
          .as_object();
  EXPECT_EQ(e.at("error").at("code"), "INVALID_ARGUMENT");
  EXPECT_EQ(e.at("error").at("status"), 400);
  EXPECT_EQ(e.at("error").at("type"), "invalid_request_error");
  EXPECT_EQ(e.at("error").at("param"), "sieve.kv_pool");
  EXPECT_EQ(e.at("error").at("request_id"), "r1");
  json::object u =
      json::parse(ApiErrorBody(Status::InvalidArgument("unknown field 'foo'"))).as_object();
  EXPECT_EQ(u.at("error").at("param"), "foo");
  json::object q =
      json::parse(ApiErrorBody(Status::ResourceExhausted("queue full: 3 waiting"))).as_object();
  EXPECT_EQ(q.at("error").at("status"), 429);
  EXPECT_EQ(q.at("error").at("type"), "rate_limit_error");
  EXPECT_TRUE(q.at("error").at("param").is_null());
}

}  // namespace
}  // namespace sieve::coordinator
