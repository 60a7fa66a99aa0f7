// StreamingText: generated token ids -> the response text, with stop strings.
//
// Tokens are decoded incrementally (never a broken UTF-8 sequence); when the text so far
// contains a stop string the generation should stop, and the text ends just before it (OpenAI
// semantics). Push returns only text that is final: a tail that could still turn into a stop
// string is held back until it cannot, so a streaming client never sees text that is later
// retracted. Special tokens (EOS) produce no text.
//
// Tested by tests/unit/coordinator/streaming_text_test.cc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/tokenizer.h"

namespace sieve::coordinator {

class StreamingText {
 public:
  StreamingText(const Tokenizer& tokenizer, std::vector<std::string> stop);

  // Adds one generated token; returns the newly final text (possibly "").
  std::string Push(int32_t id);
  // Whether a stop string has been seen (the caller stops generating).
  bool stopped() const { return stopped_; }
  // Ends the stream: returns what is still held back (nothing after a stop).
  std::string Finish();
  // The whole text so far (final part only).
  const std::string& text() const { return text_; }

 private:
  std::string Release(bool final);

  IncrementalDecoder decoder_;
  std::vector<std::string> stop_;
  std::string text_;     // emitted
  std::string pending_;  // decoded, not yet emitted
  bool stopped_ = false;
};

}  // namespace sieve::coordinator
