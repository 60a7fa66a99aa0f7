// Tests of coordinator/request_parser.{h,cc}: client JSON -> proto::GenerateRequest.
//
// Checks that a minimal request gets every documented default filled in explicitly (and leaves
// the model-dependent ones, chunk_tokens and T, unset), that a full request and every single
// field survive into the proto unchanged (and change nothing else), and that each class of bad
// input is rejected with the right StatusCode and a message naming the field (or, for JSON-level
// errors, the byte offset): invalid JSON, non-object bodies, wrong types, unknown fields at every
// level, missing/empty/duplicated document and query, invalid UTF-8, out-of-range numbers,
// non-integers, unknown enum strings, size limits (PAYLOAD_TOO_LARGE), too many stop strings and
// deep nesting.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='RequestParser*'
#include "coordinator/request_parser.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace sieve::coordinator {
namespace {

namespace json = boost::json;

constexpr std::string_view kMinimal = R"({"document": "doc", "query": "q"})";

// Parses `body` and fails the test if it is rejected.
proto::GenerateRequest ParseOk(std::string_view body, const RequestLimits& limits = {}) {
  StatusOr<proto::GenerateRequest> r = ParseGenerateRequest(body, limits);
  EXPECT_TRUE(r.ok()) << body << "\n -> " << r.status().ToString();
  return r.ok() ? *r : proto::GenerateRequest();
}

// Expects `body` to fail with `code` and a message containing every one of `fragments`.
void ExpectError(std::string_view body, StatusCode code,
                 std::initializer_list<std::string_view> fragments,
                 const RequestLimits& limits = {}) {
  StatusOr<proto::GenerateRequest> r = ParseGenerateRequest(body, limits);
  ASSERT_FALSE(r.ok()) << "accepted: " << body;
  EXPECT_EQ(r.status().code(), code) << body << "\n -> " << r.status().ToString();
  for (std::string_view f : fragments) {
    EXPECT_NE(r.status().message().find(f), std::string::npos)
        << "'" << f << "' not in: " << r.status().message() << "\n body: " << body;
  }
}

// The minimal request with `extra` members merged in at the top level (JSON object text).
std::string With(std::string_view extra) {
  json::value base = json::parse(kMinimal);
  const json::value add = json::parse(extra);
  json::object& o = base.as_object();
  for (const auto& kv : add.as_object()) o[kv.key()] = kv.value();
  return json::serialize(o);
}

// The proto the minimal request must produce: every default explicit.
proto::GenerateRequest MinimalExpected() {
  proto::GenerateRequest r;
  r.set_document_text("doc");
  r.set_query_text("q");
  r.set_max_new_tokens(64);
  r.set_temperature(0);
  r.set_top_p(1);
  r.set_top_k(0);
  r.set_seed(0);
  r.set_explain(false);
  r.set_stream(false);
  r.set_deadline_seconds(0);
  proto::SieveOptions* s = r.mutable_sieve();
  s->set_mode(proto::PREFILL_MODE_PARALLELCOMP);
  s->set_keep_chunks(3);
  s->set_kv_window(8);
  s->set_kv_pool(7);
  s->mutable_scope()->set_strategy(proto::SCOPE_SLIDE);
  s->mutable_scope()->set_b1(256);
  s->mutable_scope()->set_b2(256);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Valid requests.

TEST(RequestParserTest, MinimalRequestFillsEveryDefault) {
  const proto::GenerateRequest r = ParseOk(kMinimal);
  EXPECT_EQ(r.document_case(), proto::GenerateRequest::kDocumentText);
  EXPECT_EQ(r.document_text(), "doc");
  EXPECT_EQ(r.query_case(), proto::GenerateRequest::kQueryText);
  EXPECT_EQ(r.query_text(), "q");
  ASSERT_TRUE(r.has_max_new_tokens());
  EXPECT_EQ(r.max_new_tokens(), 64);
  ASSERT_TRUE(r.has_temperature());
  EXPECT_EQ(r.temperature(), 0.f);
  ASSERT_TRUE(r.has_top_p());
  EXPECT_EQ(r.top_p(), 1.f);
  ASSERT_TRUE(r.has_top_k());
  EXPECT_EQ(r.top_k(), 0);
  ASSERT_TRUE(r.has_seed());
  EXPECT_EQ(r.seed(), 0u);
  EXPECT_EQ(r.stop_size(), 0);
  EXPECT_EQ(r.force_continuation_ids_size(), 0);
  EXPECT_FALSE(r.explain());
  EXPECT_FALSE(r.stream());
  EXPECT_EQ(r.deadline_seconds(), 0.0);
  EXPECT_EQ(r.request_id(), "");
  EXPECT_EQ(r.model(), "");
  ASSERT_TRUE(r.has_sieve());
  const proto::SieveOptions& s = r.sieve();
  EXPECT_EQ(s.mode(), proto::PREFILL_MODE_PARALLELCOMP);
  EXPECT_FALSE(s.has_chunk_tokens()) << "chunk_tokens depends on the model and must stay unset";
  ASSERT_TRUE(s.has_keep_chunks());
  EXPECT_EQ(s.keep_chunks(), 3);
  EXPECT_FALSE(s.has_kv_capacity());
  ASSERT_TRUE(s.has_kv_window());
  EXPECT_EQ(s.kv_window(), 8);
  ASSERT_TRUE(s.has_kv_pool());
  EXPECT_EQ(s.kv_pool(), 7);
  EXPECT_FALSE(s.has_calibration());
  ASSERT_TRUE(s.has_scope());
  EXPECT_EQ(s.scope().strategy(), proto::SCOPE_SLIDE);
  ASSERT_TRUE(s.scope().has_b1());
  EXPECT_EQ(s.scope().b1(), 256);
  ASSERT_TRUE(s.scope().has_b2());
  EXPECT_EQ(s.scope().b2(), 256);
  EXPECT_FALSE(s.scope().has_t()) << "T depends on max_new_tokens and must stay unset";
  // Nothing else is set.
  EXPECT_EQ(r.DebugString(), MinimalExpected().DebugString());
}

TEST(RequestParserTest, NullMembersMeanDefault) {
  const proto::GenerateRequest r = ParseOk(
      R"({"document": "doc", "query": "q", "max_new_tokens": null, "temperature": null,
          "top_p": null, "top_k": null, "seed": null, "stop": null, "explain": null,
          "sieve": {"chunk_tokens": null, "kv_capacity": null, "calibration": null,
                    "scope": null}})");
  EXPECT_EQ(r.DebugString(), MinimalExpected().DebugString());
  EXPECT_EQ(ParseOk(R"({"document": "doc", "query": "q", "sieve": null})").DebugString(),
            MinimalExpected().DebugString());
}

TEST(RequestParserTest, FullRequest) {
  const proto::GenerateRequest r = ParseOk(R"({
    "request_id": "req-7", "model": "tiny-llama3",
    "document": "The pass key is 71432.", "query": "What is the pass key?",
    "max_new_tokens": 40, "temperature": 0.7, "top_p": 0.9, "top_k": 50,
    "seed": 18446744073709551615, "stop": ["\n\n", "END"],
    "force_continuation_ids": [220, 23670, 1032], "explain": true, "stream": true,
    "deadline_seconds": 12.5,
    "sieve": {"mode": "parallel", "chunk_tokens": 300, "keep_chunks": 2, "kv_capacity": 64,
              "kv_window": 16, "kv_pool": 5,
              "calibration": {"layers": ["middle", "sink"], "threshold": 0.003, "region": 16},
              "scope": {"strategy": "adaptive", "b1": 8, "b2": 4, "T": 40}}})");
  EXPECT_EQ(r.request_id(), "req-7");
  EXPECT_EQ(r.model(), "tiny-llama3");
  EXPECT_EQ(r.document_text(), "The pass key is 71432.");
  EXPECT_EQ(r.query_text(), "What is the pass key?");
  EXPECT_EQ(r.max_new_tokens(), 40);
  EXPECT_EQ(r.temperature(), 0.7f);
  EXPECT_EQ(r.top_p(), 0.9f);
  EXPECT_EQ(r.top_k(), 50);
  EXPECT_EQ(r.seed(), 18446744073709551615ull);
  ASSERT_EQ(r.stop_size(), 2);
  EXPECT_EQ(r.stop(0), "\n\n");
  EXPECT_EQ(r.stop(1), "END");
  EXPECT_EQ(
      std::vector<int32_t>(r.force_continuation_ids().begin(), r.force_continuation_ids().end()),
      (std::vector<int32_t>{220, 23670, 1032}));
  EXPECT_TRUE(r.explain());
  EXPECT_TRUE(r.stream());
  EXPECT_EQ(r.deadline_seconds(), 12.5);
  const proto::SieveOptions& s = r.sieve();
  EXPECT_EQ(s.mode(), proto::PREFILL_MODE_PARALLEL);
  ASSERT_TRUE(s.has_chunk_tokens());
  EXPECT_EQ(s.chunk_tokens(), 300);
  EXPECT_EQ(s.keep_chunks(), 2);
  ASSERT_TRUE(s.has_kv_capacity());
  EXPECT_EQ(s.kv_capacity(), 64);
  EXPECT_EQ(s.kv_window(), 16);
  EXPECT_EQ(s.kv_pool(), 5);
  ASSERT_TRUE(s.has_calibration());
  ASSERT_EQ(s.calibration().layers_size(), 2);
  EXPECT_EQ(s.calibration().layers(0), proto::CALIBRATION_MIDDLE);
  EXPECT_EQ(s.calibration().layers(1), proto::CALIBRATION_SINK);
  EXPECT_EQ(s.calibration().threshold(), 0.003f);
  EXPECT_EQ(s.calibration().region(), 16);
  EXPECT_EQ(s.scope().strategy(), proto::SCOPE_ADAPTIVE);
  EXPECT_EQ(s.scope().b1(), 8);
  EXPECT_EQ(s.scope().b2(), 4);
  ASSERT_TRUE(s.scope().has_t());
  EXPECT_EQ(s.scope().t(), 40);
}

