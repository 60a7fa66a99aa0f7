// What an op header needs to declare its CUDA launcher next to its CPU reference.
//
// Each op header (rms_norm.h, attention.h, ...) holds the op's argument struct, the CPU reference
// `<Op>Ref(const <Op>Args&)` and, when SIEVE_WITH_CUDA, the launcher
// `cudaError_t Launch<Op>(const <Op>Args&, cudaStream_t stream)`. The struct lives in a plain .h
// (not a .cuh) so the CPU reference and the CPU backend build with no CUDA toolkit (STYLE rule
// 23); only the launcher declaration needs <cuda_runtime_api.h>.
//
// Launchers never synchronize, allocate or print; they return the launch error.
#pragma once

#if SIEVE_WITH_CUDA
#include <cuda_runtime_api.h>
#endif
