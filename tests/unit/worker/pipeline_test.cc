// The single-process pipeline against tools/oracle.py (tests/fixtures/pipeline/oracle_dev.json):
// every scenario's kept chunks, prefill cache sizes and layout, calibration evictions, generated
// ids, SCOPE fired steps, final cache and decode positions exactly; chunk scores, the first
// token's top-5 logits and forced log-probabilities to 1e-4. Plus the invariants of the issue.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "tests/unit/test_util.h"
#include "worker/pipeline.h"

namespace sieve::worker {
namespace {

using sieve::testing::FixturePath;

std::vector<int32_t> Ids(const boost::json::value& v) {
  std::vector<int32_t> out;
  for (const auto& x : v.as_array()) out.push_back(static_cast<int32_t>(x.as_int64()));
  return out;
}

double Num(const boost::json::value& v) {
  return v.is_double() ? v.as_double() : double(v.as_int64());
}

class PipelineOracleTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    backend_ = MakeCpuBackend().release();
    auto config = ModelConfig::FromJsonFile(FixturePath("tiny-llama3/config.json"));
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    auto weights = ModelWeights::Load(*config, FixturePath("tiny-llama3"), *backend_);
    ASSERT_TRUE(weights.ok()) << weights.status().ToString();
    auto model = Transformer::Create(*config, std::move(weights).value(), *backend_);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(model).value().release();
    oracle_ = new boost::json::value(
        boost::json::parse(sieve::testing::ReadFileOrDie(FixturePath("pipeline/oracle_dev.json"))));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete backend_;
    delete oracle_;
  }

  // The oracle's scenario parameters as a pipeline input.
  static PipelineInput InputFor(const boost::json::object& params) {
    PipelineInput in;
    in.document_ids = Ids(oracle_->at("document_ids"));
    in.query_ids = Ids(oracle_->at("query_ids"));
    in.explain = true;
    SieveOptions& s = in.sieve;
    s.chunk_tokens = static_cast<int>(params.at("chunk_tokens").as_int64());
    s.keep_chunks = static_cast<int>(params.at("keep_k").as_int64());
    if (params.contains("mode") && params.at("mode").as_string() == "full")
      s.mode = PrefillMode::kFull;
    if (params.contains("capacity") && !params.at("capacity").is_null()) {
      s.kv_capacity = static_cast<int>(params.at("capacity").as_int64());
    }
    if (params.contains("calib") && !params.at("calib").is_null()) {
      CalibrationOptions calib;
      for (const auto& p : params.at("calib").as_array()) {
        calib.layers.push_back(*ParseCalibrationPattern(std::string(p.as_string())));
      }
      calib.threshold = static_cast<float>(Num(params.at("lam")));
      calib.region = static_cast<int>(params.at("R").as_int64());
      s.calibration = calib;
    }
    s.scope.strategy = ScopeStrategy::kOff;
    if (params.contains("scope") && !params.at("scope").is_null()) {
      const auto& sc = params.at("scope").as_object();
      s.scope.strategy = *ParseScopeStrategy(std::string(sc.at("strategy").as_string()));
      s.scope.b1 = static_cast<int>(sc.at("b1").as_int64());
      s.scope.b2 = static_cast<int>(sc.at("b2").as_int64());
      s.scope.T = static_cast<int>(sc.at("T").as_int64());
    }
    in.generation.max_new_tokens = static_cast<int>(params.at("max_new").as_int64());
    if (params.contains("forced") && params.at("forced").as_bool()) {
      in.generation.force_continuation_ids = Ids(oracle_->at("continuation_ids"));
    }
    return in;
  }

  static std::vector<std::vector<int32_t>> EntryList(const boost::json::value& v) {
    std::vector<std::vector<int32_t>> out;
    for (const auto& e : v.as_array()) out.push_back(Ids(e));
    return out;
  }

  static Backend* backend_;
  static Transformer* model_;
  static boost::json::value* oracle_;
};

Backend* PipelineOracleTest::backend_ = nullptr;
Transformer* PipelineOracleTest::model_ = nullptr;
boost::json::value* PipelineOracleTest::oracle_ = nullptr;

