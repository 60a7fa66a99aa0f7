// Internal to kernels/: the Hopper (sm_90a) prefill variant of LaunchAttention, defined in
// kernels/attention_sm90.cu and chosen by kernels/attention.cu. Callers outside kernels/ use
// LaunchAttention / LaunchAttentionVariant (kernels/attention.h).
#pragma once

#include "kernels/attention.h"

#if SIEVE_WITH_CUDA
namespace sieve::kernels {

// True when the arguments alone allow the sm_90a prefill kernel: bf16, head_dim 128, 16-byte
// aligned q rows and K/V token / head strides, 4-byte aligned out rows, scale > 0.
bool AttentionSm90ArgsOk(const AttentionArgs& args);

// True when the current device is compute capability 9.0 and this binary carries sm_90a code
// for the kernel. Queried once per device and cached (no device work, no synchronization).
bool AttentionSm90DeviceOk();

// Launches the sm_90a prefill kernel (async on `stream`); needs no workspace. The caller checks
// AttentionSm90ArgsOk and AttentionSm90DeviceOk first.
cudaError_t LaunchAttentionSm90(const AttentionArgs& args, cudaStream_t stream);

}  // namespace sieve::kernels
#endif
