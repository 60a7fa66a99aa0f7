// Unicode and UTF-8 helpers for the tokenizer: category/White_Space/case-fold lookups over the
// generated tables (coordinator/unicode_tables.h, Unicode 14.0.0 like Oniguruma 6.9.8), code point
// sets for the regex engine, and strict (encode) and lossy (decode) UTF-8 handling.
//
// Decisions that make the pre-tokenizer match Hugging Face tokenizers (which runs Oniguruma in
// Unicode mode):
//   \s        = White_Space (U+0009..000D, 0020, 0085, 00A0, 1680, 2000..200A, 2028, 2029, 202F,
//               205F, 3000). Not U+200B (Cf), not U+180E, not U+FEFF, not U+001C..001F.
//   \d        = Nd.   \p{N} = Nd | Nl | No ('½', '²', 'Ⅻ' are N but not \d).
//   \w        = L | M | Nd | Nl | Pc | Join_Control (U+200C/D) | circled/squared Latin letters
//               (Alphabetic | M | Nd | Pc | Join_Control, as UTS #18 and Oniguruma define it).
//   (?i)      = simple case folding (CaseFolding.txt C+S): 'ſ' U+017F ~ 's', 'K' U+212A ~ 'k'.
//
// Tested by tests/unit/coordinator/tokenizer_unicode_test.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coordinator/unicode_tables.h"

namespace sieve::coordinator::unicode {

inline constexpr char32_t kMaxCodePoint = 0x10FFFF;
inline constexpr char32_t kReplacementChar = 0xFFFD;

// General_Category of a code point (Cn for unassigned and for values above U+10FFFF).
GeneralCategory CategoryOf(char32_t cp);

// Bit (1u << category) masks, for testing a category against a group.
constexpr uint32_t CategoryBit(GeneralCategory c) { return 1u << static_cast<unsigned>(c); }
inline constexpr uint32_t kLetterMask =
    CategoryBit(GeneralCategory::kLu) | CategoryBit(GeneralCategory::kLl) |
    CategoryBit(GeneralCategory::kLt) | CategoryBit(GeneralCategory::kLm) |
    CategoryBit(GeneralCategory::kLo);
inline constexpr uint32_t kMarkMask = CategoryBit(GeneralCategory::kMn) |
                                      CategoryBit(GeneralCategory::kMc) |
                                      CategoryBit(GeneralCategory::kMe);
inline constexpr uint32_t kNumberMask = CategoryBit(GeneralCategory::kNd) |
                                        CategoryBit(GeneralCategory::kNl) |
                                        CategoryBit(GeneralCategory::kNo);

inline bool InCategories(char32_t cp, uint32_t mask) {
  return (CategoryBit(CategoryOf(cp)) & mask);
}
inline bool IsLetter(char32_t cp) { return InCategories(cp, kLetterMask); }
inline bool IsNumber(char32_t cp) { return InCategories(cp, kNumberMask); }

// White_Space property (Oniguruma's and Rust's \s).
bool IsWhiteSpace(char32_t cp);

// \w as defined above.
bool IsWordChar(char32_t cp);

// Simple case folding; returns cp itself when it has no folding.
char32_t SimpleFold(char32_t cp);

// All code points whose simple folding equals SimpleFold(cp), cp included (e.g. 's' -> {S, s, ſ}).
std::vector<char32_t> CaseOrbit(char32_t cp);

// A set of code points as sorted, disjoint, non-adjacent closed ranges, with an ASCII bitmap for
// the common case. Built once (regex compile time), then read-only.
class CodePointSet {
 public:
  CodePointSet() = default;
  static CodePointSet All();
  static CodePointSet Of(char32_t cp) {
    CodePointSet s;
    s.AddRange(cp, cp);
    return s;
  }
  // Code points whose general category bit is in `mask`.
  static CodePointSet FromCategories(uint32_t mask);
  static CodePointSet WhiteSpace();
  static CodePointSet Word();

  void AddRange(char32_t first, char32_t last);
  void AddSet(const CodePointSet& other);
  CodePointSet Negated() const;                             // complement within U+0000..10FFFF
  CodePointSet Intersect(const CodePointSet& other) const;  // set intersection
  CodePointSet CaseClosed() const;  // adds every code point case-equivalent to a member

  bool Contains(char32_t cp) const {
    if (cp < 128) return (ascii_[cp >> 6] >> (cp & 63)) & 1;
    return ContainsSlow(cp);
  }
  bool empty() const { return ranges_.empty(); }
  const std::vector<std::pair<char32_t, char32_t>>& ranges() const { return ranges_; }

 private:
  bool ContainsSlow(char32_t cp) const;
  void Normalize();  // sorts, merges, rebuilds the bitmap

  std::vector<std::pair<char32_t, char32_t>> ranges_;
  uint64_t ascii_[2] = {0, 0};
};

// ---- UTF-8 ----

// Byte offset of the first byte of the first ill-formed sequence (overlong forms, surrogates,
// values above U+10FFFF, stray continuation bytes and truncated sequences are ill-formed), or
// std::string_view::npos when `s` is valid UTF-8.
size_t FindInvalidUtf8(std::string_view s);

// Decodes the code point at s[*pos] of VALID UTF-8 and advances *pos past it.
inline char32_t DecodeValid(std::string_view s, size_t* pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + *pos;
  unsigned char b0 = p[0];
  if (b0 < 0x80) {
    *pos += 1;
    return b0;
  }
  if (b0 < 0xE0) {
    *pos += 2;
    return (char32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b0 < 0xF0) {
    *pos += 3;
    return (char32_t(b0 & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *pos += 4;
  return (char32_t(b0 & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) |
         (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

// Appends the UTF-8 encoding of cp (cp must be a scalar value) to *out.
void AppendUtf8(char32_t cp, std::string* out);

// Appends `bytes` to *out as UTF-8, replacing each maximal ill-formed subsequence with U+FFFD
// (the Unicode "substitution of maximal subparts" practice that Rust's from_utf8_lossy and so
// Hugging Face's decoders follow). If `hold_incomplete_tail`, a trailing sequence that is a valid
// but incomplete prefix (e.g. F0 9F 98) is not consumed; the return value is the number of bytes
// consumed (bytes.size() when not holding).
size_t AppendLossyUtf8(std::string_view bytes, bool hold_incomplete_tail, std::string* out);

}  // namespace sieve::coordinator::unicode
