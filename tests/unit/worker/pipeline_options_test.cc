// Tests of worker/pipeline_options.{h,cc} and the checks of comm/sieve_options.h: the
// model-dependent default chunk size, LimitsOf, and ResolveOptions (defaults filled against the
// model, every range and consistency check with an error naming its field), plus the enum name
// tables.
//
// DefaultChunkTokens is checked on real config.json files and realistic hand-written ones:
// tiny-llama3 and Llama-3.1-8B (llama3 RoPE over an 8K original window) -> 6000, an 8K-native
// model (default RoPE, max_position_embeddings 8192) -> 7600, a 32K Mistral-like model ->
// 31768 (window - 1000), and the small-window rule (window - window / 4 under 4000).
//
//   ./build/tests/sieve_unit_tests --gtest_filter='PipelineOptions*:DefaultChunkTokens*'
#include "worker/pipeline_options.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/test_util.h"

namespace sieve::worker {
namespace {

ModelConfig ConfigFromJson(const std::string& text) {
  StatusOr<ModelConfig> c = ModelConfig::FromJson(text, "test-config.json");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : ModelConfig();
}

ModelConfig ConfigFromFixture(const std::string& relative) {
  StatusOr<ModelConfig> c = ModelConfig::FromJsonFile(testing::FixturePath(relative));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : ModelConfig();
}

// A Llama config with default RoPE and the given window (what Meta-Llama-3-8B ships, resized).
ModelConfig DefaultRopeConfig(int64_t max_position_embeddings,
                              const std::string& model_type = "llama") {
  return ConfigFromJson(
      StrFormat(R"({
    "architectures": ["%s"], "model_type": "%s",
    "vocab_size": 32000, "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": %lld, "rms_norm_eps": 1e-5, "rope_theta": 500000.0})",
                model_type == "mistral" ? "MistralForCausalLM" : "LlamaForCausalLM",
                model_type.c_str(), static_cast<long long>(max_position_embeddings)));
}

// ---------------------------------------------------------------------------------------------
// DefaultChunkTokens.

TEST(DefaultChunkTokensTest, TinyLlama3Fixture) {
  const ModelConfig c = ConfigFromFixture("tiny-llama3/config.json");
  ASSERT_EQ(c.rope.type, RopeType::kLlama3);
  ASSERT_EQ(c.rope.original_max_position_embeddings, 8192);
  ASSERT_EQ(c.max_position_embeddings, 131072);
  EXPECT_EQ(DefaultChunkTokens(c), 6000);
}

TEST(DefaultChunkTokensTest, Llama31_8BConfig) {
  EXPECT_EQ(DefaultChunkTokens(ConfigFromFixture("llama3.1-8b/config.json")), 6000);
}

TEST(DefaultChunkTokensTest, EightKNativeModel) {
  const ModelConfig c = DefaultRopeConfig(8192);
  ASSERT_EQ(c.rope.type, RopeType::kDefault);
  EXPECT_EQ(DefaultChunkTokens(c), 7600);
}

TEST(DefaultChunkTokensTest, MistralLike32K) {
  const ModelConfig c = ConfigFromJson(R"({
    "architectures": ["MistralForCausalLM"], "model_type": "mistral",
    "vocab_size": 32000, "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "rope_theta": 1000000.0,
    "sliding_window": null})");
  ASSERT_EQ(c.max_position_embeddings, 32768);
  EXPECT_EQ(DefaultChunkTokens(c), 32768 - 1000);
}

TEST(DefaultChunkTokensTest, WindowMinusOneThousand) {
  EXPECT_EQ(DefaultChunkTokens(DefaultRopeConfig(131072)), 130072);
  EXPECT_EQ(DefaultChunkTokens(DefaultRopeConfig(16384)), 15384);
  EXPECT_EQ(DefaultChunkTokens(DefaultRopeConfig(4096)), 3096);
  EXPECT_EQ(DefaultChunkTokens(DefaultRopeConfig(4000)), 3000);  // the boundary
}

TEST(DefaultChunkTokensTest, SmallWindowsLoseAQuarter) {
  EXPECT_EQ(DefaultChunkTokens(DefaultRopeConfig(3999)), 3000);  // 3999 - 999
  EXPECT_EQ(DefaultChunkTokens(DefaultRopeConfig(2048)), 1536);
  EXPECT_EQ(DefaultChunkTokens(DefaultRopeConfig(1024)), 768);
  EXPECT_EQ(DefaultChunkTokens(DefaultRopeConfig(512)), 384);
  // Every small window leaves room for the [BOS] ... [BOS] query around a chunk.
  for (int64_t w : {64, 100, 333, 1000, 2047, 3999}) {
    const int chunk = DefaultChunkTokens(DefaultRopeConfig(w));
    EXPECT_LT(chunk, w) << "window " << w;
    EXPECT_EQ(chunk, w - w / 4) << "window " << w;
  }
}

