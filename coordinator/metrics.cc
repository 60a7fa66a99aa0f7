// Prometheus text rendering of the service's counters, gauges and histograms (see metrics.h).
#include "coordinator/metrics.h"

#include <algorithm>
#include <cmath>

namespace sieve::coordinator {
namespace {

// Latency buckets: 5 ms .. 10 min.
std::vector<double> SecondsBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

std::vector<double> RateBuckets() { return {1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000}; }

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return StrFormat("%.0f", v);
  return StrFormat("%.9g", v);
}

void Header(std::string_view name, std::string_view help, std::string_view type, std::string* out) {
  *out += "# HELP ";
  *out += name;
  *out += ' ';
  *out += help;
  *out += "\n# TYPE ";
  *out += name;
  *out += ' ';
  *out += type;
  *out += '\n';
}

void Sample(std::string_view name, std::string_view labels, double value, std::string* out) {
  *out += name;
  if (!labels.empty()) {
    *out += '{';
    *out += labels;
    *out += '}';
  }
  *out += ' ';
  *out += Number(value);
  *out += '\n';
}

}  // namespace

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kInvalid:
      return "invalid";
    case Outcome::kTooLarge:
      return "too_large";
    case Outcome::kRejected:
      return "rejected";
    case Outcome::kUnauthenticated:
      return "unauthenticated";
    case Outcome::kCancelled:
      return "cancelled";
    case Outcome::kDeadline:
      return "deadline";
    case Outcome::kUnavailable:
      return "unavailable";
    case Outcome::kError:
      return "error";
  }
  return "error";
}

Outcome OutcomeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return Outcome::kOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kUnimplemented:
      return Outcome::kInvalid;
    case StatusCode::kPayloadTooLarge:
      return Outcome::kTooLarge;
    case StatusCode::kResourceExhausted:
      return Outcome::kRejected;
    case StatusCode::kUnauthenticated:
      return Outcome::kUnauthenticated;
    case StatusCode::kCancelled:
      return Outcome::kCancelled;
    case StatusCode::kDeadlineExceeded:
      return Outcome::kDeadline;
    case StatusCode::kUnavailable:
      return Outcome::kUnavailable;
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
      return Outcome::kError;
  }
  return Outcome::kError;
}

std::string_view ProtocolName(Protocol p) { return p == Protocol::kHttp ? "http" : "native"; }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double v) {
  if (!std::isfinite(v)) return;
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::Render(std::string_view name, std::string_view help, std::string* out) const {
  Header(name, help, "histogram", out);
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    Sample(bucket, "le=\"" + Number(bounds_[i]) + "\"", static_cast<double>(cumulative), out);
  }
  cumulative += counts_.back();
  Sample(bucket, "le=\"+Inf\"", static_cast<double>(cumulative), out);
  Sample(std::string(name) + "_sum", "", sum_, out);
  Sample(std::string(name) + "_count", "", static_cast<double>(count_), out);
}

Metrics::Metrics()
    : ttft_(SecondsBuckets()),
      prefill_(SecondsBuckets()),
      total_(SecondsBuckets()),
      decode_rate_(RateBuckets()) {}

void Metrics::RecordResponse(const proto::GenerateResponse& r) {
  const proto::Accounting& a = r.accounting();
  const proto::StageTiming& t = a.timing();
  std::lock_guard<std::mutex> lock(mu_);
  ++outcomes_[static_cast<int>(Outcome::kOk)];
  if (a.generated_tokens() > 0) ttft_.Observe(t.ttft_s());
  if (t.prefill_s() > 0) prefill_.Observe(t.prefill_s());
  total_.Observe(t.total_s());
  if (t.decode_tokens_per_s() > 0) decode_rate_.Observe(t.decode_tokens_per_s());
  generated_tokens_ += static_cast<uint64_t>(std::max(0, a.generated_tokens()));
  prompt_tokens_ += static_cast<uint64_t>(std::max(0, a.document_tokens())) +
                    static_cast<uint64_t>(std::max(0, a.query_tokens()));
  kv_bytes_moved_ += static_cast<uint64_t>(std::max<int64_t>(0, a.kv_bytes_moved()));
}

void Metrics::RecordError(const Status& status) { RecordOutcome(OutcomeFor(status.code())); }

