// Tests of coordinator/proto_request.{h,cc}: GenerateRequests that arrive as protobuf (the native
// protocol) get the JSON parser's rules and defaults.
//
// A request parsed from JSON validates unchanged; an empty proto request with a document and a
// query gets exactly the defaults the JSON parser fills; every class of bad value is rejected
// with the JSON form's field name: missing or empty document and query, invalid UTF-8, negative
// token ids, size limits (PAYLOAD_TOO_LARGE), numbers out of range or not finite, unknown enum
// values, too many or empty stop strings.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='ProtoRequest*'
#include "coordinator/proto_request.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

namespace sieve::coordinator {
namespace {

proto::GenerateRequest Minimal() {
  proto::GenerateRequest r;
  r.set_document_text("doc");
  r.set_query_text("q");
  return r;
}

void ExpectError(const std::function<void(proto::GenerateRequest&)>& mutate, StatusCode code,
                 std::string_view fragment, const RequestLimits& limits = {}) {
  proto::GenerateRequest r = Minimal();
  mutate(r);
  const Status s = ValidateGenerateRequest(&r, limits);
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find(fragment), std::string::npos) << s.message() << " / " << fragment;
}

TEST(ProtoRequestTest, ParsedJsonValidatesUnchanged) {
  for (const char* body : {
           R"({"document": "doc", "query": "q"})",
           R"({"document_ids": [1, 2], "query_ids": [3], "max_new_tokens": 9, "temperature": 0.7,
               "top_p": 0.5, "top_k": 4, "seed": 11, "stop": ["x"], "force_continuation_ids": [5],
               "explain": true, "stream": true, "deadline_seconds": 3, "request_id": "r",
               "model": "m", "sieve": {"mode": "parallel", "chunk_tokens": 50, "keep_chunks": 2,
               "kv_capacity": 8, "kv_window": 4, "kv_pool": 3,
               "calibration": {"layers": ["sink", "none"], "threshold": 0.2, "region": 7},
               "scope": {"strategy": "adaptive", "b1": 1, "b2": 2, "T": 9}}})",
       }) {
    auto parsed = ParseGenerateRequest(body);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    proto::GenerateRequest copy = *parsed;
    ASSERT_TRUE(ValidateGenerateRequest(&copy).ok());
    EXPECT_EQ(copy.SerializeAsString(), parsed->SerializeAsString()) << body;
  }
}

TEST(ProtoRequestTest, FillsTheParsersDefaults) {
  proto::GenerateRequest r = Minimal();
  ASSERT_TRUE(ValidateGenerateRequest(&r).ok());
  auto parsed = ParseGenerateRequest(R"({"document": "doc", "query": "q"})");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(r.SerializeAsString(), parsed->SerializeAsString());
}

TEST(ProtoRequestTest, BadValuesNameTheField) {
  using P = proto::GenerateRequest;
  ExpectError([](P& r) { r.clear_document_text(); }, StatusCode::kInvalidArgument,
              "document: required");
  ExpectError([](P& r) { r.clear_query_text(); }, StatusCode::kInvalidArgument, "query: required");
  ExpectError([](P& r) { r.set_document_text(""); }, StatusCode::kInvalidArgument,
              "document: empty");
  ExpectError([](P& r) { r.mutable_document_ids(); }, StatusCode::kInvalidArgument,
              "document_ids: empty");
  ExpectError([](P& r) { r.set_query_text("\xc3\x28"); }, StatusCode::kInvalidArgument,
              "query: invalid UTF-8 at byte 0");
  ExpectError([](P& r) { r.mutable_document_ids()->add_ids(-1); }, StatusCode::kInvalidArgument,
              "document_ids[0]: token id must be in [0, 2^31)");
  ExpectError([](P& r) { r.add_force_continuation_ids(-5); }, StatusCode::kInvalidArgument,
              "force_continuation_ids[0]");
  RequestLimits small;
  small.max_document_bytes = 2;
  small.max_document_ids = 1;
  ExpectError([](P&) {}, StatusCode::kPayloadTooLarge, "document: 3 bytes exceed the limit of 2",
              small);
  ExpectError(
      [](P& r) {
        r.mutable_document_ids()->add_ids(1);
        r.mutable_document_ids()->add_ids(2);
      },
      StatusCode::kPayloadTooLarge, "document_ids: 2 ids exceed the limit of 1", small);
  ExpectError([](P& r) { r.set_max_new_tokens(0); }, StatusCode::kInvalidArgument,
              "max_new_tokens: must be an integer in [1, 32768]");
  ExpectError([](P& r) { r.set_temperature(std::numeric_limits<float>::quiet_NaN()); },
              StatusCode::kInvalidArgument, "temperature: must be in [0, 100]");
  ExpectError([](P& r) { r.set_top_p(0); }, StatusCode::kInvalidArgument,
              "top_p: must be in (0, 1]");
  ExpectError([](P& r) { r.set_top_k(-1); }, StatusCode::kInvalidArgument, "top_k");
  ExpectError([](P& r) { r.set_deadline_seconds(-1); }, StatusCode::kInvalidArgument,
              "deadline_seconds");
  ExpectError([](P& r) { r.add_stop(""); }, StatusCode::kInvalidArgument, "stop[0]: empty");
  ExpectError(
      [](P& r) {
        for (int i = 0; i < 17; ++i) r.add_stop("s");
      },
      StatusCode::kInvalidArgument, "stop: at most 16 strings, got 17");
  ExpectError([](P& r) { r.set_request_id(std::string(129, 'x')); }, StatusCode::kInvalidArgument,
              "request_id: longer than 128 bytes");
  ExpectError([](P& r) { r.mutable_sieve()->set_mode(static_cast<proto::PrefillMode>(9)); },
              StatusCode::kInvalidArgument, "sieve.mode: unknown mode 9");
  ExpectError([](P& r) { r.mutable_sieve()->set_kv_pool(6); }, StatusCode::kInvalidArgument,
              "sieve.kv_pool: must be odd, got 6");
  ExpectError([](P& r) { r.mutable_sieve()->set_keep_chunks(0); }, StatusCode::kInvalidArgument,
              "sieve.keep_chunks");
  ExpectError([](P& r) { r.mutable_sieve()->set_chunk_tokens(-4); }, StatusCode::kInvalidArgument,
              "sieve.chunk_tokens");
  ExpectError([](P& r) { r.mutable_sieve()->mutable_scope()->set_b1(-1); },
              StatusCode::kInvalidArgument, "sieve.scope.b1");
  ExpectError(
      [](P& r) {
        r.mutable_sieve()->mutable_scope()->set_strategy(static_cast<proto::ScopeStrategy>(7));
      },
      StatusCode::kInvalidArgument, "sieve.scope.strategy: unknown strategy 7");
  ExpectError(
      [](P& r) {
        r.mutable_sieve()->mutable_calibration()->add_layers(
            static_cast<proto::CalibrationPattern>(8));
      },
      StatusCode::kInvalidArgument, "sieve.calibration.layers[0]: unknown pattern 8");
  ExpectError([](P& r) { r.mutable_sieve()->mutable_calibration()->set_threshold(2); },
              StatusCode::kInvalidArgument, "sieve.calibration.threshold");
}

}  // namespace
}  // namespace sieve::coordinator
