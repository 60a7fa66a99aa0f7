#include "worker/decoder.h"

#include <algorithm>
#include <numeric>
#include <set>

#include "worker/attention_batch.h"

namespace sieve::worker {
namespace {

char* ByteOffset(const void* base, int64_t elements, DType dtype) {
  return const_cast<char*>(static_cast<const char*>(base)) +
         elements * static_cast<int64_t>(DTypeSize(dtype));
}

kernels::AttentionArgs CacheAttentionArgs(const Transformer& model, const ForwardWorkspace& ws,
                                          const AttentionBatch& batch, int layer_set,
                                          int64_t rows) {
  const ModelConfig& c = model.config();
  const QkvLayout qkv = model.qkv_layout();
  return {.q = ws.qkv(),
          .out = ws.attn_out(),
          .k_seqs = batch.k_seqs(layer_set),
          .v_seqs = batch.v_seqs(layer_set),
          .kv_token_stride = c.kv_dim(),
          .kv_head_stride = c.head_dim,
          .q_starts = batch.q_starts(),
          .kv_lens = batch.kv_lens(layer_set),
          .num_seqs = batch.num_seqs(),
          .total_q = rows,
          .max_q_len = batch.max_q_len(),
          .max_kv_len = batch.max_kv_len(),
          .num_q_heads = static_cast<int>(c.num_heads),
          .num_kv_heads = static_cast<int>(c.num_kv_heads),
          .head_dim = static_cast<int>(c.head_dim),
          .q_stride = qkv.row_stride,
          .out_stride = c.q_dim(),
          .scale = model.attention_scale(),
          .window = static_cast<int>(c.sliding_window),
          .dtype = model.dtype()};
}

// Copies rows [0, count) of the fused QKV activation (K and V parts, starting at `first_row`)
// into cache entries [dst_begin, dst_begin + count) of layer l.
void StoreRows(const Transformer& model, const ForwardWorkspace& ws, const int32_t* iota,
               SequenceCache& cache, int layer, int64_t first_row, int64_t count,
               int64_t dst_begin) {
  const ModelConfig& c = model.config();
  const QkvLayout qkv = model.qkv_layout();
  const DType dt = model.dtype();
  model.backend().KvGather(
      {.src_k = ByteOffset(ws.qkv(), first_row * qkv.row_stride + qkv.k_offset, dt),
       .src_v = ByteOffset(ws.qkv(), first_row * qkv.row_stride + qkv.v_offset, dt),
       .dst_k = cache.k(layer),
       .dst_v = cache.v(layer),
       .indices = iota,
       .index_head_stride = 0,
       .count = count,
       .dst_begin = dst_begin,
       .num_heads = static_cast<int>(c.num_kv_heads),
       .head_dim = static_cast<int>(c.head_dim),
       .src_token_stride = qkv.row_stride,
       .src_head_stride = c.head_dim,
       .dst_token_stride = c.kv_dim(),
       .dst_head_stride = c.head_dim,
       .dtype = dt});
}

// Keeps, per head g, the entries `keep[g * keep_stride + j]` (j < count, relative to `begin`) of
// layer l's cache, compacted to [begin, begin + count) (through `scratch`, since a gather may not
// overlap its source).
void CompactRange(const Transformer& model, SequenceCache& cache, int layer, int begin,
                  const int32_t* d_keep, int count, int keep_stride, void* scratch) {
  const ModelConfig& c = model.config();
  Backend& be = model.backend();
  const DType dt = model.dtype();
  const size_t entry = cache.shape().entry_bytes();
  char* scratch_k = static_cast<char*>(scratch);
  char* scratch_v = scratch_k + count * entry;
  be.KvGather({.src_k = cache.k_entry(layer, begin),
               .src_v = cache.v_entry(layer, begin),
               .dst_k = scratch_k,
               .dst_v = scratch_v,
               .indices = d_keep,
               .index_head_stride = keep_stride,
               .count = count,
               .dst_begin = 0,
               .num_heads = static_cast<int>(c.num_kv_heads),
               .head_dim = static_cast<int>(c.head_dim),
               .src_token_stride = c.kv_dim(),
               .src_head_stride = c.head_dim,
               .dst_token_stride = c.kv_dim(),
               .dst_head_stride = c.head_dim,
               .dtype = dt});
  be.CopyOnDevice(cache.k_entry(layer, begin), scratch_k, count * entry);
  be.CopyOnDevice(cache.v_entry(layer, begin), scratch_v, count * entry);
}

std::vector<int32_t> Region(CalibrationPattern pattern, int n, int r) {
  int lo = 0, hi = 0;
  switch (pattern) {
    case CalibrationPattern::kNone:
      break;
    case CalibrationPattern::kSink:
      hi = std::min(r, n);
      break;
    case CalibrationPattern::kRecent:
      lo = std::max(0, n - r);
      hi = n;
      break;
    case CalibrationPattern::kMiddle:
      lo = std::min(r, n);
      hi = std::max(lo, n - r);
      break;
    case CalibrationPattern::kAll:
      hi = n;
      break;
  }
  std::vector<int32_t> out(std::max(0, hi - lo));
  std::iota(out.begin(), out.end(), lo);
  return out;
}

// The calibration rule of the file comment: per head, the sorted Phi_p indices to evict.
std::vector<std::vector<int32_t>> CalibrationEvictions(const std::vector<float>& a, int heads,
                                                       int n, CalibrationPattern pattern,
                                                       const CalibrationOptions& opt) {
  const std::vector<int32_t> region = Region(pattern, n, opt.region);
  std::vector<std::vector<int32_t>> cands(heads);
  size_t cnt = 0;
  for (int g = 0; g < heads; ++g) {
    for (int32_t t : region) {
      if (a[size_t(g) * n + t] > opt.threshold) cands[g].push_back(t);
    }
    cnt = std::max(cnt, cands[g].size());
  }
  std::vector<std::vector<int32_t>> evicted(heads);
  for (int g = 0; g < heads; ++g) {
    std::vector<char> chosen(n, 0);
    for (int32_t t : cands[g]) chosen[t] = 1;
    std::vector<int32_t> rest;
    for (int t = 0; t < n; ++t) {
      if (!chosen[t]) rest.push_back(t);
    }
    const float* row = &a[size_t(g) * n];
    const size_t need = cnt - cands[g].size();
    std::partial_sort(
        rest.begin(), rest.begin() + std::min(need, rest.size()), rest.end(),
        [row](int32_t x, int32_t y) { return row[x] < row[y] || (row[x] == row[y] && x < y); });
    for (size_t i = 0; i < need && i < rest.size(); ++i) chosen[rest[i]] = 1;
    for (int t = 0; t < n; ++t) {
      if (chosen[t]) evicted[g].push_back(t);
    }
  }
  return evicted;
}

int HistoryCapacity(const ScopeOptions& scope, int max_new_tokens) {
  // Decode steps consume tokens 0 .. max_new_tokens - 2; each adds one entry.
  const int steps = std::max(1, max_new_tokens - 1);
  return std::max(1, ScopeSchedule(scope).MaxHistory(steps));
}

}  // namespace

StatusOr<DecodeState> AssemblePrefillCache(const Transformer& model,
                                           std::span<const ChunkKv* const> kept, int query_tokens,
                                           const ScopeOptions& scope, int max_new_tokens,
                                           bool explain) {
  if (kept.empty()) return Status::InvalidArgument("no chunk kept: nothing to decode from");
  const ModelConfig& c = model.config();
  Backend& be = model.backend();
  const KvShape shape = KvShape::Of(c, model.dtype());
  int prefix = 1;
  int p0 = 0;
  for (const ChunkKv* kv : kept) {
    prefix += kv->entries - 1;
    p0 = std::max(p0, 1 + kv->context_tokens);
  }
  DecodeState st{.schedule = ScopeSchedule(scope)};
  const int ring = st.schedule.ring();
  SIEVE_ASSIGN_OR_RETURN(st.cache, SequenceCache::Create(be, shape, prefix + query_tokens, ring,
                                                         HistoryCapacity(scope, max_new_tokens)));
  st.p0 = p0;
  st.next_position = p0;
  const size_t entry = shape.entry_bytes();
  for (int l = 0; l < shape.num_layers; ++l) {
    // BOS of the first kept chunk, then every kept chunk's context entries.
    be.CopyOnDevice(st.cache.k_entry(l, 0), kept[0]->k(shape, l), entry);
    be.CopyOnDevice(st.cache.v_entry(l, 0), kept[0]->v(shape, l), entry);
    int slot = 1;
    for (const ChunkKv* kv : kept) {
      const int n = kv->entries - 1;
      be.CopyOnDevice(st.cache.k_entry(l, slot), static_cast<char*>(kv->k(shape, l)) + entry,
                      n * entry);
      be.CopyOnDevice(st.cache.v_entry(l, slot), static_cast<char*>(kv->v(shape, l)) + entry,
                      n * entry);
      slot += n;
    }
    st.cache.set_prefix_len(l, prefix);
  }
  st.explain = explain;
  if (explain) {
    st.layout.resize(size_t(shape.num_layers) * shape.num_kv_heads);
    st.calibration_evicted.resize(st.layout.size());
    for (int l = 0; l < shape.num_layers; ++l) {
      for (int g = 0; g < shape.num_kv_heads; ++g) {
        auto& lay = st.layout[size_t(l) * shape.num_kv_heads + g];
        lay.push_back({kept[0]->index, kept[0]->Position(shape, l, g, 0)});
        for (const ChunkKv* kv : kept) {
          for (int e = 1; e < kv->entries; ++e)
            lay.push_back({kv->index, kv->Position(shape, l, g, e)});
        }
      }
    }
  }
  SIEVE_RETURN_IF_ERROR(be.Synchronize());
  return st;
}

StatusOr<DecodeState> CacheFromFullPrefill(const Transformer& model, const ChunkKv& full,
                                           const ScopeOptions& scope, int max_new_tokens,
                                           bool explain) {
  const ModelConfig& c = model.config();
  Backend& be = model.backend();
  const KvShape shape = KvShape::Of(c, model.dtype());
  DecodeState st{.schedule = ScopeSchedule(scope)};
  SIEVE_ASSIGN_OR_RETURN(st.cache,
                         SequenceCache::Create(be, shape, full.entries, st.schedule.ring(),
                                               HistoryCapacity(scope, max_new_tokens)));
  for (int l = 0; l < shape.num_layers; ++l) {
    be.CopyOnDevice(st.cache.k(l), full.k(shape, l), full.entries * shape.entry_bytes());
    be.CopyOnDevice(st.cache.v(l), full.v(shape, l), full.entries * shape.entry_bytes());
    st.cache.set_prefix_len(l, full.entries);
  }
  st.p0 = 0;
  st.next_position = full.entries;
  st.explain = false;  // full mode has no chunk layout to explain
  (void)explain;
  SIEVE_RETURN_IF_ERROR(be.Synchronize());
  return st;
}

StatusOr<std::unique_ptr<Decoder>> Decoder::Create(const Transformer& model, int max_batch) {
  std::unique_ptr<Decoder> d(new Decoder(model));
  Backend& be = model.backend();
  const ModelConfig& c = model.config();
  d->max_batch_ = max_batch;
  SIEVE_ASSIGN_OR_RETURN(d->logits_, be.Allocate(size_t(max_batch) * c.vocab_size * sizeof(float)));
  SIEVE_ASSIGN_OR_RETURN(d->scratch_,
                         be.Allocate(size_t(max_batch) * c.hidden_size * DTypeSize(model.dtype())));
  SIEVE_ASSIGN_OR_RETURN(d->rows_, be.Allocate(max_batch * sizeof(int32_t)));
  SIEVE_ASSIGN_OR_RETURN(d->ids_, be.Allocate(max_batch * sizeof(int32_t)));
  SIEVE_ASSIGN_OR_RETURN(d->out_ids_, be.Allocate(max_batch * sizeof(int32_t)));
  SIEVE_ASSIGN_OR_RETURN(d->uniforms_, be.Allocate(max_batch * sizeof(float)));
  SIEVE_ASSIGN_OR_RETURN(d->logprobs_, be.Allocate(max_batch * sizeof(float)));
  return d;
}

Status Decoder::QueryPrefill(DecodeState& st, std::span<const int32_t> query,
                             const std::optional<CalibrationOptions>& calibration, int row) {
  const ModelConfig& c = model_.config();
  Backend& be = model_.backend();
  const DType dt = model_.dtype();
  const int m1 = static_cast<int>(query.size());
  const int heads = static_cast<int>(c.num_kv_heads);
  const int group = static_cast<int>(c.num_heads / c.num_kv_heads);
  const QkvLayout qkv = model_.qkv_layout();
  SIEVE_ASSIGN_OR_RETURN(ForwardWorkspace ws, ForwardWorkspace::Create(be, c, m1));
  SIEVE_ASSIGN_OR_RETURN(AttentionBatch batch, AttentionBatch::Create(be, 1, c.num_layers));
  std::vector<int32_t> positions(m1), iota(m1);
  std::iota(positions.begin(), positions.end(), st.p0);
  std::iota(iota.begin(), iota.end(), 0);
  SIEVE_ASSIGN_OR_RETURN(DeviceBuffer d_iota, be.Allocate(m1 * sizeof(int32_t)));
  be.CopyToDevice(d_iota.get(), iota.data(), m1 * sizeof(int32_t));
  ws.UploadRows(be, query, positions);
  const int32_t q_starts[2] = {0, m1};
  const int32_t kv_len0[1] = {st.cache.prefix_len(0) + m1};
  batch.SetSequences(q_starts, kv_len0);

  // Calibration runs layer by layer and changes the cache lengths, so each layer's metadata is
  // uploaded right before its attention.
  const bool calibrate = calibration.has_value();
  DeviceBuffer scores, keep_idx, scratch, key_range;
  if (calibrate) {
    const int s0 = st.cache.prefix_len(0);
    SIEVE_ASSIGN_OR_RETURN(scores, be.Allocate(size_t(heads) * std::max(1, s0) * sizeof(float)));
    SIEVE_ASSIGN_OR_RETURN(keep_idx, be.Allocate(size_t(heads) * (s0 + m1) * sizeof(int32_t)));
    SIEVE_ASSIGN_OR_RETURN(scratch,
                           be.Allocate(size_t(2) * (s0 + m1) * st.cache.shape().entry_bytes()));
    SIEVE_ASSIGN_OR_RETURN(key_range, be.Allocate(2 * sizeof(int32_t)));
  }
  model_.Embed(ws, m1);
  for (int l = 0; l < c.num_layers; ++l) {
    const int s = st.cache.prefix_len(l);
    model_.AttentionInput(l, ws, m1);
    StoreRows(model_, ws, d_iota.as<int32_t>(), st.cache, l, 0, m1, s);
    int s_after = s;
    const CalibrationPattern pattern =
        calibrate ? calibration->layers[l] : CalibrationPattern::kNone;
    if (pattern != CalibrationPattern::kNone && s > 0) {
      batch.SetKv(l, 0, st.cache.k(l), st.cache.v(l), s + m1);
      batch.Upload(be);
      const int32_t range[2] = {0, s};  // key_begin, key_count
      be.CopyToDevice(key_range.get(), range, sizeof(range));
      be.WindowScores({.q = ws.qkv(),
                       .k_seqs = batch.k_seqs(l),
                       .kv_token_stride = c.kv_dim(),
                       .kv_head_stride = c.head_dim,
                       .q_starts = batch.q_starts(),
                       .kv_lens = batch.kv_lens(l),
                       .key_begin = key_range.as<int32_t>(),
                       .key_count = key_range.as<int32_t>() + 1,
                       .scores = scores.as<float>(),
                       .scores_stride = s,
                       .num_seqs = 1,
                       .num_rows = 1,
                       .max_q_len = m1,
                       .max_kv_len = s + m1,
                       .max_key_count = s,
                       .num_q_heads = static_cast<int>(c.num_heads),
                       .num_kv_heads = heads,
                       .head_dim = static_cast<int>(c.head_dim),
                       .q_stride = qkv.row_stride,
                       .scale = model_.attention_scale(),
                       .head_scale = 1.f / group,
                       .dtype = dt});
      std::vector<float> a(size_t(heads) * s);
      be.CopyToHost(a.data(), scores.get(), a.size() * sizeof(float));
      SIEVE_RETURN_IF_ERROR(be.Synchronize());
      const auto evicted = CalibrationEvictions(a, heads, s, pattern, *calibration);
      const int cnt = static_cast<int>(evicted[0].size());
      if (cnt > 0) {
        // Keep, per head, the Phi_p entries not evicted, then the query's entries.
        s_after = s - cnt;
        const int per_head = s_after + m1;
        std::vector<int32_t> keep(size_t(heads) * per_head);
        for (int g = 0; g < heads; ++g) {
          std::vector<char> gone(s, 0);
          for (int32_t t : evicted[g]) gone[t] = 1;
          int j = 0;
          for (int t = 0; t < s + m1; ++t) {
            if (t >= s || !gone[t]) keep[size_t(g) * per_head + j++] = t;
          }
        }
        be.CopyToDevice(keep_idx.get(), keep.data(), keep.size() * sizeof(int32_t));
        CompactRange(model_, st.cache, l, 0, keep_idx.as<int32_t>(), per_head, per_head,
                     scratch.get());
        SIEVE_RETURN_IF_ERROR(be.Synchronize());
        if (st.explain) {
          for (int g = 0; g < heads; ++g) {
            auto& lay = st.layout[size_t(l) * heads + g];
            auto& ev = st.calibration_evicted[size_t(l) * heads + g];
            std::vector<CacheEntryId> kept_lay;
            std::vector<char> gone(s, 0);
            for (int32_t t : evicted[g]) gone[t] = 1;
            for (int t = 0; t < s; ++t) (gone[t] ? ev : kept_lay).push_back(lay[t]);
            lay = std::move(kept_lay);
          }
        }
      }
    }
    batch.SetKv(l, 0, st.cache.k(l), st.cache.v(l), s_after + m1);
    batch.Upload(be);
    be.Attention(CacheAttentionArgs(model_, ws, batch, l, m1));
    st.cache.set_prefix_len(l, s_after + m1);
    if (st.explain) {
      for (int g = 0; g < heads; ++g) {
        auto& lay = st.layout[size_t(l) * heads + g];
        for (int j = 0; j < m1; ++j) lay.push_back({-1, st.p0 + j});
      }
    }
    model_.AttentionOutputAndMlp(l, ws, m1);
    // The batch's host metadata must outlive the copies queued above.
    SIEVE_RETURN_IF_ERROR(be.Synchronize());
  }
  model_.FinalNorm(ws, m1);
  const int32_t last = m1 - 1;
  be.CopyToDevice(rows_.get(), &last, sizeof(last));
  model_.Logits(ws, rows_.as<int32_t>(), 1, scratch_.get(),
                logits_.as<float>() + size_t(row) * c.vocab_size);
  st.next_position = st.p0 + m1;
  return be.Synchronize();
}

Status Decoder::Step(std::span<DecodeState* const> states) {
  const ModelConfig& c = model_.config();
  Backend& be = model_.backend();
  const DType dt = model_.dtype();
  const int n = static_cast<int>(states.size());
  const int heads = static_cast<int>(c.num_kv_heads);
  const int group = static_cast<int>(c.num_heads / c.num_kv_heads);
  const QkvLayout qkv = model_.qkv_layout();
  if (n == 0) return Status::Ok();
  if (n > max_batch_) {
    return Status::Internal(StrFormat("decode batch %d exceeds max_batch %d", n, max_batch_));
  }
  SIEVE_ASSIGN_OR_RETURN(ForwardWorkspace ws, ForwardWorkspace::Create(be, c, n));
  SIEVE_ASSIGN_OR_RETURN(AttentionBatch batch, AttentionBatch::Create(be, n, c.num_layers));

  // Make room for each sequence's token and decide SCOPE's eviction for this step.
  std::vector<int32_t> ids(n), positions(n), q_starts(n + 1), kv_lens(n, 0);
  std::vector<int> token_slot(n);
  std::vector<std::optional<int>> keep(n);
  bool any_fire = false;
  int max_history = 1;
  for (int i = 0; i < n; ++i) {
    DecodeState& st = *states[i];
    ids[i] = st.last_token;
    positions[i] = st.next_position;
    q_starts[i] = i;
    SIEVE_ASSIGN_OR_RETURN(token_slot[i], st.cache.AddDecodeToken(be, st.next_position));
    keep[i] = st.schedule.Fire(st.step, st.cache.decode_entries());
    if (keep[i]) {
      st.fired_steps.push_back(st.step);
      any_fire = true;
      max_history = std::max(max_history, st.cache.history_len());
    }
  }
  q_starts[n] = n;
  batch.SetSequences(q_starts, kv_lens);
  for (int l = 0; l < c.num_layers; ++l) {
    for (int i = 0; i < n; ++i) {
      const SequenceCache& cache = states[i]->cache;
      batch.SetKv(l, i, cache.k(l), cache.v(l), cache.length(l));
    }
  }
  batch.Upload(be);
  ws.UploadRows(be, ids, positions);
  std::vector<int32_t> zero(1, 0);
  SIEVE_ASSIGN_OR_RETURN(DeviceBuffer d_zero, be.Allocate(sizeof(int32_t)));
  be.CopyToDevice(d_zero.get(), zero.data(), sizeof(int32_t));

  // SCOPE scratch: per-sequence scored ranges, scores, selections.
  DeviceBuffer scores, selected, ranges, lengths, ks, scratch;
  std::vector<int32_t> range_host(2 * n, 0), length_host(size_t(n) * heads, 0),
      ks_host(size_t(n) * heads, 0);
  int max_keep = 1;
  if (any_fire) {
    for (int i = 0; i < n; ++i) {
      if (!keep[i]) continue;
      max_keep = std::max(max_keep, *keep[i]);
      for (int g = 0; g < heads; ++g) {
        length_host[size_t(i) * heads + g] = states[i]->cache.history_len();
        ks_host[size_t(i) * heads + g] = *keep[i];
      }
    }
    SIEVE_ASSIGN_OR_RETURN(scores, be.Allocate(size_t(n) * heads * max_history * sizeof(float)));
    SIEVE_ASSIGN_OR_RETURN(
        selected, be.Allocate(size_t(c.num_layers) * n * heads * max_keep * sizeof(int32_t)));
    SIEVE_ASSIGN_OR_RETURN(ranges, be.Allocate(range_host.size() * sizeof(int32_t)));
    SIEVE_ASSIGN_OR_RETURN(lengths, be.Allocate(length_host.size() * sizeof(int32_t)));
    SIEVE_ASSIGN_OR_RETURN(ks, be.Allocate(ks_host.size() * sizeof(int32_t)));
    SIEVE_ASSIGN_OR_RETURN(
        scratch, be.Allocate(size_t(2) * max_keep * states[0]->cache.shape().entry_bytes()));
    be.CopyToDevice(lengths.get(), length_host.data(), length_host.size() * sizeof(int32_t));
    be.CopyToDevice(ks.get(), ks_host.data(), ks_host.size() * sizeof(int32_t));
  }

  model_.Embed(ws, n);
  for (int l = 0; l < c.num_layers; ++l) {
    model_.AttentionInput(l, ws, n);
    for (int i = 0; i < n; ++i) {
      SequenceCache& cache = states[i]->cache;
      StoreRows(model_, ws, d_zero.as<int32_t>(), cache, l, i, 1,
                cache.AbsoluteSlot(l, token_slot[i]));
    }
    be.Attention(CacheAttentionArgs(model_, ws, batch, l, n));
    if (any_fire) {
      // Scores of this step's attention over each firing sequence's history, per KV head.
      for (int i = 0; i < n; ++i) {
        range_host[i] = states[i]->cache.history_begin(l);
        range_host[n + i] = keep[i] ? states[i]->cache.history_len() : 0;
      }
      be.CopyToDevice(ranges.get(), range_host.data(), range_host.size() * sizeof(int32_t));
      be.WindowScores({.q = ws.qkv(),
                       .k_seqs = batch.k_seqs(l),
                       .kv_token_stride = c.kv_dim(),
                       .kv_head_stride = c.head_dim,
                       .q_starts = batch.q_starts(),
                       .kv_lens = batch.kv_lens(l),
                       .key_begin = ranges.as<int32_t>(),
                       .key_count = ranges.as<int32_t>() + n,
                       .scores = scores.as<float>(),
                       .scores_stride = max_history,
                       .num_seqs = n,
                       .num_rows = 1,
                       .max_q_len = 1,
                       .max_kv_len = batch.max_kv_len(),
                       .max_key_count = max_history,
                       .num_q_heads = static_cast<int>(c.num_heads),
                       .num_kv_heads = heads,
                       .head_dim = static_cast<int>(c.head_dim),
                       .q_stride = qkv.row_stride,
                       .scale = model_.attention_scale(),
                       .head_scale = 1.f / group,
                       .dtype = dt});
      int32_t* sel = selected.as<int32_t>() + size_t(l) * n * heads * max_keep;
      be.TopkSelect({.in = scores.as<float>(),
                     .lengths = lengths.as<int32_t>(),
                     .ks = ks.as<int32_t>(),
                     .out = sel,
                     .rows = int64_t{n} * heads,
                     .in_stride = max_history,
                     .out_stride = max_keep,
                     .k = max_keep,
                     .max_length = max_history});
      for (int i = 0; i < n; ++i) {
        if (!keep[i]) continue;
        SequenceCache& cache = states[i]->cache;
        CompactRange(model_, cache, l, cache.history_begin(l), sel + size_t(i) * heads * max_keep,
                     *keep[i], max_keep, scratch.get());
      }
      // Host copies of range_host must outlive the queued copy: synchronize per layer.
      SIEVE_RETURN_IF_ERROR(be.Synchronize());
    }
    model_.AttentionOutputAndMlp(l, ws, n);
  }
  model_.FinalNorm(ws, n);
  std::vector<int32_t> rows(n);
  std::iota(rows.begin(), rows.end(), 0);
  be.CopyToDevice(rows_.get(), rows.data(), n * sizeof(int32_t));
  model_.Logits(ws, rows_.as<int32_t>(), n, scratch_.get(), logits_.as<float>());

  // Host bookkeeping of the evictions.
  if (any_fire) {
    std::vector<int32_t> sel(size_t(c.num_layers) * n * heads * max_keep);
    be.CopyToHost(sel.data(), selected.get(), sel.size() * sizeof(int32_t));
    SIEVE_RETURN_IF_ERROR(be.Synchronize());
    for (int i = 0; i < n; ++i) {
      if (!keep[i]) continue;
      SequenceCache& cache = states[i]->cache;
      std::vector<int32_t> kept(size_t(heads) * *keep[i]);
      for (int l = 0; l < c.num_layers; ++l) {
        for (int g = 0; g < heads; ++g) {
          const int32_t* row = &sel[((size_t(l) * n + i) * heads + g) * max_keep];
          std::copy(row, row + *keep[i], kept.begin() + size_t(g) * *keep[i]);
        }
        cache.OnHistoryCompacted(l, kept, *keep[i]);
      }
      cache.SetHistoryLen(*keep[i]);
    }
  }
  for (int i = 0; i < n; ++i) {
    ++states[i]->step;
    ++states[i]->next_position;
  }
  return be.Synchronize();
}

Status Decoder::SetLogits(int row, std::span<const float> logits) {
  const ModelConfig& c = model_.config();
  if (static_cast<int64_t>(logits.size()) != c.vocab_size || row >= max_batch_) {
    return Status::Internal(StrFormat("SetLogits: %zu logits for row %d", logits.size(), row));
  }
  model_.backend().CopyToDevice(logits_.as<float>() + size_t(row) * c.vocab_size, logits.data(),
                                logits.size_bytes());
  return model_.backend().Synchronize();
}

StatusOr<std::vector<int32_t>> Decoder::Choose(std::span<const SamplingParams> params,
                                               std::span<const float> uniforms) {
  const ModelConfig& c = model_.config();
  Backend& be = model_.backend();
  const int n = static_cast<int>(params.size());
  be.CopyToDevice(uniforms_.get(), uniforms.data(), n * sizeof(float));
  for (int i = 0; i < n; ++i) {
    be.Sample({.logits = logits_.as<float>() + size_t(i) * c.vocab_size,
               .uniforms = uniforms_.as<float>() + i,
               .out_ids = out_ids_.as<int32_t>() + i,
               .rows = 1,
               .vocab = c.vocab_size,
               .stride = c.vocab_size,
               .temperature = params[i].temperature,
               .top_k = params[i].top_k,
               .top_p = params[i].top_p});
  }
  std::vector<int32_t> out(n);
  be.CopyToHost(out.data(), out_ids_.get(), n * sizeof(int32_t));
  SIEVE_RETURN_IF_ERROR(be.Synchronize());
  return out;
}

StatusOr<std::vector<float>> Decoder::TargetLogprobs(std::span<const int32_t> targets) {
  const ModelConfig& c = model_.config();
  Backend& be = model_.backend();
  const int n = static_cast<int>(targets.size());
  be.CopyToDevice(ids_.get(), targets.data(), n * sizeof(int32_t));
  be.LogSoftmaxGather({.logits = logits_.as<float>(),
                       .targets = ids_.as<int32_t>(),
                       .target_logprobs = logprobs_.as<float>(),
                       .rows = n,
                       .vocab = c.vocab_size,
                       .stride = c.vocab_size});
  std::vector<float> out(n);
  be.CopyToHost(out.data(), logprobs_.get(), n * sizeof(float));
  SIEVE_RETURN_IF_ERROR(be.Synchronize());
  return out;
}

StatusOr<std::vector<std::pair<int32_t, float>>> Decoder::TopLogits(int row, int k) {
  const ModelConfig& c = model_.config();
  Backend& be = model_.backend();
  std::vector<float> logits(c.vocab_size);
  be.CopyToHost(logits.data(), logits_.as<float>() + size_t(row) * c.vocab_size,
                c.vocab_size * sizeof(float));
  SIEVE_RETURN_IF_ERROR(be.Synchronize());
  std::vector<int32_t> order(c.vocab_size);
  std::iota(order.begin(), order.end(), 0);
  k = std::min<int>(k, c.vocab_size);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  std::vector<std::pair<int32_t, float>> out;
  for (int i = 0; i < k; ++i) out.emplace_back(order[i], logits[order[i]]);
  return out;
}

}  // namespace sieve::worker
