// sieve-bench scaling and nccl: prefill speed-up as GPUs are added.
//
//   sieve-bench scaling --model DIR [--random-weights 0] [--gpus 1,2,4] [--tokens
//   32768,65536,131072]
//                       [--chunk-tokens 8192] [--keep-chunks 3] [--mode parallelcomp] [--reps 2]
//                       [--node build/tools/sieve-node] [--mpirun mpirun] [--work-dir DIR]
//                       [--out scaling.json] [--png scaling.png] [--no-baseline]
//     For each GPU count g, one `mpirun -np 1+g sieve-node --device cuda` job serves a warm-up
//     request and then `reps` requests per length (random token ids, max_new_tokens 1); the
//     medians of the responses' own accounting give time to first token, prefill, score
//     exchange, KV bytes moved and their rate, and query prefill. A single-GPU full-attention
//     job is the baseline. Prints a table, writes JSON and a PNG of speed-up vs GPUs per length
//     with the ideal line.
//   mpirun -np 2 sieve-bench nccl [--bytes 1073741824]
//     The NCCL point-to-point rate between two GPUs (ncclSend/ncclRecv, median of 5 after a
//     warm-up), the ceiling the KV transfer is compared with.
//
// Opt-in; run by bench/gpu_check.sh on a multi-GPU machine.
#pragma once

#include "tools/cli.h"

namespace sieve::tools {

int ScalingMain(const Args& args);
int NcclMain(int argc, char** argv, const Args& args);

}  // namespace sieve::tools
