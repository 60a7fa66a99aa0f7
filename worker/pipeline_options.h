// The request options as the worker sees them: the shared definitions of comm/sieve_options.h,
// plus what needs the model's full config (its default chunk size).
//
// Tested by tests/unit/worker/pipeline_options_test.cc.
#pragma once

#include "comm/sieve_options.h"
#include "worker/model_config.h"

namespace sieve::worker {

using ::sieve::CalibrationOptions;
using ::sieve::CalibrationPattern;
using ::sieve::CalibrationPatternName;
using ::sieve::GenerationOptions;
using ::sieve::ParseCalibrationPattern;
using ::sieve::ParsePrefillMode;
using ::sieve::ParseScopeStrategy;
using ::sieve::PrefillMode;
using ::sieve::PrefillModeName;
using ::sieve::ScopeOptions;
using ::sieve::ScopeStrategy;
using ::sieve::ScopeStrategyName;
using ::sieve::SieveOptions;

// 6000 for Llama-3.1-style models (llama3 RoPE over an 8K original window), 7600 for 8K-native
// models, otherwise the original window minus 1000 (minus a quarter for windows under 4000).
int DefaultChunkTokens(const ModelConfig& config);

// The numbers option checking needs from this config.
ModelLimits LimitsOf(const ModelConfig& config);

// ResolveOptions (comm/sieve_options.h) against this model.
Status ResolveOptions(const ModelConfig& config, SieveOptions* sieve, GenerationOptions* gen);

}  // namespace sieve::worker
