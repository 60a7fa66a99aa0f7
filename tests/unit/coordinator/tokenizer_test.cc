// Tests of the Hugging Face tokenizer (coordinator/tokenizer.h): every case of the Llama-3.1
// fixture (ids, ids with BOS, decode round trip), special tokens, errors, streaming decode,
// thread safety, and small hand-built byte-level BPE tokenizers (GPT-2 style regex, merges in
// pair form, ignore_merges, added-token options).
//
//   ./build/tests/sieve_unit_tests --gtest_filter='Tokenizer*'
#include "coordinator/tokenizer.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/tokenizer_bpe.h"
#include "coordinator/tokenizer_unicode.h"
#include "tests/unit/test_util.h"

namespace sieve::coordinator {
namespace {

namespace json = boost::json;

struct FixtureCase {
  std::string text;
  std::vector<int32_t> ids;
  std::vector<int32_t> ids_bos;
};

std::vector<int32_t> IdsOf(const json::value& v) {
  std::vector<int32_t> out;
  for (const json::value& x : v.as_array()) out.push_back(static_cast<int32_t>(x.as_int64()));
  return out;
}

std::vector<FixtureCase> LoadCases() {
  std::string data = testing::ReadFileOrDie(testing::FixturePath("llama3.1-tokenizer/cases.jsonl"));
  std::vector<FixtureCase> cases;
  std::istringstream lines(data);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    json::object o = json::parse(line).as_object();
    cases.push_back(
        {std::string(o.at("text").as_string()), IdsOf(o.at("ids")), IdsOf(o.at("ids_bos"))});
  }
  return cases;
}

bool IsValidUtf8(std::string_view s) {
  return unicode::FindInvalidUtf8(s) == std::string_view::npos;
}

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tok = Tokenizer::FromFile(testing::FixturePath("llama3.1-tokenizer/tokenizer.json"));
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    llama_ = new Tokenizer(std::move(*tok));
  }
  static void TearDownTestSuite() {
    delete llama_;
    llama_ = nullptr;
  }
  static const Tokenizer& Llama() { return *llama_; }

  std::vector<int32_t> Enc(std::string_view text, bool add_special = false) {
    auto ids = Llama().Encode(text, add_special);
    EXPECT_TRUE(ids.ok()) << ids.status().ToString();
    return ids.ok() ? *ids : std::vector<int32_t>();
  }

  static Tokenizer* llama_;
};
Tokenizer* TokenizerTest::llama_ = nullptr;

std::string Describe(const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return StrFormat("first difference at index %zu of %zu/%zu: got %d, want %d", i, got.size(),
                   want.size(), i < got.size() ? got[i] : -1, i < want.size() ? want[i] : -1);
}

TEST_F(TokenizerTest, MatchesEveryFixtureCase) {
  std::vector<FixtureCase> cases = LoadCases();
  ASSERT_GE(cases.size(), 30u);
  size_t matched = 0;
  for (size_t k = 0; k < cases.size(); ++k) {
    const FixtureCase& c = cases[k];
    std::vector<int32_t> ids = Enc(c.text, false);
    std::vector<int32_t> ids_bos = Enc(c.text, true);
    const std::string text_head = c.text.substr(0, 60);
    EXPECT_EQ(ids, c.ids) << "case " << k << " \"" << text_head << "\": " << Describe(ids, c.ids);
    EXPECT_EQ(ids_bos, c.ids_bos) << "case " << k << ": " << Describe(ids_bos, c.ids_bos);
    std::string decoded = Llama().Decode(c.ids);
    EXPECT_EQ(decoded, c.text) << "case " << k;
    if (ids == c.ids && ids_bos == c.ids_bos && decoded == c.text) ++matched;
  }
  EXPECT_EQ(matched, cases.size());
  std::printf("[ tokenizer ] %zu/%zu fixture cases match (ids, ids_bos, decode)\n", matched,
              cases.size());
}