TEST(RequestParserTest, DocumentAndQueryIds) {
  const proto::GenerateRequest r =
      ParseOk(R"({"document_ids": [128000, 0, 2147483647], "query_ids": [5]})");
  ASSERT_EQ(r.document_case(), proto::GenerateRequest::kDocumentIds);
  EXPECT_EQ(std::vector<int32_t>(r.document_ids().ids().begin(), r.document_ids().ids().end()),
            (std::vector<int32_t>{128000, 0, 2147483647}));
  ASSERT_EQ(r.query_case(), proto::GenerateRequest::kQueryIds);
  EXPECT_EQ(std::vector<int32_t>(r.query_ids().ids().begin(), r.query_ids().ids().end()),
            (std::vector<int32_t>{5}));

  // Mixed forms.
  const proto::GenerateRequest a = ParseOk(R"({"document": "d", "query_ids": [1, 2]})");
  EXPECT_EQ(a.document_case(), proto::GenerateRequest::kDocumentText);
  EXPECT_EQ(a.query_case(), proto::GenerateRequest::kQueryIds);
  EXPECT_EQ(a.query_ids().ids_size(), 2);
  const proto::GenerateRequest b = ParseOk(R"({"document_ids": [7], "query": "q"})");
  EXPECT_EQ(b.document_case(), proto::GenerateRequest::kDocumentIds);
  EXPECT_EQ(b.query_case(), proto::GenerateRequest::kQueryText);
  EXPECT_EQ(b.query_text(), "q");
}

