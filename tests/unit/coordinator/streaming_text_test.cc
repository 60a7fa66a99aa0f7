// Tests of coordinator/streaming_text.{h,cc} with the real Llama-3.1 tokenizer
// (tests/fixtures/llama3.1-tokenizer/tokenizer.json).
//
// Checks exact Push/Finish outputs for stop strings inside one token, across tokens and at the
// start; that held-back text is released when it can no longer become a stop string (and by
// Finish); that nothing is ever emitted and later retracted (the concatenation of every Push
// output and Finish equals text(), emitted text is always a prefix of the final text, and the
// final text is the reference "stop at the first token whose text contains a stop string, cut
// at its earliest occurrence"); multibyte UTF-8 split across tokens (never a broken sequence);
// that EOS and other special tokens produce no text; and that nothing is produced after a stop.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='StreamingText*'
#include "coordinator/streaming_text.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "coordinator/tokenizer.h"
#include "coordinator/tokenizer_unicode.h"
#include "tests/unit/test_util.h"

namespace sieve::coordinator {
namespace {

constexpr int32_t kBos = 128000;          // <|begin_of_text|>
constexpr int32_t kEos = 128001;          // <|end_of_text|>
constexpr int32_t kEotId = 128009;        // <|eot_id|>
constexpr int32_t kEomId = 128008;        // <|eom_id|>
constexpr int32_t kHeaderStart = 128006;  // <|start_header_id|>

class StreamingTextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tok = Tokenizer::FromFile(testing::FixturePath("llama3.1-tokenizer/tokenizer.json"));
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    tokenizer_ = new Tokenizer(std::move(*tok));
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  static const Tokenizer& Tok() { return *tokenizer_; }

  static std::vector<int32_t> Encode(std::string_view text) {
    auto ids = Tok().Encode(text, /*add_special_tokens=*/false);
    EXPECT_TRUE(ids.ok()) << ids.status().ToString();
    return ids.ok() ? *ids : std::vector<int32_t>();
  }

  // Pushes every id; returns each Push output, then Finish's output as the last element.
  static std::vector<std::string> Run(const std::vector<int32_t>& ids,
                                      std::vector<std::string> stop, std::string* text = nullptr,
                                      bool* stopped = nullptr) {
    StreamingText s(Tok(), std::move(stop));
    std::vector<std::string> out;
    for (int32_t id : ids) out.push_back(s.Push(id));
    if (stopped) *stopped = s.stopped();
    out.push_back(s.Finish());
    if (text) *text = s.text();
    return out;
  }

  static std::string Concat(const std::vector<std::string>& parts) {
    std::string all;
    for (const std::string& p : parts) all += p;
    return all;
  }

