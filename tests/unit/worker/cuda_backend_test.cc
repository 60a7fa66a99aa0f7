// CudaBackend (worker/cuda_backend.cc):
//   - without a device, MakeCudaBackend returns Unavailable (runs in every CI build);
//   - Describe / dtypes, the caching allocator (reuse, ResourceExhausted instead of an abort,
//     the backend still usable after it), copies through the pinned staging ring (sizes that wrap
//     it several times, the caller's buffer reusable on return, overlapping CopyOnDevice);
//   - the tiny fixture model (tests/fixtures/tiny-llama3) through ForwardSequence on the CUDA
//     backend (bf16 residual stream, the default, and fp32) against the CPU backend: keys and
//     values of every layer, final hidden states, log-probabilities and last logits within 2e-2
//     relative (bf16 vs fp32);
//   - RunPipeline on the oracle scenarios of tests/fixtures/pipeline/oracle_dev.json: the same
//     kept chunks and chunk scores within 5e-2 (the closest kept / dropped gap there is 0.078).
// GPU cases skip without a device.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cstring>
#include <regex>
#include <vector>

#include "tests/unit/kernels/gpu_test_util.h"
#include "tests/unit/test_util.h"
#include "worker/backend.h"
#include "worker/pipeline.h"
#include "worker/sequence_forward.h"

namespace sieve::worker {
namespace {

using sieve::testing::FixturePath;
using sieve::testing::MaxAbsRelError;

TEST(CudaBackendTest, UnavailableWithoutDevice) {
  if (CudaDeviceCount() > 0) GTEST_SKIP() << "a CUDA device is present";
  auto backend = MakeCudaBackend(0);
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), StatusCode::kUnavailable) << backend.status().ToString();
}

TEST(CudaBackendTest, DescribeAndDtypes) {
  SIEVE_SKIP_WITHOUT_GPU();
  auto backend = MakeCudaBackend(0);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  Backend& be = **backend;
  EXPECT_EQ(be.kind(), DeviceKind::kCuda);
  EXPECT_EQ(be.compute_dtype(), DType::kBF16);
  EXPECT_EQ(be.residual_dtype(), DType::kBF16);
  EXPECT_TRUE(std::regex_match(be.Describe(), std::regex(R"(cuda:0 .+ \([0-9]+\.[0-9] GiB\))")))
      << be.Describe();
  EXPECT_FALSE(MakeCudaBackend(CudaDeviceCount()).ok());
  auto f32 = MakeCudaBackend(0, {.residual_dtype = DType::kF32});
  ASSERT_TRUE(f32.ok()) << f32.status().ToString();
  EXPECT_EQ((*f32)->residual_dtype(), DType::kF32);
  auto f16 = MakeCudaBackend(0, {.residual_dtype = DType::kF16});
  ASSERT_FALSE(f16.ok());
  EXPECT_EQ(f16.status().code(), StatusCode::kInvalidArgument) << f16.status().ToString();
}

TEST(CudaBackendTest, CpuResidualIsF32Only) {
  auto cpu = MakeBackend("cpu", 0, {.residual_dtype = DType::kBF16});
  ASSERT_FALSE(cpu.ok());
  EXPECT_EQ(cpu.status().code(), StatusCode::kInvalidArgument) << cpu.status().ToString();
  EXPECT_TRUE(MakeBackend("cpu", 0, {.residual_dtype = DType::kF32}).ok());
}

TEST(CudaBackendTest, AllocatorReusesAndReportsExhaustion) {
  SIEVE_SKIP_WITHOUT_GPU();
  auto backend = MakeCudaBackend(0);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  Backend& be = **backend;
  void* first = nullptr;
  {
    auto a = be.Allocate(1000);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->bytes(), 1000u);
    first = a->get();
  }
  {
    auto b = be.Allocate(900);  // the same 1 KiB size class: the cached block comes back
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->get(), first);
  }
  const size_t free_before = be.FreeMemoryBytes();
  {
    auto big = be.Allocate(size_t{256} << 20);
    ASSERT_TRUE(big.ok());
    be.Fill(big->get(), 0, big->bytes());
  }
  // The freed block stays cached and counts as free.
  const size_t free_after = be.FreeMemoryBytes();
  EXPECT_GT(free_after + (size_t{64} << 20), free_before);
  auto huge = be.Allocate(size_t{1} << 50);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), StatusCode::kResourceExhausted) << huge.status().ToString();
  // Still usable.
  auto after = be.Allocate(size_t{1} << 20);
  ASSERT_TRUE(after.ok());
  be.Fill(after->get(), 1, after->bytes());
  EXPECT_TRUE(be.Synchronize().ok());
}

