// Validation of protobuf GenerateRequests (see proto_request.h). The ranges mirror
// request_parser.cc; tests/unit/coordinator/proto_request_test.cc checks that a request parsed
// from JSON passes unchanged and that each bad value gets the JSON parser's field name.
#include "coordinator/proto_request.h"

#include <cmath>

#include "coordinator/tokenizer_unicode.h"

namespace sieve::coordinator {
namespace {

constexpr int64_t kMaxInt = int64_t{1} << 30;

Status RangeError(const char* path, int64_t lo, int64_t hi) {
  return Status::InvalidArgument(StrFormat("%s: must be an integer in [%lld, %lld]", path,
                                           static_cast<long long>(lo), static_cast<long long>(hi)));
}

Status CheckInt(const char* path, int64_t v, int64_t lo, int64_t hi) {
  return v < lo || v > hi ? RangeError(path, lo, hi) : Status::Ok();
}

Status CheckNumber(const char* path, double v, double lo, double hi, bool lo_open = false) {
  if (!std::isfinite(v) || v < lo || v > hi || (lo_open && v == lo)) {
    return Status::InvalidArgument(
        StrFormat("%s: must be in %s%g, %g], got %g", path, lo_open ? "(" : "[", lo, hi, v));
  }
  return Status::Ok();
}

Status CheckText(const char* path, const std::string& text, int64_t max_bytes) {
  if (text.empty()) return Status::InvalidArgument(StrFormat("%s: empty", path));
  if (static_cast<int64_t>(text.size()) > max_bytes) {
    return Status::PayloadTooLarge(StrFormat("%s: %zu bytes exceed the limit of %lld", path,
                                             text.size(), static_cast<long long>(max_bytes)));
  }
  if (const size_t bad = unicode::FindInvalidUtf8(text); bad != std::string_view::npos) {
    return Status::InvalidArgument(
        StrFormat("%s: invalid UTF-8 at byte %zu: ill-formed sequence", path, bad));
  }
  return Status::Ok();
}

template <typename Repeated>
Status CheckIds(const char* path, const Repeated& ids, int64_t max_count, bool allow_empty) {
  if (!allow_empty && ids.empty()) return Status::InvalidArgument(StrFormat("%s: empty", path));
  if (static_cast<int64_t>(ids.size()) > max_count) {
    return Status::PayloadTooLarge(StrFormat("%s: %d ids exceed the limit of %lld", path,
                                             static_cast<int>(ids.size()),
                                             static_cast<long long>(max_count)));
  }
  for (int i = 0; i < ids.size(); ++i) {
    if (ids.Get(i) < 0) {
      return Status::InvalidArgument(
          StrFormat("%s[%d]: token id must be in [0, 2^31), got %d", path, i, ids.Get(i)));
    }
  }
  return Status::Ok();
}

Status CheckSieve(const RequestLimits& limits, proto::SieveOptions* s) {
  if (!proto::PrefillMode_IsValid(s->mode())) {
    return Status::InvalidArgument(StrFormat(
        "sieve.mode: unknown mode %d (expected parallelcomp, parallel or full)", s->mode()));
  }
  if (s->has_chunk_tokens()) {
    SIEVE_RETURN_IF_ERROR(CheckInt("sieve.chunk_tokens", s->chunk_tokens(), 1, kMaxInt));
  }
  if (!s->has_keep_chunks()) s->set_keep_chunks(3);
  SIEVE_RETURN_IF_ERROR(CheckInt("sieve.keep_chunks", s->keep_chunks(), 1, kMaxInt));
  if (s->has_kv_capacity()) {
    SIEVE_RETURN_IF_ERROR(CheckInt("sieve.kv_capacity", s->kv_capacity(), 1, kMaxInt));
  }
  if (!s->has_kv_window()) s->set_kv_window(8);
  SIEVE_RETURN_IF_ERROR(CheckInt("sieve.kv_window", s->kv_window(), 1, 1 << 20));
  if (!s->has_kv_pool()) s->set_kv_pool(7);
  SIEVE_RETURN_IF_ERROR(CheckInt("sieve.kv_pool", s->kv_pool(), 1, 1 << 20));
  if (s->kv_pool() % 2 == 0) {
    return Status::InvalidArgument(StrFormat("sieve.kv_pool: must be odd, got %d", s->kv_pool()));
  }
  if (s->has_calibration()) {
    const proto::Calibration& c = s->calibration();
    for (int i = 0; i < c.layers_size(); ++i) {
      if (!proto::CalibrationPattern_IsValid(c.layers(i))) {
        return Status::InvalidArgument(
            StrFormat("sieve.calibration.layers[%d]: unknown pattern %d (expected none, sink, "
                      "recent, middle or all)",
                      i, c.layers(i)));
      }
    }
    SIEVE_RETURN_IF_ERROR(CheckNumber("sieve.calibration.threshold", c.threshold(), 0, 1));
    SIEVE_RETURN_IF_ERROR(CheckInt("sieve.calibration.region", c.region(), 0, kMaxInt));
  }
  proto::Scope* scope = s->mutable_scope();
  if (!proto::ScopeStrategy_IsValid(scope->strategy())) {
    return Status::InvalidArgument(
        StrFormat("sieve.scope.strategy: unknown strategy %d (expected slide, adaptive, "
                  "discontinuous or off)",
                  scope->strategy()));
  }
  if (!scope->has_b1()) scope->set_b1(256);
  if (!scope->has_b2()) scope->set_b2(256);
  SIEVE_RETURN_IF_ERROR(CheckInt("sieve.scope.b1", scope->b1(), 0, kMaxInt));
  SIEVE_RETURN_IF_ERROR(CheckInt("sieve.scope.b2", scope->b2(), 0, kMaxInt));
  if (scope->has_t()) SIEVE_RETURN_IF_ERROR(CheckInt("sieve.scope.T", scope->t(), 0, kMaxInt));
  (void)limits;
  return Status::Ok();
}

}  // namespace

Status ValidateGenerateRequest(proto::GenerateRequest* r, const RequestLimits& limits) {
  if (r->request_id().size() > 128) {
    return Status::InvalidArgument("request_id: longer than 128 bytes");
  }
  if (const size_t bad = unicode::FindInvalidUtf8(r->request_id()); bad != std::string::npos) {
    return Status::InvalidArgument("request_id: invalid UTF-8");
  }
  if (const size_t bad = unicode::FindInvalidUtf8(r->model()); bad != std::string::npos) {
    return Status::InvalidArgument("model: invalid UTF-8");
  }
  switch (r->document_case()) {
    case proto::GenerateRequest::kDocumentText:
      SIEVE_RETURN_IF_ERROR(CheckText("document", r->document_text(), limits.max_document_bytes));
      break;
    case proto::GenerateRequest::kDocumentIds:
      SIEVE_RETURN_IF_ERROR(CheckIds("document_ids", r->document_ids().ids(),
                                     limits.max_document_ids, /*allow_empty=*/false));
      break;
    default:
      return Status::InvalidArgument("document: required (a string, or document_ids)");
  }
  switch (r->query_case()) {
    case proto::GenerateRequest::kQueryText:
      SIEVE_RETURN_IF_ERROR(CheckText("query", r->query_text(), limits.max_document_bytes));
      break;
    case proto::GenerateRequest::kQueryIds:
      SIEVE_RETURN_IF_ERROR(CheckIds("query_ids", r->query_ids().ids(), limits.max_document_ids,
                                     /*allow_empty=*/false));
      break;
    default:
      return Status::InvalidArgument("query: required (a string, or query_ids)");
  }
  if (!r->has_max_new_tokens()) r->set_max_new_tokens(64);
  SIEVE_RETURN_IF_ERROR(CheckInt("max_new_tokens", r->max_new_tokens(), 1, limits.max_new_tokens));
  if (!r->has_temperature()) r->set_temperature(0);
  SIEVE_RETURN_IF_ERROR(CheckNumber("temperature", r->temperature(), 0, 100));
  if (!r->has_top_p()) r->set_top_p(1);
  SIEVE_RETURN_IF_ERROR(CheckNumber("top_p", r->top_p(), 0, 1, /*lo_open=*/true));
  if (!r->has_top_k()) r->set_top_k(0);
  SIEVE_RETURN_IF_ERROR(CheckInt("top_k", r->top_k(), 0, kMaxInt));
  if (!r->has_seed()) r->set_seed(0);
  if (r->stop_size() > limits.max_stop_strings) {
    return Status::InvalidArgument(
        StrFormat("stop: at most %d strings, got %d", limits.max_stop_strings, r->stop_size()));
  }
  for (int i = 0; i < r->stop_size(); ++i) {
    if (r->stop(i).empty()) return Status::InvalidArgument(StrFormat("stop[%d]: empty", i));
    if (unicode::FindInvalidUtf8(r->stop(i)) != std::string::npos) {
      return Status::InvalidArgument(StrFormat("stop[%d]: invalid UTF-8", i));
    }
  }
  SIEVE_RETURN_IF_ERROR(CheckIds("force_continuation_ids", r->force_continuation_ids(),
                                 limits.max_new_tokens, /*allow_empty=*/true));
  SIEVE_RETURN_IF_ERROR(CheckNumber("deadline_seconds", r->deadline_seconds(), 0, 86400));
  return CheckSieve(limits, r->mutable_sieve());
}

}  // namespace sieve::coordinator
