// Tests of coordinator/request_tokens.{h,cc}: a request's document and query as token ids, with
// the real Llama-3.1 tokenizer.
//
// Checks that text is tokenized without special tokens (no BOS: the pipeline adds its own),
// that ids pass through unchanged, that text and ids mix, that out-of-vocabulary ids are
// INVALID_ARGUMENT naming the field and the index (document_ids, query_ids,
// force_continuation_ids) with vocab-1 still accepted, and that text giving no tokens or invalid
// UTF-8 is reported against its field.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='RequestTokens*'
#include "coordinator/request_tokens.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coordinator/tokenizer.h"
#include "tests/unit/test_util.h"

namespace sieve::coordinator {
namespace {

constexpr int64_t kVocab = 128256;  // tiny-llama3 and Llama-3.1

class RequestTokensTest : public ::testing::Test {
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

  static void SetIds(proto::TokenIds* out, const std::vector<int32_t>& ids) {
    for (int32_t id : ids) out->add_ids(id);
  }

  // Expects failure with `code` and every one of `fragments` in the message.
  static void ExpectError(const proto::GenerateRequest& request, StatusCode code,
                          std::initializer_list<std::string_view> fragments,
                          int64_t vocab = kVocab) {
    StatusOr<RequestTokens> r = TokenizeRequest(Tok(), request, vocab);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    for (std::string_view f : fragments) {
      EXPECT_NE(r.status().message().find(f), std::string::npos)
          << "'" << f << "' not in: " << r.status().message();
    }
  }

  static Tokenizer* tokenizer_;
};

Tokenizer* RequestTokensTest::tokenizer_ = nullptr;

TEST_F(RequestTokensTest, TextIsTokenizedWithoutSpecialTokens) {
  proto::GenerateRequest r;
  r.set_document_text("Hello, world!");
  r.set_query_text("The pass key is 71432. Remember it. 71432 is the pass key.");
  StatusOr<RequestTokens> t = TokenizeRequest(Tok(), r, kVocab);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  // cases.jsonl cases 0 and 17 ("ids", not "ids_bos").
  EXPECT_EQ(t->document, (std::vector<int32_t>{9906, 11, 1917, 0}));
  EXPECT_EQ(t->query, (std::vector<int32_t>{791, 1522, 1401, 374, 220, 23193, 843, 13, 20474, 433,
                                            13, 220, 23193, 843, 374, 279, 1522, 1401, 13}));
}

TEST_F(RequestTokensTest, SpecialTokenTextBecomesTheSpecialToken) {
  proto::GenerateRequest r;
  r.set_document_text("<|begin_of_text|> is special");
  r.set_query_text("q");
  StatusOr<RequestTokens> t = TokenizeRequest(Tok(), r, kVocab);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->document, (std::vector<int32_t>{128000, 374, 3361}));
  EXPECT_EQ(t->query, (std::vector<int32_t>{80}));
}

TEST_F(RequestTokensTest, IdsPassThrough) {
  proto::GenerateRequest r;
  SetIds(r.mutable_document_ids(), {0, 5, 128255, 5});
  SetIds(r.mutable_query_ids(), {128000, 42});
  StatusOr<RequestTokens> t = TokenizeRequest(Tok(), r, kVocab);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->document, (std::vector<int32_t>{0, 5, 128255, 5}));
  EXPECT_EQ(t->query, (std::vector<int32_t>{128000, 42}));
}

TEST_F(RequestTokensTest, TextAndIdsMix) {
  proto::GenerateRequest r;
  r.set_document_text("Hello, world!");
  SetIds(r.mutable_query_ids(), {7, 8});
  StatusOr<RequestTokens> a = TokenizeRequest(Tok(), r, kVocab);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->document, (std::vector<int32_t>{9906, 11, 1917, 0}));
  EXPECT_EQ(a->query, (std::vector<int32_t>{7, 8}));

  proto::GenerateRequest s;
  SetIds(s.mutable_document_ids(), {1, 2, 3});
  s.set_query_text("Hello, world!");
  StatusOr<RequestTokens> b = TokenizeRequest(Tok(), s, kVocab);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->document, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(b->query, (std::vector<int32_t>{9906, 11, 1917, 0}));
}

TEST_F(RequestTokensTest, OutOfVocabularyIdsNameFieldAndIndex) {
  proto::GenerateRequest r;
  SetIds(r.mutable_document_ids(), {1, 2, 128256});
  SetIds(r.mutable_query_ids(), {3});
  ExpectError(r, StatusCode::kInvalidArgument,
              {"document_ids[2]: token id 128256 is outside the model's vocabulary of 128256"});

  proto::GenerateRequest q;
  q.set_document_text("doc");
  SetIds(q.mutable_query_ids(), {10, 20, 30, 999999});
  ExpectError(q, StatusCode::kInvalidArgument,
              {"query_ids[3]: token id 999999 is outside the model's vocabulary"});

  proto::GenerateRequest f;
  f.set_document_text("doc");
  f.set_query_text("q");
  f.add_force_continuation_ids(220);
  f.add_force_continuation_ids(200000);
  ExpectError(f, StatusCode::kInvalidArgument,
              {"force_continuation_ids[1]: token id 200000 is outside the model's vocabulary"});

  // The limit is the model's vocabulary, not the tokenizer's: a smaller model rejects text whose
  // tokens it does not have.
  proto::GenerateRequest t;
  t.set_document_text("Hello, world!");  // 9906 >= 1000
  t.set_query_text("q");
  ExpectError(t, StatusCode::kInvalidArgument,
              {"document_ids[0]: token id 9906 is outside the model's vocabulary of 1000"}, 1000);
}

TEST_F(RequestTokensTest, LastIdOfTheVocabularyIsAccepted) {
  proto::GenerateRequest r;
  SetIds(r.mutable_document_ids(), {kVocab - 1});
  SetIds(r.mutable_query_ids(), {kVocab - 1});
  r.add_force_continuation_ids(kVocab - 1);
  StatusOr<RequestTokens> t = TokenizeRequest(Tok(), r, kVocab);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->document, (std::vector<int32_t>{kVocab - 1}));
}

TEST_F(RequestTokensTest, EmptyInputsNameTheirField) {
  proto::GenerateRequest d;  // neither text nor ids: the parser never lets this through
  d.set_query_text("q");
  ExpectError(d, StatusCode::kInvalidArgument, {"document: no tokens"});
  proto::GenerateRequest q;
  q.set_document_text("doc");
  q.mutable_query_ids();  // present but empty
  ExpectError(q, StatusCode::kInvalidArgument, {"query: no tokens"});
}

TEST_F(RequestTokensTest, InvalidUtf8NamesTheField) {
  proto::GenerateRequest d;
  d.set_document_text(std::string("ab\xc3\x28", 4));
  d.set_query_text("q");
  ExpectError(d, StatusCode::kInvalidArgument, {"document: ", "2"});
  proto::GenerateRequest q;
  q.set_document_text("doc");
  q.set_query_text(std::string("\xff", 1));
  ExpectError(q, StatusCode::kInvalidArgument, {"query: "});
}

}  // namespace
}  // namespace sieve::coordinator