TEST(RequestParserTest, ScopeDefaultsWhenOnlyStrategyGiven) {
  const proto::GenerateRequest r = ParseOk(With(R"({"sieve": {"scope": {"strategy": "off"}}})"));
  EXPECT_EQ(r.sieve().scope().strategy(), proto::SCOPE_OFF);
  EXPECT_EQ(r.sieve().scope().b1(), 256);
  EXPECT_EQ(r.sieve().scope().b2(), 256);
  EXPECT_FALSE(r.sieve().scope().has_t());
  const proto::GenerateRequest e = ParseOk(With(R"({"sieve": {"scope": {}}})"));
  EXPECT_EQ(e.sieve().scope().strategy(), proto::SCOPE_SLIDE);
  EXPECT_EQ(e.sieve().scope().b1(), 256);
}

TEST(RequestParserTest, CalibrationDefaultsThresholdAndRegion) {
  const proto::GenerateRequest r =
      ParseOk(With(R"({"sieve": {"calibration": {"layers": ["none", "all", "recent"]}}})"));
  ASSERT_TRUE(r.sieve().has_calibration());
  const proto::Calibration& c = r.sieve().calibration();
  ASSERT_EQ(c.layers_size(), 3);
  EXPECT_EQ(c.layers(0), proto::CALIBRATION_NONE);
  EXPECT_EQ(c.layers(1), proto::CALIBRATION_ALL);
  EXPECT_EQ(c.layers(2), proto::CALIBRATION_RECENT);
  EXPECT_EQ(c.threshold(), 0.1f);
  EXPECT_EQ(c.region(), 100);
}

TEST(RequestParserTest, EveryEnumName) {
  const std::pair<const char*, proto::PrefillMode> modes[] = {
      {"parallelcomp", proto::PREFILL_MODE_PARALLELCOMP},
      {"parallel", proto::PREFILL_MODE_PARALLEL},
      {"full", proto::PREFILL_MODE_FULL}};
  for (const auto& [name, mode] : modes) {
    EXPECT_EQ(ParseOk(With(StrFormat(R"({"sieve": {"mode": "%s"}})", name))).sieve().mode(), mode)
        << name;
  }
  const std::pair<const char*, proto::ScopeStrategy> strategies[] = {
      {"slide", proto::SCOPE_SLIDE},
      {"adaptive", proto::SCOPE_ADAPTIVE},
      {"discontinuous", proto::SCOPE_DISCONTINUOUS},
      {"off", proto::SCOPE_OFF}};
  for (const auto& [name, strategy] : strategies) {
    EXPECT_EQ(ParseOk(With(StrFormat(R"({"sieve": {"scope": {"strategy": "%s"}}})", name)))
                  .sieve()
                  .scope()
                  .strategy(),
              strategy)
        << name;
  }
  const std::pair<const char*, proto::CalibrationPattern> patterns[] = {
      {"none", proto::CALIBRATION_NONE},
      {"sink", proto::CALIBRATION_SINK},
      {"recent", proto::CALIBRATION_RECENT},
      {"middle", proto::CALIBRATION_MIDDLE},
      {"all", proto::CALIBRATION_ALL}};
  for (const auto& [name, pattern] : patterns) {
    const proto::GenerateRequest r =
        ParseOk(With(StrFormat(R"({"sieve": {"calibration": {"layers": ["%s"]}}})", name)));
    ASSERT_EQ(r.sieve().calibration().layers_size(), 1) << name;
    EXPECT_EQ(r.sieve().calibration().layers(0), pattern) << name;
  }
}

