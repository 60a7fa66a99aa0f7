// Tests of the pre-tokenizer regex engine (coordinator/pretokenizer_regex.h): syntax and
// Oniguruma semantics, error reporting, bounded resources, and the hand-written Llama-3 / GPT-2
// matchers against the generic engine on the fixture texts and on fuzzed strings.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='PretokenizerRegex*'
#include "coordinator/pretokenizer_regex.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/tokenizer_unicode.h"
#include "tests/unit/test_util.h"

namespace sieve::coordinator {
namespace {

std::u32string Decode(std::string_view utf8) {
  EXPECT_EQ(unicode::FindInvalidUtf8(utf8), std::string_view::npos);
  std::u32string out;
  for (size_t i = 0; i < utf8.size();) out.push_back(unicode::DecodeValid(utf8, &i));
  return out;
}

std::string Encode(std::u32string_view cps) {
  std::string out;
  for (char32_t c : cps) unicode::AppendUtf8(c, &out);
  return out;
}

std::vector<std::string> MatchesOf(const PretokenizerRegex& re, std::string_view text) {
  std::u32string cps = Decode(text);
  std::vector<RegexMatch> m;
  re.FindAll(cps, &m);
  std::vector<std::string> out;
  for (const RegexMatch& r : m)
    out.push_back(Encode(std::u32string_view(cps).substr(r.begin, r.end - r.begin)));
  return out;
}

std::vector<std::string> Matches(std::string_view pattern, std::string_view text) {
  auto re = PretokenizerRegex::Compile(pattern, /*allow_fast_path=*/false);
  EXPECT_TRUE(re.ok()) << pattern << ": " << re.status().ToString();
  if (!re.ok()) return {};
  return MatchesOf(*re, text);
}

using V = std::vector<std::string>;

TEST(PretokenizerRegexTest, AlternationIsLeftmostFirst) {
  EXPECT_EQ(Matches("a|ab", "ab"), V({"a"}));
  EXPECT_EQ(Matches("ab|a", "ab a"), V({"ab", "a"}));
  EXPECT_EQ(Matches("(?:x|xy)z", "xyz"), V({"xyz"}));  // backtracks into the group
}

TEST(PretokenizerRegexTest, Quantifiers) {
  EXPECT_EQ(Matches("a{2,3}", "aaaaaaa"), V({"aaa", "aaa"}));
  EXPECT_EQ(Matches("a{2}", "aaaaa"), V({"aa", "aa"}));
  EXPECT_EQ(Matches("a{2,}", "aaaaa b aa"), V({"aaaaa", "aa"}));
  EXPECT_EQ(Matches("ba{,2}", "baaa"), V({"baa"}));
  EXPECT_EQ(Matches("a+?", "aaa"), V({"a", "a", "a"}));
  EXPECT_EQ(Matches("<.+?>", "<a><b>"), V({"<a>", "<b>"}));
  EXPECT_EQ(Matches("<.+>", "<a><b>"), V({"<a><b>"}));
  EXPECT_EQ(Matches("a??b", "ab"), V({"ab"}));
  EXPECT_EQ(Matches("x{a}", "x{a}"), V({"x{a}"}));  // not an interval: literal braces
  EXPECT_EQ(Matches("(?>a+)a", "aaa"), V());        // atomic group gives nothing back
  EXPECT_EQ(Matches("a++a", "aaa"), V());           // possessive
  EXPECT_EQ(Matches("a*+b", "aab"), V({"aab"}));
  EXPECT_EQ(Matches("(?:ab)+", "ababa"), V({"abab"}));
}

TEST(PretokenizerRegexTest, EmptyMatchesFollowTheOnigIterator) {
  // The onig crate's find_iter skips an empty match found right at the previous match's end.
  EXPECT_EQ(Matches("a*", "baab"), V({"", "aa", ""}));
  EXPECT_EQ(Matches("", "ab"), V({"", "", ""}));
  EXPECT_EQ(Matches("(a|)*", "b"), V({"", ""}));  // empty loop iteration terminates
}

TEST(PretokenizerRegexTest, Classes) {
  EXPECT_EQ(Matches("[a-c]+", "abcd"), V({"abc"}));
  EXPECT_EQ(Matches("[^a-c]+", "abcd"), V({"d"}));
  EXPECT_EQ(Matches("[a-z&&[^aeiou]]+", "hello"), V({"h", "ll"}));
  EXPECT_EQ(Matches("[]a]+", "a]b"), V({"a]"}));
  EXPECT_EQ(Matches("[a-]+", "a-b"), V({"a-"}));
  EXPECT_EQ(Matches("[\\d\\s]+", "a1 2b"), V({"1 2"}));
  EXPECT_EQ(Matches("[\\x41-\\x{43}]+", "ABCD"), V({"ABC"}));
  EXPECT_EQ(Matches("\\u0041\\x42", "AB"), V({"AB"}));
  EXPECT_EQ(Matches("[\\p{Lu}\\p{Nd}]+", "AB12cd"), V({"AB12"}));
  EXPECT_EQ(Matches("[^\\P{L}]+", "ab1"), V({"ab"}));
  EXPECT_EQ(Matches("\\p{^L}+", "ab12"), V({"12"}));
  EXPECT_EQ(Matches("\\pL+", "ab12"), V({"ab"}));
  EXPECT_EQ(Matches("\\h+", "0xBEEF"), V({"0", "BEEF"}));
  EXPECT_EQ(Matches("[[a-b][x-y]]+", "abcxy"), V({"ab", "xy"}));
  EXPECT_EQ(Matches("\\p{Uppercase_Letter}", "aB"), V({"B"}));
}

TEST(PretokenizerRegexTest, UnicodeClasses) {
  // \p{N} is Nd | Nl | No; \d is only Nd.
  EXPECT_EQ(Matches("\\p{N}+",
                    "x\xC2\xBD\xC2\xB2\xE2\x85\xAB"
                    "9"),
            V({"\xC2\xBD\xC2\xB2\xE2\x85\xAB"
               "9"}));
  EXPECT_EQ(Matches("\\d+",
                    "\xC2\xBD"
                    "9\xD9\xA3"),
            V({"9\xD9\xA3"}));
  // \s is White_Space: NEL, NBSP, LS, ideographic space yes; ZWSP no.
  EXPECT_EQ(Matches("\\s+",
                    "a\xC2\x85\xC2\xA0\xE2\x80\xA8\xE3\x80\x80"
                    "b\xE2\x80\x8B"
                    "c"),
            V({"\xC2\x85\xC2\xA0\xE2\x80\xA8\xE3\x80\x80"}));
  // Combining marks are not letters.
  EXPECT_EQ(Matches("\\p{L}+", "e\xCC\x81x"), V({"e", "x"}));
  EXPECT_EQ(Matches("\\p{M}", "e\xCC\x81x"), V({"\xCC\x81"}));
  EXPECT_EQ(Matches("\\w+",
                    "a_\xCC\x81"
                    "b-c"),
            V({"a_\xCC\x81"
               "b",
               "c"}));
  // 4-byte code points are one unit.
  EXPECT_EQ(Matches(".", "\xF0\x9F\x98\x80"), V({"\xF0\x9F\x98\x80"}));
  EXPECT_EQ(Matches("[^a]", "\xF0\x9F\x98\x80"), V({"\xF0\x9F\x98\x80"}));
  EXPECT_EQ(Matches("\\x{1F600}", "\xF0\x9F\x98\x80"), V({"\xF0\x9F\x98\x80"}));
}

TEST(PretokenizerRegexTest, CaseInsensitive) {
  EXPECT_EQ(Matches("(?i:'s|'ll)", "'S 'x 'Ll \xC5\xBF '\xC5\xBF"), V({"'S", "'Ll", "'\xC5\xBF"}));
  EXPECT_EQ(Matches("(?i)k", "k K \xE2\x84\xAA"), V({"k", "K", "\xE2\x84\xAA"}));  // Kelvin
  EXPECT_EQ(Matches("(?i)[a-c]+", "xAbC"), V({"AbC"}));
  EXPECT_EQ(Matches("(?i)[^a-c]+", "xAbC"), V({"x"}));         // closed under folding, then negated
  EXPECT_EQ(Matches("a(?i)b|c", "aB aC C"), V({"aB", "aC"}));  // Oniguruma: a(?i:b|c)
  EXPECT_EQ(Matches("(?i:a)b", "AB Ab"), V({"Ab"}));
  EXPECT_EQ(Matches("(?i)a(?-i:b)", "AB Ab"), V({"Ab"}));
  EXPECT_EQ(Matches("(?i)\\u03C3", "\xCF\x82\xCE\xA3"), V({"\xCF\x82", "\xCE\xA3"}));  // ς Σ
}

TEST(PretokenizerRegexTest, LookaroundAnchorsAndBoundaries) {
  EXPECT_EQ(Matches("\\s+(?!\\S)", "a   b  "), V({"  ", "  "}));
  EXPECT_EQ(Matches("a(?=b)", "ab ac"), V({"a"}));
  EXPECT_EQ(Matches("(?<=a)b", "ab cb"), V({"b"}));
  EXPECT_EQ(Matches("(?<!a)b", "ab cb"), V({"b"}));
  EXPECT_EQ(Matches("(?<=ab|c)d", "abd cd xd"), V({"d", "d"}));
  EXPECT_EQ(Matches("^a", "a\na"), V({"a", "a"}));
  EXPECT_EQ(Matches("a$", "a\na"), V({"a", "a"}));
  EXPECT_EQ(Matches("\\Aa", "a\na"), V({"a"}));
  EXPECT_EQ(Matches("a\\z", "a\na"), V({"a"}));
  EXPECT_EQ(Matches("a\\Z", "a\na\n"), V({"a"}));
  EXPECT_EQ(Matches("\\bfoo\\b", "foo foobar"), V({"foo"}));
  EXPECT_EQ(Matches("\\Boo", "foo oo"), V({"oo"}));
  EXPECT_EQ(Matches("(?m).+", "a\nb"), V({"a\nb"}));
  EXPECT_EQ(Matches(".+", "a\nb"), V({"a", "b"}));
  EXPECT_EQ(Matches("(?x) a b # comment\n c", "abc"), V({"abc"}));
  EXPECT_EQ(Matches("(?<n>a)(?P<m>b)(?#note)c", "abc"), V({"abc"}));
}

TEST(PretokenizerRegexTest, UnsupportedSyntaxIsAnErrorNamingTheConstruct) {
  struct Case {
    const char* pattern;
    StatusCode code;
    const char* needle;
  };
  const Case cases[] = {
      {"(a)\\1", StatusCode::kUnimplemented, "backreference"},
      {"\\k<n>", StatusCode::kUnimplemented, "\\k"},
      {"\\g<1>", StatusCode::kUnimplemented, "subexpression call"},
      {"(?<=a+)b", StatusCode::kUnimplemented, "variable-width lookbehind"},
      {"\\p{Han}", StatusCode::kUnimplemented, "\\p{han}"},
      {"[[:alpha:]]", StatusCode::kUnimplemented, "POSIX bracket"},
      {"(?~abc)", StatusCode::kUnimplemented, "(?~"},
      {"\\R", StatusCode::kUnimplemented, "\\R"},
      {"\\X", StatusCode::kUnimplemented, "\\X"},
      {"\\K", StatusCode::kUnimplemented, "\\K"},
      {"(abc", StatusCode::kInvalidArgument, "unmatched parenthesis"},
      {"abc)", StatusCode::kInvalidArgument, "unmatched ')'"},
      {"*a", StatusCode::kInvalidArgument, "target of repeat"},
      {"a{3,2}", StatusCode::kInvalidArgument, "less than lower bound"},
      {"[a", StatusCode::kInvalidArgument, "premature end of char-class"},
      {"[z-a]", StatusCode::kInvalidArgument, "empty range"},
      {"a{1000000}", StatusCode::kInvalidArgument, "too large"},
      {"(?:a{1,100}){1,300}", StatusCode::kInvalidArgument, "pattern too large"},
      {"\\x{110000}", StatusCode::kInvalidArgument, "scalar value"},
      {"(?=a)*", StatusCode::kInvalidArgument, "repeat"},
  };
  for (const Case& c : cases) {
    auto re = PretokenizerRegex::Compile(c.pattern);
    ASSERT_FALSE(re.ok()) << c.pattern;
    EXPECT_EQ(re.status().code(), c.code) << c.pattern << ": " << re.status().ToString();
    EXPECT_NE(re.status().message().find(c.needle), std::string::npos)
        << c.pattern << ": " << re.status().ToString();
    if (std::string_view(c.needle) != "pattern too large") {  // a whole-pattern limit
      EXPECT_NE(re.status().message().find("offset"), std::string::npos) << re.status().ToString();
    }
  }
  auto bad = PretokenizerRegex::Compile("\xFF");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(PretokenizerRegexTest, FastPathsAreSelectedOnlyForTheExactPatterns) {
  EXPECT_EQ(PretokenizerRegex::Compile(kLlama3SplitPattern)->matcher(),
            PretokenizerRegex::Matcher::kLlama3);
  EXPECT_EQ(PretokenizerRegex::Compile(kGpt2SplitPattern)->matcher(),
            PretokenizerRegex::Matcher::kGpt2);
  EXPECT_EQ(PretokenizerRegex::Compile(kLlama3SplitPattern, false)->matcher(),
            PretokenizerRegex::Matcher::kGeneric);
  std::string qwen(kLlama3SplitPattern);
  qwen.replace(qwen.find("{1,3}"), 5, "");
  EXPECT_EQ(PretokenizerRegex::Compile(qwen)->matcher(), PretokenizerRegex::Matcher::kGeneric);
}

TEST(PretokenizerRegexTest, Llama3Splits) {
  auto fast = *PretokenizerRegex::Compile(kLlama3SplitPattern);
  auto slow = *PretokenizerRegex::Compile(kLlama3SplitPattern, false);
  struct Case {
    const char* text;
    V pieces;
  };
  const Case cases[] = {
      {"a  b", {"a", " ", " b"}},
      {"a \n\n b", {"a", " \n\n", " b"}},
      {"a\r\n\r\nb", {"a", "\r\n\r\n", "b"}},
      {"x\xC2\xA0y", {"x", "\xC2\xA0y"}},  // NBSP joins the next word
      {"don't I'M 'sup", {"don", "'t", " I", "'M", " '", "sup"}},
      {"1234567", {"123", "456", "7"}},
      {"e\xCC\x81x", {"e", "\xCC\x81x"}},  // the mark starts the next piece
      {"hi!!\n\nyo", {"hi", "!!\n\n", "yo"}},
      {"a\t\tb", {"a", "\t", "\tb"}},
      {"end   ", {"end", "   "}},
      {"\xE2\x80\x8Bword", {"\xE2\x80\x8Bword"}},  // ZWSP is not \s
      {"\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 x",
       {"\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9", " x"}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(MatchesOf(fast, c.text), c.pieces) << c.text;
    EXPECT_EQ(MatchesOf(slow, c.text), c.pieces) << c.text;
  }
}

// Random strings over characters that sit on every class boundary of both patterns.
std::u32string RandomText(std::mt19937& rng, size_t max_len) {
  static const char32_t kAlphabet[] = {
      'a',    'Z',     'q',    '\'',   's',    'S',    0x017F,   't',    'T',    'r',
      'e',    'E',     'v',    'm',    'l',    'L',    'd',      'D',    ' ',    ' ',
      ' ',    '\t',    '\n',   '\r',   0x0B,   0x0C,   0x85,     0xA0,   0x1680, 0x2000,
      0x2028, 0x2029,  0x202F, 0x3000, 0x200B, 0xFEFF, '1',      '7',    0xBD,   0xB2,
      0x2167, 0x0663,  0x0301, 0x0903, 0x20DD, '!',    '.',      '-',    '_',    0x1F600,
      0x200D, 0x1F3FB, 0x6771, 0x0130, 0x212A, 0xE000, 0x10FFFF, 0x0378, 0x1C,   0x00,
  };
  std::uniform_int_distribution<size_t> len_dist(0, max_len);
  std::uniform_int_distribution<size_t> pick(0, std::size(kAlphabet) - 1);
  std::u32string s(len_dist(rng), U' ');
  for (char32_t& c : s) c = kAlphabet[pick(rng)];
  return s;
}

void ExpectSameMatches(const PretokenizerRegex& a, const PretokenizerRegex& b,
                       std::u32string_view text) {
  std::vector<RegexMatch> ma, mb;
  a.FindAll(text, &ma);
  b.FindAll(text, &mb);
  ASSERT_EQ(ma, mb) << "text: " << Encode(text);
}

TEST(PretokenizerRegexTest, FastPathsAgreeWithTheGenericEngineOnFuzzedText) {
  for (std::string_view pattern : {kLlama3SplitPattern, kGpt2SplitPattern}) {
    auto fast = *PretokenizerRegex::Compile(pattern);
    auto slow = *PretokenizerRegex::Compile(pattern, false);
    ASSERT_NE(fast.matcher(), PretokenizerRegex::Matcher::kGeneric);
    std::mt19937 rng(1234);
    for (int i = 0; i < 4000; ++i) {
      std::u32string text = RandomText(rng, i < 3000 ? 12 : 200);
      ExpectSameMatches(fast, slow, text);
      if (HasFatalFailure()) return;
    }
  }
}

TEST(PretokenizerRegexTest, FastPathsAgreeWithTheGenericEngineOnFixtureTexts) {
  std::string data = testing::ReadFileOrDie(testing::FixturePath("llama3.1-tokenizer/cases.jsonl"));
  std::istringstream lines(data);
  std::string line;
  auto llama_fast = *PretokenizerRegex::Compile(kLlama3SplitPattern);
  auto llama_slow = *PretokenizerRegex::Compile(kLlama3SplitPattern, false);
  auto gpt2_fast = *PretokenizerRegex::Compile(kGpt2SplitPattern);
  auto gpt2_slow = *PretokenizerRegex::Compile(kGpt2SplitPattern, false);
  int n = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    std::string text(boost::json::parse(line).as_object().at("text").as_string());
    std::u32string cps = Decode(text);
    ExpectSameMatches(llama_fast, llama_slow, cps);
    ExpectSameMatches(gpt2_fast, gpt2_slow, cps);
    ++n;
  }
  EXPECT_GT(n, 30);
}

TEST(PretokenizerRegexTest, LongRunsNeitherRecurseNorBlowUp) {
  // A backtracking engine that recursed per character would overflow the stack here.
  std::u32string spaces(1 << 20, U' ');
  spaces.push_back(U'x');
  auto slow = *PretokenizerRegex::Compile(kLlama3SplitPattern, false);
  auto fast = *PretokenizerRegex::Compile(kLlama3SplitPattern);
  std::vector<RegexMatch> m;
  slow.FindAll(spaces, &m);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0], (RegexMatch{0, spaces.size() - 2}));
  EXPECT_EQ(m[1], (RegexMatch{spaces.size() - 2, spaces.size()}));
  ExpectSameMatches(fast, slow, spaces);

  std::u32string letters(200000, U'a');
  ExpectSameMatches(fast, slow, letters);
  std::u32string crlf;
  for (int i = 0; i < 50000; ++i) crlf += U"\r\n \t";
  ExpectSameMatches(fast, slow, crlf);

  // Classic catastrophic pattern: memoization keeps it linear-ish.
  auto evil = *PretokenizerRegex::Compile("(a|aa)*c");
  std::u32string as(2000, U'a');
  std::vector<RegexMatch> none;
  evil.FindAll(as, &none);
  EXPECT_TRUE(none.empty());
}

TEST(PretokenizerRegexTest, MatchAt) {
  auto re = *PretokenizerRegex::Compile("ab+", false);
  std::u32string text = U"xabbb";
  EXPECT_EQ(re.MatchAt(text, 0), -1);
  EXPECT_EQ(re.MatchAt(text, 1), 5);
  auto fast = *PretokenizerRegex::Compile(kLlama3SplitPattern);
  EXPECT_EQ(fast.MatchAt(text, 0), 5);
  EXPECT_EQ(fast.MatchAt(text, 5), -1);
}

}  // namespace
}  // namespace sieve::coordinator