TEST(CudaBackendTest, CopiesRoundTrip) {
  SIEVE_SKIP_WITHOUT_GPU();
  auto backend = MakeCudaBackend(0);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  Backend& be = **backend;
  for (size_t bytes : {size_t{1}, size_t{1000}, size_t{3} << 20, size_t{150} << 20}) {
    std::vector<uint8_t> pattern(bytes), src(bytes), back(bytes, 0);
    for (size_t i = 0; i < bytes; ++i) pattern[i] = static_cast<uint8_t>(i * 7 + 3 + (i >> 20));
    src = pattern;
    auto dev = be.Allocate(bytes);
    ASSERT_TRUE(dev.ok());
    be.CopyToDevice(dev->get(), src.data(), bytes);
    std::memset(src.data(), 0, bytes);  // the staged copy must not see this
    be.CopyToHost(back.data(), dev->get(), bytes);
    EXPECT_EQ(std::memcmp(back.data(), pattern.data(), bytes), 0) << bytes << " bytes";
  }
  // CopyOnDevice: disjoint and overlapping in both directions (memmove semantics).
  const size_t n = size_t{5} << 20;
  std::vector<uint8_t> pattern(n);
  for (size_t i = 0; i < n; ++i) pattern[i] = static_cast<uint8_t>(i * 13 + (i >> 10));
  auto dev = be.Allocate(2 * n);
  ASSERT_TRUE(dev.ok());
  char* base = dev->as<char>();
  for (int64_t shift : {int64_t(n), int64_t{100}, int64_t{-100}}) {
    std::vector<uint8_t> host(2 * n, 0);
    std::memcpy(host.data() + n / 2, pattern.data(), n / 2);
    be.CopyToDevice(base, host.data(), 2 * n);
    const int64_t src = n / 2, dst = src + shift;
    const size_t len = n / 2;
    be.CopyOnDevice(base + dst, base + src, len);
    std::memmove(host.data() + dst, host.data() + src, len);
    std::vector<uint8_t> back(2 * n);
    be.CopyToHost(back.data(), base, 2 * n);
    EXPECT_EQ(std::memcmp(back.data(), host.data(), 2 * n), 0) << "shift " << shift;
  }
  be.Fill(base, 0xab, 4096);
  std::vector<uint8_t> filled(4096);
  be.CopyToHost(filled.data(), base, 4096);
  EXPECT_TRUE(std::all_of(filled.begin(), filled.end(), [](uint8_t b) { return b == 0xab; }));
  EXPECT_TRUE(be.Synchronize().ok());
}

// Both backends with the tiny fixture model, built once for the suite.
class CudaModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!sieve::testing::HasCudaDevice()) return;
    auto config = ModelConfig::FromJsonFile(FixturePath("tiny-llama3/config.json"));
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    auto load = [&](std::unique_ptr<Backend> be, Model* out) {
      auto weights = ModelWeights::Load(*config, FixturePath("tiny-llama3"), *be);
      ASSERT_TRUE(weights.ok()) << weights.status().ToString();
      auto model = Transformer::Create(*config, std::move(weights).value(), *be);
      ASSERT_TRUE(model.ok()) << model.status().ToString();
      out->model = std::move(model).value().release();
      out->backend = be.release();
    };
    load(MakeCpuBackend(), &cpu_);
    for (DType residual : {DType::kBF16, DType::kF32}) {
      auto cuda = MakeCudaBackend(0, {.residual_dtype = residual});
      ASSERT_TRUE(cuda.ok()) << cuda.status().ToString();
      load(std::move(cuda).value(), residual == DType::kBF16 ? &cuda_ : &cuda_f32_);
    }
  }
  static void TearDownTestSuite() {
    for (Model* m : {&cpu_, &cuda_, &cuda_f32_}) {
      delete m->model;
      delete m->backend;
      *m = {};
    }
  }
  void SetUp() override {
    SIEVE_SKIP_WITHOUT_GPU();
    ASSERT_NE(cuda_.model, nullptr);
    ASSERT_NE(cuda_f32_.model, nullptr);
  }

  struct Model {
    Backend* backend = nullptr;
    Transformer* model = nullptr;
  };
  static Model cpu_;
  static Model cuda_;      // bf16 residual stream (the default)
  static Model cuda_f32_;  // fp32 residual stream
};

CudaModelTest::Model CudaModelTest::cpu_;
CudaModelTest::Model CudaModelTest::cuda_;
CudaModelTest::Model CudaModelTest::cuda_f32_;

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, double tol,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  ASSERT_FALSE(want.empty()) << what;
  EXPECT_GT(sieve::testing::Norm(got), 0) << what << ": all-zero output";
  const double err = MaxAbsRelError(got.data(), want.data(), got.size());
  EXPECT_LE(err, tol) << what;
}