void Metrics::RecordOutcome(Outcome o) {
  std::lock_guard<std::mutex> lock(mu_);
  ++outcomes_[static_cast<int>(o)];
}

void Metrics::ConnectionOpened(Protocol p) {
  std::lock_guard<std::mutex> lock(mu_);
  ++connections_open_[static_cast<int>(p)];
  ++connections_total_[static_cast<int>(p)];
}

void Metrics::ConnectionClosed(Protocol p) {
  std::lock_guard<std::mutex> lock(mu_);
  --connections_open_[static_cast<int>(p)];
}

void Metrics::ConnectionRejected(Protocol p) {
  std::lock_guard<std::mutex> lock(mu_);
  ++connections_rejected_[static_cast<int>(p)];
}

uint64_t Metrics::Count(Outcome o) const {
  std::lock_guard<std::mutex> lock(mu_);
  return outcomes_[static_cast<int>(o)];
}

std::string Metrics::Render(const EngineStats& engine) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out.reserve(4096);
  Header("sieve_requests_total", "Requests answered, by outcome.", "counter", &out);
  for (int i = 0; i < kNumOutcomes; ++i) {
    Sample("sieve_requests_total",
           "outcome=\"" + std::string(OutcomeName(static_cast<Outcome>(i))) + "\"",
           static_cast<double>(outcomes_[i]), &out);
  }
  Header("sieve_queue_depth", "Requests accepted and waiting to be dispatched.", "gauge", &out);
  Sample("sieve_queue_depth", "", static_cast<double>(engine.queued), &out);
  Header("sieve_requests_in_flight", "Requests dispatched and not yet answered.", "gauge", &out);
  Sample("sieve_requests_in_flight", "", static_cast<double>(engine.in_flight), &out);
  ttft_.Render("sieve_ttft_seconds", "Time to first token, from arrival at the engine.", &out);
  prefill_.Render("sieve_prefill_seconds",
                  "Local prefill time of a request (slowest worker; full mode: the decode node).",
                  &out);
  total_.Render("sieve_request_seconds", "Time from arrival at the engine to the last token.",
                &out);
  decode_rate_.Render("sieve_decode_tokens_per_second", "Decode rate of each request.", &out);
  Header("sieve_generated_tokens_total", "Tokens generated (rate() gives tokens/s).", "counter",
         &out);
  Sample("sieve_generated_tokens_total", "", static_cast<double>(generated_tokens_), &out);
  Header("sieve_prompt_tokens_total", "Document and query tokens of completed requests.", "counter",
         &out);
  Sample("sieve_prompt_tokens_total", "", static_cast<double>(prompt_tokens_), &out);
  Header("sieve_kv_bytes_moved_total", "KV cache bytes moved from workers to decode nodes.",
         "counter", &out);
  Sample("sieve_kv_bytes_moved_total", "", static_cast<double>(kv_bytes_moved_), &out);
  Header("sieve_connections_open", "Client connections open.", "gauge", &out);
  for (int p = 0; p < 2; ++p) {
    Sample("sieve_connections_open",
           "protocol=\"" + std::string(ProtocolName(static_cast<Protocol>(p))) + "\"",
           static_cast<double>(connections_open_[p]), &out);
  }
  Header("sieve_connections_total", "Client connections accepted.", "counter", &out);
  for (int p = 0; p < 2; ++p) {
    Sample("sieve_connections_total",
           "protocol=\"" + std::string(ProtocolName(static_cast<Protocol>(p))) + "\"",
           static_cast<double>(connections_total_[p]), &out);
  }
  Header("sieve_connections_rejected_total", "Connections refused over the connection limit.",
         "counter", &out);
  for (int p = 0; p < 2; ++p) {
    Sample("sieve_connections_rejected_total",
           "protocol=\"" + std::string(ProtocolName(static_cast<Protocol>(p))) + "\"",
           static_cast<double>(connections_rejected_[p]), &out);
  }
  Header("sieve_requests_completed_total", "Requests the engine completed (engine view).",
         "counter", &out);
  Sample("sieve_requests_completed_total", "", static_cast<double>(engine.completed), &out);
  Header("sieve_requests_failed_total", "Requests the engine failed (engine view).", "counter",
         &out);
  Sample("sieve_requests_failed_total", "", static_cast<double>(engine.failed), &out);
  return out;
}

}  // namespace sieve::coordinator
