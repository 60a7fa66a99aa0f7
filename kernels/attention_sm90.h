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

// True when the current device is compute capability 9.0, this binary carries sm_90a code for
// the kernel and the driver provides cuTensorMapEncodeTiled (the kernel copies through tensor
// maps). Queried once per device and cached (no device work, no synchronization).
bool AttentionSm90DeviceOk();

// Launches the sm_90a prefill kernel (async on `stream`); needs no workspace (each block keeps
// its K/V tensor maps in a per-SM slot of a static device array). Encodes the launch's tensor
// maps on the host first (cudaErrorInvalidValue if the driver rejects them). The caller checks
// AttentionSm90ArgsOk and AttentionSm90DeviceOk first.
cudaError_t LaunchAttentionSm90(const AttentionArgs& args, cudaStream_t stream);

}  // namespace sieve::kernels
#endif
