#include "worker/transformer.h"

#include <cmath>

#include "worker/rope_table.h"

namespace sieve::worker {
namespace {

// Bytes of one row of each activation buffer.
struct RowBytes {
  size_t residual, hidden, qkv, attn_out, gate_up, mlp_act;
};

RowBytes RowBytesFor(const Backend& backend, const ModelConfig& c) {
  const size_t e = DTypeSize(backend.compute_dtype());
  const size_t r = DTypeSize(backend.residual_dtype());
  return RowBytes{
      .residual = r * c.hidden_size,
      .hidden = e * c.hidden_size,
      .qkv = e * (c.q_dim() + 2 * c.kv_dim()),
      .attn_out = e * c.q_dim(),
      .gate_up = e * 2 * c.intermediate_size,
      .mlp_act = e * c.intermediate_size,
  };
}

char* Offset(void* base, int64_t elements, DType dtype) {
  return static_cast<char*>(base) + elements * static_cast<int64_t>(DTypeSize(dtype));
}

}  // namespace

size_t ForwardWorkspace::BytesFor(const Backend& backend, const ModelConfig& config,
                                  int64_t max_rows) {
  const RowBytes rb = RowBytesFor(backend, config);
  return max_rows * (rb.residual + rb.hidden + rb.qkv + rb.attn_out + rb.gate_up + rb.mlp_act +
                     2 * sizeof(int32_t));
}

StatusOr<ForwardWorkspace> ForwardWorkspace::Create(Backend& backend, const ModelConfig& config,
                                                    int64_t max_rows) {
  ForwardWorkspace ws;
  ws.max_rows_ = max_rows;
  const RowBytes rb = RowBytesFor(backend, config);
  struct Slot {
    DeviceBuffer* buffer;
    size_t row_bytes;
  };
  const Slot slots[] = {{&ws.residual_, rb.residual}, {&ws.normed_, rb.hidden},
                        {&ws.qkv_, rb.qkv},           {&ws.attn_out_, rb.attn_out},
                        {&ws.gate_up_, rb.gate_up},   {&ws.mlp_act_, rb.mlp_act},
                        {&ws.ids_, sizeof(int32_t)},  {&ws.positions_, sizeof(int32_t)}};
  for (const Slot& slot : slots) {
    auto buffer = backend.Allocate(slot.row_bytes * max_rows);
    if (!buffer.ok()) {
      return buffer.status().WithContext(
          StrFormat("forward workspace for %lld rows", static_cast<long long>(max_rows)));
    }
    *slot.buffer = std::move(buffer).value();
  }
  return ws;
}

void ForwardWorkspace::UploadRows(Backend& backend, std::span<const int32_t> ids,
                                  std::span<const int32_t> positions) {
  SIEVE_CHECK(ids.size() == positions.size() && static_cast<int64_t>(ids.size()) <= max_rows_,
              "rows=%zu positions=%zu max_rows=%lld", ids.size(), positions.size(),
              static_cast<long long>(max_rows_));
  backend.CopyToDevice(ids_.get(), ids.data(), ids.size_bytes());
  backend.CopyToDevice(positions_.get(), positions.data(), positions.size_bytes());
}

Transformer::Transformer(const ModelConfig& config, ModelWeights weights, Backend& backend)
    : config_(config), weights_(std::move(weights)), backend_(backend) {}

StatusOr<std::unique_ptr<Transformer>> Transformer::Create(const ModelConfig& config,
                                                           ModelWeights weights, Backend& backend,
                                                           const TransformerOptions& options) {
  std::unique_ptr<Transformer> t(new Transformer(config, std::move(weights), backend));
  const std::vector<float> inv_freq =
      ComputeRopeInvFreq(config.rope, config.head_dim, options.rope_inv_freq_dtype);
  SIEVE_ASSIGN_OR_RETURN(t->inv_freq_, backend.Allocate(inv_freq.size() * sizeof(float)));
  backend.CopyToDevice(t->inv_freq_.get(), inv_freq.data(), inv_freq.size() * sizeof(float));
  t->rope_scaling_ = RopeAttentionScaling(config.rope);
  SIEVE_RETURN_IF_ERROR(backend.Synchronize());
  return t;
}

QkvLayout Transformer::qkv_layout() const {
  return QkvLayout{.row_stride = config_.q_dim() + 2 * config_.kv_dim(),
                   .k_offset = config_.q_dim(),
                   .v_offset = config_.q_dim() + config_.kv_dim()};
}

float Transformer::attention_scale() const {
  return 1.f / std::sqrt(static_cast<float>(config_.head_dim));
}

void Transformer::Embed(ForwardWorkspace& ws, int64_t n) const {
  // The embedding goes straight into the residual stream.
  backend_.Embedding({.ids = ws.ids(),
                      .table = weights_.embed(),
                      .out = ws.residual(),
                      .num_tokens = n,
                      .hidden = config_.hidden_size,
                      .vocab = config_.vocab_size,
                      .table_dtype = weights_.dtype(),
                      .out_dtype = backend_.residual_dtype()});
}

kernels::GemmArgs Transformer::Projection(Proj p, int layer, const ForwardWorkspace& ws,
                                          int64_t n) const {
  const LayerWeights& w = weights_.layer(layer);
  const DType dt = dtype();
  const int64_t hidden = config_.hidden_size;
  const int64_t inter = config_.intermediate_size;
  kernels::GemmArgs a{.m = n, .x_dtype = dt, .w_dtype = weights_.dtype(), .y_dtype = dt};
  switch (p) {
    case Proj::kQkv:
      a.x = ws.normed();
      a.w = w.qkv.get();
      a.y = ws.qkv();
      a.n = qkv_layout().row_stride;
      a.k = hidden;
      break;
    case Proj::kO:  // residual += attn_out · Woᵀ, in the GEMM's epilogue (beta = 1)
      a.x = ws.attn_out();
      a.w = w.o.get();
      a.y = ws.residual();
      a.n = hidden;
      a.k = config_.q_dim();
      a.beta = 1.f;
      a.y_dtype = backend_.residual_dtype();
      break;
    case Proj::kGateUp:
      a.x = ws.normed();
      a.w = w.gate_up.get();
      a.y = ws.gate_up();
      a.n = 2 * inter;
      a.k = hidden;
      break;
    case Proj::kDown:  // residual += act · Wdownᵀ
      a.x = ws.mlp_act();
      a.w = w.down.get();
      a.y = ws.residual();
      a.n = hidden;
      a.k = inter;
      a.beta = 1.f;
      a.y_dtype = backend_.residual_dtype();
      break;
  }
  a.ldx = a.k;
  a.ldy = a.n;
  return a;
}

bool Transformer::WantsFusedSwiglu(int64_t n) const {
  return weights_.swiglu_block() > 0 && n >= kFusedSwigluMinRows;
}

bool Transformer::FusedSwiglu(int layer, ForwardWorkspace& ws, int64_t n) const {
  if (!WantsFusedSwiglu(n)) return false;
  const int64_t hidden = config_.hidden_size, inter = config_.intermediate_size;
  return backend_.GemmSwiglu({.x = ws.normed(),
                              .w = weights_.layer(layer).gate_up.get(),
                              .out = ws.mlp_act(),
                              .m = n,
                              .inter = inter,
                              .k = hidden,
                              .ldx = hidden,
                              .ldo = inter,
                              .dtype = dtype()});
}

void Transformer::TuneGemms(ForwardWorkspace& ws, int64_t n) const {
  if (n < kTuneMinRows) return;
  std::vector<kernels::GemmArgs> pending;
  for (Proj p : {Proj::kQkv, Proj::kO, Proj::kGateUp, Proj::kDown}) {
    if (p == Proj::kGateUp && WantsFusedSwiglu(n)) continue;  // not a cuBLASLt product
    const kernels::GemmArgs args = Projection(p, 0, ws, n);
    if (backend_.GemmNeedsTuning(args)) pending.push_back(args);
  }
  if (pending.empty()) return;
  // Activation-like inputs: the candidates' speed depends on the data (power draw), so timing
  // them on whatever the buffers held (often zeros) could rank them differently.
  const int64_t hidden = config_.hidden_size;
  const struct {
    void* p;
    int64_t cols;
    DType dtype;
  } inputs[] = {{ws.normed(), hidden, dtype()},
                {ws.attn_out(), config_.q_dim(), dtype()},
                {ws.mlp_act(), config_.intermediate_size, dtype()},
                {ws.residual(), hidden, backend_.residual_dtype()}};
  uint64_t stream = 0;
  for (const auto& in : inputs) {
    backend_.RandomInit({.out = in.p,
                         .dtype = in.dtype,
                         .n = n * in.cols,
                         .seed = 0x5eed,
                         .stream = ++stream,
                         .mean = 0.f,
                         .stddev = 1.f,
                         .constant = false});
  }
  for (const kernels::GemmArgs& args : pending) backend_.TuneGemm(args);
}

void Transformer::AttentionInput(int layer, ForwardWorkspace& ws, int64_t n) const {
  const DType dt = dtype();
  Norm(weights_.layer(layer).attn_norm.get(), ws, n);
  backend_.Gemm(Projection(Proj::kQkv, layer, ws, n));
  const QkvLayout qkv = qkv_layout();
  backend_.Rope({.q = ws.qkv(),
                 .k = Offset(ws.qkv(), qkv.k_offset, dt),
                 .positions = ws.positions(),
                 .inv_freq = inv_freq_.as<float>(),
                 .num_tokens = n,
                 .num_q_heads = static_cast<int>(config_.num_heads),
                 .num_kv_heads = static_cast<int>(config_.num_kv_heads),
                 .head_dim = static_cast<int>(config_.head_dim),
                 .q_stride = qkv.row_stride,
                 .k_stride = qkv.row_stride,
                 .attention_scaling = rope_scaling_,
                 .dtype = dt});
}

void Transformer::AttentionOutputAndMlp(int layer, ForwardWorkspace& ws, int64_t n) const {
  const DType dt = dtype();
  backend_.Gemm(Projection(Proj::kO, layer, ws, n));
  Norm(weights_.layer(layer).mlp_norm.get(), ws, n);
  if (!FusedSwiglu(layer, ws, n)) {
    backend_.Gemm(Projection(Proj::kGateUp, layer, ws, n));
    backend_.SiluMul({.gate_up = ws.gate_up(),
                      .out = ws.mlp_act(),
                      .rows = n,
                      .inter = config_.intermediate_size,
                      .block = weights_.swiglu_block(),
                      .dtype = dt});
  }
  backend_.Gemm(Projection(Proj::kDown, layer, ws, n));
}

void Transformer::FinalNorm(ForwardWorkspace& ws, int64_t n) const {
  Norm(weights_.final_norm(), ws, n);
}

void Transformer::Norm(const void* weight, ForwardWorkspace& ws, int64_t n) const {
  backend_.RmsNorm({.input = nullptr,
                    .residual = ws.residual(),
                    .weight = weight,
                    .out = ws.normed(),
                    .rows = n,
                    .cols = config_.hidden_size,
                    .eps = static_cast<float>(config_.rms_norm_eps),
                    .act_dtype = dtype(),
                    .residual_dtype = backend_.residual_dtype(),
                    .weight_dtype = weights_.dtype()});
}

void Transformer::Logits(const ForwardWorkspace& ws, const int32_t* rows, int64_t num_rows,
                         void* scratch, float* logits) const {
  if (num_rows == 0) return;
  const int64_t hidden = config_.hidden_size;
  // Gather the requested rows (a row gather is a one-head KV gather with an empty V).
  backend_.KvGather({.src_k = ws.normed(),
                     .src_v = ws.normed(),
                     .dst_k = scratch,
                     .dst_v = scratch,
                     .indices = rows,
                     .index_head_stride = 0,
                     .count = num_rows,
                     .dst_begin = 0,
                     .num_heads = 1,
                     .head_dim = static_cast<int>(hidden),
                     .src_token_stride = hidden,
                     .src_head_stride = 0,
                     .dst_token_stride = hidden,
                     .dst_head_stride = 0,
                     .dtype = dtype()});
  backend_.Gemm({.x = scratch,
                 .w = weights_.lm_head(),
                 .y = logits,
                 .m = num_rows,
                 .n = config_.vocab_size,
                 .k = hidden,
                 .ldx = hidden,
                 .ldy = config_.vocab_size,
                 .x_dtype = dtype(),
                 .w_dtype = weights_.dtype(),
                 .y_dtype = DType::kF32});
}

}  // namespace sieve::worker
