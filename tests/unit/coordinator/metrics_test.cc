// Tests of coordinator/metrics.{h,cc}: outcomes by status code and the Prometheus text.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='Metrics*'
#include "coordinator/metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace sieve::coordinator {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(MetricsTest, OutcomesFollowTheStatusCode) {
  EXPECT_EQ(OutcomeFor(StatusCode::kResourceExhausted), Outcome::kRejected);
  EXPECT_EQ(OutcomeFor(StatusCode::kPayloadTooLarge), Outcome::kTooLarge);
  EXPECT_EQ(OutcomeFor(StatusCode::kInvalidArgument), Outcome::kInvalid);
  EXPECT_EQ(OutcomeFor(StatusCode::kNotFound), Outcome::kInvalid);
  EXPECT_EQ(OutcomeFor(StatusCode::kCancelled), Outcome::kCancelled);
  EXPECT_EQ(OutcomeFor(StatusCode::kDeadlineExceeded), Outcome::kDeadline);
  EXPECT_EQ(OutcomeFor(StatusCode::kUnauthenticated), Outcome::kUnauthenticated);
  EXPECT_EQ(OutcomeFor(StatusCode::kUnavailable), Outcome::kUnavailable);
  EXPECT_EQ(OutcomeFor(StatusCode::kInternal), Outcome::kError);
}

TEST(MetricsTest, RendersCountersGaugesAndHistograms) {
  Metrics m;
  proto::GenerateResponse r;
  proto::Accounting* a = r.mutable_accounting();
  a->set_document_tokens(1000);
  a->set_query_tokens(10);
  a->set_generated_tokens(20);
  a->set_kv_bytes_moved(4096);
  a->mutable_timing()->set_ttft_s(0.3);
  a->mutable_timing()->set_prefill_s(0.2);
  a->mutable_timing()->set_total_s(1.5);
  a->mutable_timing()->set_decode_tokens_per_s(40);
  m.RecordResponse(r);
  m.RecordResponse(r);
  m.RecordError(Status::ResourceExhausted("full"));
  m.RecordError(Status::Cancelled("gone"));
  m.RecordOutcome(Outcome::kInvalid);
  m.ConnectionOpened(Protocol::kHttp);
  m.ConnectionOpened(Protocol::kNative);
  m.ConnectionClosed(Protocol::kNative);
  m.ConnectionRejected(Protocol::kHttp);
  EXPECT_EQ(m.Count(Outcome::kOk), 2u);
  const std::string text = m.Render({.queued = 3, .in_flight = 2, .completed = 2, .failed = 2});
  EXPECT_TRUE(Has(text, "sieve_requests_total{outcome=\"ok\"} 2")) << text;
  EXPECT_TRUE(Has(text, "sieve_requests_total{outcome=\"rejected\"} 1"));
  EXPECT_TRUE(Has(text, "sieve_requests_total{outcome=\"cancelled\"} 1"));
  EXPECT_TRUE(Has(text, "sieve_requests_total{outcome=\"invalid\"} 1"));
  EXPECT_TRUE(Has(text, "sieve_requests_total{outcome=\"deadline\"} 0"));
  EXPECT_TRUE(Has(text, "sieve_queue_depth 3"));
  EXPECT_TRUE(Has(text, "sieve_requests_in_flight 2"));
  EXPECT_TRUE(Has(text, "# TYPE sieve_ttft_seconds histogram"));
  EXPECT_TRUE(Has(text, "sieve_ttft_seconds_bucket{le=\"0.25\"} 0"));
  EXPECT_TRUE(Has(text, "sieve_ttft_seconds_bucket{le=\"0.5\"} 2"));
  EXPECT_TRUE(Has(text, "sieve_ttft_seconds_bucket{le=\"+Inf\"} 2"));
  EXPECT_TRUE(Has(text, "sieve_ttft_seconds_sum 0.6"));
  EXPECT_TRUE(Has(text, "sieve_ttft_seconds_count 2"));
  EXPECT_TRUE(Has(text, "sieve_prefill_seconds_bucket{le=\"0.25\"} 2"));
  EXPECT_TRUE(Has(text, "sieve_decode_tokens_per_second_bucket{le=\"50\"} 2"));
  EXPECT_TRUE(Has(text, "sieve_generated_tokens_total 40"));
  EXPECT_TRUE(Has(text, "sieve_prompt_tokens_total 2020"));
  EXPECT_TRUE(Has(text, "sieve_kv_bytes_moved_total 8192"));
  EXPECT_TRUE(Has(text, "sieve_connections_open{protocol=\"http\"} 1"));
  EXPECT_TRUE(Has(text, "sieve_connections_open{protocol=\"native\"} 0"));
  EXPECT_TRUE(Has(text, "sieve_connections_rejected_total{protocol=\"http\"} 1"));
  // Every sample line is "name[{labels}] value".
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    if (!line.empty() && line[0] != '#') EXPECT_NE(line.find(' '), std::string::npos) << line;
    start = end + 1;
  }
}

}  // namespace
}  // namespace sieve::coordinator
