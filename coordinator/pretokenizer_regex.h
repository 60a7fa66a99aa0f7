// The regex behind Hugging Face `Split` / `ByteLevel(use_regex)` pre-tokenizers: a small
// backtracking engine over code points with Oniguruma semantics, plus hand-written matchers for
// the two patterns almost every byte-level BPE tokenizer uses (Llama-3 and GPT-2), selected when
// the pattern string is exactly one of them.
//
// Supported syntax (Oniguruma / Ruby flavour, what HF tokenizer.json patterns use):
//   alternation a|b (leftmost-first), groups (...) (?:...) (?<name>...) (?P<name>...),
//   inline flags (?i) (?-i) (?m) (?x) and scoped (?i:...) (m = dot matches newline),
//   classes [...] with ranges, negation [^...], nested classes, intersection &&, escapes,
//   \p{X} \P{X} \p{^X} \pX (general categories and their long names, Any, Assigned, White_Space,
//   Word, Digit), \s \S \d \D \w \W \h \H (hex digit), . ^ $ \A \z \Z \b \B,
//   quantifiers * + ? {n} {n,} {,m} {n,m}, greedy, lazy (??, *?, ...) and possessive (*+, ++, ?+),
//   lookahead (?=...) (?!...), fixed-width lookbehind (?<=...) (?<!...), atomic groups (?>...),
//   escapes \t \n \r \f \v \a \e \xHH \x{H...} \uHHHH \0oo and escaped punctuation.
// Anything else (backreferences, subexpression calls, \K, \R, \X, POSIX brackets, script
// properties such as \p{Han}, variable-width lookbehind) is rejected by Compile with a
// kUnimplemented / kInvalidArgument Status that names the construct and its offset.
//
// Semantics: see tokenizer_unicode.h for \s (White_Space), \d (Nd), \w and (?i) (simple case
// folding, so 'ſ' matches (?i:s) and U+212A matches (?i:k)); a (?i) class is closed under case
// folding before it is negated. FindAll reproduces what HF gets from the `onig` crate's
// find_iter: non-overlapping leftmost-first matches, an empty match right after the previous
// match skipped.
//
// The generic engine never recurses on input length: it keeps its backtrack stack on the heap
// and memoizes visited (instruction, position) states, so a match costs at most
// O(instructions x span) steps and a 1 MB run of spaces is fine. Lookaround/atomic nesting
// recurses once per nesting level of the pattern (bounded at parse time).
//
// Tested by tests/unit/coordinator/pretokenizer_regex_test.cc (engine features, errors, and the
// fast paths against the generic engine on fixtures and fuzzed strings).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "comm/status.h"

namespace sieve::coordinator {

// The Llama-3 pre-tokenizer pattern (also Qwen2-like tokenizers without the {1,3}).
inline constexpr std::string_view kLlama3SplitPattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// The GPT-2 pattern that ByteLevel(use_regex=true) applies.
inline constexpr std::string_view kGpt2SplitPattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// A match as code point indices [begin, end) into the searched text.
struct RegexMatch {
  size_t begin;
  size_t end;
  friend bool operator==(const RegexMatch&, const RegexMatch&) = default;
};

class PretokenizerRegex {
 public:
  // Which matcher FindAll runs.
  enum class Matcher { kGeneric, kLlama3, kGpt2 };

  // Parses and compiles `pattern` (UTF-8). With allow_fast_path, a pattern equal to
  // kLlama3SplitPattern or kGpt2SplitPattern gets the hand-written matcher (same results, 4-10x
  // faster); tests pass false to get the generic engine for the same pattern.
  static StatusOr<PretokenizerRegex> Compile(std::string_view pattern, bool allow_fast_path = true);

  PretokenizerRegex(PretokenizerRegex&&) noexcept;
  PretokenizerRegex& operator=(PretokenizerRegex&&) noexcept;
  PretokenizerRegex(const PretokenizerRegex&);
  PretokenizerRegex& operator=(const PretokenizerRegex&);
  ~PretokenizerRegex();

  // Appends every match in `text` (code points), in order, to *out. Thread-safe (const; the
  // scratch space is per call).
  void FindAll(std::span<const char32_t> text, std::vector<RegexMatch>* out) const;

  // The end of the leftmost-first match anchored at `pos`, or -1 when none (for tests).
  ptrdiff_t MatchAt(std::span<const char32_t> text, size_t pos) const;

  Matcher matcher() const { return matcher_; }
  const std::string& pattern() const { return pattern_; }

  struct Program;  // compiled instructions (pretokenizer_regex.cc)

 private:
  PretokenizerRegex() = default;

  std::string pattern_;
  Matcher matcher_ = Matcher::kGeneric;
  std::shared_ptr<const Program> program_;  // immutable, shared by copies
};

}  // namespace sieve::coordinator
