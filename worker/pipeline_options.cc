#include "worker/pipeline_options.h"

#include <algorithm>

namespace sieve::worker {
namespace {

template <typename Enum, size_t N>
std::optional<Enum> ParseName(std::string_view name,
                              const std::pair<std::string_view, Enum> (&table)[N]) {
  for (const auto& [text, value] : table) {
    if (text == name) return value;
  }
  return std::nullopt;
}

template <typename Enum, size_t N>
std::string_view NameOf(Enum value, const std::pair<std::string_view, Enum> (&table)[N]) {
  for (const auto& [text, v] : table) {
    if (v == value) return text;
  }
  return "?";
}

constexpr std::pair<std::string_view, PrefillMode> kModes[] = {
    {"parallelcomp", PrefillMode::kParallelComp},
    {"parallel", PrefillMode::kParallel},
    {"full", PrefillMode::kFull}};
constexpr std::pair<std::string_view, CalibrationPattern> kPatterns[] = {
    {"none", CalibrationPattern::kNone},
    {"sink", CalibrationPattern::kSink},
    {"recent", CalibrationPattern::kRecent},
    {"middle", CalibrationPattern::kMiddle},
    {"all", CalibrationPattern::kAll}};
constexpr std::pair<std::string_view, ScopeStrategy> kStrategies[] = {
    {"off", ScopeStrategy::kOff},
    {"slide", ScopeStrategy::kSlide},
    {"adaptive", ScopeStrategy::kAdaptive},
    {"discontinuous", ScopeStrategy::kDiscontinuous}};

}  // namespace

std::string_view PrefillModeName(PrefillMode mode) { return NameOf(mode, kModes); }
std::string_view CalibrationPatternName(CalibrationPattern p) { return NameOf(p, kPatterns); }
std::string_view ScopeStrategyName(ScopeStrategy s) { return NameOf(s, kStrategies); }
std::optional<PrefillMode> ParsePrefillMode(std::string_view n) { return ParseName(n, kModes); }
std::optional<CalibrationPattern> ParseCalibrationPattern(std::string_view n) {
  return ParseName(n, kPatterns);
}
std::optional<ScopeStrategy> ParseScopeStrategy(std::string_view n) {
  return ParseName(n, kStrategies);
}

int DefaultChunkTokens(const ModelConfig& config) {
  const bool llama3_rope = config.rope.type == RopeType::kLlama3;
  const int64_t window =
      llama3_rope && config.rope.original_max_position_embeddings > 0
          ? config.rope.original_max_position_embeddings
          : config.max_position_embeddings;
  if (llama3_rope && window == 8192) return 6000;  // Llama-3.1: reuse a 6K position range
  if (window == 8192) return 7600;                 // 8K-native models (Llama-3)
  if (window >= 4000) return static_cast<int>(window - 1000);
  return static_cast<int>(std::max<int64_t>(16, window - window / 4));
}

Status ResolveOptions(const ModelConfig& config, SieveOptions* s, GenerationOptions* g) {
  if (s->chunk_tokens == 0) s->chunk_tokens = DefaultChunkTokens(config);
  if (s->chunk_tokens < 1) {
    return Status::InvalidArgument(
        StrFormat("sieve.chunk_tokens: must be >= 1, got %d", s->chunk_tokens));
  }
  if (s->keep_chunks < 1) {
    return Status::InvalidArgument(
        StrFormat("sieve.keep_chunks: must be >= 1, got %d", s->keep_chunks));
  }
  if (s->kv_capacity && *s->kv_capacity < 1) {
    return Status::InvalidArgument(
        StrFormat("sieve.kv_capacity: must be >= 1 or null, got %d", *s->kv_capacity));
  }
  if (s->kv_window < 1) {
    return Status::InvalidArgument(StrFormat("sieve.kv_window: must be >= 1, got %d", s->kv_window));
  }
  if (s->kv_pool < 1 || s->kv_pool % 2 == 0) {
    return Status::InvalidArgument(
        StrFormat("sieve.kv_pool: must be an odd number >= 1, got %d", s->kv_pool));
  }
  if (s->mode == PrefillMode::kFull && (s->kv_capacity || s->calibration)) {
    return Status::InvalidArgument(
        "sieve.mode: full attention is the uncompressed baseline; kv_capacity and calibration "
        "apply to parallelcomp and parallel modes only");
  }
  if (s->calibration) {
    CalibrationOptions& c = *s->calibration;
    if (static_cast<int64_t>(c.layers.size()) != config.num_layers) {
      return Status::InvalidArgument(
          StrFormat("sieve.calibration.layers: needs one pattern per layer (%lld), got %zu",
                    static_cast<long long>(config.num_layers), c.layers.size()));
    }
    if (!(c.threshold >= 0.f && c.threshold <= 1.f)) {
      return Status::InvalidArgument(
          StrFormat("sieve.calibration.threshold: must be in [0, 1], got %g", c.threshold));
    }
    if (c.region < 0) {
      return Status::InvalidArgument(
          StrFormat("sieve.calibration.region: must be >= 0, got %d", c.region));
    }
  }
  if (g->max_new_tokens < 1) {
    return Status::InvalidArgument(
        StrFormat("max_new_tokens: must be >= 1, got %d", g->max_new_tokens));
  }
  if (!g->force_continuation_ids.empty()) {
    g->max_new_tokens =
        std::min<int>(g->max_new_tokens, static_cast<int>(g->force_continuation_ids.size()));
  }
  ScopeOptions& sc = s->scope;
  if (sc.T == 0) sc.T = g->max_new_tokens;
  if (sc.strategy != ScopeStrategy::kOff) {
    if (sc.b1 < 0 || sc.b2 < 0 || sc.b1 + sc.b2 < 1) {
      return Status::InvalidArgument(
          StrFormat("sieve.scope: b1=%d and b2=%d must be >= 0 with b1 + b2 >= 1", sc.b1, sc.b2));
    }
    if (sc.strategy != ScopeStrategy::kSlide && sc.T <= sc.b2) {
      return Status::InvalidArgument(
          StrFormat("sieve.scope.T: must be > b2=%d for the %s strategy, got %d", sc.b2,
                    std::string(ScopeStrategyName(sc.strategy)).c_str(), sc.T));
    }
  }
  if (g->temperature < 0.f || g->top_p <= 0.f || g->top_p > 1.f || g->top_k < 0) {
    return Status::InvalidArgument(
        StrFormat("sampling: temperature=%g must be >= 0, top_p=%g in (0, 1], top_k=%d >= 0",
                  g->temperature, g->top_p, g->top_k));
  }
  return Status::Ok();
}

}  // namespace sieve::worker
