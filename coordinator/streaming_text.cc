#include "coordinator/streaming_text.h"

#include <algorithm>

namespace sieve::coordinator {

StreamingText::StreamingText(const Tokenizer& tokenizer, std::vector<std::string> stop)
    : decoder_(tokenizer, /*skip_special_tokens=*/true), stop_(std::move(stop)) {}

std::string StreamingText::Push(int32_t id) {
  if (stopped_) return "";
  pending_ += decoder_.Push(id);
  return Release(/*final=*/false);
}

std::string StreamingText::Finish() {
  if (stopped_) return "";
  pending_ += decoder_.Flush();
  return Release(/*final=*/true);
}

std::string StreamingText::Release(bool final) {
  // A stop string may straddle emitted text and pending text only if it began in the held-back
  // tail, which is never emitted; so searching `pending_` is enough.
  size_t cut = std::string::npos;
  for (const std::string& s : stop_) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    std::string out = pending_.substr(0, cut);
    text_ += out;
    pending_.clear();
    stopped_ = true;
    return out;
  }
  size_t keep = 0;
  if (!final) {
    // Hold back the longest suffix of pending_ that is a proper prefix of some stop string.
    for (const std::string& s : stop_) {
      for (size_t len = std::min(s.size() - 1, pending_.size()); len > keep; --len) {
        if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
          keep = len;
          break;
        }
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  text_ += out;
  return out;
}

}  // namespace sieve::coordinator
