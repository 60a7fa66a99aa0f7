// Generation of one request's tokens on a decode node: the choice of each next token (greedy,
// seeded sampling, or a forced continuation with its log-probabilities) and when to stop (EOS,
// max_new_tokens; stop strings are the coordinator's, which says so with Stop()). The same
// object drives the single-process pipeline and the distributed decode node, so both produce the
// same tokens.
//
// Tested through tests/unit/worker/pipeline_test.cc and the sieve-node tests.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "comm/status.h"
#include "worker/decoder.h"
#include "worker/pipeline_options.h"

namespace sieve::worker {

class SequenceGenerator {
 public:
  SequenceGenerator(GenerationOptions options, std::vector<int64_t> eos_ids);

  const GenerationOptions& options() const { return options_; }
  bool forced() const { return !options_.force_continuation_ids.empty(); }
  // Tokens generated so far (the last one is the next step's input).
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const std::vector<float>& forced_logprobs() const { return forced_logprobs_; }
  // True once no further decode step is needed: EOS (not forced), max_new_tokens, or Stop().
  bool done() const { return done_; }
  const std::string& finish_reason() const { return finish_reason_; }
  void Stop();

  // The sampling parameters and the next uniform of this sequence's seeded stream.
  SamplingParams sampling() const;
  float NextUniform();
  // The forced token for the next position (forced mode).
  int32_t NextForced() const { return options_.force_continuation_ids[tokens_.size()]; }

  // Records the token chosen for this sequence (with its log-probability in forced mode).
  void Append(int32_t token, float forced_logprob);

 private:
  GenerationOptions options_;
  std::vector<int64_t> eos_;
  std::mt19937_64 rng_;
  std::vector<int32_t> tokens_;
  std::vector<float> forced_logprobs_;
  bool done_ = false;
  std::string finish_reason_;
};

// Chooses the next token of every generator from rows [0, n) of the decoder's logits (row i for
// generators[i]) and appends it.
Status ChooseNextTokens(Decoder& decoder, std::span<SequenceGenerator* const> generators);

}  // namespace sieve::worker
