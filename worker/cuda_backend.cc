// CudaBackend: the Backend of worker/backend.h on one CUDA device and one non-blocking stream:
// bf16 weights and activations, a bf16 (or fp32) residual stream, the kernels of kernels/*.cu and a
// cuBLASLt GEMM (kernels/gemm_cublas.h). Also the factory MakeCudaBackend / CudaDeviceCount.
//
// Pieces, all private to this file:
//   - CachingAllocator: the pipeline allocates per batch and per decode step, so freed blocks
//     stay in size-class free lists (512-byte multiples up to 1 MiB, then four classes per
//     power of two) and are handed out again. Every piece of work runs on the backend's one
//     stream, so a block freed on the host while kernels that use it are still queued is safe to
//     reuse: the next user is queued behind them. When cudaMalloc fails the cache is released
//     (after a stream sync) and the allocation retried once; a second failure is
//     ResourceExhausted, never an abort. DeviceBuffer's deleter is a plain function pointer, so
//     live blocks are found through a process-wide registry (pointer -> allocator); blocks that
//     outlive their backend are cudaFree'd directly.
//   - PinnedStaging: a 64 MiB pinned ring. CopyToDevice copies host data into the ring and
//     queues the DMA from there, so the caller's buffer may be reused as soon as the call returns
//     (stronger than the Backend contract); a ring region is reused only after the event recorded
//     behind its copy has completed. CopyToHost stages through the ring the other way and waits
//     for the data before returning (the stream is synchronized up to the copy).
//   - ops: each calls its launcher on the stream, aborts through SIEVE_CUDA_CHECK on a launch
//     error (programmer errors: shapes the caller should have validated) and runs
//     SIEVE_SYNC_CHECK (a sync only in Debug builds or with CUDA_LAUNCH_BLOCKING=1). Attention,
//     window scores and sampling share one workspace, grown on demand and never shrunk.
//
// Tested by tests/unit/worker/cuda_backend_test.cc (allocator, copies, forward parity with the
// CPU backend on the tiny fixture, the pipeline oracle scenarios) and every GPU kernel test.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "comm/log.h"
#include "kernels/cuda_check.h"
#include "kernels/gemm_cublas.h"
#include "kernels/gemm_skinny.h"
#include "worker/backend.h"