// Round trip: each field given on its own (with a non-default value) lands in its proto field,
// and nothing else differs from the minimal request's proto.
TEST(RequestParserTest, EveryFieldSurvivesAndChangesNothingElse) {
  struct Case {
    const char* json;
    std::function<void(proto::GenerateRequest*)> expect;
  };
  const Case cases[] = {
      {R"({"request_id": "abc-1"})", [](auto* r) { r->set_request_id("abc-1"); }},
      {R"({"model": "m"})", [](auto* r) { r->set_model("m"); }},
      {R"({"max_new_tokens": 32768})", [](auto* r) { r->set_max_new_tokens(32768); }},
      {R"({"max_new_tokens": 1})", [](auto* r) { r->set_max_new_tokens(1); }},
      {R"({"temperature": 1.25})", [](auto* r) { r->set_temperature(1.25f); }},
      {R"({"temperature": 2})", [](auto* r) { r->set_temperature(2.f); }},
      {R"({"top_p": 0.5})", [](auto* r) { r->set_top_p(0.5f); }},
      {R"({"top_k": 40})", [](auto* r) { r->set_top_k(40); }},
      {R"({"seed": 12345678901})", [](auto* r) { r->set_seed(12345678901ull); }},
      {R"({"stop": ["a", "\u00e9\u00e9", "<|eot_id|>"]})",
       [](auto* r) {
         r->add_stop("a");
         r->add_stop("\xc3\xa9\xc3\xa9");
         r->add_stop("<|eot_id|>");
       }},
      {R"({"force_continuation_ids": [1, 0, 128255]})",
       [](auto* r) {
         r->add_force_continuation_ids(1);
         r->add_force_continuation_ids(0);
         r->add_force_continuation_ids(128255);
       }},
      {R"({"explain": true})", [](auto* r) { r->set_explain(true); }},
      {R"({"stream": true})", [](auto* r) { r->set_stream(true); }},
      {R"({"deadline_seconds": 86400})", [](auto* r) { r->set_deadline_seconds(86400); }},
      {R"({"deadline_seconds": 0.25})", [](auto* r) { r->set_deadline_seconds(0.25); }},
      {R"({"document": "other \u6771\u4eac"})",
       [](auto* r) { r->set_document_text("other \xe6\x9d\xb1\xe4\xba\xac"); }},
      {R"({"query": "another"})", [](auto* r) { r->set_query_text("another"); }},
      {R"({"sieve": {"mode": "full"}})",
       [](auto* r) { r->mutable_sieve()->set_mode(proto::PREFILL_MODE_FULL); }},
      {R"({"sieve": {"chunk_tokens": 6000}})",
       [](auto* r) { r->mutable_sieve()->set_chunk_tokens(6000); }},
      {R"({"sieve": {"keep_chunks": 1}})", [](auto* r) { r->mutable_sieve()->set_keep_chunks(1); }},
      {R"({"sieve": {"kv_capacity": 2048}})",
       [](auto* r) { r->mutable_sieve()->set_kv_capacity(2048); }},
      {R"({"sieve": {"kv_window": 32}})", [](auto* r) { r->mutable_sieve()->set_kv_window(32); }},
      {R"({"sieve": {"kv_pool": 1}})", [](auto* r) { r->mutable_sieve()->set_kv_pool(1); }},
      {R"({"sieve": {"calibration": {"layers": ["sink"], "threshold": 0.5, "region": 7}}})",
       [](auto* r) {
         proto::Calibration* c = r->mutable_sieve()->mutable_calibration();
         c->add_layers(proto::CALIBRATION_SINK);
         c->set_threshold(0.5f);
         c->set_region(7);
       }},
      {R"({"sieve": {"scope": {"strategy": "discontinuous"}}})",
       [](auto* r) {
         r->mutable_sieve()->mutable_scope()->set_strategy(proto::SCOPE_DISCONTINUOUS);
       }},
      {R"({"sieve": {"scope": {"b1": 0}}})",
       [](auto* r) { r->mutable_sieve()->mutable_scope()->set_b1(0); }},
      {R"({"sieve": {"scope": {"b2": 1024}}})",
       [](auto* r) { r->mutable_sieve()->mutable_scope()->set_b2(1024); }},
      {R"({"sieve": {"scope": {"T": 100}}})",
       [](auto* r) { r->mutable_sieve()->mutable_scope()->set_t(100); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.json);
    proto::GenerateRequest want = MinimalExpected();
    c.expect(&want);
    EXPECT_EQ(ParseOk(With(c.json)).DebugString(), want.DebugString());
  }
}

// ParseGenerateRequestObject (the HTTP front end's entry) agrees with ParseGenerateRequest.
TEST(RequestParserTest, ObjectEntryPointAgrees) {
  const std::string body = With(R"({"sieve": {"keep_chunks": 5}, "stop": ["x"]})");
  StatusOr<proto::GenerateRequest> a = ParseGenerateRequestObject(json::parse(body).as_object());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->DebugString(), ParseOk(body).DebugString());
  StatusOr<proto::GenerateRequest> bad =
      ParseGenerateRequestObject(json::parse(With(R"({"top_k": -1})")).as_object());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("top_k"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Invalid JSON and bodies that are not objects.

TEST(RequestParserTest, InvalidJsonReportsByteOffset) {
  // The error is at the '}' (byte 27) where a value was expected.
  ExpectError(R"({"document": "a", "query": })", StatusCode::kInvalidArgument,
              {"invalid JSON", "at byte 27"});
  // Unterminated object: the error is at the end of the input (byte 17).
  ExpectError(R"({"document": "a",)", StatusCode::kInvalidArgument, {"invalid JSON", "at byte 17"});
  // Garbage after the value: at byte 3.
  ExpectError(R"({} x)", StatusCode::kInvalidArgument, {"invalid JSON", "at byte 3"});
  ExpectError("", StatusCode::kInvalidArgument, {"invalid JSON", "at byte 0"});
  ExpectError(R"({"document": 'a'})", StatusCode::kInvalidArgument, {"invalid JSON", "at byte 13"});
}

TEST(RequestParserTest, NonObjectBody) {
  ExpectError(R"([{"document": "a", "query": "q"}])", StatusCode::kInvalidArgument,
              {"request: expected a JSON object, got an array"});
  ExpectError(R"("document")", StatusCode::kInvalidArgument,
              {"request: expected a JSON object, got a string"});
  ExpectError("42", StatusCode::kInvalidArgument,
              {"request: expected a JSON object, got an integer"});
  ExpectError("null", StatusCode::kInvalidArgument, {"request: expected a JSON object, got null"});
}

TEST(RequestParserTest, InvalidUtf8InsideString) {
  // Raw bytes 0xC3 0x28: a two-byte lead followed by '(' is ill-formed UTF-8. 0xC3 is byte 16.
  const std::string body = "{\"document\": \"ab\xc3\x28\", \"query\": \"q\"}";
  ASSERT_EQ(static_cast<unsigned char>(body[16]), 0xC3);
  ExpectError(body, StatusCode::kInvalidArgument, {"invalid UTF-8 in JSON at byte 16"});
  // In the query (0xC3 at byte 28), and in a key (0xFF at byte 33).
  ExpectError("{\"document\": \"a\", \"query\": \"\xc3\x28\"}", StatusCode::kInvalidArgument,
              {"invalid UTF-8 in JSON at byte 28"});
  ExpectError("{\"document\": \"a\", \"query\": \"q\", \"\xff\": 1}", StatusCode::kInvalidArgument,
              {"invalid UTF-8 in JSON at byte 33"});
  // A truncated sequence at the end of a string, and an encoded surrogate (ED A0 80).
  ExpectError("{\"document\": \"a\xe6\x9d\", \"query\": \"q\"}", StatusCode::kInvalidArgument,
              {"invalid UTF-8 in JSON at byte 15"});
  ExpectError("{\"document\": \"\xed\xa0\x80\", \"query\": \"q\"}", StatusCode::kInvalidArgument,
              {"invalid UTF-8 in JSON at byte 14"});
  // A syntax error before a later ill-formed sequence is reported as the syntax error.
  ExpectError("{\"document\" \"a\", \"query\": \"\xc3\x28\"}", StatusCode::kInvalidArgument,
              {"invalid JSON at byte 12"});
  // Well-formed multibyte text is accepted byte for byte.
  EXPECT_EQ(
      ParseOk("{\"document\": \"\xc3\xa9\xf0\x9f\x98\x80\", \"query\": \"q\"}").document_text(),
      "\xc3\xa9\xf0\x9f\x98\x80");
}

// ---------------------------------------------------------------------------------------------
// Wrong types.

TEST(RequestParserTest, WrongTypesNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"max_new_tokens": "5"})", "max_new_tokens: expected an integer, got a string"},
      {R"({"sieve": []})", "sieve: expected an object, got an array"},
      {R"({"stop": [1]})", "stop[0]: expected a string, got an integer"},
      {R"({"stop": "END"})", "stop: expected an array, got a string"},
      {R"({"stop": ["a", null]})", "stop[1]: expected a string, got null"},
      {R"({"temperature": "0.5"})", "temperature: expected a number, got a string"},
      {R"({"top_p": true})", "top_p: expected a number, got a boolean"},
      {R"({"top_k": [1]})", "top_k: expected an integer, got an array"},
      {R"({"seed": "7"})", "seed: expected a non-negative integer, got a string"},
      {R"({"explain": 1})", "explain: expected a boolean, got an integer"},
      {R"({"stream": "yes"})", "stream: expected a boolean, got a string"},
      {R"({"deadline_seconds": "10"})", "deadline_seconds: expected a number, got a string"},
      {R"({"request_id": 5})", "request_id: expected a string, got an integer"},
      {R"({"model": {}})", "model: expected a string, got an object"},
      {R"({"force_continuation_ids": 5})", "force_continuation_ids: expected an array"},
      {R"({"force_continuation_ids": [1, "2"]})",
       "force_continuation_ids[1]: expected an integer token id, got a string"},
      {R"({"sieve": {"mode": 2}})", "sieve.mode: expected a string, got an integer"},
      {R"({"sieve": {"chunk_tokens": "300"}})", "sieve.chunk_tokens: expected an integer"},
      {R"({"sieve": {"keep_chunks": false}})", "sieve.keep_chunks: expected an integer"},
      {R"({"sieve": {"kv_capacity": [64]}})", "sieve.kv_capacity: expected an integer"},
      {R"({"sieve": {"kv_window": "8"}})", "sieve.kv_window: expected an integer"},
      {R"({"sieve": {"kv_pool": {}}})", "sieve.kv_pool: expected an integer"},
      {R"({"sieve": {"calibration": []}})", "sieve.calibration: expected an object, got an array"},
      {R"({"sieve": {"calibration": {"layers": "all"}}})",
       "sieve.calibration.layers: expected an array, got a string"},
      {R"({"sieve": {"calibration": {"layers": ["all", 3]}}})",
       "sieve.calibration.layers[1]: expected a string, got an integer"},
      {R"({"sieve": {"calibration": {"layers": ["all"], "threshold": "0.1"}}})",
       "sieve.calibration.threshold: expected a number, got a string"},
      {R"({"sieve": {"calibration": {"layers": ["all"], "region": 1.5}}})",
       "sieve.calibration.region: expected an integer, got a number"},
      {R"({"sieve": {"scope": "slide"}})", "sieve.scope: expected an object, got a string"},
      {R"({"sieve": {"scope": {"strategy": 1}}})",
       "sieve.scope.strategy: expected a string, got an integer"},
      {R"({"sieve": {"scope": {"b1": "8"}}})", "sieve.scope.b1: expected an integer, got a string"},
      {R"({"sieve": {"scope": {"b2": "8"}}})", "sieve.scope.b2: expected an integer, got a string"},
      {R"({"sieve": {"scope": {"T": true}}})", "sieve.scope.T: expected an integer, got a boolean"},
  };
  for (const auto& [extra, message] : cases) {
    ExpectError(With(extra), StatusCode::kInvalidArgument, {message});
  }
  ExpectError(R"({"document": 5, "query": "q"})", StatusCode::kInvalidArgument,
              {"document: expected a string, got an integer"});
  ExpectError(R"({"document": "d", "query": ["q"]})", StatusCode::kInvalidArgument,
              {"query: expected a string, got an array"});
  ExpectError(R"({"document_ids": "1,2", "query": "q"})", StatusCode::kInvalidArgument,
              {"document_ids: expected an array, got a string"});
  ExpectError(R"({"document_ids": [1, 2.5], "query": "q"})", StatusCode::kInvalidArgument,
              {"document_ids[1]: expected an integer token id, got a number"});
  ExpectError(R"({"document": "d", "query_ids": [[1]]})", StatusCode::kInvalidArgument,
              {"query_ids[0]: expected an integer token id, got an array"});
}

