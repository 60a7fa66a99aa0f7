// AttentionBatch: the per-sequence metadata an attention or scoring launch needs (query row
// offsets, key counts, K/V base pointers), staged on the host and uploaded once per forward.
//
// Sequences are the chunks of a packed prefill, the requests of a decode batch, or the one query
// of a query prefill. K/V pointers may differ per layer (a cache holds each layer separately), so
// the batch keeps `num_layer_sets` pointer sets: 1 when the same buffer serves every layer (the
// fused QKV activation), num_layers when each layer has its own cache.
//
// Tested through tests/unit/worker/transformer_test.cc and pipeline_test.cc.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "comm/status.h"
#include "worker/backend.h"

namespace sieve::worker {

class AttentionBatch {
 public:
  static StatusOr<AttentionBatch> Create(Backend& backend, int max_seqs, int num_layer_sets);

  // q_starts has num_seqs + 1 entries; kv_lens num_seqs (the keys of every layer set; SetKv may
  // override them per set). Resets the K/V pointers.
  void SetSequences(std::span<const int32_t> q_starts, std::span<const int32_t> kv_lens);
  // Sequence `seq` of `layer_set` reads K/V at k/v; kv_len >= 0 overrides its key count there.
  void SetKv(int layer_set, int seq, const void* k, const void* v, int kv_len = -1);
  // Copies everything to the backend (async; this object keeps the host copies alive).
  void Upload(Backend& backend);

  int num_seqs() const { return num_seqs_; }
  int max_q_len() const { return max_q_len_; }
  int max_kv_len() const { return max_kv_len_; }
  int64_t total_q() const { return q_starts_.empty() ? 0 : q_starts_[num_seqs_]; }
  const std::vector<int32_t>& host_q_starts() const { return q_starts_; }

  // Device pointers.
  const int32_t* q_starts() const { return d_q_starts_.as<int32_t>(); }
  const int32_t* kv_lens(int layer_set = 0) const {
    return d_kv_lens_.as<int32_t>() + size_t(max_seqs_) * layer_set;
  }
  const void* const* k_seqs(int layer_set) const;
  const void* const* v_seqs(int layer_set) const;

 private:
  int max_seqs_ = 0;
  int num_layer_sets_ = 0;
  int num_seqs_ = 0;
  int max_q_len_ = 0;
  int max_kv_len_ = 0;
  std::vector<int32_t> q_starts_;
  std::vector<int32_t> kv_lens_;      // [layer_set][max_seqs]
  std::vector<const void*> kv_ptrs_;  // [layer_set][k|v][max_seqs]
  DeviceBuffer d_q_starts_, d_kv_lens_, d_kv_ptrs_;
};

}  // namespace sieve::worker
