// Metrics of the service, rendered as Prometheus text (GET /metrics). Pure: no sockets.
//
//   sieve_requests_total{outcome="ok|invalid|too_large|rejected|unauthenticated|cancelled|
//                                 deadline|unavailable|error"}        counter
//   sieve_queue_depth, sieve_requests_in_flight                       gauges (from the engine)
//   sieve_ttft_seconds, sieve_prefill_seconds, sieve_request_seconds  histograms
//   sieve_decode_tokens_per_second                                    histogram (per request)
//   sieve_generated_tokens_total, sieve_prompt_tokens_total           counters (rate() = tokens/s)
//   sieve_kv_bytes_moved_total                                        counter
//   sieve_connections_open{protocol}, sieve_connections_total{protocol},
//   sieve_connections_rejected_total{protocol}                        connection limit
//
// Outcomes come from every front end through RecordResponse / RecordError (the service wraps
// every engine sink so nothing is missed); the accounting's timing fields feed the histograms.
// Thread-safe: the engine thread and the I/O threads record concurrently.
//
// Tested by tests/unit/coordinator/metrics_test.cc and tests/cli/service_test.sh.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "comm/status.h"
#include "coordinator/engine.h"
#include "proto/sieve.pb.h"

namespace sieve::coordinator {

enum class Outcome : int {
  kOk,
  kInvalid,          // 400 / 404: the request was wrong
  kTooLarge,         // 413
  kRejected,         // 429: admission (queue, tokens, memory)
  kUnauthenticated,  // 401
  kCancelled,        // the client went away or cancelled
  kDeadline,         // 504
  kUnavailable,      // 503: shutting down
  kError,            // 500: internal
};
inline constexpr int kNumOutcomes = 9;
std::string_view OutcomeName(Outcome outcome);
Outcome OutcomeFor(StatusCode code);

enum class Protocol : int { kHttp = 0, kNative = 1 };
std::string_view ProtocolName(Protocol protocol);

// Cumulative histogram with fixed upper bounds (seconds or any unit).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // Appends "# TYPE name histogram" and the bucket/sum/count lines.
  void Render(std::string_view name, std::string_view help, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  void RecordResponse(const proto::GenerateResponse& response);
  void RecordError(const Status& status);
  void RecordOutcome(Outcome outcome);

  void ConnectionOpened(Protocol protocol);
  void ConnectionClosed(Protocol protocol);
  void ConnectionRejected(Protocol protocol);

  uint64_t Count(Outcome outcome) const;
  // Prometheus text exposition format 0.0.4.
  std::string Render(const EngineStats& engine) const;

 private:
  mutable std::mutex mu_;
  std::array<uint64_t, kNumOutcomes> outcomes_{};
  Histogram ttft_, prefill_, total_, decode_rate_;
  uint64_t generated_tokens_ = 0;
  uint64_t prompt_tokens_ = 0;
  uint64_t kv_bytes_moved_ = 0;
  std::array<int64_t, 2> connections_open_{};
  std::array<uint64_t, 2> connections_total_{};
  std::array<uint64_t, 2> connections_rejected_{};
};

}  // namespace sieve::coordinator