TEST_P(PipelineOracleTest, MatchesOracle) {
  ASSERT_NE(model_, nullptr);
  const auto& scenario = oracle_->at("scenarios").at(GetParam()).as_object();
  const auto& want = scenario.at("result").as_object();
  auto got = RunPipeline(*model_, InputFor(scenario.at("params").as_object()));
  ASSERT_TRUE(got.ok()) << got.status().ToString();

  // Chunks, scores and selection.
  const auto& chunks = want.at("chunks").as_array();
  ASSERT_EQ(got->chunks.size(), chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(got->chunks[i].tokens, chunks[i].at("tokens").as_int64()) << "chunk " << i;
    EXPECT_NEAR(got->chunks[i].score, Num(chunks[i].at("score")), 1e-4) << "chunk " << i;
    EXPECT_EQ(got->chunks[i].kept, chunks[i].at("kept").as_bool()) << "chunk " << i;
  }
  EXPECT_EQ(std::vector<int32_t>(got->kept_chunks.begin(), got->kept_chunks.end()),
            Ids(want.at("kept_chunks")));
  if (want.contains("p0")) {
    EXPECT_EQ(got->p0, want.at("p0").as_int64());
  }
  if (want.contains("prefill_cache")) {
    std::vector<std::vector<int32_t>> cache;
    for (const auto& l : got->prefill_cache) cache.emplace_back(l.begin(), l.end());
    EXPECT_EQ(cache, EntryList(want.at("prefill_cache")));
  }
  if (want.contains("layout_prefill")) {
    const auto& layout = want.at("layout_prefill").as_array();
    ASSERT_EQ(got->layout_prefill.size(), layout.size());
    for (size_t l = 0; l < layout.size(); ++l) {
      for (size_t g = 0; g < layout[l].as_array().size(); ++g) {
        const auto want_entries = EntryList(layout[l].as_array()[g]);
        const auto& got_entries = got->layout_prefill[l][g];
        ASSERT_EQ(got_entries.size(), want_entries.size()) << "layer " << l << " head " << g;
        for (size_t e = 0; e < want_entries.size(); ++e) {
          EXPECT_EQ(got_entries[e].chunk, want_entries[e][0]) << l << "/" << g << "/" << e;
          EXPECT_EQ(got_entries[e].position, want_entries[e][1]) << l << "/" << g << "/" << e;
        }
      }
    }
    const auto& evicted = want.at("calibration_evicted").as_array();
    for (size_t l = 0; l < evicted.size(); ++l) {
      for (size_t g = 0; g < evicted[l].as_array().size(); ++g) {
        const auto want_entries = EntryList(evicted[l].as_array()[g]);
        const auto& got_entries = got->calibration_evicted[l][g];
        ASSERT_EQ(got_entries.size(), want_entries.size())
            << "evicted layer " << l << " head " << g;
        for (size_t e = 0; e < want_entries.size(); ++e) {
          EXPECT_EQ(got_entries[e].chunk, want_entries[e][0]);
          EXPECT_EQ(got_entries[e].position, want_entries[e][1]);
        }
      }
    }
  }
  // First token and generation.
  const auto& top5 = want.at("first_top5").as_array();
  ASSERT_EQ(got->first_top5.size(), top5.size());
  for (size_t i = 0; i < top5.size(); ++i) {
    EXPECT_EQ(got->first_top5[i].first, top5[i].as_array()[0].as_int64()) << "top5 " << i;
    EXPECT_NEAR(got->first_top5[i].second, Num(top5[i].as_array()[1]), 1e-4) << "top5 " << i;
  }
  EXPECT_EQ(got->generated_ids, Ids(want.at("generated_ids")));
  if (want.contains("forced_logprobs")) {
    const auto& lp = want.at("forced_logprobs").as_array();
    ASSERT_EQ(got->forced_logprobs.size(), lp.size());
    for (size_t i = 0; i < lp.size(); ++i) {
      EXPECT_NEAR(got->forced_logprobs[i], Num(lp[i]), 1e-4) << "forced token " << i;
    }
  }
  if (want.contains("scope_fired_steps")) {
    EXPECT_EQ(std::vector<int32_t>(got->scope_fired_steps.begin(), got->scope_fired_steps.end()),
              Ids(want.at("scope_fired_steps")));
    if (!want.at("final_cache").is_null()) {
      std::vector<std::vector<int32_t>> cache;
      for (const auto& l : got->final_cache) cache.emplace_back(l.begin(), l.end());
      EXPECT_EQ(cache, EntryList(want.at("final_cache")));
      const auto& positions = want.at("final_decode_positions").as_array();
      for (size_t l = 0; l < positions.size(); ++l) {
        EXPECT_EQ(std::vector<std::vector<int32_t>>(got->final_decode_positions[l].begin(),
                                                    got->final_decode_positions[l].end()),
                  EntryList(positions[l]))
            << "layer " << l;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Scenarios, PipelineOracleTest,
                         ::testing::Values("parallelcomp_k2", "parallel_all", "full", "compress",
                                           "calibrate", "scope_slide", "scope_adaptive",
                                           "scope_discontinuous", "everything",
                                           "forced_full_cache"));

}  // namespace
}  // namespace sieve::worker

namespace sieve::worker {
namespace {

// Invariants of the algorithm, on the tiny model with the oracle's document.
class PipelineInvariantTest : public PipelineOracleTest {
 protected:
  static PipelineInput Base(int max_new) {
    PipelineInput in;
    in.document_ids = Ids(oracle_->at("document_ids"));
    in.query_ids = Ids(oracle_->at("query_ids"));
    in.sieve.scope.strategy = ScopeStrategy::kOff;
    in.generation.max_new_tokens = max_new;
    return in;
  }
};

TEST_F(PipelineInvariantTest, OneChunkKeepAllEqualsFullAttention) {
  PipelineInput one = Base(12);
  one.sieve.mode = PrefillMode::kParallel;
  one.sieve.chunk_tokens = static_cast<int>(one.document_ids.size());
  PipelineInput full = Base(12);
  full.sieve.mode = PrefillMode::kFull;
  auto a = RunPipeline(*model_, one);
  auto b = RunPipeline(*model_, full);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->chunks.size(), 1u);
  EXPECT_EQ(a->generated_ids, b->generated_ids);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(a->first_top5[i].first, b->first_top5[i].first);
    EXPECT_NEAR(a->first_top5[i].second, b->first_top5[i].second, 1e-4);
  }
}

TEST_F(PipelineInvariantTest, ScopeWithLargeBudgetsEqualsOff) {
  PipelineInput off = Base(30);
  off.generation.force_continuation_ids = Ids(oracle_->at("continuation_ids"));
  auto reference = RunPipeline(*model_, off);
  ASSERT_TRUE(reference.ok());
  for (ScopeStrategy s :
       {ScopeStrategy::kSlide, ScopeStrategy::kAdaptive, ScopeStrategy::kDiscontinuous}) {
    PipelineInput in = off;
    in.sieve.scope = {.strategy = s, .b1 = 8, .b2 = 30, .T = 60};
    auto got = RunPipeline(*model_, in);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(got->scope_fired_steps.empty()) << ScopeStrategyName(s);
    ASSERT_EQ(got->forced_logprobs.size(), reference->forced_logprobs.size());
    for (size_t i = 0; i < got->forced_logprobs.size(); ++i) {
      EXPECT_NEAR(got->forced_logprobs[i], reference->forced_logprobs[i], 1e-5)
          << ScopeStrategyName(s);
    }
  }
}

TEST_F(PipelineInvariantTest, PackingDoesNotChangeScores) {
  // One chunk per forward vs every chunk in one packed forward.
  PipelineInput packed = Base(4);
  packed.sieve.chunk_tokens = 300;
  packed.sieve.kv_capacity = 40;
  PipelineInput single = packed;
  single.max_batch_rows = 1;  // raised to the longest chunk: one chunk per forward
  auto a = RunPipeline(*model_, packed);
  auto b = RunPipeline(*model_, single);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->prefill_forwards, 1);
  EXPECT_EQ(b->prefill_forwards, static_cast<int>(b->chunks.size()));
  for (size_t i = 0; i < a->chunks.size(); ++i)
    EXPECT_NEAR(a->chunks[i].score, b->chunks[i].score, 1e-5);
  EXPECT_EQ(a->generated_ids, b->generated_ids);
}