TEST(RequestParserTest, NonIntegerWhereIntegerExpected) {
  ExpectError(With(R"({"max_new_tokens": 64.5})"), StatusCode::kInvalidArgument,
              {"max_new_tokens: expected an integer, got a number"});
  ExpectError(With(R"({"top_k": 1.5})"), StatusCode::kInvalidArgument,
              {"top_k: expected an integer, got a number"});
  ExpectError(With(R"({"seed": 3.5})"), StatusCode::kInvalidArgument,
              {"seed: expected a non-negative integer, got a number"});
  ExpectError(With(R"({"sieve": {"keep_chunks": 2.5}})"), StatusCode::kInvalidArgument,
              {"sieve.keep_chunks: expected an integer, got a number"});
  ExpectError(With(R"({"sieve": {"scope": {"T": 1e2}}})"), StatusCode::kInvalidArgument,
              {"sieve.scope.T: expected an integer, got a number"});
}

// ---------------------------------------------------------------------------------------------
// Unknown fields.

TEST(RequestParserTest, UnknownFieldsAreNamed) {
  ExpectError(With(R"({"foo": 1})"), StatusCode::kInvalidArgument, {"unknown field 'foo'"});
  ExpectError(With(R"({"max_tokens": 5})"), StatusCode::kInvalidArgument,
              {"unknown field 'max_tokens'"});
  ExpectError(With(R"({"sieve": {"foo": 1}})"), StatusCode::kInvalidArgument,
              {"unknown field 'sieve.foo'"});
  ExpectError(With(R"({"sieve": {"scope": {"bar": 1}}})"), StatusCode::kInvalidArgument,
              {"unknown field 'sieve.scope.bar'"});
  ExpectError(With(R"({"sieve": {"scope": {"t": 5}}})"), StatusCode::kInvalidArgument,
              {"unknown field 'sieve.scope.t'"});
  ExpectError(With(R"({"sieve": {"calibration": {"layers": [], "lam": 0.1}}})"),
              StatusCode::kInvalidArgument, {"unknown field 'sieve.calibration.lam'"});
  // Unknown fields are rejected even when null.
  ExpectError(With(R"({"extra": null})"), StatusCode::kInvalidArgument, {"unknown field 'extra'"});
}

