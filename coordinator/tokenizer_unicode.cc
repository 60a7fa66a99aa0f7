// Unicode lookups and UTF-8 handling for the tokenizer (see tokenizer_unicode.h for the contract
// and the \s / \w / (?i) decisions).
//
// CategoryOf answers the Basic Multilingual Plane from a 64 KiB table expanded once from the
// generated runs (every pre-tokenizer step asks it for nearly every code point), and the
// supplementary planes by binary search over the runs.
//
// Tested by tests/unit/coordinator/tokenizer_unicode_test.cc.
#include "coordinator/tokenizer_unicode.h"

#include <algorithm>
#include <array>
#include <memory>
#include <unordered_map>

namespace sieve::coordinator::unicode {
namespace {

GeneralCategory RunCategory(size_t i) {
  return static_cast<GeneralCategory>(kGeneralCategoryRuns[i] & 31u);
}
char32_t RunStart(size_t i) { return kGeneralCategoryRuns[i] >> 5; }

GeneralCategory CategoryBySearch(char32_t cp) {
  // The last run whose start is <= cp.
  const uint32_t key = (uint32_t(cp) << 5) | 31u;
  const uint32_t* end = kGeneralCategoryRuns + kGeneralCategoryRunCount;
  const uint32_t* it = std::upper_bound(kGeneralCategoryRuns, end, key);
  return RunCategory(size_t(it - kGeneralCategoryRuns) - 1);
}

const std::array<uint8_t, 0x10000>& BmpTable() {
  static const auto* table = [] {
    auto* t = new std::array<uint8_t, 0x10000>();
    for (size_t i = 0; i < kGeneralCategoryRunCount; ++i) {
      char32_t first = RunStart(i);
      if (first >= 0x10000) break;
      char32_t next = i + 1 < kGeneralCategoryRunCount ? RunStart(i + 1) : 0x110000;
      std::fill(t->begin() + first, t->begin() + std::min<char32_t>(next, 0x10000),
                static_cast<uint8_t>(RunCategory(i)));
    }
    return t;
  }();
  return *table;
}

bool InRanges(const CodePointRange* ranges, size_t n, char32_t cp) {
  const CodePointRange* end = ranges + n;
  const CodePointRange* it = std::upper_bound(
      ranges, end, cp, [](char32_t v, const CodePointRange& r) { return v < r.first; });
  return it != ranges && cp <= (it - 1)->last;
}

// fold target -> every code point folding to it (target included).
const std::unordered_map<char32_t, std::vector<char32_t>>& Orbits() {
  static const auto* orbits = [] {
    auto* m = new std::unordered_map<char32_t, std::vector<char32_t>>();
    for (size_t i = 0; i < kSimpleCaseFoldCount; ++i) {
      auto& v = (*m)[kSimpleCaseFold[i].to];
      if (v.empty()) v.push_back(kSimpleCaseFold[i].to);
      v.push_back(kSimpleCaseFold[i].from);
    }
    for (auto& [k, v] : *m) std::sort(v.begin(), v.end());
    return m;
  }();
  return *orbits;
}

}  // namespace

GeneralCategory CategoryOf(char32_t cp) {
  if (cp < 0x10000) return static_cast<GeneralCategory>(BmpTable()[cp]);
  if (cp > kMaxCodePoint) return GeneralCategory::kCn;
  return CategoryBySearch(cp);
}

bool IsWhiteSpace(char32_t cp) {
  if (cp < 128) return cp == ' ' || (cp >= 9 && cp <= 13);
  return InRanges(kWhiteSpaceRanges, kWhiteSpaceRangeCount, cp);
}

bool IsWordChar(char32_t cp) {
  constexpr uint32_t kWordMask = kLetterMask | kMarkMask | CategoryBit(GeneralCategory::kNd) |
                                 CategoryBit(GeneralCategory::kNl) |
                                 CategoryBit(GeneralCategory::kPc);
  if (InCategories(cp, kWordMask)) return true;
  if (cp == 0x200C || cp == 0x200D) return true;
  return InRanges(kWordExtraRanges, kWordExtraRangeCount, cp);
}

char32_t SimpleFold(char32_t cp) {
  if (cp < 128) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  const CaseFoldPair* end = kSimpleCaseFold + kSimpleCaseFoldCount;
  const CaseFoldPair* it = std::lower_bound(
      kSimpleCaseFold, end, cp, [](const CaseFoldPair& p, char32_t v) { return p.from < v; });
  return (it != end && it->from == cp) ? it->to : cp;
}

std::vector<char32_t> CaseOrbit(char32_t cp) {
  const auto& orbits = Orbits();
  auto it = orbits.find(SimpleFold(cp));
  if (it == orbits.end()) return {cp};
  return it->second;
}

// ---- CodePointSet ----

CodePointSet CodePointSet::All() {
  CodePointSet s;
  s.AddRange(0, kMaxCodePoint);
  return s;
}

CodePointSet CodePointSet::FromCategories(uint32_t mask) {
  CodePointSet s;
  for (size_t i = 0; i < kGeneralCategoryRunCount; ++i) {
    if (!(CategoryBit(RunCategory(i)) & mask)) continue;
    char32_t next = i + 1 < kGeneralCategoryRunCount ? RunStart(i + 1) : kMaxCodePoint + 1;
    s.ranges_.emplace_back(RunStart(i), next - 1);
  }
  s.Normalize();
  return s;
}

CodePointSet CodePointSet::WhiteSpace() {
  CodePointSet s;
  for (size_t i = 0; i < kWhiteSpaceRangeCount; ++i) {
    s.ranges_.emplace_back(kWhiteSpaceRanges[i].first, kWhiteSpaceRanges[i].last);
  }
  s.Normalize();
  return s;
}

CodePointSet CodePointSet::Word() {
  CodePointSet s =
      FromCategories(kLetterMask | kMarkMask | CategoryBit(GeneralCategory::kNd) |
                     CategoryBit(GeneralCategory::kNl) | CategoryBit(GeneralCategory::kPc));
  s.ranges_.emplace_back(0x200C, 0x200D);
  for (size_t i = 0; i < kWordExtraRangeCount; ++i) {
    s.ranges_.emplace_back(kWordExtraRanges[i].first, kWordExtraRanges[i].last);
  }
  s.Normalize();
  return s;
}

void CodePointSet::AddRange(char32_t first, char32_t last) {
  if (first > last) return;
  ranges_.emplace_back(first, std::min(last, kMaxCodePoint));
  Normalize();
}

void CodePointSet::AddSet(const CodePointSet& other) {
  ranges_.insert(ranges_.end(), other.ranges_.begin(), other.ranges_.end());
  Normalize();
}

CodePointSet CodePointSet::Negated() const {
  CodePointSet s;
  char32_t next = 0;
  for (const auto& [a, b] : ranges_) {
    if (a > next) s.ranges_.emplace_back(next, a - 1);
    next = b + 1;
  }
  if (next <= kMaxCodePoint) s.ranges_.emplace_back(next, kMaxCodePoint);
  s.Normalize();
  return s;
}

CodePointSet CodePointSet::Intersect(const CodePointSet& other) const {
  CodePointSet s;
  size_t i = 0, j = 0;
  while (i < ranges_.size() && j < other.ranges_.size()) {
    char32_t lo = std::max(ranges_[i].first, other.ranges_[j].first);
    char32_t hi = std::min(ranges_[i].second, other.ranges_[j].second);
    if (lo <= hi) s.ranges_.emplace_back(lo, hi);
    if (ranges_[i].second < other.ranges_[j].second) {
      ++i;
    } else {
      ++j;
    }
  }
  s.Normalize();
  return s;
}

CodePointSet CodePointSet::CaseClosed() const {
  CodePointSet s = *this;
  for (const auto& [target, members] : Orbits()) {
    bool any = false;
    for (char32_t m : members) any = any || Contains(m);
    if (!any) continue;
    for (char32_t m : members) s.ranges_.emplace_back(m, m);
  }
  s.Normalize();
  return s;
}

bool CodePointSet::ContainsSlow(char32_t cp) const {
  auto it = std::upper_bound(
      ranges_.begin(), ranges_.end(), cp,
      [](char32_t v, const std::pair<char32_t, char32_t>& r) { return v < r.first; });
  return it != ranges_.begin() && cp <= (it - 1)->second;
}

void CodePointSet::Normalize() {
  std::sort(ranges_.begin(), ranges_.end());
  std::vector<std::pair<char32_t, char32_t>> merged;
  merged.reserve(ranges_.size());
  for (const auto& r : ranges_) {
    if (!merged.empty() && r.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  ranges_ = std::move(merged);
  ascii_[0] = ascii_[1] = 0;
  for (const auto& [a, b] : ranges_) {
    if (a >= 128) break;
    for (char32_t c = a; c <= std::min<char32_t>(b, 127); ++c) ascii_[c >> 6] |= 1ull << (c & 63);
  }
}

// ---- UTF-8 ----
namespace {

// Length of the sequence a lead byte announces (0 for bytes that cannot start one), and the
// allowed range of the second byte (which rules out overlongs, surrogates and > U+10FFFF).
struct LeadInfo {
  uint8_t len;
  uint8_t lo;
  uint8_t hi;
};

LeadInfo Lead(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Examines the sequence at s[i]: returns its length when complete and valid; otherwise sets
// *valid_prefix to the length of its longest valid prefix (>= 1: the lead byte alone counts, so
// an invalid byte is consumed as one unit) and *truncated to whether the input ended inside it.
size_t Examine(std::string_view s, size_t i, size_t* valid_prefix, bool* truncated) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  LeadInfo info = Lead(p[i]);
  *truncated = false;
  if (info.len == 0) {
    *valid_prefix = 1;
    return 0;
  }
  if (info.len == 1) return 1;
  for (size_t k = 1; k < info.len; ++k) {
    if (i + k >= s.size()) {
      *valid_prefix = k;
      *truncated = true;
      return 0;
    }
    unsigned char lo = k == 1 ? info.lo : 0x80, hi = k == 1 ? info.hi : 0xBF;
    if (p[i + k] < lo || p[i + k] > hi) {
      *valid_prefix = k;
      return 0;
    }
  }
  return info.len;
}

}  // namespace

size_t FindInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    // ASCII runs 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      __builtin_memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t prefix;
    bool truncated;
    size_t len = Examine(s, i, &prefix, &truncated);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t AppendLossyUtf8(std::string_view bytes, bool hold_incomplete_tail, std::string* out) {
  size_t i = 0;
  const size_t n = bytes.size();
  out->reserve(out->size() + n);
  while (i < n) {
    if (static_cast<unsigned char>(bytes[i]) < 0x80) {
      out->push_back(bytes[i++]);
      continue;
    }
    size_t prefix;
    bool truncated;
    size_t len = Examine(bytes, i, &prefix, &truncated);
    if (len > 0) {
      out->append(bytes.substr(i, len));
      i += len;
      continue;
    }
    if (truncated && hold_incomplete_tail) return i;
    AppendUtf8(kReplacementChar, out);
    i += prefix;
  }
  return n;
}

}  // namespace sieve::coordinator::unicode