TEST(DefaultChunkTokensTest, Llama3RopeUsesTheOriginalWindow) {
  // llama3 RoPE over a 4K original window (not Llama-3.1's 8K): window - 1000 of the original
  // window, not of max_position_embeddings.
  ModelConfig c = ConfigFromFixture("tiny-llama3/config.json");
  c.rope.original_max_position_embeddings = 4096;
  EXPECT_EQ(DefaultChunkTokens(c), 3096);
  c.rope.original_max_position_embeddings = 2048;
  EXPECT_EQ(DefaultChunkTokens(c), 1536);
  // The same 8192 window with default RoPE is the 8K-native rule.
  ModelConfig d = c;
  d.rope = RopeConfig{};
  d.max_position_embeddings = 8192;
  EXPECT_EQ(DefaultChunkTokens(d), 7600);
}

// ---------------------------------------------------------------------------------------------
// ResolveOptions.

class PipelineOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override { config_ = ConfigFromFixture("tiny-llama3/config.json"); }

  // Expects ResolveOptions to fail with INVALID_ARGUMENT and every fragment in the message.
  void ExpectError(SieveOptions s, GenerationOptions g,
                   std::initializer_list<std::string_view> fragments) {
    const Status status = ResolveOptions(config_, &s, &g);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
    for (std::string_view f : fragments) {
      EXPECT_NE(status.message().find(f), std::string::npos)
          << "'" << f << "' not in: " << status.message();
    }
  }

  ModelConfig config_;
};

TEST_F(PipelineOptionsTest, DefaultsResolve) {
  SieveOptions s;
  GenerationOptions g;
  ASSERT_TRUE(ResolveOptions(config_, &s, &g).ok());
  EXPECT_EQ(s.chunk_tokens, 6000);  // from the model
  EXPECT_EQ(s.scope.T, 64);         // = max_new_tokens
  EXPECT_EQ(s.scope.strategy, ScopeStrategy::kSlide);
  EXPECT_EQ(s.scope.b1, 256);
  EXPECT_EQ(s.scope.b2, 256);
  EXPECT_EQ(s.keep_chunks, 3);
  EXPECT_EQ(s.kv_window, 8);
  EXPECT_EQ(s.kv_pool, 7);
  EXPECT_FALSE(s.kv_capacity.has_value());
  EXPECT_FALSE(s.calibration.has_value());
  EXPECT_EQ(g.max_new_tokens, 64);
}

TEST_F(PipelineOptionsTest, ExplicitValuesAreKept) {
  SieveOptions s;
  s.chunk_tokens = 300;
  s.scope = {.strategy = ScopeStrategy::kAdaptive, .b1 = 8, .b2 = 8, .T = 40};
  GenerationOptions g;
  g.max_new_tokens = 20;
  ASSERT_TRUE(ResolveOptions(config_, &s, &g).ok());
  EXPECT_EQ(s.chunk_tokens, 300);
  EXPECT_EQ(s.scope.T, 40);
  EXPECT_EQ(g.max_new_tokens, 20);
}

TEST_F(PipelineOptionsTest, ForcedContinuationCapsMaxNewTokensAndT) {
  SieveOptions s;
  GenerationOptions g;
  g.max_new_tokens = 64;
  g.force_continuation_ids = {220, 23670, 1032, 13, 578};
  ASSERT_TRUE(ResolveOptions(config_, &s, &g).ok());
  EXPECT_EQ(g.max_new_tokens, 5);
  EXPECT_EQ(s.scope.T, 5);  // T defaults to the capped length
  // A shorter max_new_tokens wins over a longer continuation.
  SieveOptions s2;
  GenerationOptions g2;
  g2.max_new_tokens = 3;
  g2.force_continuation_ids = {220, 23670, 1032, 13, 578};
  ASSERT_TRUE(ResolveOptions(config_, &s2, &g2).ok());
  EXPECT_EQ(g2.max_new_tokens, 3);
}

