#include "worker/chunk_prefill.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "comm/log.h"
#include "worker/attention_batch.h"

namespace sieve::worker {
namespace {

constexpr int kMaxChunksPerForward = 1024;
constexpr int64_t kLogitRowsPerBlock = 128;

char* ByteOffset(void* base, int64_t elements, DType dtype) {
  return static_cast<char*>(base) + elements * static_cast<int64_t>(DTypeSize(dtype));
}

// One packed forward: chunks [first, first + count) of the input.
struct Batch {
  size_t first = 0;
  size_t count = 0;
  int64_t rows = 0;
};

std::vector<Batch> PlanBatches(std::span<const ChunkInput> chunks, int64_t extra_rows,
                               int64_t max_rows) {
  std::vector<Batch> batches;
  Batch cur;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const int64_t rows = static_cast<int64_t>(chunks[i].context.size()) + extra_rows;
    if (cur.count > 0 && (cur.rows + rows > max_rows || cur.count == kMaxChunksPerForward)) {
      batches.push_back(cur);
      cur = Batch{.first = i};
    }
    if (cur.count == 0) cur.first = i;
    ++cur.count;
    cur.rows += rows;
  }
  if (cur.count > 0) batches.push_back(cur);
  return batches;
}

// Everything one batch needs beyond the shared workspace.
struct BatchState {
  std::vector<int32_t> ids, positions, q_starts, kv_lens;
  std::vector<int> context;  // len(ctx) per chunk
  std::vector<int> kept;     // context entries kept per chunk (B, or all)
  std::vector<ChunkKv> kv;
  // Compression scratch (per batch).
  DeviceBuffer scores, pooled, topk, key_begin, key_count, lengths, ks;
  int max_context = 0;
  int max_kept = 0;
};

}  // namespace

int64_t DefaultBatchRows(const Transformer& model, int64_t min_rows) {
  // Activations of one forward stay under a fixed budget (GEMMs are at full speed long before
  // that many rows), so peak memory is weights + the request's KV + this workspace; the batch's
  // KV must also fit in what is free.
  Backend& be = model.backend();
  const ModelConfig& c = model.config();
  const KvShape shape = KvShape::Of(c, model.dtype());
  const size_t workspace_row = ForwardWorkspace::BytesFor(be, c, 1);
  const size_t kv_row = 2 * size_t(c.num_layers) * shape.entry_bytes();
  const size_t free = be.FreeMemoryBytes();
  const size_t workspace_budget = be.kind() == DeviceKind::kCpu
                                      ? std::min<size_t>(free / 4, size_t{2} << 30)
                                      : std::min<size_t>(free / 4, size_t{6} << 30);
  const int64_t rows = static_cast<int64_t>(
      std::min(workspace_budget / workspace_row, free / 2 / (workspace_row + kv_row)));
  return std::clamp<int64_t>(rows, min_rows, std::max<int64_t>(min_rows, int64_t{1} << 17));
}