  static Tokenizer* tokenizer_;
};

Tokenizer* StreamingTextTest::tokenizer_ = nullptr;

// "Hello, world!" = [9906 "Hello", 11 ",", 1917 " world", 0 "!"] (cases.jsonl, case 0).
const std::vector<int32_t> kHello = {9906, 11, 1917, 0};

TEST_F(StreamingTextTest, FixtureTokensAreWhatTheTestsAssume) {
  EXPECT_EQ(Encode("Hello, world!"), kHello);
  EXPECT_EQ(Tok().Decode(std::vector<int32_t>{1917}), " world");
  EXPECT_TRUE(Tok().IsSpecial(kEos));
  EXPECT_TRUE(Tok().IsSpecial(kEotId));
}

TEST_F(StreamingTextTest, NoStopStringsStreamsEveryToken) {
  std::string text;
  bool stopped = true;
  const auto out = Run(kHello, {}, &text, &stopped);
  EXPECT_EQ(out, (std::vector<std::string>{"Hello", ",", " world", "!", ""}));
  EXPECT_EQ(text, "Hello, world!");
  EXPECT_FALSE(stopped);
}

TEST_F(StreamingTextTest, StopStringInsideOneToken) {
  std::string text;
  bool stopped = false;
  // "orl" lies inside the single token " world".
  // The "o" ending "Hello" could start "orl", so it is held back until "," rules that out.
  const auto out = Run(kHello, {"orl"}, &text, &stopped);
  EXPECT_EQ(out, (std::vector<std::string>{"Hell", "o,", " w", "", ""}));
  EXPECT_EQ(text, "Hello, w");
  EXPECT_TRUE(stopped);
}

TEST_F(StreamingTextTest, StopStringAcrossTokens) {
  std::string text;
  bool stopped = false;
  // ", wor" spans "," and " world": "," is held back (it may start the stop string), then the
  // stop completes and nothing of it is ever emitted.
  const auto out = Run(kHello, {", wor"}, &text, &stopped);
  EXPECT_EQ(out, (std::vector<std::string>{"Hello", "", "", "", ""}));
  EXPECT_EQ(text, "Hello");
  EXPECT_TRUE(stopped);
  // Across three tokens.
  const auto three = Run(kHello, {"o, world!"}, &text, &stopped);
  EXPECT_EQ(three, (std::vector<std::string>{"Hell", "", "", "", ""}));
  EXPECT_EQ(text, "Hell");
  EXPECT_TRUE(stopped);
}

TEST_F(StreamingTextTest, StopStringAtTheStart) {
  std::string text;
  bool stopped = false;
  const auto out = Run(kHello, {"Hello"}, &text, &stopped);
  EXPECT_EQ(out, (std::vector<std::string>{"", "", "", "", ""}));
  EXPECT_EQ(text, "");
  EXPECT_TRUE(stopped);
  // A stop string that is a prefix of the first token.
  Run(kHello, {"He"}, &text, &stopped);
  EXPECT_EQ(text, "");
  EXPECT_TRUE(stopped);
}

TEST_F(StreamingTextTest, HeldBackTextIsReleasedWhenItCannotMatch) {
  std::string text;
  bool stopped = true;
  // ", x" never matches: "," is held until " world" shows it is not the start of ", x".
  const auto out = Run(kHello, {", x"}, &text, &stopped);
  EXPECT_EQ(out, (std::vector<std::string>{"Hello", "", ", world", "!", ""}));
  EXPECT_EQ(text, "Hello, world!");
  EXPECT_FALSE(stopped);
}

TEST_F(StreamingTextTest, FinishReleasesTheHeldBackTail) {
  std::string text;
  bool stopped = true;
  // "!!" never completes; the final "!" is held back until Finish.
  const auto out = Run(kHello, {"!!"}, &text, &stopped);
  EXPECT_EQ(out, (std::vector<std::string>{"Hello", ",", " world", "", "!"}));
  EXPECT_EQ(text, "Hello, world!");
  EXPECT_FALSE(stopped);
}

TEST_F(StreamingTextTest, EarliestOfSeveralStopStrings) {
  std::string text;
  bool stopped = false;
  // Both complete with " world"; the earlier occurrence wins.
  Run(kHello, {"world", "o, w"}, &text, &stopped);
  EXPECT_EQ(text, "Hell");
  EXPECT_TRUE(stopped);
  Run(kHello, {"!", "d"}, &text, &stopped);  // "d" completes first (with " world")
  EXPECT_EQ(text, "Hello, worl");
}

TEST_F(StreamingTextTest, NothingAfterAStop) {
  StreamingText s(Tok(), {","});
  EXPECT_EQ(s.Push(9906), "Hello");
  EXPECT_EQ(s.Push(11), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.Push(1917), "");
  EXPECT_EQ(s.Push(0), "");
  EXPECT_EQ(s.Finish(), "");
  EXPECT_EQ(s.text(), "Hello");
}

TEST_F(StreamingTextTest, EosAndSpecialTokensProduceNoText) {
  StreamingText s(Tok(), {});
  EXPECT_EQ(s.Push(9906), "Hello");
  EXPECT_EQ(s.Push(kEotId), "");
  EXPECT_EQ(s.Push(kEos), "");
  EXPECT_EQ(s.Push(kEomId), "");
  EXPECT_EQ(s.Push(kBos), "");
  EXPECT_EQ(s.Push(kHeaderStart), "");
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.Finish(), "");
  EXPECT_EQ(s.text(), "Hello");
  // A stop string spelled like a special token does not match the (textless) token.
  StreamingText t(Tok(), {"<|eot_id|>"});
  EXPECT_EQ(t.Push(9906), "Hello");
  EXPECT_EQ(t.Push(kEotId), "");
  EXPECT_FALSE(t.stopped());
  EXPECT_EQ(t.text(), "Hello");
}