// ---------------------------------------------------------------------------------------------
// Document and query presence.

TEST(RequestParserTest, MissingDocumentOrQuery) {
  ExpectError(R"({"document": "d"})", StatusCode::kInvalidArgument, {"query: required"});
  ExpectError(R"({"query": "q"})", StatusCode::kInvalidArgument, {"document: required"});
  ExpectError(R"({})", StatusCode::kInvalidArgument, {"document: required"});
  ExpectError(R"({"document": null, "query": "q"})", StatusCode::kInvalidArgument,
              {"document: required"});
}

TEST(RequestParserTest, EmptyDocumentOrQuery) {
  ExpectError(R"({"document": "", "query": "q"})", StatusCode::kInvalidArgument,
              {"document: empty"});
  ExpectError(R"({"document": "d", "query": ""})", StatusCode::kInvalidArgument, {"query: empty"});
  ExpectError(R"({"document_ids": [], "query": "q"})", StatusCode::kInvalidArgument,
              {"document_ids: empty"});
  ExpectError(R"({"document": "d", "query_ids": []})", StatusCode::kInvalidArgument,
              {"query_ids: empty"});
}

TEST(RequestParserTest, BothTextAndIds) {
  ExpectError(R"({"document": "d", "document_ids": [1], "query": "q"})",
              StatusCode::kInvalidArgument, {"document, document_ids", "not both"});
  ExpectError(R"({"document": "d", "query": "q", "query_ids": [1]})", StatusCode::kInvalidArgument,
              {"query, query_ids", "not both"});
}

// ---------------------------------------------------------------------------------------------
// Ranges.

