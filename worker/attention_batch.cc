#include "worker/attention_batch.h"

#include <algorithm>

namespace sieve::worker {

StatusOr<AttentionBatch> AttentionBatch::Create(Backend& backend, int max_seqs,
                                                int num_layer_sets) {
  AttentionBatch batch;
  batch.max_seqs_ = max_seqs;
  batch.num_layer_sets_ = num_layer_sets;
  batch.q_starts_.reserve(max_seqs + 1);
  batch.kv_lens_.assign(size_t(max_seqs) * num_layer_sets, 0);
  batch.kv_ptrs_.assign(size_t{2} * max_seqs * num_layer_sets, nullptr);
  SIEVE_ASSIGN_OR_RETURN(batch.d_q_starts_, backend.Allocate((max_seqs + 1) * sizeof(int32_t)));
  SIEVE_ASSIGN_OR_RETURN(batch.d_kv_lens_,
                         backend.Allocate(batch.kv_lens_.size() * sizeof(int32_t)));
  SIEVE_ASSIGN_OR_RETURN(batch.d_kv_ptrs_,
                         backend.Allocate(batch.kv_ptrs_.size() * sizeof(const void*)));
  return batch;
}

void AttentionBatch::SetSequences(std::span<const int32_t> q_starts,
                                  std::span<const int32_t> kv_lens) {
  SIEVE_CHECK(
      q_starts.size() == kv_lens.size() + 1 && static_cast<int>(kv_lens.size()) <= max_seqs_,
      "q_starts=%zu kv_lens=%zu max_seqs=%d", q_starts.size(), kv_lens.size(), max_seqs_);
  num_seqs_ = static_cast<int>(kv_lens.size());
  q_starts_.assign(q_starts.begin(), q_starts.end());
  max_q_len_ = 0;
  max_kv_len_ = 0;
  for (int b = 0; b < num_seqs_; ++b) {
    max_q_len_ = std::max(max_q_len_, q_starts_[b + 1] - q_starts_[b]);
    max_kv_len_ = std::max(max_kv_len_, kv_lens[b]);
    for (int set = 0; set < num_layer_sets_; ++set)
      kv_lens_[size_t(max_seqs_) * set + b] = kv_lens[b];
  }
  std::fill(kv_ptrs_.begin(), kv_ptrs_.end(), nullptr);
}

void AttentionBatch::SetKv(int layer_set, int seq, const void* k, const void* v, int kv_len) {
  SIEVE_DCHECK(layer_set < num_layer_sets_ && seq < num_seqs_, "set=%d seq=%d", layer_set, seq);
  const size_t base = size_t{2} * max_seqs_ * layer_set;
  kv_ptrs_[base + seq] = k;
  kv_ptrs_[base + max_seqs_ + seq] = v;
  if (kv_len >= 0) {
    kv_lens_[size_t(max_seqs_) * layer_set + seq] = kv_len;
    max_kv_len_ = std::max(max_kv_len_, kv_len);
  }
}

void AttentionBatch::Upload(Backend& backend) {
  backend.CopyToDevice(d_q_starts_.get(), q_starts_.data(), q_starts_.size() * sizeof(int32_t));
  backend.CopyToDevice(d_kv_lens_.get(), kv_lens_.data(), kv_lens_.size() * sizeof(int32_t));
  backend.CopyToDevice(d_kv_ptrs_.get(), kv_ptrs_.data(), kv_ptrs_.size() * sizeof(const void*));
}

const void* const* AttentionBatch::k_seqs(int layer_set) const {
  return d_kv_ptrs_.as<const void*>() + size_t{2} * max_seqs_ * layer_set;
}

const void* const* AttentionBatch::v_seqs(int layer_set) const {
  return d_kv_ptrs_.as<const void*>() + size_t{2} * max_seqs_ * layer_set + max_seqs_;
}

}  // namespace sieve::worker
