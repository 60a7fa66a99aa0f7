// The interleaved gate_up layout (ModelWeights::swiglu_block, kernels/gemm_swiglu.h) on the CPU:
// a backend that asks for it (the CPU backend behind a decorator that reports swiglu_block 64,
// as a Hopper GPU does) must get the same weights, permuted in 64-row blocks, from Load and
// Random alike, and the transformer (Gemm + SiluMul with SiluMulArgs::block, since the CPU has no
// fused kernel) must compute the same forward as with the plain layout. Runs in every build.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "tests/unit/test_util.h"
#include "worker/backend.h"
#include "worker/model_config.h"
#include "worker/model_weights.h"
#include "worker/sequence_forward.h"
#include "worker/transformer.h"

namespace sieve::worker {
namespace {

using sieve::testing::FixturePath;

// The CPU backend, asking for gate_up interleaved in blocks of kBlock rows.
class InterleavingCpuBackend final : public Backend {
 public:
  static constexpr int64_t kBlock = 64;

  DeviceKind kind() const override { return cpu_->kind(); }
  std::string Describe() const override { return cpu_->Describe(); }
  DType compute_dtype() const override { return cpu_->compute_dtype(); }
  int64_t swiglu_block() const override { return kBlock; }
  StatusOr<DeviceBuffer> Allocate(size_t bytes) override { return cpu_->Allocate(bytes); }
  size_t FreeMemoryBytes() const override { return cpu_->FreeMemoryBytes(); }
  void CopyToDevice(void* d, const void* s, size_t n) override { cpu_->CopyToDevice(d, s, n); }
  void CopyToHost(void* d, const void* s, size_t n) override { cpu_->CopyToHost(d, s, n); }
  void CopyOnDevice(void* d, const void* s, size_t n) override { cpu_->CopyOnDevice(d, s, n); }
  void Fill(void* d, uint8_t b, size_t n) override { cpu_->Fill(d, b, n); }
  Status Synchronize() override { return cpu_->Synchronize(); }
  void Embedding(const kernels::EmbeddingArgs& a) override { cpu_->Embedding(a); }
  void RmsNorm(const kernels::RmsNormArgs& a) override { cpu_->RmsNorm(a); }
  void Rope(const kernels::RopeArgs& a) override { cpu_->Rope(a); }
  void Gemm(const kernels::GemmArgs& a) override { cpu_->Gemm(a); }
  void SiluMul(const kernels::SiluMulArgs& a) override {
    EXPECT_EQ(a.block, kBlock) << "the transformer must pass the weights' layout on";
    cpu_->SiluMul(a);
  }
  void Attention(const kernels::AttentionArgs& a) override { cpu_->Attention(a); }
  void WindowScores(const kernels::WindowScoresArgs& a) override { cpu_->WindowScores(a); }
  void MaxPool1d(const kernels::MaxPool1dArgs& a) override { cpu_->MaxPool1d(a); }
  void TopkSelect(const kernels::TopkSelectArgs& a) override { cpu_->TopkSelect(a); }
  void KvGather(const kernels::KvGatherArgs& a) override { cpu_->KvGather(a); }
  void LogSoftmaxGather(const kernels::LogSoftmaxGatherArgs& a) override {
    cpu_->LogSoftmaxGather(a);
  }
  void Sample(const kernels::SampleArgs& a) override { cpu_->Sample(a); }
  void RandomInit(const kernels::RandomInitArgs& a) override { cpu_->RandomInit(a); }

 private:
  std::unique_ptr<Backend> cpu_ = MakeCpuBackend();
};

ModelConfig TinyConfig() {
  auto config = ModelConfig::FromJsonFile(FixturePath("tiny-llama3/config.json"));
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return *config;
}

// Whether row `ra` of weight a equals row `rb` of weight b ([rows, hidden] fp32, host memory).
bool SameRow(const DeviceBuffer& a, int64_t ra, const DeviceBuffer& b, int64_t rb, int64_t hidden) {
  const float* pa = a.as<float>() + ra * hidden;
  return std::equal(pa, pa + hidden, b.as<float>() + rb * hidden);
}

void ExpectInterleaved(const ModelWeights& plain, const ModelWeights& interleaved,
                       const ModelConfig& c) {
  constexpr int64_t B = InterleavingCpuBackend::kBlock;
  ASSERT_EQ(plain.swiglu_block(), 0);
  ASSERT_EQ(interleaved.swiglu_block(), B);
  const int64_t inter = c.intermediate_size, hidden = c.hidden_size;
  ASSERT_EQ(inter % B, 0);
  for (int l = 0; l < c.num_layers; ++l) {
    for (int64_t i = 0; i < inter; ++i) {
      const int64_t gate_row = 2 * B * (i / B) + i % B;
      const DeviceBuffer& got = interleaved.layer(l).gate_up;
      const DeviceBuffer& want = plain.layer(l).gate_up;
      ASSERT_TRUE(SameRow(got, gate_row, want, i, hidden)) << "layer " << l << " gate " << i;
      ASSERT_TRUE(SameRow(got, gate_row + B, want, inter + i, hidden))
          << "layer " << l << " up " << i;
    }
  }
}

TEST(GateUpLayoutTest, LoadAndRandomInterleaveTheSameWeights) {
  const ModelConfig c = TinyConfig();
  auto cpu = MakeCpuBackend();
  InterleavingCpuBackend interleaving;
  auto plain = ModelWeights::Load(c, FixturePath("tiny-llama3"), *cpu);
  auto blocked = ModelWeights::Load(c, FixturePath("tiny-llama3"), interleaving);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  ASSERT_TRUE(blocked.ok()) << blocked.status().ToString();
  ExpectInterleaved(*plain, *blocked, c);
  auto plain_random = ModelWeights::Random(c, 7, *cpu);
  auto blocked_random = ModelWeights::Random(c, 7, interleaving);
  ASSERT_TRUE(plain_random.ok() && blocked_random.ok());
  ExpectInterleaved(*plain_random, *blocked_random, c);
}

TEST(GateUpLayoutTest, ForwardMatchesThePlainLayout) {
  const ModelConfig c = TinyConfig();
  auto cpu = MakeCpuBackend();
  InterleavingCpuBackend interleaving;
  std::vector<std::unique_ptr<Transformer>> models;
  for (Backend* be : {cpu.get(), static_cast<Backend*>(&interleaving)}) {
    auto weights = ModelWeights::Load(c, FixturePath("tiny-llama3"), *be);
    ASSERT_TRUE(weights.ok()) << weights.status().ToString();
    auto model = Transformer::Create(c, std::move(weights).value(), *be);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    models.push_back(std::move(model).value());
  }
  std::vector<int32_t> ids, positions;
  for (int32_t t = 0; t < 300; ++t) {  // past Transformer::kFusedSwigluMinRows
    ids.push_back((t * 37 + 11) % static_cast<int32_t>(c.vocab_size));
    positions.push_back(t);
  }
  const SequenceForwardOptions opt{.want_hidden = true, .want_logprobs = true};
  auto want = ForwardSequence(*models[0], ids, positions, opt);
  auto got = ForwardSequence(*models[1], ids, positions, opt);
  ASSERT_TRUE(want.ok() && got.ok());
  ASSERT_FALSE(want->hidden.empty());
  EXPECT_LE(
      sieve::testing::MaxAbsRelError(got->hidden.data(), want->hidden.data(), want->hidden.size()),
      1e-5);
  EXPECT_LE(sieve::testing::MaxAbsRelError(got->logprobs.data(), want->logprobs.data(),
                                           want->logprobs.size()),
            1e-5);
}

}  // namespace
}  // namespace sieve::worker