TEST_F(TokenizerTest, Llama3Metadata) {
  EXPECT_EQ(Llama().vocab_size(), 128256);
  EXPECT_EQ(Llama().bos_id(), 128000);
  EXPECT_EQ(Llama().TokenToId("<|begin_of_text|>"), 128000);
  EXPECT_EQ(Llama().TokenToId("<|eot_id|>"), 128009);
  EXPECT_EQ(Llama().TokenToId("Hello"), 9906);
  EXPECT_EQ(Llama().TokenToId("no such token at all"), std::nullopt);
  EXPECT_EQ(Llama().IdToToken(128000), "<|begin_of_text|>");
  EXPECT_EQ(Llama().IdToToken(9906), "Hello");
  EXPECT_EQ(Llama().IdToToken(220), "\xC4\xA0");  // "Ġ", the byte-level space
  EXPECT_EQ(Llama().IdToToken(-1), "");
  EXPECT_EQ(Llama().IdToToken(128256), "");
  EXPECT_TRUE(Llama().IsSpecial(128000));
  EXPECT_TRUE(Llama().IsSpecial(128255));
  EXPECT_FALSE(Llama().IsSpecial(9906));
  EXPECT_FALSE(Llama().IsSpecial(999999));
}

TEST_F(TokenizerTest, SpecialTokensInsideText) {
  const int32_t eot = 128009;
  std::vector<int32_t> hello = Enc("Hello"), world = Enc(" world");
  std::vector<int32_t> want = hello;
  want.push_back(eot);
  want.insert(want.end(), world.begin(), world.end());
  EXPECT_EQ(Enc("Hello<|eot_id|> world"), want);
  // Back to back, at the ends, and with BOS added in front.
  EXPECT_EQ(Enc("<|eot_id|><|eot_id|>"), (std::vector<int32_t>{eot, eot}));
  std::vector<int32_t> with_bos = Enc("<|start_header_id|>user<|end_header_id|>", true);
  EXPECT_EQ(with_bos, (std::vector<int32_t>{128000, 128006, 882, 128007}));
  // An incomplete special token is plain text.
  std::vector<int32_t> partial = Enc("<|eot_id");
  EXPECT_EQ(std::count(partial.begin(), partial.end(), eot), 0);
  EXPECT_EQ(Llama().Decode(partial), "<|eot_id");
  // Leftmost-longest: "<|reserved_special_token_10|>" is not "<|reserved_special_token_1|>"+"0|>".
  auto id10 = Llama().TokenToId("<|reserved_special_token_10|>");
  ASSERT_TRUE(id10.has_value());
  EXPECT_EQ(Enc("<|reserved_special_token_10|>"), std::vector<int32_t>{*id10});
}

TEST_F(TokenizerTest, EmptyString) {
  EXPECT_TRUE(Enc("").empty());
  EXPECT_EQ(Enc("", true), std::vector<int32_t>{128000});
  EXPECT_EQ(Llama().Decode(std::vector<int32_t>{}), "");
}

