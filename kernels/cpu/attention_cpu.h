// AttentionCpu: the CPU backend's attention — same AttentionArgs and semantics as AttentionRef
// (kernels/attention.h), computed as flash attention over BLAS tiles: for each (sequence, query
// head, block of 64 query rows), keys in blocks of 256: S = Q·Kᵀ (sgemm), the causal / window
// mask, an online fp32 softmax, acc += P·V (sgemm). Threaded over blocks with OpenMP; BLAS runs
// single-threaded inside. fp32 only (what the CPU backend stores); other dtypes fall back to the
// reference.
//
// Tested against AttentionRef by tests/unit/kernels/attention_cpu_test.cc.
#pragma once

#include "kernels/attention.h"

namespace sieve::kernels {

void AttentionCpu(const AttentionArgs& args);

}  // namespace sieve::kernels