TEST_F(StreamingTextTest, MultibyteSplitAcrossTokens) {
  // cases.jsonl case 11: "emoji 😀😀 🚀" = [38623, 91416, 76460, 222, 11410, 248, 222]; the
  // rocket's four bytes are split over the last three tokens.
  const std::string want = "emoji \xf0\x9f\x98\x80\xf0\x9f\x98\x80 \xf0\x9f\x9a\x80";
  const std::vector<int32_t> ids = Encode(want);
  ASSERT_EQ(ids, (std::vector<int32_t>{38623, 91416, 76460, 222, 11410, 248, 222}));
  StreamingText s(Tok(), {});
  std::vector<std::string> out;
  for (int32_t id : ids) {
    out.push_back(s.Push(id));
    EXPECT_EQ(unicode::FindInvalidUtf8(out.back()), std::string_view::npos)
        << "broken UTF-8 after id " << id;
  }
  out.push_back(s.Finish());
  EXPECT_EQ(Concat(out), want);
  EXPECT_EQ(s.text(), want);
  // The rocket's partial tokens emit only the space before it; the token completing it emits all
  // four bytes.
  EXPECT_EQ(out[4], " ");
  EXPECT_EQ(out[5], "");
  EXPECT_EQ(out[6], "\xf0\x9f\x9a\x80");

  // A stop string made of the split character stops exactly before it.
  std::string text;
  bool stopped = false;
  const auto stop_out = Run(ids, {"\xf0\x9f\x9a\x80"}, &text, &stopped);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(text, "emoji \xf0\x9f\x98\x80\xf0\x9f\x98\x80 ");
  EXPECT_EQ(Concat(stop_out), text);
  // A stop string on the emoji pair.
  Run(ids, {"\xf0\x9f\x98\x80 "}, &text, &stopped);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(text, "emoji \xf0\x9f\x98\x80");
}

TEST_F(StreamingTextTest, CjkAcrossTokensWithStop) {
  // cases.jsonl case 12: "東京タワーは高い".
  const std::string want =
      "\xe6\x9d\xb1\xe4\xba\xac\xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc"
      "\xe3\x81\xaf\xe9\xab\x98\xe3\x81\x84";
  const std::vector<int32_t> ids = Encode(want);
  ASSERT_EQ(ids, (std::vector<int32_t>{111344, 47307, 124049, 15682, 126574}));
  std::string text;
  bool stopped = false;
  const auto out = Run(ids, {"\xe3\x81\xaf"}, &text, &stopped);  // "は"
  EXPECT_TRUE(stopped);
  EXPECT_EQ(text, "\xe6\x9d\xb1\xe4\xba\xac\xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc");  // "東京タワー"
  EXPECT_EQ(Concat(out), text);
  for (const std::string& piece : out) {
    EXPECT_EQ(unicode::FindInvalidUtf8(piece), std::string_view::npos);
  }
}

// The reference semantics: stop after the first token whose decoded text contains a stop
// string, and cut that text at the earliest occurrence of any stop string.
std::string ReferenceText(const Tokenizer& tok, const std::vector<int32_t>& ids,
                          const std::vector<std::string>& stop, bool* stopped) {
  for (size_t k = 1; k <= ids.size(); ++k) {
    const std::string d = tok.Decode(std::span<const int32_t>(ids.data(), k), true);
    size_t cut = std::string::npos;
    for (const std::string& s : stop) cut = std::min(cut, d.find(s));
    if (cut != std::string::npos) {
      *stopped = true;
      return d.substr(0, cut);
    }
  }
  *stopped = false;
  return tok.Decode(ids, true);
}

