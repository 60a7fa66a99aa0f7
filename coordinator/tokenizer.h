// The Hugging Face `tokenizer.json` tokenizer for byte-level BPE models (Llama-3, GPT-2 family),
// id-for-id identical to HF tokenizers on encode and byte-for-byte on decode.
//
//   SIEVE_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::FromFile("tokenizer.json"));
//   SIEVE_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok.Encode(text,
//   /*add_special_tokens=*/true)); std::string back = tok.Decode(ids);                       //
//   "<|begin_of_text|>" + text IncrementalDecoder stream(tok);  for (id : generated)
//   send(stream.Push(id));  send(stream.Flush());
//
// Encode pipeline (what HF runs, in order):
//   1. added tokens (special or not) are cut out of the raw text, leftmost-longest; lstrip /
//      rstrip / single_word honored; non-normalized ones first, then normalized ones (with the
//      only supported normalizers, none or an empty Sequence, the text is unchanged);
//   2. pre_tokenizer on every other segment: Sequence, Split (Regex or String pattern; behaviors
//      Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous; invert) and ByteLevel
//      (add_prefix_space, use_regex = GPT-2 pattern);
//   3. BPE model per pre-token: ignore_merges (a whole pre-token found in the vocab is one
//      token), merges by rank (given as "a b" strings or [a, b] pairs), unk_token / fuse_unk /
//      byte_fallback, a bounded word cache;
//   4. with add_special_tokens, the post_processor template (TemplateProcessing, alone or inside
//      a Sequence next to ByteLevel; RobertaProcessing and BertProcessing too) adds e.g. BOS.
// Unsupported components (a normalizer other than none/empty Sequence, other pre-tokenizers,
// models or decoders, BPE dropout or subword prefixes/suffixes, unsupported regex syntax) make
// FromJson fail with a Status that names the component and the file; nothing is silently
// ignored.
//
// Thread safety: a Tokenizer is immutable after loading except for its word cache, which is
// sharded and mutex-guarded, so Encode/Decode may be called concurrently from any threads. It is
// cheap to copy and move (shared immutable state).
//
// Tested by tests/unit/coordinator/tokenizer_test.cc (every case of
// tests/fixtures/llama3.1-tokenizer/cases.jsonl, special tokens, errors, streaming decode,
// hand-built GPT-2 style tokenizers); throughput by tools/sieve_tokenizer_bench.cc
// (bench/TOKENIZER.md).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "comm/status.h"

namespace sieve::coordinator {

class Tokenizer {
 public:
  // Reads and parses a tokenizer.json. Errors (kNotFound, kInvalidArgument, kUnimplemented)
  // name the path and what was expected.
  static StatusOr<Tokenizer> FromFile(const std::string& tokenizer_json_path);
  // Parses tokenizer.json text; `source_name` names it in error messages.
  static StatusOr<Tokenizer> FromJson(std::string_view json, std::string_view source_name);

  Tokenizer(const Tokenizer&) = default;
  Tokenizer& operator=(const Tokenizer&) = default;
  Tokenizer(Tokenizer&&) noexcept = default;
  Tokenizer& operator=(Tokenizer&&) noexcept = default;
  ~Tokenizer();

  // Token ids of `utf8`. Special-token text inside `utf8` ("<|eot_id|>") always becomes the
  // special token (HF's default split_special_tokens=false); add_special_tokens applies the
  // post-processor template (BOS for Llama-3). Text that is not valid UTF-8 gives
  // kInvalidArgument naming the byte offset of the first ill-formed sequence.
  StatusOr<std::vector<int32_t>> Encode(std::string_view utf8, bool add_special_tokens) const;

  // Text of `ids` through the decoder (ByteLevel: token characters back to bytes, then UTF-8
  // with each ill-formed subsequence replaced by U+FFFD, like HF's lossy decode). Unknown ids are
  // skipped; skip_special_tokens drops added tokens marked special. With the default,
  // Decode(Encode(text, false)) == text byte for byte.
  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // Model vocabulary plus added tokens: the largest id + 1.
  int32_t vocab_size() const;
  // Added tokens first, then the model vocabulary (HF's order). Tokens are in the vocabulary's
  // own spelling ("Ġthe" for " the" in byte-level vocabularies).
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // "" for an id that is neither in the vocabulary nor an added token.
  std::string_view IdToToken(int32_t id) const;
  // The first special token of the post-processor's single-sequence template that comes before
  // the sequence (Llama-3: <|begin_of_text|> = 128000), if any.
  std::optional<int32_t> bos_id() const;
  // Whether `id` is an added token marked "special".
  bool IsSpecial(int32_t id) const;

  struct Impl;  // pipeline state (tokenizer.cc)

 private:
  friend class IncrementalDecoder;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);

  std::shared_ptr<const Impl> impl_;
};

// Streaming detokenization: Push one id at a time, get back the text that became complete.
// Never returns a partial UTF-8 sequence: bytes of a character split across tokens (emoji, CJK
// in byte-level vocabularies) are held until the character completes; bytes that can no longer
// become valid are emitted as U+FFFD right away, exactly as Decode would. The concatenation of
// every Push and the final Flush equals Decode(all ids, skip_special_tokens).
// Holds a reference-counted handle to the tokenizer's state (the Tokenizer object itself may
// go away). Not thread-safe: one decoder per stream.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tok, bool skip_special_tokens = false);

  // Complete UTF-8 text newly available after `id` (often "", never a broken sequence).
  std::string Push(int32_t id);
  // Whatever is held back (an incomplete trailing sequence becomes U+FFFD); resets the stream.
  std::string Flush();

 private:
  std::shared_ptr<const Tokenizer::Impl> impl_;
  bool skip_special_tokens_;
  bool first_ = true;    // for decoders that join tokens with a separator
  std::string pending_;  // bytes not yet returned
};

}  // namespace sieve::coordinator
