// CublasLtGemm (kernels/gemm_cublas.h): plan creation and the cached cuBLASLt matmul. Host code
// only; it lives in a .cu file so it builds into sieve_kernels_cuda with the kernels.
//
// Tested by tests/unit/kernels/gemm_test.cc.
#include "kernels/gemm_cublas.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <functional>
#include <vector>

namespace sieve::kernels {
namespace {

struct MatmulDescDeleter {
  void operator()(cublasLtMatmulDescOpaque_t* d) const { cublasLtMatmulDescDestroy(d); }
};
struct LayoutDeleter {
  void operator()(cublasLtMatrixLayoutOpaque_t* l) const { cublasLtMatrixLayoutDestroy(l); }
};
struct PreferenceDeleter {
  void operator()(cublasLtMatmulPreferenceOpaque_t* p) const { cublasLtMatmulPreferenceDestroy(p); }
};
using MatmulDescPtr = std::unique_ptr<cublasLtMatmulDescOpaque_t, MatmulDescDeleter>;
using LayoutPtr = std::unique_ptr<cublasLtMatrixLayoutOpaque_t, LayoutDeleter>;
using PreferencePtr = std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, PreferenceDeleter>;

cudaError_t ToCudaError(cublasStatus_t st) {
  switch (st) {
    case CUBLAS_STATUS_SUCCESS:
      return cudaSuccess;
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return cudaErrorNotSupported;
    case CUBLAS_STATUS_ALLOC_FAILED:
      return cudaErrorMemoryAllocation;
    case CUBLAS_STATUS_INVALID_VALUE:
      return cudaErrorInvalidValue;
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return cudaErrorLaunchFailure;
    default:
      return cudaErrorUnknown;
  }
}

cudaDataType_t CudaType(DType t) {
  switch (t) {
    case DType::kF32:
      return CUDA_R_32F;
    case DType::kF16:
      return CUDA_R_16F;
    case DType::kBF16:
      return CUDA_R_16BF;
  }
  return CUDA_R_32F;
}

bool Supported(DType x, DType w, DType y) {
  if (x != w) return false;
  if (x == DType::kF32) return y == DType::kF32;
  return y == x || y == DType::kF32;
}

// Largest power of two dividing the address, capped at 256 (cuBLASLt's default assumption).
int AlignmentOf(const void* p) {
  const uintptr_t v = reinterpret_cast<uintptr_t>(p);
  int align = 256;
  while (align > 1 && v % align != 0) align /= 2;
  return align;
}

}  // namespace

struct CublasLtGemm::Plan {
  MatmulDescPtr desc;
  LayoutPtr a, b, c;
  // The heuristic's algorithms, best first. A plain array: nvcc 13's front end crashes on a
  // std::vector of cublasLtMatmulAlgo_t.
  cublasLtMatmulAlgo_t algos[kMaxCandidates]{};
  int num_algos = 0;
  int chosen = 0;
};

bool CublasLtGemm::PlanKey::operator==(const PlanKey& o) const {
  return m == o.m && n == o.n && k == o.k && ldx == o.ldx && ldy == o.ldy && x_dtype == o.x_dtype &&
         w_dtype == o.w_dtype && y_dtype == o.y_dtype && beta_zero == o.beta_zero &&
         x_align == o.x_align && w_align == o.w_align && y_align == o.y_align;
}

size_t CublasLtGemm::PlanKeyHash::operator()(const PlanKey& key) const {
  size_t h = 0;
  auto mix = [&h](uint64_t v) {
    h ^= std::hash<uint64_t>{}(v) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  };
  mix(key.m);
  mix(key.n);
  mix(key.k);
  mix(key.ldx);
  mix(key.ldy);
  mix((uint64_t(key.x_dtype) << 16) | (uint64_t(key.w_dtype) << 8) | uint64_t(key.y_dtype));
  mix((uint64_t(key.beta_zero) << 48) | (uint64_t(key.x_align) << 32) |
      (uint64_t(key.w_align) << 16) | uint64_t(key.y_align));
  return h;
}

void CublasLtGemm::HandleDeleter::operator()(cublasLtContext* handle) const {
  cublasLtDestroy(handle);
}

void CublasLtGemm::DeviceDeleter::operator()(void* p) const { cudaFree(p); }

cudaError_t CublasLtGemm::Create(size_t workspace_bytes, std::unique_ptr<CublasLtGemm>* out) {
  std::unique_ptr<CublasLtGemm> gemm(new CublasLtGemm());
  cublasLtHandle_t handle = nullptr;
  const cublasStatus_t st = cublasLtCreate(&handle);
  if (st != CUBLAS_STATUS_SUCCESS) return ToCudaError(st);
  gemm->handle_.reset(handle);
  if (workspace_bytes > 0) {
    void* ws = nullptr;
    const cudaError_t err = cudaMalloc(&ws, workspace_bytes);
    if (err != cudaSuccess) return err;
    gemm->workspace_.reset(ws);
  }
  gemm->workspace_bytes_ = workspace_bytes;
  *out = std::move(gemm);
  return cudaSuccess;
}

CublasLtGemm::~CublasLtGemm() = default;

cudaError_t CublasLtGemm::MakePlan(const PlanKey& key, Plan* plan) {
  // Accumulate in fp32 whatever the operand types (no TF32 for fp32 operands).
  cublasLtMatmulDesc_t desc = nullptr;
  last_status_ = cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  if (last_status_ != CUBLAS_STATUS_SUCCESS) return ToCudaError(last_status_);
  plan->desc.reset(desc);
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  last_status_ =
      cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a));
  if (last_status_ == CUBLAS_STATUS_SUCCESS) {
    last_status_ = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b,
                                                  sizeof(trans_b));
  }
  if (last_status_ != CUBLAS_STATUS_SUCCESS) return ToCudaError(last_status_);
  // A: w as column-major [k, n], ld k (op T gives [n, k]). B: x as column-major [k, m], ld ldx.
  // C = D: y as column-major [n, m], ld ldy.
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  last_status_ = cublasLtMatrixLayoutCreate(&a, CudaType(key.w_dtype), key.k, key.n, key.k);
  if (last_status_ != CUBLAS_STATUS_SUCCESS) return ToCudaError(last_status_);
  plan->a.reset(a);
  last_status_ = cublasLtMatrixLayoutCreate(&b, CudaType(key.x_dtype), key.k, key.m, key.ldx);
  if (last_status_ != CUBLAS_STATUS_SUCCESS) return ToCudaError(last_status_);
  plan->b.reset(b);
  last_status_ = cublasLtMatrixLayoutCreate(&c, CudaType(key.y_dtype), key.n, key.m, key.ldy);
  if (last_status_ != CUBLAS_STATUS_SUCCESS) return ToCudaError(last_status_);
  plan->c.reset(c);

  cublasLtMatmulPreference_t pref = nullptr;
  last_status_ = cublasLtMatmulPreferenceCreate(&pref);
  if (last_status_ != CUBLAS_STATUS_SUCCESS) return ToCudaError(last_status_);
  PreferencePtr pref_owner(pref);
  const uint64_t ws = workspace_bytes_;
  const uint32_t align_a = key.w_align, align_b = key.x_align, align_c = key.y_align;
  const struct {
    cublasLtMatmulPreferenceAttributes_t attr;
    const void* value;
    size_t size;
  } prefs[] = {
      {CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a, sizeof(align_a)},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b, sizeof(align_b)},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c, sizeof(align_c)},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c, sizeof(align_c)},
  };
  for (const auto& p : prefs) {
    last_status_ = cublasLtMatmulPreferenceSetAttribute(pref, p.attr, p.value, p.size);
    if (last_status_ != CUBLAS_STATUS_SUCCESS) return ToCudaError(last_status_);
  }
  cublasLtMatmulHeuristicResult_t results[kMaxCandidates]{};
  int found = 0;
  last_status_ = cublasLtMatmulAlgoGetHeuristic(handle_.get(), desc, a, b, c, c, pref,
                                                kMaxCandidates, results, &found);
  if (last_status_ != CUBLAS_STATUS_SUCCESS) return ToCudaError(last_status_);
  for (int i = 0; i < found; ++i) {
    if (results[i].state == CUBLAS_STATUS_SUCCESS) plan->algos[plan->num_algos++] = results[i].algo;
  }
  if (plan->num_algos == 0) {
    last_status_ = CUBLAS_STATUS_NOT_SUPPORTED;
    return cudaErrorNotSupported;
  }
  return cudaSuccess;
}

