// KV storage of the pipeline. Entries are token-major everywhere: one entry is the K (or V) of one
// token for all KV heads, [num_kv_heads, head_dim] contiguous, so moving whole entries is one
// copy and per-head eviction is an index list per head.
//
// ChunkKv: what a worker keeps of one prefilled chunk — its BOS and its (possibly compressed)
//   context entries, every layer in one buffer [layers][K|V][entries][n_kv][d], ready to be sent
//   as one contiguous message. Compressed chunks carry the chunk-local position of every entry
//   per (layer, head); uncompressed ones are implicitly 0..entries-1.
//
// SequenceCache: one request's decode cache, per layer [capacity_l][n_kv][d] for K and V:
//     [ prefix: Phi_p + query (frozen) | ring: the last b2 decode entries | history ]
//   A new token takes a ring slot; when the ring is full its oldest entry first moves to the end
//   of the history (one copy per layer). SCOPE evictions compact the history only, per head, so
//   Phi_p is never rewritten (reference/scope.md §7). Valid entries are always the contiguous
//   range [0, prefix + ring_len + history_len): the history only grows once the ring is full.
//   Positions of every entry are tracked on the host for the response's explain fields.
//
// Tested by tests/unit/worker/kv_cache_test.cc and the pipeline tests.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/status.h"
#include "worker/backend.h"
#include "worker/model_config.h"

namespace sieve::worker {

// Shape constants shared by the stores below.
struct KvShape {
  int num_layers = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  DType dtype = DType::kF32;

  static KvShape Of(const ModelConfig& config, DType dtype);
  int64_t entry_elems() const { return int64_t{num_kv_heads} * head_dim; }  // one token, K or V
  size_t entry_bytes() const { return entry_elems() * DTypeSize(dtype); }
};

struct ChunkKv {
  int index = 0;           // chunk index in the plan
  int context_tokens = 0;  // len(ctx) of the chunk
  int entries = 0;         // stored entries per layer and head (BOS first)
  double score = 0;        // mean NLL of the query given the chunk
  DeviceBuffer data;       // [num_layers][2][entries][n_kv][d]
  // [num_layers][n_kv][entries] chunk-local positions when compressed; empty when entry j is
  // position j.
  std::vector<int32_t> positions;

  static StatusOr<ChunkKv> Allocate(Backend& backend, const KvShape& shape, int entries);
  void* k(const KvShape& s, int layer) const;
  void* v(const KvShape& s, int layer) const;
  int32_t Position(const KvShape& s, int layer, int head, int entry) const;
  size_t bytes() const { return data.bytes(); }
};

class SequenceCache {
 public:
  // prefix_capacity: entries reserved for Phi_p + query (same for every layer);
  // ring_capacity: b2 (0 when SCOPE is off); history_capacity: older decode entries.
  static StatusOr<SequenceCache> Create(Backend& backend, const KvShape& shape, int prefix_capacity,
                                        int ring_capacity, int history_capacity);

  const KvShape& shape() const { return shape_; }
  int capacity() const { return capacity_; }
  void* k(int layer) const;  // [capacity][n_kv][d]
  void* v(int layer) const;
  // Entry `slot` of layer l's K (or V).
  void* k_entry(int layer, int slot) const;
  void* v_entry(int layer, int slot) const;
  int64_t token_stride() const { return shape_.entry_elems(); }  // elements between entries

  // The frozen part of each layer. Set by the prefill-cache assembly and the query prefill.
  int prefix_len(int layer) const { return prefix_len_[layer]; }
  void set_prefix_len(int layer, int len) { prefix_len_[layer] = len; }

  int ring_capacity() const { return ring_capacity_; }
  int ring_len() const { return ring_len_; }
  int history_len() const { return history_len_; }
  int decode_entries() const { return ring_len_ + history_len_; }
  // Valid entries of layer l: prefix + ring + history.
  int length(int layer) const { return prefix_len_[layer] + ring_len_ + history_len_; }
  int ring_begin(int layer) const { return prefix_len_[layer]; }
  int history_begin(int layer) const { return prefix_len_[layer] + ring_capacity_; }

  // Makes room for one decode token at `position` and returns its slot in every layer
  // (relative to ring_begin, i.e. add ring_begin(l) or prefix for the absolute slot): when the
  // ring is full its oldest entry moves to the end of the history first. ResourceExhausted if
  // the history is full.
  StatusOr<int> AddDecodeToken(Backend& backend, int32_t position);
  // Absolute slot of the token AddDecodeToken returned, in layer l.
  int AbsoluteSlot(int layer, int token_slot) const;

  // After a SCOPE eviction in layer l: head g kept history entries `kept[g * keep + j]` (sorted
  // ascending). Updates the host-side positions; the device data is compacted by the caller.
  void OnHistoryCompacted(int layer, const std::vector<int32_t>& kept, int keep);
  // Shrinks the history length once every layer has been compacted to `keep` entries.
  void SetHistoryLen(int len) { history_len_ = len; }

  // Positions of the decode entries of (layer, head) still cached, ascending.
  std::vector<int32_t> DecodePositions(int layer, int head) const;

  size_t bytes() const { return data_.bytes(); }

 private:
  KvShape shape_;
  int capacity_ = 0;
  int ring_capacity_ = 0;
  int history_capacity_ = 0;
  int ring_len_ = 0;
  int ring_oldest_ = 0;  // ring slot of the oldest entry when the ring is full
  int history_len_ = 0;
  std::vector<int> prefix_len_;             // [num_layers]
  std::vector<int32_t> ring_positions_;     // [ring_capacity]
  std::vector<int32_t> history_positions_;  // [num_layers][n_kv][history_capacity]
  DeviceBuffer data_;                       // [num_layers][2][capacity][n_kv][d]
};

}  // namespace sieve::worker