TEST_F(PipelineInvariantTest, SeededSamplingIsReproducible) {
  PipelineInput in = Base(10);
  in.generation.temperature = 1.5f;
  in.generation.top_p = 0.9f;
  in.generation.top_k = 50;
  in.generation.seed = 1234;
  auto a = RunPipeline(*model_, in);
  auto b = RunPipeline(*model_, in);
  in.generation.seed = 99;
  auto c = RunPipeline(*model_, in);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->generated_ids, b->generated_ids);
  EXPECT_NE(a->generated_ids, c->generated_ids);
}

TEST_F(PipelineInvariantTest, StopsWhenTheSinkSaysSo) {
  int calls = 0;
  auto got = RunPipeline(*model_, Base(20), [&](int32_t) { return ++calls < 3; });
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->generated_ids.size(), 3u);
  EXPECT_EQ(got->finish_reason, "stop");
}

TEST_F(PipelineInvariantTest, RejectsBadInput) {
  auto code = [&](PipelineInput in) { return RunPipeline(*model_, in).status().code(); };
  PipelineInput in = Base(4);
  in.document_ids.clear();
  EXPECT_EQ(code(in), StatusCode::kInvalidArgument);
  in = Base(4);
  in.query_ids.push_back(500000);
  EXPECT_EQ(code(in), StatusCode::kInvalidArgument);
  in = Base(4);
  in.sieve.calibration =
      CalibrationOptions{.layers = {CalibrationPattern::kSink}};  // 1 of 2 layers
  EXPECT_EQ(code(in), StatusCode::kInvalidArgument);
  in = Base(4);
  in.sieve.scope = {.strategy = ScopeStrategy::kAdaptive, .b1 = 4, .b2 = 8, .T = 8};
  EXPECT_EQ(code(in), StatusCode::kInvalidArgument);
  in = Base(4);
  in.sieve.mode = PrefillMode::kFull;
  in.sieve.kv_capacity = 8;
  EXPECT_EQ(code(in), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sieve::worker