namespace sieve::worker {
namespace {

// ---------------------------------------------------------------------------------------------
// Owned CUDA handles (STYLE rule 7).

struct StreamDeleter {
  void operator()(CUstream_st* s) const { cudaStreamDestroy(s); }
};
using StreamPtr = std::unique_ptr<CUstream_st, StreamDeleter>;

struct EventDeleter {
  void operator()(CUevent_st* e) const { cudaEventDestroy(e); }
};
using EventPtr = std::unique_ptr<CUevent_st, EventDeleter>;

struct PinnedDeleter {
  void operator()(void* p) const { cudaFreeHost(p); }
};
using PinnedPtr = std::unique_ptr<void, PinnedDeleter>;

// Makes `device` current for the scope and restores the previous device after.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    if (previous_ != device) SIEVE_CUDA_CHECK(cudaSetDevice(device));
    device_ = device;
  }
  ~DeviceScope() {
    if (previous_ >= 0 && previous_ != device_) cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = -1;
  int device_ = -1;
};

// ---------------------------------------------------------------------------------------------
// Caching device allocator.

constexpr size_t kSmallLimit = size_t{1} << 20;
constexpr size_t kSmallStep = 512;
constexpr size_t kLargeLimit = size_t{256} << 20;
constexpr size_t kLargeStep = size_t{2} << 20;  // cudaMalloc's own granularity

// The size class a request is served from: 512-byte multiples up to 1 MiB, then multiples of a
// quarter of the largest power of two below the request (at most 25% slack, at most 64 MiB),
// and from 256 MiB on multiples of 2 MiB. Large blocks are the KV of whole chunks (1 GiB for an
// 8K chunk of Llama-3.1-8B); a quarter-power-of-two class would round each of those up by 25%,
// 4 GiB over a 128K-token request.
size_t SizeClass(size_t bytes) {
  bytes = std::max<size_t>(bytes, 1);
  if (bytes <= kSmallLimit) return (bytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  if (bytes >= kLargeLimit) return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
  size_t pow2 = kSmallLimit;
  while (pow2 * 2 <= bytes) pow2 *= 2;
  const size_t step = pow2 / 4;
  return (bytes + step - 1) / step * step;
}

// Shared between a backend and every block it handed out (through the registry below).
struct AllocatorState {
  explicit AllocatorState(int d) : device(d) {}
  const int device;
  std::mutex mu;
  bool alive = true;  // false once the backend is gone: released blocks are freed directly
  std::unordered_map<size_t, std::vector<void*>> free_lists;  // size class -> blocks
  size_t cached_bytes = 0;
  size_t live_bytes = 0;
  size_t peak_live_bytes = 0;
};

struct BlockInfo {
  std::shared_ptr<AllocatorState> owner;
  size_t size_class = 0;
};

struct Registry {
  std::mutex mu;
  std::unordered_map<void*, BlockInfo> blocks;
};

Registry& GlobalRegistry() {
  static Registry* registry = new Registry;  // never destroyed: buffers may die at exit
  return *registry;
}

// DeviceBuffer's deleter: back to the owner's free list, or cudaFree if the owner is gone.
void ReleaseDeviceBlock(void* p) {
  BlockInfo info;
  {
    Registry& reg = GlobalRegistry();
    std::lock_guard<std::mutex> lock(reg.mu);
    auto it = reg.blocks.find(p);
    if (it == reg.blocks.end()) return;
    info = std::move(it->second);
    reg.blocks.erase(it);
  }
  std::lock_guard<std::mutex> lock(info.owner->mu);
  info.owner->live_bytes -= info.size_class;
  if (info.owner->alive) {
    info.owner->free_lists[info.size_class].push_back(p);
    info.owner->cached_bytes += info.size_class;
  } else {
    DeviceScope scope(info.owner->device);
    cudaFree(p);
  }
}

// ---------------------------------------------------------------------------------------------
// Pinned staging ring.

class PinnedStaging {
 public:
  static constexpr size_t kAlign = 256;

  // Returns cudaErrorMemoryAllocation if the pinned allocation fails.
  cudaError_t Init(size_t capacity) {
    void* p = nullptr;
    const cudaError_t err = cudaMallocHost(&p, capacity);
    if (err != cudaSuccess) return err;
    buffer_.reset(p);
    capacity_ = capacity;
    return cudaSuccess;
  }

  // Largest single region: half the ring, so one copy can fill while the previous one drains.
  size_t max_chunk() const { return capacity_ / 2; }

  // A region of `bytes` (<= max_chunk()) no queued copy still uses. Waits for older copies
  // whose regions overlap it.
  char* Acquire(size_t bytes) {
    const size_t need = (bytes + kAlign - 1) / kAlign * kAlign;
    if (head_ + need > capacity_) head_ = 0;
    const size_t begin = head_, end = head_ + need;
    // Regions are handed out in ring order, so the ones in the way are the oldest.
    while (!in_flight_.empty() && Overlaps(in_flight_.front(), begin, end)) {
      SIEVE_CUDA_CHECK(cudaEventSynchronize(in_flight_.front().event.get()));
      spare_events_.push_back(std::move(in_flight_.front().event));
      in_flight_.pop_front();
    }
    // Any other overlapping region (not expected) is waited for too.
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      if (Overlaps(*it, begin, end)) {
        SIEVE_CUDA_CHECK(cudaEventSynchronize(it->event.get()));
        spare_events_.push_back(std::move(it->event));
        it = in_flight_.erase(it);
      } else {
        ++it;
      }
    }
    head_ = end;
    last_begin_ = begin;
    last_end_ = end;
    return static_cast<char*>(buffer_.get()) + begin;
  }

  // Waits for every queued copy that uses the ring and restarts it at offset 0.
  void DrainAll() {
    for (Region& r : in_flight_) {
      SIEVE_CUDA_CHECK(cudaEventSynchronize(r.event.get()));
      spare_events_.push_back(std::move(r.event));
    }
    in_flight_.clear();
    head_ = 0;
  }

  // Marks the last acquired region busy until the work queued on `stream` so far completes.
  // Returns the event recorded.
  cudaEvent_t Release(cudaStream_t stream) {
    EventPtr event;
    if (!spare_events_.empty()) {
      event = std::move(spare_events_.back());
      spare_events_.pop_back();
    } else {
      cudaEvent_t e = nullptr;
      SIEVE_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
      event.reset(e);
    }
    SIEVE_CUDA_CHECK(cudaEventRecord(event.get(), stream));
    cudaEvent_t raw = event.get();
    in_flight_.push_back(Region{last_begin_, last_end_, std::move(event)});
    return raw;
  }

 private:
  struct Region {
    size_t begin, end;
    EventPtr event;
  };
  static bool Overlaps(const Region& r, size_t begin, size_t end) {
    return r.begin < end && begin < r.end;
  }

  PinnedPtr buffer_;
  size_t capacity_ = 0;
  size_t head_ = 0;
  size_t last_begin_ = 0, last_end_ = 0;
  std::deque<Region> in_flight_;
  std::vector<EventPtr> spare_events_;
};

// ---------------------------------------------------------------------------------------------

class CudaBackend final : public Backend {
 public:
  static constexpr size_t kStagingBytes = size_t{64} << 20;

