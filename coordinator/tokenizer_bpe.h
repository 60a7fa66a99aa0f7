// The BPE model of a Hugging Face tokenizer.json: vocabulary, merges by rank, the per-word merge
// loop and a bounded, thread-safe word cache. Used by coordinator/tokenizer.cc.
//
// Pre-tokens arrive as raw bytes. In byte-level mode (a ByteLevel pre-tokenizer is present) the
// model works in byte space: every vocabulary token made only of byte-level characters
// ("Ġthe") is also indexed by the bytes it stands for (" the"), the initial symbols of a word are
// its bytes, and no per-word string mapping is needed. Otherwise the initial symbols are the
// word's UTF-8 characters, looked up as spelled.
//
// Tested by tests/unit/coordinator/tokenizer_test.cc (through Tokenizer).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "comm/status.h"

namespace sieve::coordinator {

// GPT-2's byte <-> character table: bytes 0x21..0x7E, 0xA1..0xAC and 0xAE..0xFF map to the
// code point of the same value, the 68 others to U+0100 + n in byte order (space -> 'Ġ').
char32_t ByteLevelChar(uint8_t byte);
// The byte a byte-level character stands for, or -1.
int ByteLevelByte(char32_t ch);

struct BpeOptions {
  bool byte_level = true;      // symbols are bytes (see above)
  bool ignore_merges = false;  // a pre-token found whole in the vocabulary is one token
  bool byte_fallback = false;  // unknown characters become <0xXX> tokens when all exist
  bool fuse_unk = false;       // consecutive unknowns become one unk token
  std::optional<std::string> unk_token;
  size_t cache_capacity = 1 << 16;  // words; 0 disables the cache
};

class BpeModel {
 public:
  // vocab: (token, id) pairs; merges: (left, right) in rank order (first = rank 0). Fails when a
  // merge names a token that is not in the vocabulary, or its concatenation is not
  // (HF's MergeTokenOutOfVocabulary), or the unk token is missing. Messages name `source`.
  static StatusOr<std::unique_ptr<BpeModel>> Build(
      std::vector<std::pair<std::string, int32_t>> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
      std::string_view source);

  ~BpeModel();

  // Appends the ids of one pre-token (raw bytes; in byte-level mode any bytes, otherwise UTF-8).
  // Thread-safe.
  void Tokenize(std::string_view piece, std::vector<int32_t>* out) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  std::string_view IdToToken(int32_t id) const;  // "" when unknown
  int32_t max_id() const { return max_id_; }

 private:
  BpeModel() = default;
  struct MergeTable;
  struct WordCache;

  void MergeWord(std::string_view piece, std::vector<int32_t>* out) const;
  void InitialSymbols(std::string_view piece, std::vector<int32_t>* symbols) const;

  BpeOptions options_;
  int32_t max_id_ = -1;
  std::vector<std::string> id_to_token_;  // by id ("" for holes)
  struct Index;                           // token spelling / raw bytes -> id
  std::unique_ptr<Index> index_;
  std::unique_ptr<MergeTable> merges_;
  std::unique_ptr<WordCache> cache_;
  std::array<int32_t, 256> byte_ids_{};      // byte-level: id of each single byte, -1 if none
  std::array<int32_t, 256> fallback_ids_{};  // byte_fallback: id of <0xXX>, -1 if none
  int32_t unk_id_ = -1;
};

}  // namespace sieve::coordinator
