// Forward parity with the Hugging Face references in tests/fixtures/tiny-llama3: for every case
// (one BOS; 7 tokens; 700 tokens; a ParallelComp chunk with positions restarting at 0; 64 tokens
// at positions 20000..20063) the keys after RoPE and the values of every layer, the final hidden
// states, the next-token log-probabilities and the last logits, each to 1e-4 relative.
// (The pipeline test checks the float32-frequency convention against oracle_dev.json.)
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "tests/unit/test_util.h"
#include "worker/safetensors.h"
#include "worker/sequence_forward.h"

namespace sieve::worker {
namespace {

using sieve::testing::FixturePath;
using sieve::testing::MaxAbsRelError;

constexpr double kTolerance = 1e-4;

class TransformerFixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    backend_ = MakeCpuBackend().release();
    auto config = ModelConfig::FromJsonFile(FixturePath("tiny-llama3/config.json"));
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    auto weights = ModelWeights::Load(*config, FixturePath("tiny-llama3"), *backend_);
    ASSERT_TRUE(weights.ok()) << weights.status().ToString();
    // make_fixtures.py builds the model and casts it with .to(torch.bfloat16), which rounds the
    // RoPE inverse frequencies to bf16 too (worker/rope_table.h).
    auto model = Transformer::Create(*config, std::move(weights).value(), *backend_,
                                     {.rope_inv_freq_dtype = DType::kBF16});
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = std::move(model).value().release();
    auto ref = SafetensorsFile::Open(FixturePath("tiny-llama3/reference.safetensors"));
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    reference_ = std::move(ref).value().release();
    cases_ = new boost::json::value(boost::json::parse(
        sieve::testing::ReadFileOrDie(FixturePath("tiny-llama3/reference.json"))));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete reference_;
    delete backend_;
    delete cases_;
  }

  static std::vector<float> Ref(const std::string& name) {
    const SafetensorsEntry* entry = reference_->Find(name);
    EXPECT_NE(entry, nullptr) << name;
    if (!entry) return {};
    auto view = reference_->Get(name);
    EXPECT_TRUE(view.ok());
    const float* p = static_cast<const float*>(view->data);
    return std::vector<float>(p, p + view->NumElements());
  }

  static void ExpectClose(const std::vector<float>& got, const std::vector<float>& want,
                          const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    ASSERT_FALSE(want.empty()) << what;
    double norm = 0;
    for (float v : got) norm += std::abs(v);
    EXPECT_GT(norm, 0) << what << ": all-zero output";
    const double err = MaxAbsRelError(got.data(), want.data(), got.size());
    EXPECT_LE(err, kTolerance) << what;
  }

  static Backend* backend_;
  static Transformer* model_;
  static SafetensorsFile* reference_;
  static boost::json::value* cases_;
};

Backend* TransformerFixtureTest::backend_ = nullptr;
Transformer* TransformerFixtureTest::model_ = nullptr;
SafetensorsFile* TransformerFixtureTest::reference_ = nullptr;
boost::json::value* TransformerFixtureTest::cases_ = nullptr;

TEST_P(TransformerFixtureTest, MatchesHuggingFace) {
  ASSERT_NE(model_, nullptr);
  const std::string name = GetParam();
  const auto& c = cases_->at("cases").at(name);
  std::vector<int32_t> ids, positions;
  for (const auto& v : c.at("ids").as_array()) ids.push_back(static_cast<int32_t>(v.as_int64()));
  for (const auto& v : c.at("positions").as_array()) {
    positions.push_back(static_cast<int32_t>(v.as_int64()));
  }
  auto result = ForwardSequence(
      *model_, ids, positions,
      {.want_kv = true, .want_hidden = true, .want_logprobs = true, .want_last_logits = true});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  for (int l = 0; l < model_->config().num_layers; ++l) {
    ExpectClose(result->k[l], Ref(name + ".k.L" + std::to_string(l)),
                name + " k layer " + std::to_string(l));
    ExpectClose(result->v[l], Ref(name + ".v.L" + std::to_string(l)),
                name + " v layer " + std::to_string(l));
  }
  ExpectClose(result->hidden, Ref(name + ".hidden"), name + " hidden");
  ExpectClose(result->last_logits, Ref(name + ".last_logits"), name + " last_logits");
  if (ids.size() > 1) ExpectClose(result->logprobs, Ref(name + ".logprobs"), name + " logprobs");
}

INSTANTIATE_TEST_SUITE_P(AllCases, TransformerFixtureTest,
                         ::testing::Values("one", "short", "full", "chunk2", "far"));

TEST(TransformerTest, RejectsBadInput) {
  auto backend = MakeCpuBackend();
  auto config = ModelConfig::FromJsonFile(FixturePath("tiny-llama3/config.json"));
  ASSERT_TRUE(config.ok());
  auto weights = ModelWeights::Random(*config, 1, *backend);
  ASSERT_TRUE(weights.ok());
  auto model = Transformer::Create(*config, std::move(weights).value(), *backend);
  ASSERT_TRUE(model.ok());
  const std::vector<int32_t> ids = {1, 200000};
  const std::vector<int32_t> pos = {0, 1};
  EXPECT_EQ(ForwardSequence(**model, ids, pos, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ForwardSequence(**model, {}, {}, {}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sieve::worker
