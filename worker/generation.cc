#include "worker/generation.h"

#include <algorithm>

namespace sieve::worker {

SequenceGenerator::SequenceGenerator(GenerationOptions options, std::vector<int64_t> eos_ids)
    : options_(std::move(options)), eos_(std::move(eos_ids)), rng_(options_.seed) {}

void SequenceGenerator::Stop() {
  if (done_) return;
  done_ = true;
  finish_reason_ = "stop";
}

SamplingParams SequenceGenerator::sampling() const {
  return {.temperature = options_.temperature, .top_k = options_.top_k, .top_p = options_.top_p};
}

float SequenceGenerator::NextUniform() { return static_cast<float>((rng_() >> 40) * 0x1p-24); }

void SequenceGenerator::Append(int32_t token, float forced_logprob) {
  tokens_.push_back(token);
  if (forced()) forced_logprobs_.push_back(forced_logprob);
  if (done_) return;
  if (!forced() && std::find(eos_.begin(), eos_.end(), token) != eos_.end()) {
    done_ = true;
    finish_reason_ = "eos";
  } else if (static_cast<int>(tokens_.size()) >= options_.max_new_tokens) {
    done_ = true;
    finish_reason_ = "length";
  }
}

Status ChooseNextTokens(Decoder& decoder, std::span<SequenceGenerator* const> generators) {
  const size_t n = generators.size();
  std::vector<SamplingParams> params(n);
  std::vector<float> uniforms(n);
  std::vector<int32_t> targets(n, 0);
  bool any_forced = false, any_free = false;
  for (size_t i = 0; i < n; ++i) {
    SequenceGenerator& g = *generators[i];
    if (g.forced()) {
      targets[i] = g.NextForced();
      any_forced = true;
    } else {
      params[i] = g.sampling();
      uniforms[i] = g.NextUniform();
      any_free = true;
    }
  }
  std::vector<int32_t> chosen(n, 0);
  std::vector<float> logprobs(n, 0.f);
  if (any_free) {
    SIEVE_ASSIGN_OR_RETURN(chosen, decoder.Choose(params, uniforms));
  }
  if (any_forced) {
    SIEVE_ASSIGN_OR_RETURN(logprobs, decoder.TargetLogprobs(targets));
  }
  for (size_t i = 0; i < n; ++i) {
    SequenceGenerator& g = *generators[i];
    g.Append(g.forced() ? targets[i] : chosen[i], logprobs[i]);
  }
  return Status::Ok();
}

}  // namespace sieve::worker