StatusOr<ChunkPrefillResult> PrefillChunks(const Transformer& model, std::span<const int32_t> query,
                                           std::span<const ChunkInput> chunks,
                                           const ChunkPrefillOptions& opt,
                                           const ChunkProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const ModelConfig& c = model.config();
  Backend& be = model.backend();
  ChunkPrefillResult result;
  if (chunks.empty()) return result;
  if (!c.bos_token_id) {
    return Status::FailedPrecondition(
        "the model config has no bos_token_id; chunk inputs are [BOS] ctx [BOS] query");
  }
  const int32_t bos = static_cast<int32_t>(*c.bos_token_id);
  const int m = static_cast<int>(query.size());
  if (m == 0 && !opt.full_sequence) return Status::InvalidArgument("query: empty");
  const DType dt = model.dtype();
  const KvShape shape = KvShape::Of(c, dt);
  const QkvLayout qkv = model.qkv_layout();
  const int n_kv = shape.num_kv_heads;
  const bool compress = opt.kv_capacity.has_value() && !opt.full_sequence;

  int64_t longest = 0;
  for (const ChunkInput& ch : chunks) {
    longest = std::max<int64_t>(longest, static_cast<int64_t>(ch.context.size()) + 2 + m);
  }
  const int64_t max_rows = opt.max_batch_rows > 0 ? std::max(opt.max_batch_rows, longest)
                                                  : DefaultBatchRows(model, longest);
  const std::vector<Batch> batches = PlanBatches(chunks, 2 + m, max_rows);
  int64_t workspace_rows = 0;
  for (const Batch& b : batches) workspace_rows = std::max(workspace_rows, b.rows);

  SIEVE_ASSIGN_OR_RETURN(ForwardWorkspace ws, ForwardWorkspace::Create(be, c, workspace_rows));
  // The first prefill of a size class times the GEMM algorithms of its projections (once).
  model.TuneGemms(ws, workspace_rows);
  SIEVE_ASSIGN_OR_RETURN(AttentionBatch attn, AttentionBatch::Create(be, kMaxChunksPerForward, 1));
  // Row indices 0..workspace_rows-1: the gather list that copies rows unchanged.
  std::vector<int32_t> iota(workspace_rows);
  std::iota(iota.begin(), iota.end(), 0);
  SIEVE_ASSIGN_OR_RETURN(DeviceBuffer d_iota, be.Allocate(iota.size() * sizeof(int32_t)));
  be.CopyToDevice(d_iota.get(), iota.data(), iota.size() * sizeof(int32_t));
  // LM-head blocks for scoring.
  const size_t elem = DTypeSize(dt);
  SIEVE_ASSIGN_OR_RETURN(DeviceBuffer d_logits,
                         be.Allocate(kLogitRowsPerBlock * c.vocab_size * sizeof(float)));
  SIEVE_ASSIGN_OR_RETURN(DeviceBuffer d_scratch,
                         be.Allocate(kLogitRowsPerBlock * c.hidden_size * elem));
  SIEVE_ASSIGN_OR_RETURN(DeviceBuffer d_rows, be.Allocate(kLogitRowsPerBlock * sizeof(int32_t)));
  SIEVE_ASSIGN_OR_RETURN(DeviceBuffer d_targets, be.Allocate(kLogitRowsPerBlock * sizeof(int32_t)));
  SIEVE_ASSIGN_OR_RETURN(DeviceBuffer d_logprobs, be.Allocate(kLogitRowsPerBlock * sizeof(float)));

  std::vector<ChunkKv> candidates;
  result.scores.reserve(chunks.size());
  size_t done = 0;
  for (const Batch& batch : batches) {
    BatchState st;
    const int nb = static_cast<int>(batch.count);
    st.q_starts.push_back(0);
    for (int b = 0; b < nb; ++b) {
      const ChunkInput& ch = chunks[batch.first + b];
      const int nctx = static_cast<int>(ch.context.size());
      st.context.push_back(nctx);
      st.ids.push_back(bos);
      st.ids.insert(st.ids.end(), ch.context.begin(), ch.context.end());
      st.ids.push_back(bos);
      st.ids.insert(st.ids.end(), query.begin(), query.end());
      const int rows = nctx + 2 + m;
      for (int p = 0; p < rows; ++p) st.positions.push_back(p);
      st.q_starts.push_back(st.q_starts.back() + rows);
      st.kv_lens.push_back(rows);
      int kept = nctx;
      if (compress) kept = std::min(*opt.kv_capacity, nctx);
      st.kept.push_back(kept);
      st.max_context = std::max(st.max_context, nctx);
      st.max_kept = std::max(st.max_kept, kept);
      const int entries = opt.full_sequence ? rows : 1 + kept;
      SIEVE_ASSIGN_OR_RETURN(ChunkKv kv, ChunkKv::Allocate(be, shape, entries));
      kv.index = ch.index;
      kv.context_tokens = nctx;
      st.kv.push_back(std::move(kv));
    }
    const int64_t total = st.q_starts.back();
    ws.UploadRows(be, st.ids, st.positions);
    attn.SetSequences(st.q_starts, st.kv_lens);
    for (int b = 0; b < nb; ++b) {
      const int64_t row0 = st.q_starts[b] * qkv.row_stride;
      attn.SetKv(0, b, ByteOffset(ws.qkv(), row0 + qkv.k_offset, dt),
                 ByteOffset(ws.qkv(), row0 + qkv.v_offset, dt));
    }
    attn.Upload(be);

    if (compress) {
      const int64_t score_stride = std::max(1, st.max_context);
      SIEVE_ASSIGN_OR_RETURN(st.scores, be.Allocate(size_t(nb) * n_kv * score_stride * 4));
      SIEVE_ASSIGN_OR_RETURN(st.pooled, be.Allocate(size_t(nb) * n_kv * score_stride * 4));
      SIEVE_ASSIGN_OR_RETURN(
          st.topk, be.Allocate(size_t(c.num_layers) * nb * n_kv * std::max(1, st.max_kept) * 4));
      std::vector<int32_t> key_begin(nb, 1), key_count(st.context), lengths, ks;
      for (int b = 0; b < nb; ++b) {
        for (int g = 0; g < n_kv; ++g) {
          lengths.push_back(st.context[b]);
          ks.push_back(st.kept[b]);
        }
      }
      SIEVE_ASSIGN_OR_RETURN(st.key_begin, be.Allocate(nb * 4));
      SIEVE_ASSIGN_OR_RETURN(st.key_count, be.Allocate(nb * 4));
      SIEVE_ASSIGN_OR_RETURN(st.lengths, be.Allocate(lengths.size() * 4));
      SIEVE_ASSIGN_OR_RETURN(st.ks, be.Allocate(ks.size() * 4));
      be.CopyToDevice(st.key_begin.get(), key_begin.data(), nb * 4);
      be.CopyToDevice(st.key_count.get(), key_count.data(), nb * 4);
      be.CopyToDevice(st.lengths.get(), lengths.data(), lengths.size() * 4);
      be.CopyToDevice(st.ks.get(), ks.data(), ks.size() * 4);
      SIEVE_RETURN_IF_ERROR(be.Synchronize());  // the host vectors above go out of scope
    }

    model.Embed(ws, total);
    for (int l = 0; l < c.num_layers; ++l) {
      model.AttentionInput(l, ws, total);
      be.Attention({.q = ws.qkv(),
                    .out = ws.attn_out(),
                    .k_seqs = attn.k_seqs(0),
                    .v_seqs = attn.v_seqs(0),
                    .kv_token_stride = qkv.row_stride,
                    .kv_head_stride = c.head_dim,
                    .q_starts = attn.q_starts(),
                    .kv_lens = attn.kv_lens(),
                    .num_seqs = nb,
                    .total_q = total,
                    .max_q_len = attn.max_q_len(),
                    .max_kv_len = attn.max_kv_len(),
                    .num_q_heads = static_cast<int>(c.num_heads),
                    .num_kv_heads = n_kv,
                    .head_dim = static_cast<int>(c.head_dim),
                    .q_stride = qkv.row_stride,
                    .out_stride = c.q_dim(),
                    .scale = model.attention_scale(),
                    .window = static_cast<int>(c.sliding_window),
                    .dtype = dt});
      int32_t* topk_layer = nullptr;
      const int64_t topk_stride = std::max(1, st.max_kept);
      if (compress) {
        const int64_t score_stride = std::max(1, st.max_context);
        be.WindowScores({.q = ws.qkv(),
                         .k_seqs = attn.k_seqs(0),
                         .kv_token_stride = qkv.row_stride,
                         .kv_head_stride = c.head_dim,
                         .q_starts = attn.q_starts(),
                         .kv_lens = attn.kv_lens(),
                         .key_begin = st.key_begin.as<int32_t>(),
                         .key_count = st.key_count.as<int32_t>(),
                         .scores = st.scores.as<float>(),
                         .scores_stride = score_stride,
                         .num_seqs = nb,
                         .num_rows = opt.kv_window,
                         .max_q_len = attn.max_q_len(),
                         .max_kv_len = attn.max_kv_len(),
                         .max_key_count = st.max_context,
                         .num_q_heads = static_cast<int>(c.num_heads),
                         .num_kv_heads = n_kv,
                         .head_dim = static_cast<int>(c.head_dim),
                         .q_stride = qkv.row_stride,
                         .scale = model.attention_scale(),
                         .head_scale = 1.f,
                         .dtype = dt});
        be.MaxPool1d({.in = st.scores.as<float>(),
                      .out = st.pooled.as<float>(),
                      .lengths = st.lengths.as<int32_t>(),
                      .rows = int64_t{nb} * n_kv,
                      .stride = score_stride,
                      .kernel = opt.kv_pool});
        topk_layer = st.topk.as<int32_t>() + int64_t{l} * nb * n_kv * topk_stride;
        be.TopkSelect({.in = st.pooled.as<float>(),
                       .lengths = st.lengths.as<int32_t>(),
                       .ks = st.ks.as<int32_t>(),
                       .out = topk_layer,
                       .rows = int64_t{nb} * n_kv,
                       .in_stride = score_stride,
                       .out_stride = topk_stride,
                       .k = st.max_kept,
                       .max_length = st.max_context});
      }
      // Keep this layer's KV of every chunk: BOS + (selected) context, or every row.
      for (int b = 0; b < nb; ++b) {
        ChunkKv& kv = st.kv[b];
        const int64_t row0 = st.q_starts[b];
        kernels::KvGatherArgs g{
            .src_k = ByteOffset(ws.qkv(), row0 * qkv.row_stride + qkv.k_offset, dt),
            .src_v = ByteOffset(ws.qkv(), row0 * qkv.row_stride + qkv.v_offset, dt),
            .dst_k = kv.k(shape, l),
            .dst_v = kv.v(shape, l),
            .indices = d_iota.as<int32_t>(),
            .index_head_stride = 0,
            .count = compress ? 1 : kv.entries,
            .dst_begin = 0,
            .num_heads = n_kv,
            .head_dim = static_cast<int>(c.head_dim),
            .src_token_stride = qkv.row_stride,
            .src_head_stride = c.head_dim,
            .dst_token_stride = shape.entry_elems(),
            .dst_head_stride = c.head_dim,
            .dtype = dt};
        be.KvGather(g);
        if (compress && st.kept[b] > 0) {
          // Selected context positions t (0-based over ctx) are rows 1 + t of the chunk.
          g.src_k = ByteOffset(ws.qkv(), (row0 + 1) * qkv.row_stride + qkv.k_offset, dt);
          g.src_v = ByteOffset(ws.qkv(), (row0 + 1) * qkv.row_stride + qkv.v_offset, dt);
          g.indices = topk_layer + int64_t{b} * n_kv * topk_stride;
          g.index_head_stride = topk_stride;
          g.count = st.kept[b];
          g.dst_begin = 1;
          be.KvGather(g);
        }
      }
      model.AttentionOutputAndMlp(l, ws, total);
    }
    model.FinalNorm(ws, total);

    if (opt.full_sequence) {
      const int32_t last = static_cast<int32_t>(total - 1);
      be.CopyToDevice(d_rows.get(), &last, sizeof(last));
      model.Logits(ws, d_rows.as<int32_t>(), 1, d_scratch.get(), d_logits.as<float>());
      result.last_logits.resize(c.vocab_size);
      be.CopyToHost(result.last_logits.data(), d_logits.get(), c.vocab_size * sizeof(float));
      SIEVE_RETURN_IF_ERROR(be.Synchronize());
    } else {
      // Query rows: row 1 + nctx + j of chunk b predicts q_j.
      std::vector<int32_t> rows, targets;
      for (int b = 0; b < nb; ++b) {
        for (int j = 0; j < m; ++j) {
          rows.push_back(st.q_starts[b] + 1 + st.context[b] + j);
          targets.push_back(query[j]);
        }
      }
      std::vector<float> logprobs(rows.size());
      for (size_t r0 = 0; r0 < rows.size(); r0 += kLogitRowsPerBlock) {
        const int64_t n = std::min<int64_t>(kLogitRowsPerBlock, rows.size() - r0);
        be.CopyToDevice(d_rows.get(), rows.data() + r0, n * sizeof(int32_t));
        be.CopyToDevice(d_targets.get(), targets.data() + r0, n * sizeof(int32_t));
        model.Logits(ws, d_rows.as<int32_t>(), n, d_scratch.get(), d_logits.as<float>());
        be.LogSoftmaxGather({.logits = d_logits.as<float>(),
                             .targets = d_targets.as<int32_t>(),
                             .target_logprobs = d_logprobs.as<float>(),
                             .rows = n,
                             .vocab = c.vocab_size,
                             .stride = c.vocab_size});
        be.CopyToHost(logprobs.data() + r0, d_logprobs.get(), n * sizeof(float));
        SIEVE_RETURN_IF_ERROR(be.Synchronize());
      }
      for (int b = 0; b < nb; ++b) {
        double nll = 0;
        for (int j = 0; j < m; ++j) nll -= logprobs[size_t(b) * m + j];
        st.kv[b].score = nll / m;
      }
    }
    if (compress) {
      // Chunk-local positions of the kept entries, per layer and head (for the explain fields).
      const int64_t topk_stride = std::max(1, st.max_kept);
      std::vector<int32_t> sel(size_t(c.num_layers) * nb * n_kv * topk_stride);
      be.CopyToHost(sel.data(), st.topk.get(), sel.size() * sizeof(int32_t));
      SIEVE_RETURN_IF_ERROR(be.Synchronize());
      for (int b = 0; b < nb; ++b) {
        ChunkKv& kv = st.kv[b];
        kv.positions.assign(size_t(c.num_layers) * n_kv * kv.entries, 0);
        for (int l = 0; l < c.num_layers; ++l) {
          for (int g = 0; g < n_kv; ++g) {
            const int32_t* row = &sel[((size_t(l) * nb + b) * n_kv + g) * topk_stride];
            int32_t* out = &kv.positions[(size_t(l) * n_kv + g) * kv.entries];
            for (int j = 0; j < st.kept[b]; ++j) out[1 + j] = row[j] + 1;
          }
        }
      }
    }
    SIEVE_RETURN_IF_ERROR(be.Synchronize());
    for (int b = 0; b < nb; ++b) {
      result.scores.push_back(
          {.index = st.kv[b].index, .tokens = st.context[b], .score = st.kv[b].score});
      candidates.push_back(std::move(st.kv[b]));
    }
    // Keep the local top-k (lowest score, ties: lower index); free the rest now.
    if (static_cast<int>(candidates.size()) > opt.keep_local) {
      std::sort(candidates.begin(), candidates.end(), [](const ChunkKv& a, const ChunkKv& b) {
        return a.score < b.score || (a.score == b.score && a.index < b.index);
      });
      candidates.resize(opt.keep_local);
    }
    result.rows += total;
    ++result.forwards;
    done += batch.count;
    SIEVE_LOG_INFO("chunk prefill forward", "chunks=%zu/%zu rows=%lld", done, chunks.size(),
                   static_cast<long long>(total));
    if (progress) progress(static_cast<int>(done), static_cast<int>(chunks.size()));
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const ChunkKv& a, const ChunkKv& b) { return a.index < b.index; });
  result.kept = std::move(candidates);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace sieve::worker
