#include "worker/sequence_forward.h"

#include <algorithm>

#include "worker/attention_batch.h"

namespace sieve::worker {

std::vector<float> DownloadAsFloat(Backend& backend, const void* src, DType dtype, size_t n) {
  std::vector<char> raw(n * DTypeSize(dtype));
  backend.CopyToHost(raw.data(), src, raw.size());
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = LoadAsFloat(raw.data(), dtype, i);
  return out;
}

StatusOr<SequenceForwardResult> ForwardSequence(const Transformer& model,
                                                std::span<const int32_t> ids,
                                                std::span<const int32_t> positions,
                                                const SequenceForwardOptions& options) {
  const ModelConfig& c = model.config();
  Backend& be = model.backend();
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T == 0 || positions.size() != ids.size()) {
    return Status::InvalidArgument(StrFormat(
        "forward: %zu ids and %zu positions (need equal, non-zero)", ids.size(), positions.size()));
  }
  for (int32_t id : ids) {
    if (id < 0 || id >= c.vocab_size) {
      return Status::InvalidArgument(
          StrFormat("forward: token id %d outside the vocabulary [0, %lld)", id,
                    static_cast<long long>(c.vocab_size)));
    }
  }
  for (int32_t p : positions) {
    if (p < 0) return Status::InvalidArgument(StrFormat("forward: negative position %d", p));
  }
  const DType dt = model.dtype();
  const QkvLayout qkv = model.qkv_layout();
  SIEVE_ASSIGN_OR_RETURN(ForwardWorkspace ws, ForwardWorkspace::Create(be, c, T));
  SIEVE_ASSIGN_OR_RETURN(AttentionBatch batch, AttentionBatch::Create(be, 1, 1));
  ws.UploadRows(be, ids, positions);
  const int32_t q_starts[2] = {0, static_cast<int32_t>(T)};
  const int32_t kv_lens[1] = {static_cast<int32_t>(T)};
  batch.SetSequences(q_starts, kv_lens);
  const size_t elem = DTypeSize(dt);
  char* qkv_base = static_cast<char*>(ws.qkv());
  batch.SetKv(0, 0, qkv_base + qkv.k_offset * elem, qkv_base + qkv.v_offset * elem);
  batch.Upload(be);

  SequenceForwardResult result;
  model.Embed(ws, T);
  for (int l = 0; l < c.num_layers; ++l) {
    model.AttentionInput(l, ws, T);
    be.Attention({.q = ws.qkv(),
                  .out = ws.attn_out(),
                  .k_seqs = batch.k_seqs(0),
                  .v_seqs = batch.v_seqs(0),
                  .kv_token_stride = qkv.row_stride,
                  .kv_head_stride = c.head_dim,
                  .q_starts = batch.q_starts(),
                  .kv_lens = batch.kv_lens(),
                  .num_seqs = 1,
                  .total_q = T,
                  .max_q_len = static_cast<int>(T),
                  .max_kv_len = static_cast<int>(T),
                  .num_q_heads = static_cast<int>(c.num_heads),
                  .num_kv_heads = static_cast<int>(c.num_kv_heads),
                  .head_dim = static_cast<int>(c.head_dim),
                  .q_stride = qkv.row_stride,
                  .out_stride = c.q_dim(),
                  .scale = model.attention_scale(),
                  .window = static_cast<int>(c.sliding_window),
                  .dtype = dt});
    if (options.want_kv) {
      // [T, row_stride] token-major -> [n_kv, T, d] head-major, as the fixtures store them.
      const std::vector<float> rows = DownloadAsFloat(be, ws.qkv(), dt, T * qkv.row_stride);
      auto& k = result.k.emplace_back(c.kv_dim() * T);
      auto& v = result.v.emplace_back(c.kv_dim() * T);
      for (int64_t g = 0; g < c.num_kv_heads; ++g) {
        for (int64_t t = 0; t < T; ++t) {
          for (int64_t e = 0; e < c.head_dim; ++e) {
            const int64_t dst = (g * T + t) * c.head_dim + e;
            k[dst] = rows[t * qkv.row_stride + qkv.k_offset + g * c.head_dim + e];
            v[dst] = rows[t * qkv.row_stride + qkv.v_offset + g * c.head_dim + e];
          }
        }
      }
    }
    model.AttentionOutputAndMlp(l, ws, T);
  }
  model.FinalNorm(ws, T);
  if (options.want_hidden) result.hidden = DownloadAsFloat(be, ws.normed(), dt, T * c.hidden_size);

  // LM-head rows in blocks, so a long sequence never holds [T, vocab] logits at once.
  const bool need_logits = options.want_logprobs || options.want_last_logits;
  if (need_logits) {
    constexpr int64_t kBlock = 32;
    SIEVE_ASSIGN_OR_RETURN(DeviceBuffer rows_buf, be.Allocate(kBlock * sizeof(int32_t)));
    SIEVE_ASSIGN_OR_RETURN(DeviceBuffer targets_buf, be.Allocate(kBlock * sizeof(int32_t)));
    SIEVE_ASSIGN_OR_RETURN(DeviceBuffer scratch, be.Allocate(kBlock * c.hidden_size * elem));
    SIEVE_ASSIGN_OR_RETURN(DeviceBuffer logits, be.Allocate(kBlock * c.vocab_size * sizeof(float)));
    SIEVE_ASSIGN_OR_RETURN(DeviceBuffer logprobs, be.Allocate(kBlock * sizeof(float)));
    if (options.want_logprobs) result.logprobs.resize(T - 1);
    const int64_t first = options.want_logprobs ? 0 : T - 1;
    std::vector<int32_t> rows(kBlock), targets(kBlock);
    for (int64_t r0 = first; r0 < T; r0 += kBlock) {
      const int64_t n = std::min(kBlock, T - r0);
      for (int64_t i = 0; i < n; ++i) {
        rows[i] = static_cast<int32_t>(r0 + i);
        targets[i] = r0 + i + 1 < T ? ids[r0 + i + 1] : 0;
      }
      be.CopyToDevice(rows_buf.get(), rows.data(), n * sizeof(int32_t));
      be.CopyToDevice(targets_buf.get(), targets.data(), n * sizeof(int32_t));
      model.Logits(ws, rows_buf.as<int32_t>(), n, scratch.get(), logits.as<float>());
      if (options.want_logprobs) {
        be.LogSoftmaxGather({.logits = logits.as<float>(),
                             .targets = targets_buf.as<int32_t>(),
                             .target_logprobs = logprobs.as<float>(),
                             .rows = n,
                             .vocab = c.vocab_size,
                             .stride = c.vocab_size});
        std::vector<float> lp(n);
        be.CopyToHost(lp.data(), logprobs.get(), n * sizeof(float));
        SIEVE_RETURN_IF_ERROR(be.Synchronize());
        for (int64_t i = 0; i < n && r0 + i < T - 1; ++i) result.logprobs[r0 + i] = lp[i];
      }
      if (r0 + n == T && options.want_last_logits) {
        result.last_logits.resize(c.vocab_size);
        be.CopyToHost(result.last_logits.data(), logits.as<float>() + (n - 1) * c.vocab_size,
                      c.vocab_size * sizeof(float));
      }
      SIEVE_RETURN_IF_ERROR(be.Synchronize());
    }
  }
  SIEVE_RETURN_IF_ERROR(be.Synchronize());
  return result;
}

}  // namespace sieve::worker