  static StatusOr<std::unique_ptr<Backend>> Create(int device, const BackendOptions& options) {
    const DType residual = options.residual_dtype.value_or(DType::kBF16);
    if (residual != DType::kBF16 && residual != DType::kF32) {
      return Status::InvalidArgument(
          StrFormat("cuda:%d: the residual stream is bf16 or f32, not %s", device,
                    DTypeName(residual).data()));
    }
    std::unique_ptr<CudaBackend> be(new CudaBackend(device));
    be->residual_dtype_ = residual;
    be->tune_gemms_ = options.tune_gemms;
    cudaError_t err = cudaSetDevice(device);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return Status::Unavailable(
          StrFormat("cuda:%d: cannot select the device: %s", device, cudaGetErrorString(err)));
    }
    // Asks about the current device: after it is selected.
    be->swiglu_block_ = kernels::GemmSwigluSm90DeviceOk() ? kernels::kSwigluBlock : 0;
    cudaDeviceProp prop{};
    SIEVE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    be->description_ = StrFormat("cuda:%d %s (%.1f GiB)", device, prop.name,
                                 static_cast<double>(prop.totalGlobalMem) / double(1 << 30));
    cudaStream_t stream = nullptr;
    SIEVE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    be->stream_.reset(stream);
    err = be->staging_.Init(kStagingBytes);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return Status::ResourceExhausted(StrFormat("cuda:%d: cannot pin %zu MiB of host staging: %s",
                                                 device, kStagingBytes >> 20,
                                                 cudaGetErrorString(err)));
    }
    err = kernels::CublasLtGemm::Create(kernels::CublasLtGemm::kDefaultWorkspaceBytes, &be->gemm_);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return Status::ResourceExhausted(
          StrFormat("cuda:%d: cannot create cuBLASLt: %s", device, cudaGetErrorString(err)));
    }
    return std::unique_ptr<Backend>(std::move(be));
  }

  ~CudaBackend() override {
    DeviceScope scope(device_);
    cudaStreamSynchronize(stream_.get());  // errors were reported by Synchronize already
    workspace_.Reset();
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->alive = false;
    FreeCachedLocked();
  }

  DeviceKind kind() const override { return DeviceKind::kCuda; }
  std::string Describe() const override { return description_; }
  void* native_stream() const override { return stream_.get(); }
  MemoryUsage Memory() const override {
    std::lock_guard<std::mutex> lock(state_->mu);
    return {.live_bytes = state_->live_bytes, .peak_bytes = state_->peak_live_bytes};
  }
  void ResetPeakMemory() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->peak_live_bytes = state_->live_bytes;
  }
  DType compute_dtype() const override { return DType::kBF16; }
  DType residual_dtype() const override { return residual_dtype_; }

  StatusOr<DeviceBuffer> Allocate(size_t bytes) override {
    const size_t cls = SizeClass(bytes);
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      auto it = state_->free_lists.find(cls);
      if (it != state_->free_lists.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        state_->cached_bytes -= cls;
        state_->live_bytes += cls;
        state_->peak_live_bytes = std::max(state_->peak_live_bytes, state_->live_bytes);
        state_->peak_live_bytes = std::max(state_->peak_live_bytes, state_->live_bytes);
        Register(p, cls);
        return DeviceBuffer(p, bytes, &ReleaseDeviceBlock);
      }
    }
    DeviceScope scope(device_);
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, cls);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky, but it must not surface at the next launch check
      SIEVE_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));  // cached blocks may be queued
      std::lock_guard<std::mutex> lock(state_->mu);
      FreeCachedLocked();
      err = cudaMalloc(&p, cls);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      cudaGetLastError();
      return Status::ResourceExhausted(
          StrFormat("cuda:%d: cannot allocate %.3f GiB (%s; %.3f GiB free of %.3f GiB)", device_,
                    static_cast<double>(bytes) / double(1 << 30), cudaGetErrorString(err),
                    static_cast<double>(free_bytes) / double(1 << 30),
                    static_cast<double>(total) / double(1 << 30)));
    }
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->live_bytes += cls;
    }
    Register(p, cls);
    return DeviceBuffer(p, bytes, &ReleaseDeviceBlock);
  }

  size_t FreeMemoryBytes() const override {
    DeviceScope scope(device_);
    size_t free_bytes = 0, total = 0;
    SIEVE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
    std::lock_guard<std::mutex> lock(state_->mu);
    return free_bytes + state_->cached_bytes;
  }

  void CopyToDevice(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return;
    DeviceScope scope(device_);
    std::lock_guard<std::mutex> lock(staging_mu_);
    const size_t chunk = staging_.max_chunk();
    for (size_t off = 0; off < bytes; off += chunk) {
      const size_t n = std::min(chunk, bytes - off);
      char* stage = staging_.Acquire(n);
      std::memcpy(stage, static_cast<const char*>(src) + off, n);
      SIEVE_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + off, stage, n,
                                       cudaMemcpyHostToDevice, stream_.get()));
      staging_.Release(stream_.get());
    }
  }

  void CopyToHost(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return;
    DeviceScope scope(device_);
    std::lock_guard<std::mutex> lock(staging_mu_);
    // Earlier copies in the ring precede ours on the stream, so waiting for them costs nothing:
    // the ring then holds exactly our chunks, alternating between its two halves.
    staging_.DrainAll();
    const size_t chunk = staging_.max_chunk();
    // Two chunks in flight: queue chunk i + 1 before draining chunk i.
    struct Pending {
      char* stage;
      cudaEvent_t done;
      size_t off, n;
    };
    std::deque<Pending> pending;
    auto drain_one = [&] {
      const Pending p = pending.front();
      pending.pop_front();
      SIEVE_CUDA_CHECK(cudaEventSynchronize(p.done));
      std::memcpy(static_cast<char*>(dst) + p.off, p.stage, p.n);
    };
    for (size_t off = 0; off < bytes; off += chunk) {
      const size_t n = std::min(chunk, bytes - off);
      if (pending.size() == 2) drain_one();  // chunk i - 1's half is the one Acquire reuses
      char* stage = staging_.Acquire(n);
      SIEVE_CUDA_CHECK(cudaMemcpyAsync(stage, static_cast<const char*>(src) + off, n,
                                       cudaMemcpyDeviceToHost, stream_.get()));
      pending.push_back({stage, staging_.Release(stream_.get()), off, n});
    }
    while (!pending.empty()) drain_one();
  }

  void CopyOnDevice(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0 || dst == src) return;
    DeviceScope scope(device_);
    const char* s = static_cast<const char*>(src);
    char* d = static_cast<char*>(dst);
    if (d < s + bytes && s < d + bytes) {
      // Overlapping ranges (memmove semantics, as the CPU backend): go through a temporary.
      auto tmp = Allocate(bytes);
      SIEVE_CHECK(tmp.ok(), "CopyOnDevice of %zu overlapping bytes: %s", bytes,
                  tmp.status().ToString().c_str());
      SIEVE_CUDA_CHECK(
          cudaMemcpyAsync(tmp->get(), s, bytes, cudaMemcpyDeviceToDevice, stream_.get()));
      SIEVE_CUDA_CHECK(
          cudaMemcpyAsync(d, tmp->get(), bytes, cudaMemcpyDeviceToDevice, stream_.get()));
      return;  // tmp goes back to the cache; its next user is queued behind these copies
    }
    SIEVE_CUDA_CHECK(cudaMemcpyAsync(d, s, bytes, cudaMemcpyDeviceToDevice, stream_.get()));
  }

  void Fill(void* dst, uint8_t byte, size_t bytes) override {
    if (bytes == 0) return;
    DeviceScope scope(device_);
    SIEVE_CUDA_CHECK(cudaMemsetAsync(dst, byte, bytes, stream_.get()));
  }

  Status Synchronize() override {
    DeviceScope scope(device_);
    cudaError_t err = cudaStreamSynchronize(stream_.get());
    if (err == cudaSuccess) err = cudaGetLastError();
    if (err != cudaSuccess) {
      return Status::Internal(StrFormat("%s [%s]: %s (%s)", description_.c_str(),
                                        ProcessContextString(), cudaGetErrorName(err),
                                        cudaGetErrorString(err)));
    }
    return Status::Ok();
  }

  // Ops.

  void Embedding(const kernels::EmbeddingArgs& a) override {
    DeviceScope scope(device_);
    SIEVE_CUDA_CHECK(kernels::LaunchEmbedding(a, stream_.get()));
    SIEVE_SYNC_CHECK(stream_.get());
  }
  void RmsNorm(const kernels::RmsNormArgs& a) override {
    DeviceScope scope(device_);
    SIEVE_CUDA_CHECK(kernels::LaunchRmsNorm(a, stream_.get()));
    SIEVE_SYNC_CHECK(stream_.get());
  }
  void Rope(const kernels::RopeArgs& a) override {
    DeviceScope scope(device_);
    SIEVE_CUDA_CHECK(kernels::LaunchRope(a, stream_.get()));
    SIEVE_SYNC_CHECK(stream_.get());
  }
  void Gemm(const kernels::GemmArgs& a) override {
    DeviceScope scope(device_);
    // One row against a whole weight (decoding one sequence) is bound by reading the weight: the
    // skinny kernel streams it 3-19% faster than cuBLASLt on the H100; with 8 rows cuBLASLt is
    // faster (sieve-gemm-bench, bench/RESULTS.md section 1), so it keeps those.
    if (a.m == 1 && kernels::SkinnyGemmSupported(a)) {
      SIEVE_CUDA_CHECK(kernels::LaunchSkinnyGemm(a, stream_.get()));
      SIEVE_SYNC_CHECK(stream_.get());
      return;
    }
    const cudaError_t err = gemm_->Run(a, stream_.get());
    SIEVE_CHECK(err == cudaSuccess,
                "GEMM m=%lld n=%lld k=%lld ldx=%lld ldy=%lld x=%s w=%s y=%s: %s (cuBLAS: %s)",
                static_cast<long long>(a.m), static_cast<long long>(a.n),
                static_cast<long long>(a.k), static_cast<long long>(a.ldx),
                static_cast<long long>(a.ldy), DTypeName(a.x_dtype).data(),
                DTypeName(a.w_dtype).data(), DTypeName(a.y_dtype).data(), cudaGetErrorString(err),
                cublasGetStatusString(gemm_->last_status()));
    SIEVE_SYNC_CHECK(stream_.get());
  }
  bool GemmNeedsTuning(const kernels::GemmArgs& a) const override {
    return tune_gemms_ && !gemm_->Tuned(a);
  }
  void TuneGemm(const kernels::GemmArgs& a) override {
    DeviceScope scope(device_);
    if (!GemmNeedsTuning(a)) return;
    int chosen = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const cudaError_t err = gemm_->Tune(a, stream_.get(), &chosen);
    SIEVE_CHECK(err == cudaSuccess, "GEMM tuning m=%lld n=%lld k=%lld: %s (cuBLAS: %s)",
                static_cast<long long>(a.m), static_cast<long long>(a.n),
                static_cast<long long>(a.k), cudaGetErrorString(err),
                cublasGetStatusString(gemm_->last_status()));
    SIEVE_LOG_DEBUG(
        "gemm tuned", "device=%d m=%lld n=%lld k=%lld beta=%g candidate=%d ms=%.1f", device_,
        static_cast<long long>(a.m), static_cast<long long>(a.n), static_cast<long long>(a.k),
        a.beta, chosen,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  bool GemmSwiglu(const kernels::GemmSwigluArgs& a) override {
    if (swiglu_block_ == 0 || !kernels::GemmSwigluSm90Ok(a)) return false;
    DeviceScope scope(device_);
    SIEVE_CUDA_CHECK(kernels::LaunchGemmSwigluSm90(a, stream_.get()));
    SIEVE_SYNC_CHECK(stream_.get());
    return true;
  }
  int64_t swiglu_block() const override { return swiglu_block_; }
  void SiluMul(const kernels::SiluMulArgs& a) override {
    DeviceScope scope(device_);
    SIEVE_CUDA_CHECK(kernels::LaunchSiluMul(a, stream_.get()));
    SIEVE_SYNC_CHECK(stream_.get());
  }
  void Attention(const kernels::AttentionArgs& a) override {
    DeviceScope scope(device_);
    SIEVE_CHECK(kernels::AttentionCanImplement(a),
                "unsupported attention: head_dim=%d q_heads=%d kv_heads=%d seqs=%d (head_dim "
                "must be 1..256, q_heads a multiple of kv_heads)",
                a.head_dim, a.num_q_heads, a.num_kv_heads, a.num_seqs);
    const size_t ws_bytes = kernels::AttentionWorkspaceBytes(a);
    void* ws = Workspace(ws_bytes);
    SIEVE_CUDA_CHECK(kernels::LaunchAttention(a, ws, ws_bytes, stream_.get()));
    SIEVE_SYNC_CHECK(stream_.get());
  }
  void WindowScores(const kernels::WindowScoresArgs& a) override {
    DeviceScope scope(device_);
    const size_t ws_bytes = kernels::WindowScoresWorkspaceBytes(a);
    void* ws = Workspace(ws_bytes);
    SIEVE_CUDA_CHECK(kernels::LaunchWindowScores(a, ws, ws_bytes, stream_.get()));
    SIEVE_SYNC_CHECK(stream_.get());
  }
  void MaxPool1d(const kernels::MaxPool1dArgs& a) override {
    DeviceScope scope(device_);
    SIEVE_CUDA_CHECK(kernels::LaunchMaxPool1d(a, stream_.get()));
    SIEVE_SYNC_CHECK(stream_.get());
  }
  void TopkSelect(const kernels::TopkSelectArgs& a) override {
    DeviceScope scope(device_);
    SIEVE_CUDA_CHECK(kernels::LaunchTopkSelect(a, stream_.get()));
    SIEVE_SYNC_CHECK(stream_.get());
  }
  void KvGather(const kernels::KvGatherArgs& a) override {
    DeviceScope scope(device_);
    SIEVE_CUDA_CHECK(kernels::LaunchKvGather(a, stream_.get()));
    SIEVE_SYNC_CHECK(stream_.get());
  }
  void LogSoftmaxGather(const kernels::LogSoftmaxGatherArgs& a) override {
    DeviceScope scope(device_);
    SIEVE_CUDA_CHECK(kernels::LaunchLogSoftmaxGather(a, stream_.get()));
    SIEVE_SYNC_CHECK(stream_.get());
  }
  void Sample(const kernels::SampleArgs& a) override {
    DeviceScope scope(device_);
    const size_t ws_bytes = kernels::SampleWorkspaceBytes(a);
    void* ws = Workspace(ws_bytes);
    SIEVE_CUDA_CHECK(kernels::LaunchSample(a, ws, ws_bytes, stream_.get()));
    SIEVE_SYNC_CHECK(stream_.get());
  }
  void RandomInit(const kernels::RandomInitArgs& a) override {
    DeviceScope scope(device_);
    SIEVE_CUDA_CHECK(kernels::LaunchRandomInit(a, stream_.get()));
    SIEVE_SYNC_CHECK(stream_.get());
  }

 private:
  explicit CudaBackend(int device)
      : device_(device), state_(std::make_shared<AllocatorState>(device)) {}

  void Register(void* p, size_t cls) {
    Registry& reg = GlobalRegistry();
    std::lock_guard<std::mutex> lock(reg.mu);
    reg.blocks[p] = BlockInfo{state_, cls};
  }

  // Frees every cached block. Needs state_->mu held and no queued work using them.
  void FreeCachedLocked() {
    for (auto& [cls, blocks] : state_->free_lists) {
      for (void* p : blocks) cudaFree(p);
    }
    state_->free_lists.clear();
    state_->cached_bytes = 0;
  }

  // The shared op workspace, at least `bytes` (nullptr when 0). Growing it releases the old one
  // to the cache, which is safe on the single stream.
  void* Workspace(size_t bytes) {
    if (bytes == 0) return nullptr;
    if (workspace_.bytes() < bytes) {
      workspace_.Reset();
      auto buffer = Allocate(std::max(bytes, size_t{1} << 20));
      SIEVE_CHECK(buffer.ok(), "op workspace of %zu bytes: %s", bytes,
                  buffer.status().ToString().c_str());
      workspace_ = std::move(buffer).value();
    }
    return workspace_.get();
  }

  const int device_;
  std::shared_ptr<AllocatorState> state_;
  std::string description_;
  DType residual_dtype_ = DType::kBF16;
  int64_t swiglu_block_ = 0;  // kSwigluBlock when the fused gate-up kernel runs here
  bool tune_gemms_ = false;
  StreamPtr stream_;
  std::mutex staging_mu_;
  PinnedStaging staging_;
  std::unique_ptr<kernels::CublasLtGemm> gemm_;
  DeviceBuffer workspace_;
};

}  // namespace

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // e.g. no driver: "no device" is not an error for the caller
    return 0;
  }
  return count;
}

StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(int device, const BackendOptions& options) {
  const int count = CudaDeviceCount();
  if (count == 0) return Status::Unavailable("no CUDA device is visible");
  if (device < 0 || device >= count) {
    return Status::Unavailable(
        StrFormat("cuda:%d does not exist (%d device(s) visible)", device, count));
  }
  return CudaBackend::Create(device, options);
}

}  // namespace sieve::worker
