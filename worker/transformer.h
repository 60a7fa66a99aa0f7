// The Llama forward pass, written once against Backend, as layer-level steps.
//
// Each pipeline stage (chunk prefill, query prefill, a decode step) runs the same skeleton over
// the rows it holds in a ForwardWorkspace:
//
//   Embed(ws, n)
//   for layer l:
//     AttentionInput(l, ws, n)        normed = RMSNorm(residual); qkv = normed·Wqkvᵀ;
//                                     RoPE on q and k at ws positions
//     <the stage's attention>         reads q/k/v from ws.qkv (QkvLayout), writes ws.attn_out;
//                                     caches K/V, scores tokens for eviction, ...
//     AttentionOutputAndMlp(l, ws, n) residual += attn_out·Woᵀ; normed = RMSNorm(residual);
//                                     residual += (silu(gate) * up)·Wdownᵀ (gate and up from one
//                                     GEMM; with SwiGLU in its epilogue on Hopper prefill)
//   FinalNorm(ws, n)                  normed = RMSNorm(residual) (the "hidden state")
//   Logits(ws, rows)                  LM-head rows for the requested positions only
//
// The residual stream is kept in Backend::residual_dtype (fp32 on the CPU, bf16 on CUDA unless
// BackendOptions ask for fp32); the O and down projections add into it in their epilogue
// (GemmArgs::beta = 1). Into a bf16 stream cuBLASLt rounds the product to bf16 before the add,
// which is what Hugging Face's bf16 `residual + out` does too. Everything else is in the
// backend's compute dtype. Weights are fused: qkv = [q_proj; k_proj; v_proj] and
// gate_up = [gate_proj; up_proj] (worker/model_weights.h).
//
// Tested by tests/unit/worker/transformer_test.cc against the Hugging Face fixtures.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "comm/status.h"
#include "worker/backend.h"
#include "worker/model_config.h"
#include "worker/model_weights.h"

namespace sieve::worker {

// Where q, k and v of row t sit inside the fused QKV activation [rows, row_stride]:
//   q(t, h) at t * row_stride + h * head_dim               (h < num_q_heads)
//   k(t, g) at t * row_stride + k_offset + g * head_dim    (g < num_kv_heads)
//   v(t, g) at t * row_stride + v_offset + g * head_dim
struct QkvLayout {
  int64_t row_stride = 0;  // elements
  int64_t k_offset = 0;
  int64_t v_offset = 0;
};

// Activation buffers for up to max_rows rows of one forward, allocated once. Host-visible
// metadata (ids, positions) is staged in host vectors and uploaded with UploadRows.
class ForwardWorkspace {
 public:
  static StatusOr<ForwardWorkspace> Create(Backend& backend, const ModelConfig& config,
                                           int64_t max_rows);
  // Bytes Create would allocate for max_rows rows (for sizing batches from a memory budget).
  static size_t BytesFor(const Backend& backend, const ModelConfig& config, int64_t max_rows);

  int64_t max_rows() const { return max_rows_; }

  // Uploads token ids and positions of n rows (async; the vectors must outlive the next sync).
  void UploadRows(Backend& backend, std::span<const int32_t> ids,
                  std::span<const int32_t> positions);

  void* residual() const { return residual_.get(); }   // [max_rows, hidden], residual dtype
  void* normed() const { return normed_.get(); }       // [max_rows, hidden]
  void* qkv() const { return qkv_.get(); }             // [max_rows, (Hq + 2 Hkv) d]
  void* attn_out() const { return attn_out_.get(); }   // [max_rows, Hq d]
  void* gate_up() const { return gate_up_.get(); }     // [max_rows, 2 I]
  void* mlp_act() const { return mlp_act_.get(); }     // [max_rows, I]
  int32_t* ids() const { return ids_.as<int32_t>(); }  // [max_rows]
  int32_t* positions() const { return positions_.as<int32_t>(); }  // [max_rows]

 private:
  int64_t max_rows_ = 0;
  DeviceBuffer residual_, normed_, qkv_, attn_out_, gate_up_, mlp_act_, ids_, positions_;
};

struct TransformerOptions {
  // Precision the RoPE inverse frequencies are held in (worker/rope_table.h). kF32 reproduces
  // Hugging Face's from_pretrained; kBF16 a model cast with .to(torch.bfloat16) after it was
  // built, which is how the forward fixtures were made.
  DType rope_inv_freq_dtype = DType::kF32;
};

class Transformer {
 public:
  // Takes the weights (already on `backend`) and uploads the RoPE table.
  static StatusOr<std::unique_ptr<Transformer>> Create(const ModelConfig& config,
                                                       ModelWeights weights, Backend& backend,
                                                       const TransformerOptions& options = {});

  const ModelConfig& config() const { return config_; }
  Backend& backend() const { return backend_; }
  const ModelWeights& weights() const { return weights_; }
  DType dtype() const { return backend_.compute_dtype(); }
  QkvLayout qkv_layout() const;
  float attention_scale() const;  // 1 / sqrt(head_dim)

  // The steps of the file comment, over the first n rows of ws.
  void Embed(ForwardWorkspace& ws, int64_t n) const;
  void AttentionInput(int layer, ForwardWorkspace& ws, int64_t n) const;
  void AttentionOutputAndMlp(int layer, ForwardWorkspace& ws, int64_t n) const;
  void FinalNorm(ForwardWorkspace& ws, int64_t n) const;

  // Times the GEMM algorithms of the projections at n rows (Backend::TuneGemm) when the backend
  // tunes (BackendOptions::tune_gemms) and that shape class is not tuned yet, for
  // n >= kTuneMinRows (smaller products keep the library's heuristic); otherwise does nothing.
  // Call it on a workspace whose contents do not matter yet: it may overwrite every buffer.
  static constexpr int64_t kTuneMinRows = 4096;
  void TuneGemms(ForwardWorkspace& ws, int64_t n) const;

  // logits[i, :] = normed[rows[i], :] · lm_headᵀ, fp32 [num_rows, vocab]. `rows` and `logits` are
  // backend memory; `scratch` holds num_rows * hidden elements of the compute dtype.
  void Logits(const ForwardWorkspace& ws, const int32_t* rows, int64_t num_rows, void* scratch,
              float* logits) const;

 private:
  Transformer(const ModelConfig& config, ModelWeights weights, Backend& backend);
  enum class Proj { kQkv, kO, kGateUp, kDown };
  // The projection's product over the first n rows of ws, as the forward runs it.
  kernels::GemmArgs Projection(Proj p, int layer, const ForwardWorkspace& ws, int64_t n) const;
  // mlp_act = SwiGLU of the gate-up projection in one fused kernel (Backend::GemmSwiglu), for
  // prefill-sized n on a backend that has it; false when the caller must run Gemm + SiluMul.
  static constexpr int64_t kFusedSwigluMinRows = 256;
  bool WantsFusedSwiglu(int64_t n) const;
  bool FusedSwiglu(int layer, ForwardWorkspace& ws, int64_t n) const;
  // normed = RMSNorm(residual) * weight over the first n rows.
  void Norm(const void* weight, ForwardWorkspace& ws, int64_t n) const;

  ModelConfig config_;
  ModelWeights weights_;
  Backend& backend_;
  DeviceBuffer inv_freq_;  // [head_dim / 2] fp32
  float rope_scaling_ = 1.f;
};

}  // namespace sieve::worker
