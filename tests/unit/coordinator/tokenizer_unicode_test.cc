// Tests of the generated Unicode tables and the UTF-8 helpers (coordinator/tokenizer_unicode.h,
// coordinator/unicode_tables.h from tools/gen_unicode_tables.py).
//
//   ./build/tests/sieve_unit_tests --gtest_filter='TokenizerUnicode*'
#include "coordinator/tokenizer_unicode.h"

#include <gtest/gtest.h>

#include <string>

namespace sieve::coordinator::unicode {
namespace {

using G = GeneralCategory;

TEST(TokenizerUnicodeTest, TablesAreWellFormed) {
  EXPECT_STREQ(kUnicodeVersion, "14.0.0");
  ASSERT_GT(kGeneralCategoryRunCount, 3000u);
  EXPECT_EQ(kGeneralCategoryRuns[0] >> 5, 0u);
  for (size_t i = 0; i < kGeneralCategoryRunCount; ++i) {
    EXPECT_LT(kGeneralCategoryRuns[i] & 31u, uint32_t(kNumGeneralCategories));
    if (i > 0) {
      EXPECT_LT(kGeneralCategoryRuns[i - 1] >> 5, kGeneralCategoryRuns[i] >> 5);
      EXPECT_NE(kGeneralCategoryRuns[i - 1] & 31u, kGeneralCategoryRuns[i] & 31u);
    }
  }
  for (size_t i = 1; i < kSimpleCaseFoldCount; ++i) {
    EXPECT_LT(kSimpleCaseFold[i - 1].from, kSimpleCaseFold[i].from);
  }
  EXPECT_EQ(kSimpleCaseFoldCount, 1454u);  // CaseFolding.txt 14.0.0, statuses C + S
}

TEST(TokenizerUnicodeTest, GeneralCategories) {
  EXPECT_EQ(CategoryOf('A'), G::kLu);
  EXPECT_EQ(CategoryOf('a'), G::kLl);
  EXPECT_EQ(CategoryOf(0x01C5), G::kLt);  // ǅ
  EXPECT_EQ(CategoryOf(0x02B0), G::kLm);  // ʰ
  EXPECT_EQ(CategoryOf(0x6771), G::kLo);  // 東
  EXPECT_EQ(CategoryOf(0x0301), G::kMn);  // combining acute: a mark, not a letter
  EXPECT_EQ(CategoryOf(0x0903), G::kMc);
  EXPECT_EQ(CategoryOf(0x20DD), G::kMe);
  EXPECT_EQ(CategoryOf(0x0663), G::kNd);  // Arabic-Indic three
  EXPECT_EQ(CategoryOf(0x216B), G::kNl);  // Ⅻ
  EXPECT_EQ(CategoryOf(0x00BD), G::kNo);  // ½
  EXPECT_EQ(CategoryOf(0x00B2), G::kNo);  // ²
  EXPECT_EQ(CategoryOf(0x200B), G::kCf);  // zero width space is not white space
  EXPECT_EQ(CategoryOf(0x200D), G::kCf);  // ZWJ
  EXPECT_EQ(CategoryOf(0xE000), G::kCo);
  EXPECT_EQ(CategoryOf(0xD800), G::kCs);
  EXPECT_EQ(CategoryOf(0x0378), G::kCn);
  EXPECT_EQ(CategoryOf(0x10FFFF), G::kCn);
  EXPECT_EQ(CategoryOf(0x110000), G::kCn);
  EXPECT_EQ(CategoryOf(0x1F600), G::kSo);  // 😀
  EXPECT_EQ(CategoryOf(0x1F3FB), G::kSk);  // skin tone modifier
  EXPECT_EQ(CategoryOf(0x20000), G::kLo);  // CJK extension B
  EXPECT_EQ(CategoryOf(0x2028), G::kZl);
  EXPECT_EQ(CategoryOf(0x3000), G::kZs);
  EXPECT_TRUE(IsLetter(0x0130));  // İ
  EXPECT_FALSE(IsLetter(0x0301));
  EXPECT_TRUE(IsNumber(0x00BD));
  EXPECT_TRUE(IsNumber(0x2167));
  EXPECT_FALSE(IsNumber('x'));
}

TEST(TokenizerUnicodeTest, WhiteSpaceIsExactlyTheWhiteSpaceProperty) {
  const char32_t expected[] = {0x09,   0x0A,   0x0B,   0x0C,   0x0D,   0x20,   0x85,
                               0xA0,   0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
                               0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028,
                               0x2029, 0x202F, 0x205F, 0x3000};
  std::u32string found;
  for (char32_t cp = 0; cp <= kMaxCodePoint; ++cp) {
    if (IsWhiteSpace(cp)) found.push_back(cp);
  }
  EXPECT_EQ(found, std::u32string(std::begin(expected), std::end(expected)));
  EXPECT_FALSE(IsWhiteSpace(0x200B));
  EXPECT_FALSE(IsWhiteSpace(0x180E));
  EXPECT_FALSE(IsWhiteSpace(0xFEFF));
  EXPECT_FALSE(IsWhiteSpace(0x1C));
}

TEST(TokenizerUnicodeTest, WordCharactersAndCaseFolding) {
  EXPECT_TRUE(IsWordChar('_'));
  EXPECT_TRUE(IsWordChar('7'));
  EXPECT_TRUE(IsWordChar(0x0301));   // marks
  EXPECT_TRUE(IsWordChar(0x24B6));   // Ⓐ (Other_Alphabetic)
  EXPECT_TRUE(IsWordChar(0x200D));   // Join_Control
  EXPECT_TRUE(IsWordChar(0x216B));   // Nl
  EXPECT_FALSE(IsWordChar(0x00BD));  // No is not \w
  EXPECT_FALSE(IsWordChar('-'));

  EXPECT_EQ(SimpleFold('A'), U'a');
  EXPECT_EQ(SimpleFold(0x017F), U's');  // ſ
  EXPECT_EQ(SimpleFold(0x212A), U'k');  // Kelvin
  EXPECT_EQ(SimpleFold(0x212B), char32_t(0xE5));
  EXPECT_EQ(SimpleFold(0x1E9E), char32_t(0xDF));    // ẞ -> ß (status S)
  EXPECT_EQ(SimpleFold(0x03C2), char32_t(0x03C3));  // ς -> σ
  EXPECT_EQ(SimpleFold(0x0130), char32_t(0x0130));  // İ has no simple folding
  EXPECT_EQ(CaseOrbit('s'), (std::vector<char32_t>{'S', 's', 0x017F}));
  EXPECT_EQ(CaseOrbit('K'), (std::vector<char32_t>{'K', 'k', 0x212A}));
  EXPECT_EQ(CaseOrbit('\''), (std::vector<char32_t>{'\''}));
}

TEST(TokenizerUnicodeTest, CodePointSets) {
  CodePointSet letters = CodePointSet::FromCategories(kLetterMask);
  EXPECT_TRUE(letters.Contains('q'));
  EXPECT_TRUE(letters.Contains(0x6771));
  EXPECT_FALSE(letters.Contains('1'));
  EXPECT_FALSE(letters.Contains(0x0301));
  CodePointSet not_letters = letters.Negated();
  for (char32_t cp : {U'q', U'1', char32_t(0x0301), char32_t(0x1F600), char32_t(0x10FFFF)}) {
    EXPECT_NE(letters.Contains(cp), not_letters.Contains(cp)) << uint32_t(cp);
  }
  CodePointSet lower;
  lower.AddRange('a', 'z');
  CodePointSet vowels;
  for (char32_t c : U"aeiou") {
    if (c) vowels.AddRange(c, c);
  }
  CodePointSet consonants = lower.Intersect(vowels.Negated());
  EXPECT_TRUE(consonants.Contains('b'));
  EXPECT_FALSE(consonants.Contains('a'));
  EXPECT_FALSE(consonants.Contains('B'));
  CodePointSet closed = consonants.CaseClosed();
  EXPECT_TRUE(closed.Contains('B'));
  EXPECT_TRUE(closed.Contains(0x212A));  // Kelvin joins k
  EXPECT_TRUE(closed.Contains(0x017F));  // long s joins s
  EXPECT_FALSE(closed.Contains('A'));
  EXPECT_TRUE(CodePointSet::All().Contains(0x10FFFF));
  EXPECT_TRUE(CodePointSet::All().Negated().empty());
}

TEST(TokenizerUnicodeTest, FindInvalidUtf8) {
  const size_t npos = std::string_view::npos;
  EXPECT_EQ(FindInvalidUtf8(""), npos);
  EXPECT_EQ(FindInvalidUtf8("plain ascii text, long enough for the 8-byte loop"), npos);
  EXPECT_EQ(FindInvalidUtf8("\xC3\xA9\xE6\x9D\xB1\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF"), npos);
  EXPECT_EQ(FindInvalidUtf8("ab\xC0\xAF"), 2u);        // overlong '/'
  EXPECT_EQ(FindInvalidUtf8("\xE0\x80\x80"), 0u);      // overlong 3-byte
  EXPECT_EQ(FindInvalidUtf8("x\xED\xA0\x80"), 1u);     // surrogate D800
  EXPECT_EQ(FindInvalidUtf8("\xF4\x90\x80\x80"), 0u);  // > U+10FFFF
  EXPECT_EQ(FindInvalidUtf8("\xF5"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xFF"), 0u);
  EXPECT_EQ(FindInvalidUtf8("a\x80"), 1u);                // stray continuation
  EXPECT_EQ(FindInvalidUtf8("abcdefghij\xE6\x97"), 10u);  // truncated at the end
  EXPECT_EQ(FindInvalidUtf8("\xE6\x97"
                            "a"),
            0u);  // truncated in the middle
}

TEST(TokenizerUnicodeTest, LossyDecodingReplacesMaximalSubparts) {
  auto lossy = [](std::string_view s) {
    std::string out;
    AppendLossyUtf8(s, false, &out);
    return out;
  };
  EXPECT_EQ(lossy("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(lossy("a\xF0\x9F\x98"), "a\xEF\xBF\xBD");  // truncated: one U+FFFD
  EXPECT_EQ(lossy("\xF0\x9F\x98"
                  "A"),
            "\xEF\xBF\xBD"
            "A");                                            // broken by 'A'
  EXPECT_EQ(lossy("\xE0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // E0 then 80
  EXPECT_EQ(lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(lossy("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");

  std::string out;
  EXPECT_EQ(AppendLossyUtf8("a\xF0\x9F\x98", true, &out), 1u);  // holds the valid prefix
  EXPECT_EQ(out, "a");
  out.clear();
  EXPECT_EQ(AppendLossyUtf8("a\xF0\x41", true, &out), 3u);  // cannot complete: replaced now
  EXPECT_EQ(out,
            "a\xEF\xBF\xBD"
            "A");
}

}  // namespace
}  // namespace sieve::coordinator::unicode