TEST_F(TokenizerTest, InvalidUtf8IsAnErrorWithTheByteOffset) {
  struct Case {
    std::string text;
    size_t offset;
  };
  const Case cases[] = {{"abc\xFF", 3},       {"ok \xC0\xAF", 3}, {"\xED\xA0\x80", 0},
                        {"tail \xE6\x97", 5}, {"x\x80y", 1},      {"\xF4\x90\x80\x80", 0}};
  for (const Case& c : cases) {
    auto ids = Llama().Encode(c.text, true);
    ASSERT_FALSE(ids.ok());
    EXPECT_EQ(ids.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(ids.status().message().find(StrFormat("byte offset %zu", c.offset)),
              std::string::npos)
        << ids.status().ToString();
  }
}

TEST_F(TokenizerTest, DecodeOptions) {
  std::vector<int32_t> ids = Enc("Hi<|eot_id|> there", true);
  EXPECT_EQ(Llama().Decode(ids), "<|begin_of_text|>Hi<|eot_id|> there");
  EXPECT_EQ(Llama().Decode(ids, /*skip_special_tokens=*/true), "Hi there");
  std::vector<int32_t> with_unknown = {9906, -5, 999999, 11};
  EXPECT_EQ(Llama().Decode(with_unknown), "Hello,");
  // A lone continuation byte decodes to U+FFFD, as HF's lossy decode does.
  auto byte_id = [&](uint8_t b) {
    std::string s;
    unicode::AppendUtf8(ByteLevelChar(b), &s);
    return *Llama().TokenToId(s);
  };
  EXPECT_EQ(Llama().Decode(std::vector<int32_t>{byte_id(0x98), 9906}), "\xEF\xBF\xBDHello");
}

TEST_F(TokenizerTest, IncrementalDecoderHoldsCharactersSplitAcrossTokens) {
  auto byte_id = [&](uint8_t b) {
    std::string s;
    unicode::AppendUtf8(ByteLevelChar(b), &s);
    auto id = Llama().TokenToId(s);
    EXPECT_TRUE(id.has_value());
    return id.value_or(0);
  };
  // 😀 = F0 9F 98 80 pushed one byte-token at a time, then 東 = E6 9D B1.
  IncrementalDecoder dec(Llama());
  EXPECT_EQ(dec.Push(9906), "Hello");
  EXPECT_EQ(dec.Push(byte_id(0xF0)), "");
  EXPECT_EQ(dec.Push(byte_id(0x9F)), "");
  EXPECT_EQ(dec.Push(byte_id(0x98)), "");
  EXPECT_EQ(dec.Push(byte_id(0x80)), "\xF0\x9F\x98\x80");
  EXPECT_EQ(dec.Push(byte_id(0xE6)), "");
  EXPECT_EQ(dec.Push(byte_id(0x9D)), "");
  EXPECT_EQ(dec.Push(byte_id(0xB1)), "\xE6\x9D\xB1");
  // A sequence that can no longer complete is replaced at once; a truncated tail at Flush.
  EXPECT_EQ(dec.Push(byte_id(0xF0)), "");
  EXPECT_EQ(dec.Push(9906), "\xEF\xBF\xBDHello");
  EXPECT_EQ(dec.Push(byte_id(0xE6)), "");
  EXPECT_EQ(dec.Push(byte_id(0x9D)), "");
  EXPECT_EQ(dec.Flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(dec.Flush(), "");

  // Special tokens: kept by default, dropped with skip_special_tokens.
  IncrementalDecoder keep(Llama()), skip(Llama(), /*skip_special_tokens=*/true);
  EXPECT_EQ(keep.Push(128000), "<|begin_of_text|>");
  EXPECT_EQ(skip.Push(128000), "");
}

TEST_F(TokenizerTest, IncrementalDecoderConcatenationEqualsDecode) {
  std::vector<std::string> texts = {
      "emoji \xF0\x9F\x98\x80\xF0\x9F\x98\x80 \xF0\x9F\x9A\x80 family \xF0\x9F\x91\xA8\xE2\x80\x8D"
      "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 flag \xF0\x9F\x87\xAF\xF0\x9F\x87\xB5",
      "\xE6\x9D\xB1\xE4\xBA\xAC\xE3\x82\xBF\xE3\x83\xAF\xE3\x83\xBC\xE3\x81\xAF\xE9\xAB\x98\xE3"
      "\x81\x84 \xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4 \xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7",
      "\xF0\x9D\x95\xB3\xF0\x9D\x96\x8A\xF0\x9D\x96\x91\xF0\x9D\x96\x91\xF0\x9D\x96\x94 "
      "\xF0\xA0\x80\x80\xF0\xA0\x80\x81 e\xCC\x81\xCC\x82 \xE2\x84\xAB",
  };
  for (const FixtureCase& c : LoadCases()) {
    if (c.text.size() < 3000) texts.push_back(c.text);
  }
  for (const std::string& text : texts) {
    std::vector<int32_t> ids = Enc(text, true);
    IncrementalDecoder dec(Llama());
    std::string streamed;
    for (int32_t id : ids) {
      std::string chunk = dec.Push(id);
      EXPECT_TRUE(IsValidUtf8(chunk));
      streamed += chunk;
    }
    streamed += dec.Flush();
    EXPECT_EQ(streamed, Llama().Decode(ids));
    EXPECT_EQ(streamed, "<|begin_of_text|>" + text);
  }
}

// Strings built from awkward code points: every one must round-trip through encode/decode and
// encode identically on repeat (the word cache must not change results).
TEST_F(TokenizerTest, RoundTripsAwkwardUnicode) {
  const char32_t alphabet[] = {
      'a',     'Z',     '\'',   's',     'S',    0x017F,  'l',      'L',    ' ',     ' ',
      '\t',    '\n',    '\r',   0x0B,    0x0C,   0x85,    0xA0,     0x1680, 0x2028,  0x2029,
      0x202F,  0x3000,  0x200B, 0xFEFF,  '1',    '9',     0xBD,     0xB2,   0x2167,  0x0663,
      0x0301,  0x0903,  0x20DD, '!',     '.',    '<',     '|',      '>',    0x1F600, 0x200D,
      0x1F3FB, 0x1F1EF, 0x6771, 0x0130,  0x212A, 0xE000,  0x10FFFF, 0x0378, 0x00,    0x7F,
      0xAD,    0xFFFD,  0xFFFF, 0x1D573, 0xD7FF, 0xE0001,
  };
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> len(0, 40), pick(0, std::size(alphabet) - 1);
  for (int i = 0; i < 3000; ++i) {
    std::string text;
    size_t n = len(rng);
    for (size_t k = 0; k < n; ++k) unicode::AppendUtf8(alphabet[pick(rng)], &text);
    std::vector<int32_t> ids = Enc(text);
    ASSERT_EQ(Llama().Decode(ids), text);
    ASSERT_EQ(Enc(text), ids);
  }
  // Very long runs of one character.
  for (std::string unit : {" ", "a", "\n", "\r\n", "1", "\xF0\x9F\x98\x80", "!", "\xC2\xA0"}) {
    std::string text;
    for (int k = 0; k < 20000; ++k) text += unit;
    EXPECT_EQ(Llama().Decode(Enc(text)), text);
  }
}

TEST_F(TokenizerTest, ConcurrentEncodeIsConsistent) {
  std::vector<FixtureCase> cases = LoadCases();
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep) {
        for (size_t k = t; k < cases.size(); k += 1) {
          auto ids = Llama().Encode(cases[k].text, false);
          if (!ids.ok() || *ids != cases[k].ids) ++failures[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

// ---- Hand-built tokenizers ----

std::string ByteLevelSpelling(std::string_view raw) {
  std::string out;
  for (unsigned char b : raw) unicode::AppendUtf8(ByteLevelChar(b), &out);
  return out;
}

struct TinySpec {
  std::vector<std::string> extra_tokens;  // raw text, spelled byte-level in the vocab
  std::vector<std::pair<std::string, std::string>> merges;  // raw text
  bool merges_as_pairs = false;
  bool ignore_merges = false;
  json::value pre_tokenizer;
  json::array added_tokens;
  json::value post_processor;
  json::value normalizer;
};

// A byte-level BPE tokenizer.json: ids 0..255 are the byte-level characters in byte order, then
// the extra tokens in order, then the added tokens.
std::string TinyJson(const TinySpec& spec) {
  json::object vocab;
  for (int b = 0; b < 256; ++b) vocab[ByteLevelSpelling(std::string(1, char(b)))] = b;
  int next = 256;
  for (const std::string& t : spec.extra_tokens) vocab[ByteLevelSpelling(t)] = next++;
  json::array merges;
  for (const auto& [l, r] : spec.merges) {
    if (spec.merges_as_pairs) {
      merges.push_back(
          json::array{json::string(ByteLevelSpelling(l)), json::string(ByteLevelSpelling(r))});
    } else {
      merges.push_back(json::string(ByteLevelSpelling(l) + " " + ByteLevelSpelling(r)));
    }
  }
  json::object model{{"type", "BPE"},
                     {"dropout", nullptr},
                     {"unk_token", nullptr},
                     {"continuing_subword_prefix", nullptr},
                     {"end_of_word_suffix", nullptr},
                     {"fuse_unk", false},
                     {"byte_fallback", false},
                     {"ignore_merges", spec.ignore_merges},
                     {"vocab", vocab},
                     {"merges", merges}};
  json::object root{{"version", "1.0"},
                    {"truncation", nullptr},
                    {"padding", nullptr},
                    {"added_tokens", spec.added_tokens},
                    {"normalizer", spec.normalizer},
                    {"pre_tokenizer", spec.pre_tokenizer},
                    {"post_processor", spec.post_processor},
                    {"decoder", json::object{{"type", "ByteLevel"}}},
                    {"model", model}};
  return json::serialize(root);
}

json::value ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex) {
  return json::object{{"type", "ByteLevel"},
                      {"add_prefix_space", add_prefix_space},
                      {"trim_offsets", true},
                      {"use_regex", use_regex}};
}

Tokenizer MustLoad(const TinySpec& spec) {
  auto tok = Tokenizer::FromJson(TinyJson(spec), "tiny.json");
  EXPECT_TRUE(tok.ok()) << tok.status().ToString();
  if (!tok.ok()) std::abort();
  return std::move(*tok);
}

std::vector<int32_t> MustEncode(const Tokenizer& tok, std::string_view text, bool special = false) {
  auto ids = tok.Encode(text, special);
  EXPECT_TRUE(ids.ok()) << ids.status().ToString();
  return ids.ok() ? *ids : std::vector<int32_t>();
}

TinySpec Gpt2Spec() {
  TinySpec spec;
  // ids 256.. in this order
  spec.extra_tokens = {" w", "or", " wor", "ld", " world", "he", "ll", "hell", "hello", "aa"};
  spec.merges = {{" ", "w"}, {"o", "r"}, {" w", "or"}, {"l", "d"},    {" wor", "ld"},
                 {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"a", "a"}};
  spec.pre_tokenizer = ByteLevelPreTokenizer(false, true);
  return spec;
}

TEST(TokenizerTinyTest, Gpt2StyleByteLevelRegexOnAHandBuiltVocab) {
  Tokenizer tok = MustLoad(Gpt2Spec());
  EXPECT_EQ(tok.vocab_size(), 266);
  // "hello" merges all the way (h e -> he, l l -> ll, he ll -> hell, hell o); " world" too.
  EXPECT_EQ(MustEncode(tok, "hello world"), (std::vector<int32_t>{264, 260}));
  // Leftmost pair first among equal ranks: aaa -> aa a.
  EXPECT_EQ(MustEncode(tok, "aaa"), (std::vector<int32_t>{265, 'a'}));
  EXPECT_EQ(MustEncode(tok, "aaaa"), (std::vector<int32_t>{265, 265}));
  // GPT-2 regex pieces: contractions are case-sensitive, digits and punctuation runs.
  EXPECT_EQ(MustEncode(tok, "it's"), (std::vector<int32_t>{'i', 't', '\'', 's'}));
  EXPECT_EQ(MustEncode(tok, "IT'S"), (std::vector<int32_t>{'I', 'T', '\'', 'S'}));
  // "  world": the GPT-2 regex leaves one space for the word: " " + " world".
  EXPECT_EQ(MustEncode(tok, "  world"), (std::vector<int32_t>{' ', 260}));
  EXPECT_EQ(tok.Decode(MustEncode(tok, "  world!? 12")), "  world!? 12");
  // No post-processor: add_special_tokens changes nothing; no BOS.
  EXPECT_EQ(MustEncode(tok, "hello", true), std::vector<int32_t>{264});
  EXPECT_EQ(tok.bos_id(), std::nullopt);
}

TEST(TokenizerTinyTest, MergesInPairFormEqualStringForm) {
  TinySpec strings = Gpt2Spec();
  TinySpec pairs = Gpt2Spec();
  pairs.merges_as_pairs = true;
  Tokenizer a = MustLoad(strings), b = MustLoad(pairs);
  for (const char* text : {"hello world", "aaaaa", "held  worlds hello", "", "\xE6\x9D\xB1"}) {
    EXPECT_EQ(MustEncode(a, text), MustEncode(b, text)) << text;
  }
  EXPECT_EQ(MustEncode(b, "hello world"), (std::vector<int32_t>{264, 260}));
}

TEST(TokenizerTinyTest, AddPrefixSpace) {
  TinySpec spec = Gpt2Spec();
  spec.pre_tokenizer = ByteLevelPreTokenizer(true, true);
  Tokenizer tok = MustLoad(spec);
  EXPECT_EQ(MustEncode(tok, "world"), std::vector<int32_t>{260});   // " world"
  EXPECT_EQ(MustEncode(tok, " world"), std::vector<int32_t>{260});  // already starts with ' '
  EXPECT_TRUE(MustEncode(tok, "").empty());
}

TEST(TokenizerTinyTest, IgnoreMerges) {
  TinySpec spec;
  spec.extra_tokens = {"ab", "abc"};  // "abc" is in the vocab but no merge builds it
  spec.merges = {{"a", "b"}};
  spec.pre_tokenizer = ByteLevelPreTokenizer(false, true);
  Tokenizer merging = MustLoad(spec);
  EXPECT_EQ(MustEncode(merging, "abc"), (std::vector<int32_t>{256, 'c'}));
  spec.ignore_merges = true;
  Tokenizer whole = MustLoad(spec);
  EXPECT_EQ(MustEncode(whole, "abc"), std::vector<int32_t>{257});
  EXPECT_EQ(MustEncode(whole, "abcd"), (std::vector<int32_t>{256, 'c', 'd'}));
}

TEST(TokenizerTinyTest, SplitBehaviorsAndTemplates) {
  TinySpec spec;
  spec.pre_tokenizer = json::object{
      {"type", "Sequence"},
      {"pretokenizers", json::array{json::object{{"type", "Split"},
                                                 {"pattern", json::object{{"String", "-"}}},
                                                 {"behavior", "Removed"},
                                                 {"invert", false}},
                                    ByteLevelPreTokenizer(false, false)}}};
  spec.extra_tokens = {"ab"};
  spec.merges = {{"a", "b"}};
  spec.added_tokens = json::array{json::object{{"id", 300},
                                               {"content", "<s>"},
                                               {"single_word", false},
                                               {"lstrip", false},
                                               {"rstrip", false},
                                               {"normalized", false},
                                               {"special", true}}};
  spec.post_processor = json::object{
      {"type", "TemplateProcessing"},
      {"single",
       json::array{json::object{{"SpecialToken", json::object{{"id", "<s>"}, {"type_id", 0}}}},
                   json::object{{"Sequence", json::object{{"id", "A"}, {"type_id", 0}}}}}},
      {"pair", json::array{}},
      {"special_tokens", json::object{{"<s>", json::object{{"id", "<s>"},
                                                           {"ids", json::array{300}},
                                                           {"tokens", json::array{"<s>"}}}}}}};
  Tokenizer tok = MustLoad(spec);
  // "a-b" splits into "a", "b" (the '-' removed), so no "ab" merge across it.
  EXPECT_EQ(MustEncode(tok, "a-b"), (std::vector<int32_t>{'a', 'b'}));
  EXPECT_EQ(MustEncode(tok, "ab-ab", true), (std::vector<int32_t>{300, 256, 256}));
  EXPECT_EQ(tok.bos_id(), 300);
  EXPECT_EQ(tok.vocab_size(), 301);
  EXPECT_TRUE(tok.IsSpecial(300));
}

TEST(TokenizerTinyTest, AddedTokenStripAndSingleWord) {
  auto added = [](const char* content, int id, bool lstrip, bool rstrip, bool single_word) {
    return json::object{{"id", id},         {"content", content}, {"single_word", single_word},
                        {"lstrip", lstrip}, {"rstrip", rstrip},   {"normalized", false},
                        {"special", false}};
  };
  TinySpec spec;
  spec.pre_tokenizer = ByteLevelPreTokenizer(false, true);
  spec.added_tokens =
      json::array{added("<mask>", 256, true, false, false), added("[R]", 257, false, true, false),
                  added("cat", 258, false, false, true)};
  Tokenizer tok = MustLoad(spec);
  // lstrip swallows the spaces before <mask>; rstrip the spaces after [R].
  EXPECT_EQ(MustEncode(tok, "a  <mask>b"), (std::vector<int32_t>{'a', 256, 'b'}));
  EXPECT_EQ(MustEncode(tok, "a[R]  b"), (std::vector<int32_t>{'a', 257, 'b'}));
  // single_word: only where "cat" is not part of a longer word.
  EXPECT_EQ(MustEncode(tok, "a cat."), (std::vector<int32_t>{'a', ' ', 258, '.'}));
  EXPECT_EQ(MustEncode(tok, "cats"), (std::vector<int32_t>{'c', 'a', 't', 's'}));
  EXPECT_EQ(tok.Decode(MustEncode(tok, "a  <mask>b")), "a<mask>b");
}

TEST(TokenizerTinyTest, LoadErrorsNameTheFileAndTheComponent) {
  struct Case {
    std::function<void(TinySpec*)> edit;
    StatusCode code;
    const char* needle;
  };
  const Case cases[] = {
      {[](TinySpec* s) {
         s->normalizer = json::object{{"type", "NFC"}};
       },
       StatusCode::kUnimplemented, "normalizer type \"NFC\""},
      {[](TinySpec* s) {
         s->pre_tokenizer = json::object{{"type", "Split"},
                                         {"pattern", json::object{{"Regex", "(a)\\1"}}},
                                         {"behavior", "Isolated"}};
       },
       StatusCode::kUnimplemented, "backreference"},
      {[](TinySpec* s) {
         s->pre_tokenizer = json::object{{"type", "Metaspace"}};
       },
       StatusCode::kUnimplemented, "pre_tokenizer type \"Metaspace\""},
      {[](TinySpec* s) {
         s->merges = {{"x", "y"}};
       },
       StatusCode::kInvalidArgument, "is not in model.vocab"},
      {[](TinySpec* s) {
         s->pre_tokenizer = json::object{{"type", "Split"},
                                         {"pattern", json::object{{"Regex", "a"}}},
                                         {"behavior", "Sideways"}};
       },
       StatusCode::kInvalidArgument, "unknown split behavior"},
  };
  for (const Case& c : cases) {
    TinySpec spec = Gpt2Spec();
    c.edit(&spec);
    auto tok = Tokenizer::FromJson(TinyJson(spec), "tiny.json");
    ASSERT_FALSE(tok.ok()) << c.needle;
    EXPECT_EQ(tok.status().code(), c.code) << tok.status().ToString();
    EXPECT_NE(tok.status().message().find(c.needle), std::string::npos) << tok.status().ToString();
    EXPECT_NE(tok.status().message().find("tiny.json"), std::string::npos)
        << tok.status().ToString();
  }
  auto not_json = Tokenizer::FromJson("{\"model\": ", "broken.json");
  EXPECT_EQ(not_json.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(not_json.status().message().find("broken.json"), std::string::npos);
  auto missing = Tokenizer::FromFile("/nonexistent/tokenizer.json");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/tokenizer.json"), std::string::npos);
  // A Sequence of no normalizers is the identity and loads.
  TinySpec ok = Gpt2Spec();
  ok.normalizer = json::object{{"type", "Sequence"}, {"normalizers", json::array{}}};
  EXPECT_TRUE(Tokenizer::FromJson(TinyJson(ok), "tiny.json").ok());
}

TEST(TokenizerTinyTest, TokenizerIsMovableAndCopyable) {
  Tokenizer a = MustLoad(Gpt2Spec());
  Tokenizer b = std::move(a);
  Tokenizer c = b;
  IncrementalDecoder dec(c);
  { Tokenizer gone = std::move(c); }  // the decoder keeps the shared state alive
  EXPECT_EQ(dec.Push(264), "hello");
  EXPECT_EQ(MustEncode(b, "hello"), std::vector<int32_t>{264});
}

}  // namespace
}  // namespace sieve::coordinator