TEST_F(PipelineOptionsTest, FieldErrors) {
  {
    SieveOptions s;
    s.chunk_tokens = -1;
    ExpectError(s, {}, {"sieve.chunk_tokens: must be >= 1, got -1"});
  }
  {
    SieveOptions s;
    s.keep_chunks = 0;
    ExpectError(s, {}, {"sieve.keep_chunks: must be >= 1, got 0"});
  }
  {
    SieveOptions s;
    s.kv_capacity = 0;
    ExpectError(s, {}, {"sieve.kv_capacity: must be >= 1 or null, got 0"});
  }
  {
    SieveOptions s;
    s.kv_window = 0;
    ExpectError(s, {}, {"sieve.kv_window: must be >= 1, got 0"});
  }
  {
    SieveOptions s;
    s.kv_pool = 4;
    ExpectError(s, {}, {"sieve.kv_pool: must be an odd number >= 1, got 4"});
    s.kv_pool = 0;
    ExpectError(s, {}, {"sieve.kv_pool: must be an odd number >= 1, got 0"});
    s.kv_pool = -3;
    ExpectError(s, {}, {"sieve.kv_pool", "got -3"});
  }
  {
    GenerationOptions g;
    g.max_new_tokens = 0;
    ExpectError({}, g, {"max_new_tokens: must be >= 1, got 0"});
  }
}

TEST_F(PipelineOptionsTest, FullModeExcludesCompressionAndCalibration) {
  SieveOptions s;
  s.mode = PrefillMode::kFull;
  s.kv_capacity = 64;
  ExpectError(s, {}, {"sieve.mode", "kv_capacity"});
  SieveOptions c;
  c.mode = PrefillMode::kFull;
  c.calibration =
      CalibrationOptions{.layers = {CalibrationPattern::kAll, CalibrationPattern::kAll}};
  ExpectError(c, {}, {"sieve.mode", "calibration"});
  // Full mode by itself is fine.
  SieveOptions f;
  f.mode = PrefillMode::kFull;
  GenerationOptions g;
  EXPECT_TRUE(ResolveOptions(config_, &f, &g).ok());
}

TEST_F(PipelineOptionsTest, CalibrationChecks) {
  SieveOptions s;
  s.calibration = CalibrationOptions{.layers = {CalibrationPattern::kSink}};
  ExpectError(s, {}, {"sieve.calibration.layers: needs one pattern per layer (2), got 1"});
  s.calibration->layers = {CalibrationPattern::kSink, CalibrationPattern::kMiddle,
                           CalibrationPattern::kAll};
  ExpectError(s, {}, {"sieve.calibration.layers", "got 3"});
  s.calibration->layers = {CalibrationPattern::kSink, CalibrationPattern::kMiddle};
  s.calibration->threshold = 1.5f;
  ExpectError(s, {}, {"sieve.calibration.threshold: must be in [0, 1], got 1.5"});
  s.calibration->threshold = -0.25f;
  ExpectError(s, {}, {"sieve.calibration.threshold", "got -0.25"});
  s.calibration->threshold = 0.003f;
  s.calibration->region = -1;
  ExpectError(s, {}, {"sieve.calibration.region: must be >= 0, got -1"});
  s.calibration->region = 16;
  GenerationOptions g;
  EXPECT_TRUE(ResolveOptions(config_, &s, &g).ok());
}

TEST_F(PipelineOptionsTest, ScopeChecks) {
  SieveOptions s;
  s.scope = {.strategy = ScopeStrategy::kSlide, .b1 = -1, .b2 = 8, .T = 0};
  ExpectError(s, {}, {"sieve.scope: b1=-1 and b2=8"});
  s.scope = {.strategy = ScopeStrategy::kSlide, .b1 = 0, .b2 = 0, .T = 0};
  ExpectError(s, {}, {"sieve.scope: b1=0 and b2=0", "b1 + b2 >= 1"});
  // Adaptive and discontinuous need T > b2; slide does not.
  GenerationOptions g;
  g.max_new_tokens = 40;
  for (ScopeStrategy st : {ScopeStrategy::kAdaptive, ScopeStrategy::kDiscontinuous}) {
    s.scope = {.strategy = st, .b1 = 8, .b2 = 40, .T = 40};
    ExpectError(s, g, {"sieve.scope.T: must be > b2=40 for the", "got 40"});
    s.scope = {.strategy = st, .b1 = 8, .b2 = 39, .T = 40};
    GenerationOptions ok = g;
    SieveOptions so = s;
    EXPECT_TRUE(ResolveOptions(config_, &so, &ok).ok()) << ScopeStrategyName(st);
  }
  // T defaults to max_new_tokens before the check: 40 <= b2=64 fails.
  s.scope = {.strategy = ScopeStrategy::kAdaptive, .b1 = 8, .b2 = 64, .T = 0};
  ExpectError(s, g, {"sieve.scope.T: must be > b2=64 for the adaptive strategy, got 40"});
  SieveOptions slide;
  slide.scope = {.strategy = ScopeStrategy::kSlide, .b1 = 8, .b2 = 64, .T = 10};
  GenerationOptions gs = g;
  EXPECT_TRUE(ResolveOptions(config_, &slide, &gs).ok());
  // Off ignores the budgets entirely.
  SieveOptions off;
  off.scope = {.strategy = ScopeStrategy::kOff, .b1 = -5, .b2 = -5, .T = 0};
  GenerationOptions go;
  EXPECT_TRUE(ResolveOptions(config_, &off, &go).ok());
}