// Property: over many stop-string sets, the stream never emits text it later retracts, emits
// exactly what can no longer start a stop string, and ends with the reference text.
TEST_F(StreamingTextTest, NeverRetractsAndMatchesReference) {
  // cases.jsonl case 17 (ASCII, so every prefix of tokens decodes to complete text).
  const std::string source = "The pass key is 71432. Remember it. 71432 is the pass key.";
  const std::vector<int32_t> ids = Encode(source);
  ASSERT_GT(ids.size(), 10u);
  std::mt19937 rng(1234);
  int stops_seen = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<std::string> stop;
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < n; ++i) {
      if (rng() % 4 == 0) {
        stop.push_back("zz" + std::to_string(rng() % 10));  // never occurs
      } else {
        const size_t begin = rng() % source.size();
        const size_t len = 1 + rng() % std::min<size_t>(12, source.size() - begin);
        stop.push_back(source.substr(begin, len));
      }
    }
    SCOPED_TRACE(::testing::PrintToString(stop));
    StreamingText s(Tok(), stop);
    std::string emitted;
    bool stopped_at_push = false;
    for (size_t k = 0; k < ids.size(); ++k) {
      emitted += s.Push(ids[k]);
      if (s.stopped()) {
        stopped_at_push = true;
        break;
      }
      // Exactly the decoded text minus the longest suffix that is a proper prefix of a stop
      // string is emitted so far.
      const std::string d = Tok().Decode(std::span<const int32_t>(ids.data(), k + 1), true);
      size_t hold = 0;
      for (const std::string& st : stop) {
        for (size_t len = std::min(st.size() - 1, d.size()); len > hold; --len) {
          if (d.compare(d.size() - len, len, st, 0, len) == 0) {
            hold = len;
            break;
          }
        }
      }
      ASSERT_EQ(emitted, d.substr(0, d.size() - hold)) << "after token " << k;
    }
    emitted += s.Finish();
    bool want_stopped = false;
    const std::string want = ReferenceText(Tok(), ids, stop, &want_stopped);
    EXPECT_EQ(stopped_at_push, want_stopped);
    EXPECT_EQ(s.stopped(), want_stopped);
    EXPECT_EQ(s.text(), want);
    EXPECT_EQ(emitted, s.text());
    stops_seen += want_stopped;
  }
  // The random sets exercise both outcomes.
  EXPECT_GT(stops_seen, 100);
  EXPECT_LT(stops_seen, 300);
}

// Every fixture case decodes through the stream exactly (no stop strings): concatenation of
// every output equals Decode, and each output is valid UTF-8.
TEST_F(StreamingTextTest, FixtureCasesStreamExactly) {
  const std::vector<std::string> texts = {
      "Hello, world!",
      "\xc3\x9cn\xc3\xaf"
      "c\xc3\xb6"
      "d\xc3\xa9 \xc3\xb1",  // "Ünïcödé ñ" (split so no hex escape swallows a letter)
      "def f(x):\n    return x**2\n",
      "<|begin_of_text|> is special",
      "emoji \xf0\x9f\x98\x80\xf0\x9f\x98\x80 \xf0\x9f\x9a\x80",
  };
  for (const std::string& t : texts) {
    SCOPED_TRACE(t);
    const std::vector<int32_t> ids = Encode(t);
    std::string text;
    const auto out = Run(ids, {"\x01"}, &text);
    for (const std::string& piece : out) {
      EXPECT_EQ(unicode::FindInvalidUtf8(piece), std::string_view::npos);
    }
    EXPECT_EQ(Concat(out), text);
    EXPECT_EQ(text, Tok().Decode(ids, /*skip_special_tokens=*/true));
  }
  // The special-token case loses its special token (skip_special_tokens).
  std::string text;
  Run(Encode("<|begin_of_text|> is special"), {}, &text);
  EXPECT_EQ(text, " is special");
}

}  // namespace
}  // namespace sieve::coordinator
