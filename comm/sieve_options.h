// The options of one Sieve request, shared by the coordinator (which validates and plans) and
// the workers (which run them): the structs, their names, the conversion from the wire form
// (proto/sieve.proto) and the checks that only need a few numbers about the model.
//
//   mode          parallelcomp (score chunks, keep the best keep_chunks), parallel (keep every
//                 chunk), full (plain full attention over [BOS] doc [BOS] query: the baseline).
//   chunk_tokens  context tokens per chunk (the model's default when 0).
//   kv_capacity   SnapKV-style compression: context entries kept per chunk, layer and KV head
//                 (unset: no compression), scored by the last kv_window query rows, pooled with
//                 kernel kv_pool.
//   calibration   attention-bias calibration during the query prefill (unset: off).
//   scope         SCOPE decode-cache management (slide by default).
//
// Tested by tests/unit/worker/pipeline_options_test.cc and request_convert_test.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "comm/status.h"
#include "proto/sieve.pb.h"

namespace sieve {

enum class PrefillMode { kParallelComp, kParallel, kFull };
enum class CalibrationPattern { kNone, kSink, kRecent, kMiddle, kAll };
enum class ScopeStrategy { kOff, kSlide, kAdaptive, kDiscontinuous };

std::string_view PrefillModeName(PrefillMode mode);
std::string_view CalibrationPatternName(CalibrationPattern pattern);
std::string_view ScopeStrategyName(ScopeStrategy strategy);
std::optional<PrefillMode> ParsePrefillMode(std::string_view name);
std::optional<CalibrationPattern> ParseCalibrationPattern(std::string_view name);
std::optional<ScopeStrategy> ParseScopeStrategy(std::string_view name);

struct CalibrationOptions {
  std::vector<CalibrationPattern> layers;  // one per model layer
  float threshold = 0.1f;                  // λ
  int region = 100;                        // R
};

struct ScopeOptions {
  ScopeStrategy strategy = ScopeStrategy::kSlide;
  int b1 = 256;  // history budget β1
  int b2 = 256;  // recent ring β2
  int T = 0;     // horizon of the adaptive schedule; 0 = max_new_tokens
};

struct SieveOptions {
  PrefillMode mode = PrefillMode::kParallelComp;
  int chunk_tokens = 0;  // 0 = DefaultChunkTokens(config)
  int keep_chunks = 3;
  std::optional<int> kv_capacity;
  int kv_window = 8;
  int kv_pool = 7;
  std::optional<CalibrationOptions> calibration;
  ScopeOptions scope;
};

struct GenerationOptions {
  int max_new_tokens = 64;
  float temperature = 0.f;  // 0 = greedy
  float top_p = 1.f;
  int top_k = 0;
  uint64_t seed = 0;
  // When non-empty the generated tokens are these (up to max_new_tokens) and the response carries
  // the log-probability of each: how evaluation harnesses score an answer.
  std::vector<int32_t> force_continuation_ids;
};

// What option checking needs to know about the model.
struct ModelLimits {
  int64_t num_layers = 0;
  int default_chunk_tokens = 0;
};

// Fills defaults (chunk_tokens, scope.T) and checks ranges and consistency against the model
// (calibration has one pattern per layer, b2 < T for adaptive schedules, ...). Errors name the
// field: "sieve.scope.T: must be > b2=8 for the adaptive strategy, got 8".
Status ResolveOptions(const ModelLimits& model, SieveOptions* sieve, GenerationOptions* gen);

// The options of a request's wire form (already validated by coordinator/request_parser.h);
// unset fields keep the defaults above.
void OptionsFromProto(const proto::GenerateRequest& request, SieveOptions* sieve,
                      GenerationOptions* gen);
// The wire form of resolved options (for the control plane's WorkOrder / DecodeOrder).
void SieveOptionsToProto(const SieveOptions& sieve, proto::SieveOptions* out);
void SieveOptionsFromProto(const proto::SieveOptions& in, SieveOptions* out);

}  // namespace sieve