CublasLtGemm::PlanKey CublasLtGemm::KeyOf(const GemmArgs& args) {
  return PlanKey{.m = args.m,
                 .n = args.n,
                 .k = args.k,
                 .ldx = args.ldx,
                 .ldy = args.ldy,
                 .x_dtype = args.x_dtype,
                 .w_dtype = args.w_dtype,
                 .y_dtype = args.y_dtype,
                 .beta_zero = args.beta == 0.f,
                 .x_align = AlignmentOf(args.x),
                 .w_align = AlignmentOf(args.w),
                 .y_align = AlignmentOf(args.y)};
}

CublasLtGemm::PlanKey CublasLtGemm::BucketOf(PlanKey key) {
  key.m = static_cast<int64_t>(std::bit_ceil(static_cast<uint64_t>(key.m)));
  return key;
}

CublasLtGemm::Plan* CublasLtGemm::PlanFor(const GemmArgs& args, cudaError_t* err) {
  last_status_ = CUBLAS_STATUS_SUCCESS;
  *err = cudaSuccess;
  if (args.m < 0 || args.n < 0 || args.k < 0) {
    *err = cudaErrorInvalidValue;
    return nullptr;
  }
  if (args.m == 0 || args.n == 0) return nullptr;
  if (args.k == 0 || !args.x || !args.w || !args.y || args.ldx < args.k || args.ldy < args.n) {
    *err = cudaErrorInvalidValue;
    return nullptr;
  }
  if (!Supported(args.x_dtype, args.w_dtype, args.y_dtype)) {
    *err = cudaErrorNotSupported;
    return nullptr;
  }
  const PlanKey key = KeyOf(args);
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    auto plan = std::make_unique<Plan>();
    *err = MakePlan(key, plan.get());
    if (*err != cudaSuccess) return nullptr;
    if (auto tuned = tuned_.find(BucketOf(key)); tuned != tuned_.end()) {
      plan->chosen = std::min(tuned->second, plan->num_algos - 1);
    }
    it = plans_.emplace(key, std::move(plan)).first;
  }
  return it->second.get();
}

