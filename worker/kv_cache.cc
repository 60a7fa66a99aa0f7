#include "worker/kv_cache.h"

#include <algorithm>

namespace sieve::worker {

KvShape KvShape::Of(const ModelConfig& config, DType dtype) {
  return KvShape{.num_layers = static_cast<int>(config.num_layers),
                 .num_kv_heads = static_cast<int>(config.num_kv_heads),
                 .head_dim = static_cast<int>(config.head_dim),
                 .dtype = dtype};
}

StatusOr<ChunkKv> ChunkKv::Allocate(Backend& backend, const KvShape& s, int entries) {
  ChunkKv kv;
  kv.entries = entries;
  SIEVE_ASSIGN_OR_RETURN(kv.data,
                         backend.Allocate(size_t{2} * s.num_layers * entries * s.entry_bytes()));
  return kv;
}

void* ChunkKv::k(const KvShape& s, int layer) const {
  return data.as<char>() + size_t{2} * layer * entries * s.entry_bytes();
}

void* ChunkKv::v(const KvShape& s, int layer) const {
  return data.as<char>() + (size_t{2} * layer + 1) * entries * s.entry_bytes();
}

int32_t ChunkKv::Position(const KvShape& s, int layer, int head, int entry) const {
  if (positions.empty()) return entry;
  return positions[(int64_t{layer} * s.num_kv_heads + head) * entries + entry];
}

StatusOr<SequenceCache> SequenceCache::Create(Backend& backend, const KvShape& shape,
                                              int prefix_capacity, int ring_capacity,
                                              int history_capacity) {
  SequenceCache c;
  c.shape_ = shape;
  c.ring_capacity_ = ring_capacity;
  c.history_capacity_ = history_capacity;
  c.capacity_ = prefix_capacity + ring_capacity + history_capacity;
  c.prefix_len_.assign(shape.num_layers, 0);
  c.ring_positions_.assign(ring_capacity, -1);
  c.history_positions_.assign(size_t(shape.num_layers) * shape.num_kv_heads * history_capacity, -1);
  auto data = backend.Allocate(size_t{2} * shape.num_layers * c.capacity_ * shape.entry_bytes());
  if (!data.ok()) return data.status().WithContext("decode cache");
  c.data_ = std::move(data).value();
  return c;
}

void* SequenceCache::k(int layer) const {
  return data_.as<char>() + size_t{2} * layer * capacity_ * shape_.entry_bytes();
}

void* SequenceCache::v(int layer) const {
  return data_.as<char>() + (size_t{2} * layer + 1) * capacity_ * shape_.entry_bytes();
}

void* SequenceCache::k_entry(int layer, int slot) const {
  return static_cast<char*>(k(layer)) + size_t(slot) * shape_.entry_bytes();
}

void* SequenceCache::v_entry(int layer, int slot) const {
  return static_cast<char*>(v(layer)) + size_t(slot) * shape_.entry_bytes();
}

StatusOr<int> SequenceCache::AddDecodeToken(Backend& backend, int32_t position) {
  const size_t bytes = shape_.entry_bytes();
  const int heads = shape_.num_kv_heads;
  if (ring_capacity_ == 0) {
    // No ring (SCOPE off): the token goes straight to the history.
    if (history_len_ >= history_capacity_) {
      return Status::ResourceExhausted(
          StrFormat("decode cache full: %d history entries", history_capacity_));
    }
    for (int l = 0; l < shape_.num_layers; ++l) {
      for (int g = 0; g < heads; ++g) {
        history_positions_[(size_t(l) * heads + g) * history_capacity_ + history_len_] = position;
      }
    }
    return ring_capacity_ + history_len_++;
  }
  if (ring_len_ < ring_capacity_) {
    ring_positions_[ring_len_] = position;
    return ring_len_++;
  }
  // The ring is full: its oldest entry joins the history, then the new token takes its slot.
  if (history_len_ >= history_capacity_) {
    return Status::ResourceExhausted(
        StrFormat("decode cache full: %d history entries", history_capacity_));
  }
  const int slot = ring_oldest_;
  for (int l = 0; l < shape_.num_layers; ++l) {
    const int from = ring_begin(l) + slot;
    const int to = history_begin(l) + history_len_;
    backend.CopyOnDevice(k_entry(l, to), k_entry(l, from), bytes);
    backend.CopyOnDevice(v_entry(l, to), v_entry(l, from), bytes);
    for (int g = 0; g < heads; ++g) {
      history_positions_[(size_t(l) * heads + g) * history_capacity_ + history_len_] =
          ring_positions_[slot];
    }
  }
  ++history_len_;
  ring_positions_[slot] = position;
  ring_oldest_ = (ring_oldest_ + 1) % ring_capacity_;
  return slot;
}

int SequenceCache::AbsoluteSlot(int layer, int token_slot) const {
  return prefix_len_[layer] + token_slot;
}

void SequenceCache::OnHistoryCompacted(int layer, const std::vector<int32_t>& kept, int keep) {
  const int heads = shape_.num_kv_heads;
  std::vector<int32_t> moved(keep);
  for (int g = 0; g < heads; ++g) {
    int32_t* row = &history_positions_[(size_t(layer) * heads + g) * history_capacity_];
    for (int j = 0; j < keep; ++j) moved[j] = row[kept[size_t(g) * keep + j]];
    std::copy(moved.begin(), moved.end(), row);
  }
}

std::vector<int32_t> SequenceCache::DecodePositions(int layer, int head) const {
  std::vector<int32_t> out;
  const int32_t* row =
      &history_positions_[(size_t(layer) * shape_.num_kv_heads + head) * history_capacity_];
  out.insert(out.end(), row, row + history_len_);
  out.insert(out.end(), ring_positions_.begin(), ring_positions_.begin() + ring_len_);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sieve::worker