TEST_F(CudaModelTest, ForwardMatchesCpu) {
  const auto cases =
      boost::json::parse(sieve::testing::ReadFileOrDie(FixturePath("tiny-llama3/reference.json")));
  for (const char* name : {"one", "short", "full", "chunk2", "far"}) {
    const auto& c = cases.at("cases").at(name);
    std::vector<int32_t> ids, positions;
    for (const auto& v : c.at("ids").as_array()) ids.push_back(static_cast<int32_t>(v.as_int64()));
    for (const auto& v : c.at("positions").as_array()) {
      positions.push_back(static_cast<int32_t>(v.as_int64()));
    }
    const SequenceForwardOptions opt{
        .want_kv = true, .want_hidden = true, .want_logprobs = true, .want_last_logits = true};
    auto want = ForwardSequence(*cpu_.model, ids, positions, opt);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    for (const Model* cuda : {&cuda_, &cuda_f32_}) {
      auto got = ForwardSequence(*cuda->model, ids, positions, opt);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      const std::string tag = std::string(name) + " (residual " +
                              std::string(DTypeName(cuda->backend->residual_dtype())) + ") ";
      for (size_t l = 0; l < want->k.size(); ++l) {
        ExpectNear(got->k[l], want->k[l], 2e-2, tag + "k layer " + std::to_string(l));
        ExpectNear(got->v[l], want->v[l], 2e-2, tag + "v layer " + std::to_string(l));
      }
      ExpectNear(got->hidden, want->hidden, 2e-2, tag + "hidden");
      ExpectNear(got->last_logits, want->last_logits, 2e-2, tag + "last logits");
      if (ids.size() > 1) ExpectNear(got->logprobs, want->logprobs, 2e-2, tag + "logprobs");
    }
  }
}

std::vector<int32_t> Ids(const boost::json::value& v) {
  std::vector<int32_t> out;
  for (const auto& x : v.as_array()) out.push_back(static_cast<int32_t>(x.as_int64()));
  return out;
}

double Num(const boost::json::value& v) {
  return v.is_double() ? v.as_double() : double(v.as_int64());
}

// The oracle's scenario parameters as a pipeline input (as tests/unit/worker/pipeline_test.cc).
PipelineInput InputFor(const boost::json::value& oracle, const boost::json::object& params) {
  PipelineInput in;
  in.document_ids = Ids(oracle.at("document_ids"));
  in.query_ids = Ids(oracle.at("query_ids"));
  in.explain = true;
  SieveOptions& s = in.sieve;
  s.chunk_tokens = static_cast<int>(params.at("chunk_tokens").as_int64());
  s.keep_chunks = static_cast<int>(params.at("keep_k").as_int64());
  if (params.contains("mode") && params.at("mode").as_string() == "full") {
    s.mode = PrefillMode::kFull;
  }
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
    in.generation.force_continuation_ids = Ids(oracle.at("continuation_ids"));
  }
  return in;
}

TEST_F(CudaModelTest, PipelineOracleScenarios) {
  const auto oracle =
      boost::json::parse(sieve::testing::ReadFileOrDie(FixturePath("pipeline/oracle_dev.json")));
  for (const auto& [name, scenario] : oracle.at("scenarios").as_object()) {
    SCOPED_TRACE(std::string(name));
    const auto& want = scenario.at("result").as_object();
    for (const Model* cuda : {&cuda_, &cuda_f32_}) {
      SCOPED_TRACE("residual " + std::string(DTypeName(cuda->backend->residual_dtype())));
      auto got = RunPipeline(*cuda->model, InputFor(oracle, scenario.at("params").as_object()));
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      const auto& chunks = want.at("chunks").as_array();
      ASSERT_EQ(got->chunks.size(), chunks.size());
      for (size_t i = 0; i < chunks.size(); ++i) {
        EXPECT_EQ(got->chunks[i].tokens, chunks[i].at("tokens").as_int64()) << "chunk " << i;
        EXPECT_NEAR(got->chunks[i].score, Num(chunks[i].at("score")), 5e-2) << "chunk " << i;
        EXPECT_EQ(got->chunks[i].kept, chunks[i].at("kept").as_bool()) << "chunk " << i;
      }
      EXPECT_EQ(std::vector<int32_t>(got->kept_chunks.begin(), got->kept_chunks.end()),
                Ids(want.at("kept_chunks")));
    }
  }
}

}  // namespace
}  // namespace sieve::worker