TEST_F(PipelineOptionsTest, SamplingChecks) {
  GenerationOptions g;
  g.temperature = -1.f;
  ExpectError({}, g, {"temperature=-1"});
  g = {};
  g.top_p = 0.f;
  ExpectError({}, g, {"top_p=0"});
  g = {};
  g.top_p = 1.5f;
  ExpectError({}, g, {"top_p=1.5"});
  g = {};
  g.top_k = -1;
  ExpectError({}, g, {"top_k=-1"});
  g = {};
  g.temperature = 0.7f;
  g.top_p = 0.9f;
  g.top_k = 50;
  SieveOptions s;
  EXPECT_TRUE(ResolveOptions(config_, &s, &g).ok());
}

TEST(PipelineOptionsNamesTest, NamesRoundTrip) {
  for (PrefillMode m : {PrefillMode::kParallelComp, PrefillMode::kParallel, PrefillMode::kFull}) {
    EXPECT_EQ(ParsePrefillMode(PrefillModeName(m)), m);
  }
  for (CalibrationPattern p :
       {CalibrationPattern::kNone, CalibrationPattern::kSink, CalibrationPattern::kRecent,
        CalibrationPattern::kMiddle, CalibrationPattern::kAll}) {
    EXPECT_EQ(ParseCalibrationPattern(CalibrationPatternName(p)), p);
  }
  for (ScopeStrategy s : {ScopeStrategy::kOff, ScopeStrategy::kSlide, ScopeStrategy::kAdaptive,
                          ScopeStrategy::kDiscontinuous}) {
    EXPECT_EQ(ParseScopeStrategy(ScopeStrategyName(s)), s);
  }
  EXPECT_EQ(PrefillModeName(PrefillMode::kParallelComp), "parallelcomp");
  EXPECT_EQ(ScopeStrategyName(ScopeStrategy::kDiscontinuous), "discontinuous");
  EXPECT_EQ(CalibrationPatternName(CalibrationPattern::kMiddle), "middle");
  EXPECT_FALSE(ParsePrefillMode("Full").has_value());
  EXPECT_FALSE(ParseScopeStrategy("").has_value());
  EXPECT_FALSE(ParseCalibrationPattern("sinks").has_value());
}

// ---------------------------------------------------------------------------------------------
// ModelLimits: what the shared checks (comm/sieve_options.h) know about the model.

TEST(PipelineOptionsLimitsTest, LimitsOfTheFixture) {
  const ModelLimits limits = LimitsOf(ConfigFromFixture("tiny-llama3/config.json"));
  EXPECT_EQ(limits.num_layers, 2);
  EXPECT_EQ(limits.default_chunk_tokens, 6000);
  const ModelLimits eight_k = LimitsOf(DefaultRopeConfig(8192));
  EXPECT_EQ(eight_k.num_layers, 2);
  EXPECT_EQ(eight_k.default_chunk_tokens, 7600);
}

TEST(PipelineOptionsLimitsTest, SharedResolveUsesTheLimits) {
  const ModelLimits limits{.num_layers = 3, .default_chunk_tokens = 1234};
  SieveOptions s;
  GenerationOptions g;
  ASSERT_TRUE(::sieve::ResolveOptions(limits, &s, &g).ok());
  EXPECT_EQ(s.chunk_tokens, 1234);
  SieveOptions c;
  c.calibration =
      CalibrationOptions{.layers = {CalibrationPattern::kAll, CalibrationPattern::kAll}};
  const Status status = ::sieve::ResolveOptions(limits, &c, &g);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(
      status.message().find("sieve.calibration.layers: needs one pattern per layer (3), got 2"),
      std::string::npos)
      << status.message();
}

}  // namespace
}  // namespace sieve::worker