TEST(RequestParserTest, NumbersOutOfRange) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"max_new_tokens": 0})", "max_new_tokens: must be an integer in [1, 32768]"},
      {R"({"max_new_tokens": 32769})", "max_new_tokens: must be an integer in [1, 32768]"},
      {R"({"max_new_tokens": -3})", "max_new_tokens: must be an integer in [1, 32768]"},
      {R"({"max_new_tokens": 18446744073709551615})",
       "max_new_tokens: must be an integer in [1, 32768]"},
      {R"({"temperature": -1})", "temperature: must be in [0, 100], got -1"},
      {R"({"temperature": 100.5})", "temperature: must be in [0, 100], got 100.5"},
      {R"({"top_p": 0})", "top_p: must be in (0, 1], got 0"},
      {R"({"top_p": 1.5})", "top_p: must be in (0, 1], got 1.5"},
      {R"({"top_p": -0.5})", "top_p: must be in (0, 1], got -0.5"},
      {R"({"top_k": -1})", "top_k: must be an integer in [0, "},
      {R"({"seed": -1})", "seed: must be >= 0, got -1"},
      {R"({"deadline_seconds": -1})", "deadline_seconds: must be in [0, 86400], got -1"},
      {R"({"deadline_seconds": 86401})", "deadline_seconds: must be in [0, 86400]"},
      {R"({"sieve": {"kv_pool": 8}})", "sieve.kv_pool: must be odd, got 8"},
      {R"({"sieve": {"kv_pool": 0}})", "sieve.kv_pool: must be an integer in [1, "},
      {R"({"sieve": {"kv_window": 0}})", "sieve.kv_window: must be an integer in [1, "},
      {R"({"sieve": {"chunk_tokens": 0}})", "sieve.chunk_tokens: must be an integer in [1, "},
      {R"({"sieve": {"chunk_tokens": 2147483648}})", "sieve.chunk_tokens: must be an integer"},
      {R"({"sieve": {"keep_chunks": 0}})", "sieve.keep_chunks: must be an integer in [1, "},
      {R"({"sieve": {"kv_capacity": 0}})", "sieve.kv_capacity: must be an integer in [1, "},
      {R"({"sieve": {"kv_capacity": -64}})", "sieve.kv_capacity: must be an integer in [1, "},
      {R"({"sieve": {"scope": {"b1": -1}}})", "sieve.scope.b1: must be an integer in [0, "},
      {R"({"sieve": {"scope": {"b2": -1}}})", "sieve.scope.b2: must be an integer in [0, "},
      {R"({"sieve": {"scope": {"T": -1}}})", "sieve.scope.T: must be an integer in [0, "},
      {R"({"sieve": {"calibration": {"layers": [], "threshold": 1.5}}})",
       "sieve.calibration.threshold: must be in [0, 1], got 1.5"},
      {R"({"sieve": {"calibration": {"layers": [], "threshold": -0.1}}})",
       "sieve.calibration.threshold: must be in [0, 1], got -0.1"},
      {R"({"sieve": {"calibration": {"layers": [], "region": -1}}})",
       "sieve.calibration.region: must be an integer in [0, "},
  };
  for (const auto& [extra, message] : cases) {
    ExpectError(With(extra), StatusCode::kInvalidArgument, {message});
  }
  // The limit follows RequestLimits.
  RequestLimits limits;
  limits.max_new_tokens = 10;
  ExpectError(With(R"({"max_new_tokens": 11})"), StatusCode::kInvalidArgument,
              {"max_new_tokens: must be an integer in [1, 10]"}, limits);
  EXPECT_EQ(ParseOk(With(R"({"max_new_tokens": 10})"), limits).max_new_tokens(), 10);
}

TEST(RequestParserTest, TokenIdsOutOfRange) {
  ExpectError(R"({"document_ids": [5, -1], "query": "q"})", StatusCode::kInvalidArgument,
              {"document_ids[1]: token id must be in [0, 2^31), got -1"});
  ExpectError(R"({"document": "d", "query_ids": [2147483648]})", StatusCode::kInvalidArgument,
              {"query_ids[0]: token id must be in [0, 2^31), got 2147483648"});
  ExpectError(R"({"document": "d", "query_ids": [1, 2, 18446744073709551615]})",
              StatusCode::kInvalidArgument,
              {"query_ids[2]: token id must be in [0, 2^31), got 18446744073709551615"});
  ExpectError(R"({"document": "d", "query": "q", "force_continuation_ids": [3, -7]})",
              StatusCode::kInvalidArgument,
              {"force_continuation_ids[1]: token id must be in [0, 2^31), got -7"});
  ExpectError(R"({"document_ids": [9223372036854775807], "query": "q"})",
              StatusCode::kInvalidArgument, {"document_ids[0]: token id must be in [0, 2^31)"});
}

TEST(RequestParserTest, UnknownEnumStrings) {
  ExpectError(With(R"({"sieve": {"mode": "fast"}})"), StatusCode::kInvalidArgument,
              {"sieve.mode: unknown mode 'fast'"});
  ExpectError(With(R"({"sieve": {"mode": "Full"}})"), StatusCode::kInvalidArgument,
              {"sieve.mode: unknown mode 'Full'"});
  ExpectError(With(R"({"sieve": {"scope": {"strategy": "sometimes"}}})"),
              StatusCode::kInvalidArgument, {"sieve.scope.strategy: unknown strategy 'sometimes'"});
  ExpectError(With(R"({"sieve": {"calibration": {"layers": ["sink", "bogus"]}}})"),
              StatusCode::kInvalidArgument,
              {"sieve.calibration.layers[1]: unknown pattern 'bogus'"});
}

TEST(RequestParserTest, CalibrationNeedsLayers) {
  ExpectError(With(R"({"sieve": {"calibration": {"threshold": 0.1}}})"),
              StatusCode::kInvalidArgument, {"sieve.calibration.layers: required"});
}