cudaError_t CublasLtGemm::Launch(const Plan& plan, int candidate, const GemmArgs& args,
                                 cudaStream_t stream) {
  const float alpha = args.alpha, beta = args.beta;
  last_status_ =
      cublasLtMatmul(handle_.get(), plan.desc.get(), &alpha, args.w, plan.a.get(), args.x,
                     plan.b.get(), &beta, args.y, plan.c.get(), args.y, plan.c.get(),
                     &plan.algos[candidate], workspace_.get(), workspace_bytes_, stream);
  return ToCudaError(last_status_);
}

cudaError_t CublasLtGemm::Run(const GemmArgs& args, cudaStream_t stream) {
  cudaError_t err;
  const Plan* plan = PlanFor(args, &err);
  return plan ? Launch(*plan, plan->chosen, args, stream) : err;
}

int CublasLtGemm::NumCandidates(const GemmArgs& args, cudaError_t* err) {
  const Plan* plan = PlanFor(args, err);
  return plan ? plan->num_algos : 0;
}

CublasLtGemm::Plan* CublasLtGemm::PlanWithCandidate(const GemmArgs& args, int candidate,
                                                    cudaError_t* err) {
  Plan* plan = PlanFor(args, err);
  if (plan && (candidate < 0 || candidate >= plan->num_algos)) {
    *err = cudaErrorInvalidValue;
    return nullptr;
  }
  return plan;
}

cudaError_t CublasLtGemm::RunCandidate(const GemmArgs& args, int candidate, cudaStream_t stream) {
  cudaError_t err;
  const Plan* plan = PlanWithCandidate(args, candidate, &err);
  return plan ? Launch(*plan, candidate, args, stream) : err;
}

cudaError_t CublasLtGemm::Choose(const GemmArgs& args, int candidate) {
  cudaError_t err;
  Plan* plan = PlanWithCandidate(args, candidate, &err);
  if (plan) plan->chosen = candidate;
  return err;
}

bool CublasLtGemm::Tuned(const GemmArgs& args) const {
  return tuned_.count(BucketOf(KeyOf(args))) != 0;
}

cudaError_t CublasLtGemm::Tune(const GemmArgs& args, cudaStream_t stream, int* chosen) {
  cudaError_t err;
  Plan* plan = PlanFor(args, &err);
  if (!plan) return err;
  cudaEvent_t start = nullptr, stop = nullptr;
  if ((err = cudaEventCreate(&start)) != cudaSuccess) return err;
  if ((err = cudaEventCreate(&stop)) != cudaSuccess) {
    cudaEventDestroy(start);
    return err;
  }
  // Rounds over all candidates (so clock drift from heating affects each alike), then the
  // median per candidate. Another candidate replaces the heuristic's first only when it is
  // more than 1% faster: closer than that is within the timing noise.
  constexpr int kRounds = 5;
  const int n = plan->num_algos;
  std::vector<float> ms(size_t(n) * kRounds, 0.f);
  for (int c = 0; c < n && err == cudaSuccess; ++c) err = Launch(*plan, c, args, stream);
  for (int round = 0; round < kRounds; ++round) {
    for (int c = 0; c < n && err == cudaSuccess; ++c) {
      float& t = ms[size_t(c) * kRounds + round];
      err = cudaEventRecord(start, stream);
      if (err == cudaSuccess) err = Launch(*plan, c, args, stream);
      if (err == cudaSuccess) err = cudaEventRecord(stop, stream);
      if (err == cudaSuccess) err = cudaEventSynchronize(stop);
      if (err == cudaSuccess) err = cudaEventElapsedTime(&t, start, stop);
    }
  }
  std::vector<float> median(n);
  for (int c = 0; c < n; ++c) {
    float* first = ms.data() + size_t(c) * kRounds;
    std::nth_element(first, first + kRounds / 2, first + kRounds);
    median[c] = first[kRounds / 2];
  }
  int best = 0;
  for (int c = 1; c < n; ++c) {
    if (median[c] < 0.99f * median[0] && median[c] < median[best]) best = c;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (err != cudaSuccess) return err;
  const PlanKey bucket = BucketOf(KeyOf(args));
  tuned_[bucket] = best;
  // Plans of the bucket made before this call follow it too.
  for (auto& [key, p] : plans_) {
    if (BucketOf(key) == bucket) p->chosen = std::min(best, p->num_algos - 1);
  }
  if (chosen) *chosen = best;
  return cudaSuccess;
}

}  // namespace sieve::kernels
