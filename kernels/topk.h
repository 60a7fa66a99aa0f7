// Selection primitives for the eviction rules.
//
// MaxPool1d: out[r, t] = max of in[r, u] for u in [t - kernel/2, t + kernel/2] ∩ [0, len_r)
//   (stride 1, the window clipped to the row; SnapKV's pooling with kernel 7).
// TopkSelect: for each row r, the indices of the k_r largest of in[r, 0:len_r) (ties: the lower
//   index wins), written in ascending index order to out[r, 0:k_r], k_r = min(k, len_r).
//   Rows are short (a chunk, a KV head's history), so the CUDA version is one block per row with
//   a radix select over the fp32 bit patterns.
//
// CPU references: kernels/ref/topk_ref.cc. CUDA: kernels/topk.cu.
// Test: tests/unit/kernels/topk_test.cc.
#pragma once

#include <cstdint>

#include "kernels/cuda_decl.h"

namespace sieve::kernels {

struct MaxPool1dArgs {
  const float* in = nullptr;         // [rows, stride]
  float* out = nullptr;              // [rows, stride]; must not alias in
  const int32_t* lengths = nullptr;  // [rows] valid columns of each row
  int64_t rows = 0;
  int64_t stride = 0;
  int kernel = 7;  // odd
};

struct TopkSelectArgs {
  const float* in = nullptr;         // [rows, in_stride]
  const int32_t* lengths = nullptr;  // [rows] candidates of each row
  const int32_t* ks = nullptr;       // [rows] how many to keep per row (nullptr: use k)
  int32_t* out = nullptr;            // [rows, out_stride] selected indices, ascending
  int64_t rows = 0;
  int64_t in_stride = 0;
  int64_t out_stride = 0;
  int k = 0;
  int max_length = 0;  // max over lengths (grid sizing)
};

void MaxPool1dRef(const MaxPool1dArgs& args);
void TopkSelectRef(const TopkSelectArgs& args);
#if SIEVE_WITH_CUDA
cudaError_t LaunchMaxPool1d(const MaxPool1dArgs& args, cudaStream_t stream);
cudaError_t LaunchTopkSelect(const TopkSelectArgs& args, cudaStream_t stream);
#endif

}  // namespace sieve::kernels
