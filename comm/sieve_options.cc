#include "comm/sieve_options.h"

#include <algorithm>

namespace sieve {
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

Status ResolveOptions(const ModelLimits& model, SieveOptions* s, GenerationOptions* g) {
  if (s->chunk_tokens == 0) s->chunk_tokens = model.default_chunk_tokens;
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
    return Status::InvalidArgument(
        StrFormat("sieve.kv_window: must be >= 1, got %d", s->kv_window));
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
    if (static_cast<int64_t>(c.layers.size()) != model.num_layers) {
      return Status::InvalidArgument(
          StrFormat("sieve.calibration.layers: needs one pattern per layer (%lld), got %zu",
                    static_cast<long long>(model.num_layers), c.layers.size()));
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

namespace {

PrefillMode ModeFromProto(proto::PrefillMode m) {
  switch (m) {
    case proto::PREFILL_MODE_PARALLEL:
      return PrefillMode::kParallel;
    case proto::PREFILL_MODE_FULL:
      return PrefillMode::kFull;
    default:
      return PrefillMode::kParallelComp;
  }
}

proto::PrefillMode ModeToProto(PrefillMode m) {
  switch (m) {
    case PrefillMode::kParallel:
      return proto::PREFILL_MODE_PARALLEL;
    case PrefillMode::kFull:
      return proto::PREFILL_MODE_FULL;
    default:
      return proto::PREFILL_MODE_PARALLELCOMP;
  }
}

CalibrationPattern PatternFromProto(int p) {
  switch (p) {
    case proto::CALIBRATION_SINK:
      return CalibrationPattern::kSink;
    case proto::CALIBRATION_RECENT:
      return CalibrationPattern::kRecent;
    case proto::CALIBRATION_MIDDLE:
      return CalibrationPattern::kMiddle;
    case proto::CALIBRATION_ALL:
      return CalibrationPattern::kAll;
    default:
      return CalibrationPattern::kNone;
  }
}

proto::CalibrationPattern PatternToProto(CalibrationPattern p) {
  switch (p) {
    case CalibrationPattern::kSink:
      return proto::CALIBRATION_SINK;
    case CalibrationPattern::kRecent:
      return proto::CALIBRATION_RECENT;
    case CalibrationPattern::kMiddle:
      return proto::CALIBRATION_MIDDLE;
    case CalibrationPattern::kAll:
      return proto::CALIBRATION_ALL;
    default:
      return proto::CALIBRATION_NONE;
  }
}

ScopeStrategy StrategyFromProto(proto::ScopeStrategy s) {
  switch (s) {
    case proto::SCOPE_ADAPTIVE:
      return ScopeStrategy::kAdaptive;
    case proto::SCOPE_DISCONTINUOUS:
      return ScopeStrategy::kDiscontinuous;
    case proto::SCOPE_OFF:
      return ScopeStrategy::kOff;
    default:
      return ScopeStrategy::kSlide;
  }
}

proto::ScopeStrategy StrategyToProto(ScopeStrategy s) {
  switch (s) {
    case ScopeStrategy::kAdaptive:
      return proto::SCOPE_ADAPTIVE;
    case ScopeStrategy::kDiscontinuous:
      return proto::SCOPE_DISCONTINUOUS;
    case ScopeStrategy::kOff:
      return proto::SCOPE_OFF;
    default:
      return proto::SCOPE_SLIDE;
  }
}

}  // namespace

void SieveOptionsFromProto(const proto::SieveOptions& s, SieveOptions* o) {
  o->mode = ModeFromProto(s.mode());
  if (s.has_chunk_tokens()) o->chunk_tokens = s.chunk_tokens();
  if (s.has_keep_chunks()) o->keep_chunks = s.keep_chunks();
  if (s.has_kv_capacity()) o->kv_capacity = s.kv_capacity();
  if (s.has_kv_window()) o->kv_window = s.kv_window();
  if (s.has_kv_pool()) o->kv_pool = s.kv_pool();
  if (s.has_calibration()) {
    CalibrationOptions c;
    for (int p : s.calibration().layers()) c.layers.push_back(PatternFromProto(p));
    c.threshold = s.calibration().threshold();
    c.region = s.calibration().region();
    o->calibration = std::move(c);
  }
  const proto::Scope& sc = s.scope();
  o->scope.strategy = StrategyFromProto(sc.strategy());
  if (sc.has_b1()) o->scope.b1 = sc.b1();
  if (sc.has_b2()) o->scope.b2 = sc.b2();
  if (sc.has_t()) o->scope.T = sc.t();
}

void SieveOptionsToProto(const SieveOptions& o, proto::SieveOptions* s) {
  s->Clear();
  s->set_mode(ModeToProto(o.mode));
  s->set_chunk_tokens(o.chunk_tokens);
  s->set_keep_chunks(o.keep_chunks);
  if (o.kv_capacity) s->set_kv_capacity(*o.kv_capacity);
  s->set_kv_window(o.kv_window);
  s->set_kv_pool(o.kv_pool);
  if (o.calibration) {
    proto::Calibration* c = s->mutable_calibration();
    for (CalibrationPattern p : o.calibration->layers) c->add_layers(PatternToProto(p));
    c->set_threshold(o.calibration->threshold);
    c->set_region(o.calibration->region);
  }
  proto::Scope* sc = s->mutable_scope();
  sc->set_strategy(StrategyToProto(o.scope.strategy));
  sc->set_b1(o.scope.b1);
  sc->set_b2(o.scope.b2);
  sc->set_t(o.scope.T);
}

void OptionsFromProto(const proto::GenerateRequest& r, SieveOptions* sieve, GenerationOptions* g) {
  if (r.has_max_new_tokens()) g->max_new_tokens = r.max_new_tokens();
  if (r.has_temperature()) g->temperature = r.temperature();
  if (r.has_top_p()) g->top_p = r.top_p();
  if (r.has_top_k()) g->top_k = r.top_k();
  if (r.has_seed()) g->seed = r.seed();
  g->force_continuation_ids.assign(r.force_continuation_ids().begin(),
                                   r.force_continuation_ids().end());
  SieveOptionsFromProto(r.sieve(), sieve);
}

}  // namespace sieve