TEST(RequestParserTest, StopStrings) {
  std::string sixteen = R"({"stop": [)";
  for (int i = 0; i < 16; ++i) sixteen += StrFormat("%s\"s%d\"", i ? ", " : "", i);
  EXPECT_EQ(ParseOk(With(sixteen + "]}")).stop_size(), 16);
  ExpectError(With(sixteen + R"(, "s16"]})"), StatusCode::kInvalidArgument,
              {"stop: at most 16 strings, got 17"});
  ExpectError(With(R"({"stop": ["ok", ""]})"), StatusCode::kInvalidArgument, {"stop[1]: empty"});
  RequestLimits limits;
  limits.max_stop_strings = 1;
  ExpectError(With(R"({"stop": ["a", "b"]})"), StatusCode::kInvalidArgument,
              {"stop: at most 1 strings, got 2"}, limits);
}

TEST(RequestParserTest, RequestIdLength) {
  EXPECT_EQ(ParseOk(With(StrFormat(R"({"request_id": "%s"})", std::string(128, 'r').c_str())))
                .request_id(),
            std::string(128, 'r'));
  ExpectError(With(StrFormat(R"({"request_id": "%s"})", std::string(129, 'r').c_str())),
              StatusCode::kInvalidArgument, {"request_id: longer than 128 bytes"});
}

// ---------------------------------------------------------------------------------------------
// Size limits.

TEST(RequestParserTest, DocumentOverLimitIsPayloadTooLarge) {
  RequestLimits limits;
  limits.max_document_bytes = 10;
  EXPECT_EQ(ParseOk(R"({"document": "0123456789", "query": "q"})", limits).document_text(),
            "0123456789");
  ExpectError(R"({"document": "0123456789A", "query": "q"})", StatusCode::kPayloadTooLarge,
              {"document: 11 bytes exceed the limit of 10"}, limits);
  // Multibyte: the limit is in bytes, not characters (5 x 3 bytes = 15 > 10).
  ExpectError(
      "{\"document\": \"\xe6\x9d\xb1\xe6\x9d\xb1\xe6\x9d\xb1\xe6\x9d\xb1\xe6\x9d\xb1\", "
      "\"query\": \"q\"}",
      StatusCode::kPayloadTooLarge, {"document: 15 bytes"}, limits);
  // The query has the same limit.
  ExpectError(R"({"document": "d", "query": "0123456789A"})", StatusCode::kPayloadTooLarge,
              {"query"}, limits);
}

TEST(RequestParserTest, DocumentIdsOverLimitIsPayloadTooLarge) {
  RequestLimits limits;
  limits.max_document_ids = 3;
  EXPECT_EQ(
      ParseOk(R"({"document_ids": [1, 2, 3], "query": "q"})", limits).document_ids().ids_size(), 3);
  ExpectError(R"({"document_ids": [1, 2, 3, 4], "query": "q"})", StatusCode::kPayloadTooLarge,
              {"document_ids: 4 ids exceed the limit of 3"}, limits);
}

TEST(RequestParserTest, BodyOverLimitIsPayloadTooLarge) {
  const std::string body(kMinimal);
  RequestLimits limits;
  limits.max_body_bytes = static_cast<int64_t>(body.size());
  EXPECT_EQ(ParseOk(body, limits).document_text(), "doc");
  limits.max_body_bytes = static_cast<int64_t>(body.size()) - 1;
  ExpectError(body, StatusCode::kPayloadTooLarge,
              {StrFormat("request body of %zu bytes exceeds the limit of %zu", body.size(),
                         body.size() - 1)},
              limits);
  // The body limit is checked before parsing: even invalid JSON over the limit is 413.
  ExpectError(std::string(100, '{'), StatusCode::kPayloadTooLarge, {"request body"}, limits);
}

// ---------------------------------------------------------------------------------------------
// Deep nesting: rejected as invalid JSON (depth limit 64), never a crash or a stack overflow.

TEST(RequestParserTest, DeeplyNestedJsonIsRejected) {
  const std::string arrays = std::string(100, '[') + std::string(100, ']');
  ExpectError(R"({"document": "d", "query": "q", "x": )" + arrays + "}",
              StatusCode::kInvalidArgument, {"invalid JSON"});
  std::string objects;
  for (int i = 0; i < 100; ++i) objects += R"({"a": )";
  objects += "1" + std::string(100, '}');
  ExpectError(objects, StatusCode::kInvalidArgument, {"invalid JSON"});
  // Far deeper still: the same clean error.
  ExpectError(std::string(100000, '[') + std::string(100000, ']'), StatusCode::kInvalidArgument,
              {"invalid JSON"});
  // Nesting under the limit parses, and the parser then names the unknown field instead.
  const std::string shallow = std::string(10, '[') + std::string(10, ']');
  ExpectError(R"({"document": "d", "query": "q", "x": )" + shallow + "}",
              StatusCode::kInvalidArgument, {"unknown field 'x'"});
}

// ParseJson is used on its own by the HTTP front end.
TEST(RequestParserTest, ParseJsonAlone) {
  StatusOr<json::value> v = ParseJson(R"({"a": [1, 2.5, "x"]})");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(json::serialize(*v), R"({"a":[1,2.5E0,"x"]})");
  StatusOr<json::value> bad = ParseJson("[1, 2");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("invalid JSON at byte 5"), std::string::npos)
      << bad.status().message();
}

}  // namespace
}  // namespace sieve::coordinator
