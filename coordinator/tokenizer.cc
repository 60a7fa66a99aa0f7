// Hugging Face tokenizer.json loading, the encode pipeline, decoding and streaming decoding (see
// tokenizer.h for the contract). The regex engine is in pretokenizer_regex.cc, the BPE model in
// tokenizer_bpe.cc, Unicode/UTF-8 helpers in tokenizer_unicode.cc.
//
// Why the pipeline is shaped like this: every step reproduces one HF component and runs in the
// same order HF runs it (added tokens on the raw text, normalizer, pre-tokenizers one after the
// other over all pieces, model per piece, post-processor), so a difference from HF can be traced
// to one component. The Llama-3 configuration ends up as: one byte scan for "<|...|>" specials,
// one pass of the hand-written pre-tokenizer matcher, and one hash lookup per pre-token (most
// Llama-3 pre-tokens are whole vocabulary entries, thanks to ignore_merges).
//
// Tested by tests/unit/coordinator/tokenizer_test.cc.
#include "coordinator/tokenizer.h"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <deque>
#include <fstream>
#include <functional>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "coordinator/pretokenizer_regex.h"
#include "coordinator/tokenizer_bpe.h"
#include "coordinator/tokenizer_unicode.h"

namespace sieve::coordinator {
namespace {

namespace json = boost::json;

// Ids index dense per-id tables; anything above this is a corrupt file, not a vocabulary.
constexpr int64_t kMaxTokenId = (int64_t(1) << 24) - 1;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// ---- JSON access with errors that name the file and the field ----

class JsonContext {
 public:
  explicit JsonContext(std::string source) : source_(std::move(source)) {}

  Status Error(const std::string& path, const std::string& what) const {
    return Status::InvalidArgument(
        StrFormat("%s: %s: %s", source_.c_str(), path.c_str(), what.c_str()));
  }
  Status Unsupported(const std::string& path, const std::string& what) const {
    return Status::Unimplemented(
        StrFormat("%s: %s: %s", source_.c_str(), path.c_str(), what.c_str()));
  }

  StatusOr<const json::object*> Object(const json::value& v, const std::string& path) const {
    if (!v.is_object()) return Error(path, "expected an object");
    return &v.get_object();
  }
  StatusOr<const json::array*> Array(const json::value& v, const std::string& path) const {
    if (!v.is_array()) return Error(path, "expected an array");
    return &v.get_array();
  }
  StatusOr<std::string> String(const json::value& v, const std::string& path) const {
    if (!v.is_string()) return Error(path, "expected a string");
    return std::string(v.get_string());
  }
  StatusOr<int64_t> Int(const json::value& v, const std::string& path) const {
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64() && v.get_uint64() <= uint64_t(INT64_MAX)) return int64_t(v.get_uint64());
    return Error(path, "expected an integer");
  }

  // Optional members: absent or null gives the default.
  StatusOr<bool> Bool(const json::object& o, std::string_view key, bool dflt,
                      const std::string& path) const {
    const json::value* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return dflt;
    if (!v->is_bool()) return Error(path + "." + std::string(key), "expected true or false");
    return v->get_bool();
  }
  StatusOr<std::optional<std::string>> OptString(const json::object& o, std::string_view key,
                                                 const std::string& path) const {
    const json::value* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) return std::optional<std::string>();
    SIEVE_ASSIGN_OR_RETURN(std::string s, String(*v, path + "." + std::string(key)));
    return std::optional<std::string>(std::move(s));
  }
  StatusOr<std::string> Type(const json::object& o, const std::string& path) const {
    const json::value* v = o.if_contains("type");
    if (v == nullptr) return Error(path, "missing \"type\"");
    return String(*v, path + ".type");
  }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

// ---- Added tokens ----

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A region of the input: an added token (id >= 0) or text to run through the pipeline.
struct Segment {
  size_t begin;
  size_t end;
  int32_t id;
};

// Leftmost-longest matching of a set of added tokens (what HF's Aho-Corasick with
// MatchKind::LeftmostLongest returns), with HF's single_word / lstrip / rstrip handling.
class AddedTokenSplitter {
 public:
  AddedTokenSplitter() = default;
  AddedTokenSplitter(const std::vector<AddedToken>* all, std::vector<size_t> members) : all_(all) {
    nodes_.emplace_back();
    for (size_t idx : members) {
      const std::string& s = (*all_)[idx].content;
      if (s.empty()) continue;
      first_byte_[static_cast<unsigned char>(s[0])] = true;
      int32_t node = 0;
      for (unsigned char b : s) {
        int32_t next = Child(node, b);
        if (next < 0) {
          next = static_cast<int32_t>(nodes_.size());
          nodes_[size_t(node)].kids.emplace_back(b, next);
          nodes_.emplace_back();
        }
        node = next;
      }
      nodes_[size_t(node)].token = static_cast<int32_t>(idx);
    }
    empty_ = nodes_.size() == 1;
  }

  bool empty() const { return empty_; }

  // Splits text[begin, end) (one "sentence" for HF) into token and text segments, appended to
  // *out. Text segments may be empty only if the sentence is.
  void Split(std::string_view text, size_t begin, size_t end, std::vector<Segment>* out) const {
    std::string_view sentence = text.substr(begin, end - begin);
    size_t start_offset = 0;
    size_t pos = 0;
    const size_t n = sentence.size();
    while (pos < n) {
      size_t mstart, mend;
      int32_t token;
      if (!FindNext(sentence, pos, &mstart, &mend, &token)) break;
      pos = mend;
      const AddedToken& t = (*all_)[size_t(token)];
      if (mstart < start_offset) continue;  // inside the previous token's rstrip
      if (t.single_word) {
        bool start_space = mstart == 0 || !EndsWithWord(sentence.substr(0, mstart));
        bool stop_space = mend == n || !StartsWithWord(sentence.substr(mend));
        if (!start_space || !stop_space) continue;
      }
      size_t tstart = mstart, tstop = mend;
      if (t.lstrip) tstart = std::max(TrailingSpaceStart(sentence.substr(0, mstart)), start_offset);
      if (t.rstrip) tstop += LeadingSpaceLength(sentence.substr(mend));
      if (start_offset < tstart) out->push_back({begin + start_offset, begin + tstart, -1});
      out->push_back({begin + tstart, begin + tstop, t.id});
      start_offset = tstop;
      pos = std::max(pos, tstop);
    }
    if (start_offset < n || n == 0) out->push_back({begin + start_offset, end, -1});
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> kids;
    int32_t token = -1;  // index into *all_
  };

  int32_t Child(int32_t node, unsigned char b) const {
    for (const auto& [c, k] : nodes_[size_t(node)].kids) {
      if (c == b) return k;
    }
    return -1;
  }

  bool FindNext(std::string_view s, size_t from, size_t* start, size_t* end, int32_t* token) const {
    for (size_t i = from; i < s.size(); ++i) {
      if (!first_byte_[static_cast<unsigned char>(s[i])]) continue;
      int32_t node = 0;
      int32_t best = -1;
      size_t best_end = 0;
      for (size_t j = i; j < s.size(); ++j) {
        node = Child(node, static_cast<unsigned char>(s[j]));
        if (node < 0) break;
        if (nodes_[size_t(node)].token >= 0) {
          best = nodes_[size_t(node)].token;
          best_end = j + 1;
        }
      }
      if (best >= 0) {
        *start = i;
        *end = best_end;
        *token = best;
        return true;
      }
    }
    return false;
  }

  static char32_t LastChar(std::string_view s) {
    size_t i = s.size();
    while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
    if (i == 0) return 0;
    --i;
    return unicode::DecodeValid(s, &i);
  }
  static bool EndsWithWord(std::string_view s) {
    return !s.empty() && unicode::IsWordChar(LastChar(s));
  }
  static bool StartsWithWord(std::string_view s) {
    size_t i = 0;
    return !s.empty() && unicode::IsWordChar(unicode::DecodeValid(s, &i));
  }
  // Start of the run of white space that ends s (HF: \s*$).
  static size_t TrailingSpaceStart(std::string_view s) {
    size_t i = s.size();
    while (i > 0) {
      size_t j = i - 1;
      while (j > 0 && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) --j;
      size_t k = j;
      if (!unicode::IsWhiteSpace(unicode::DecodeValid(s, &k))) break;
      i = j;
    }
    return i;
  }
  // Length of the run of white space that starts s (HF: ^\s*).
  static size_t LeadingSpaceLength(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
      size_t k = i;
      if (!unicode::IsWhiteSpace(unicode::DecodeValid(s, &k))) break;
      i = k;
    }
    return i;
  }

  const std::vector<AddedToken>* all_ = nullptr;
  std::vector<Node> nodes_;
  std::array<bool, 256> first_byte_{};
  bool empty_ = true;
};

// ---- Pre-tokenizers ----

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct PreTokenizerStep {
  enum class Kind { kSplit, kByteLevel } kind = Kind::kSplit;
  // kSplit (regex set, or a literal string) and kByteLevel with use_regex (GPT-2 regex).
  std::optional<PretokenizerRegex> regex;
  std::string literal;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  // kByteLevel
  bool add_prefix_space = false;
};

// (range, is_match) over a piece, covering it.
struct Span {
  size_t begin;
  size_t end;
  bool match;
};

void FindSpans(const PreTokenizerStep& step, std::string_view piece, std::vector<Span>* spans) {
  spans->clear();
  size_t prev = 0;
  auto add_match = [&](size_t b, size_t e) {
    if (prev != b) spans->push_back({prev, b, false});
    spans->push_back({b, e, true});
    prev = e;
  };
  if (step.regex) {
    thread_local std::vector<char32_t> cps;
    thread_local std::vector<size_t> offsets;
    thread_local std::vector<RegexMatch> matches;
    cps.clear();
    offsets.clear();
    matches.clear();
    for (size_t i = 0; i < piece.size();) {
      offsets.push_back(i);
      cps.push_back(unicode::DecodeValid(piece, &i));
    }
    offsets.push_back(piece.size());
    step.regex->FindAll(cps, &matches);
    for (const RegexMatch& m : matches) add_match(offsets[m.begin], offsets[m.end]);
  } else {
    for (size_t at = piece.find(step.literal); at != std::string_view::npos;
         at = piece.find(step.literal, at + step.literal.size())) {
      add_match(at, at + step.literal.size());
    }
  }
  if (prev != piece.size()) spans->push_back({prev, piece.size(), false});
}

// HF's SplitDelimiterBehavior applied to spans; appends non-empty pieces.
void ApplyBehavior(SplitBehavior behavior, bool invert, std::string_view piece,
                   std::vector<Span>& spans, std::vector<std::string_view>* out) {
  if (invert) {
    for (Span& s : spans) s.match = !s.match;
  }
  std::vector<std::pair<size_t, size_t>> ranges;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Span& s : spans) {
        if (!s.match) ranges.emplace_back(s.begin, s.end);
      }
      break;
    case SplitBehavior::kIsolated:
      for (const Span& s : spans) ranges.emplace_back(s.begin, s.end);
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Span& s : spans) {
        if (s.match && !previous_match && !ranges.empty()) {
          ranges.back().second = s.end;
        } else {
          ranges.emplace_back(s.begin, s.end);
        }
        previous_match = s.match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (size_t k = spans.size(); k-- > 0;) {
        const Span& s = spans[k];
        if (s.match && !previous_match && !ranges.empty()) {
          ranges.back().first = s.begin;
        } else {
          ranges.emplace_back(s.begin, s.end);
        }
        previous_match = s.match;
      }
      std::reverse(ranges.begin(), ranges.end());
      break;
    case SplitBehavior::kContiguous:
      for (size_t k = 0; k < spans.size(); ++k) {
        const Span& s = spans[k];
        if (k > 0 && s.match == previous_match) {
          ranges.back().second = s.end;
        } else {
          ranges.emplace_back(s.begin, s.end);
        }
        previous_match = s.match;
      }
      break;
  }
  for (const auto& [b, e] : ranges) {
    if (e > b) out->push_back(piece.substr(b, e - b));
  }
}

// ---- Post-processor ----

struct TemplateItem {
  bool is_sequence = false;
  std::vector<int32_t> ids;  // special token ids (when !is_sequence)
};
using Template = std::vector<TemplateItem>;

enum class DecoderKind { kNone, kByteLevel };

}  // namespace

struct Tokenizer::Impl {
  std::string source;
  std::vector<PreTokenizerStep> steps;
  std::unique_ptr<BpeModel> model;
  std::vector<AddedToken> added;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> added_by_content;
  AddedTokenSplitter raw_splitter;         // normalized = false
  AddedTokenSplitter normalized_splitter;  // normalized = true
  std::vector<Template> templates;         // applied in order when add_special_tokens
  std::optional<int32_t> bos;
  DecoderKind decoder = DecoderKind::kByteLevel;
  int32_t vocab_size = 0;
  // Per id: spelling (added content or vocab token), decoder bytes, flags.
  std::vector<std::string_view> spelling;
  std::vector<std::string> decoded;
  std::vector<uint8_t> known;
  std::vector<uint8_t> special;

  bool Known(int32_t id) const { return id >= 0 && id < vocab_size && known[size_t(id)]; }
  void EncodeText(std::string_view text, std::vector<int32_t>* ids) const;
  // The decoder's contribution of one token (before the final lossy UTF-8 pass).
  void AppendTokenBytes(int32_t id, bool first, std::string* bytes) const {
    if (decoder == DecoderKind::kByteLevel) {
      bytes->append(decoded[size_t(id)]);
    } else {
      if (!first) bytes->push_back(' ');
      bytes->append(spelling[size_t(id)]);
    }
  }
};

namespace {

// ---- Loading ----

Status ParseNormalizer(const JsonContext& ctx, const json::value& v, const std::string& path) {
  if (v.is_null()) return Status::Ok();
  SIEVE_ASSIGN_OR_RETURN(const json::object* o, ctx.Object(v, path));
  SIEVE_ASSIGN_OR_RETURN(std::string type, ctx.Type(*o, path));
  if (type == "Sequence") {
    const json::value* list = o->if_contains("normalizers");
    if (list == nullptr) return ctx.Error(path, "Sequence without \"normalizers\"");
    SIEVE_ASSIGN_OR_RETURN(const json::array* a, ctx.Array(*list, path + ".normalizers"));
    for (size_t i = 0; i < a->size(); ++i) {
      SIEVE_RETURN_IF_ERROR(
          ParseNormalizer(ctx, (*a)[i], StrFormat("%s.normalizers[%zu]", path.c_str(), i)));
    }
    return Status::Ok();
  }
  return ctx.Unsupported(path, "normalizer type \"" + type +
                                   "\" is not supported (supported: null, or a Sequence of none)");
}

Status ParsePreTokenizer(const JsonContext& ctx, const json::value& v, const std::string& path,
                         std::vector<PreTokenizerStep>* steps, bool* byte_level) {
  if (v.is_null()) return Status::Ok();
  SIEVE_ASSIGN_OR_RETURN(const json::object* o, ctx.Object(v, path));
  SIEVE_ASSIGN_OR_RETURN(std::string type, ctx.Type(*o, path));
  if (type == "Sequence") {
    const json::value* list = o->if_contains("pretokenizers");
    if (list == nullptr) return ctx.Error(path, "Sequence without \"pretokenizers\"");
    SIEVE_ASSIGN_OR_RETURN(const json::array* a, ctx.Array(*list, path + ".pretokenizers"));
    for (size_t i = 0; i < a->size(); ++i) {
      SIEVE_RETURN_IF_ERROR(ParsePreTokenizer(
          ctx, (*a)[i], StrFormat("%s.pretokenizers[%zu]", path.c_str(), i), steps, byte_level));
    }
    return Status::Ok();
  }
  if (type == "Split") {
    PreTokenizerStep step;
    step.kind = PreTokenizerStep::Kind::kSplit;
    const json::value* pattern = o->if_contains("pattern");
    if (pattern == nullptr) return ctx.Error(path, "Split without \"pattern\"");
    SIEVE_ASSIGN_OR_RETURN(const json::object* po, ctx.Object(*pattern, path + ".pattern"));
    if (const json::value* re = po->if_contains("Regex")) {
      SIEVE_ASSIGN_OR_RETURN(std::string text, ctx.String(*re, path + ".pattern.Regex"));
      auto compiled = PretokenizerRegex::Compile(text);
      if (!compiled.ok()) {
        return compiled.status().WithContext(ctx.source() + ": " + path + ".pattern.Regex");
      }
      step.regex = std::move(*compiled);
    } else if (const json::value* lit = po->if_contains("String")) {
      SIEVE_ASSIGN_OR_RETURN(step.literal, ctx.String(*lit, path + ".pattern.String"));
      if (step.literal.empty()) return ctx.Error(path + ".pattern.String", "empty pattern");
    } else {
      return ctx.Error(path + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    const json::value* behavior = o->if_contains("behavior");
    std::string b = "Isolated";
    if (behavior != nullptr) {
      SIEVE_ASSIGN_OR_RETURN(b, ctx.String(*behavior, path + ".behavior"));
    }
    if (b == "Removed") {
      step.behavior = SplitBehavior::kRemoved;
    } else if (b == "Isolated") {
      step.behavior = SplitBehavior::kIsolated;
    } else if (b == "MergedWithPrevious") {
      step.behavior = SplitBehavior::kMergedWithPrevious;
    } else if (b == "MergedWithNext") {
      step.behavior = SplitBehavior::kMergedWithNext;
    } else if (b == "Contiguous") {
      step.behavior = SplitBehavior::kContiguous;
    } else {
      return ctx.Error(path + ".behavior", "unknown split behavior \"" + b + "\"");
    }
    SIEVE_ASSIGN_OR_RETURN(step.invert, ctx.Bool(*o, "invert", false, path));
    steps->push_back(std::move(step));
    return Status::Ok();
  }
  if (type == "ByteLevel") {
    *byte_level = true;
    PreTokenizerStep step;
    step.kind = PreTokenizerStep::Kind::kByteLevel;
    SIEVE_ASSIGN_OR_RETURN(step.add_prefix_space, ctx.Bool(*o, "add_prefix_space", true, path));
    SIEVE_ASSIGN_OR_RETURN(bool use_regex, ctx.Bool(*o, "use_regex", true, path));
    if (use_regex) {
      auto compiled = PretokenizerRegex::Compile(kGpt2SplitPattern);
      if (!compiled.ok()) return compiled.status();
      step.regex = std::move(*compiled);
    }
    // Without either flag the step only maps bytes, which the byte-level BPE model does itself.
    if (step.add_prefix_space || step.regex) steps->push_back(std::move(step));
    return Status::Ok();
  }
  return ctx.Unsupported(path, "pre_tokenizer type \"" + type +
                                   "\" is not supported (supported: Sequence, Split, ByteLevel)");
}

StatusOr<std::unique_ptr<BpeModel>> ParseModel(const JsonContext& ctx, const json::value& v,
                                               bool byte_level) {
  const std::string path = "model";
  SIEVE_ASSIGN_OR_RETURN(const json::object* o, ctx.Object(v, path));
  std::string type = "BPE";
  if (o->if_contains("type") != nullptr) {
    SIEVE_ASSIGN_OR_RETURN(type, ctx.Type(*o, path));
  } else if (o->if_contains("merges") == nullptr) {
    return ctx.Error(path, "missing \"type\"");
  }
  if (type != "BPE") {
    return ctx.Unsupported(path + ".type",
                           "model type \"" + type + "\" is not supported (supported: BPE)");
  }
  if (const json::value* d = o->if_contains("dropout"); d != nullptr && !d->is_null()) {
    if (!d->is_number()) return ctx.Error(path + ".dropout", "expected a number or null");
    if (d->to_number<double>() != 0.0) {
      return ctx.Unsupported(path + ".dropout", "BPE dropout is not supported (set it to null)");
    }
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    SIEVE_ASSIGN_OR_RETURN(std::optional<std::string> s, ctx.OptString(*o, key, path));
    if (s && !s->empty()) {
      return ctx.Unsupported(path + "." + key, "is not supported for byte-level BPE");
    }
  }
  BpeOptions options;
  options.byte_level = byte_level;
  SIEVE_ASSIGN_OR_RETURN(options.ignore_merges, ctx.Bool(*o, "ignore_merges", false, path));
  SIEVE_ASSIGN_OR_RETURN(options.byte_fallback, ctx.Bool(*o, "byte_fallback", false, path));
  SIEVE_ASSIGN_OR_RETURN(options.fuse_unk, ctx.Bool(*o, "fuse_unk", false, path));
  SIEVE_ASSIGN_OR_RETURN(options.unk_token, ctx.OptString(*o, "unk_token", path));

  const json::value* vocab_v = o->if_contains("vocab");
  if (vocab_v == nullptr) return ctx.Error(path, "missing \"vocab\"");
  SIEVE_ASSIGN_OR_RETURN(const json::object* vocab_o, ctx.Object(*vocab_v, path + ".vocab"));
  std::vector<std::pair<std::string, int32_t>> vocab;
  vocab.reserve(vocab_o->size());
  for (const auto& kv : *vocab_o) {
    SIEVE_ASSIGN_OR_RETURN(int64_t id,
                           ctx.Int(kv.value(), path + ".vocab[\"" + std::string(kv.key()) + "\"]"));
    if (id < 0 || id > kMaxTokenId) {
      return ctx.Error(path + ".vocab", StrFormat("id %lld out of range [0, %lld]", (long long)id,
                                                  (long long)kMaxTokenId));
    }
    vocab.emplace_back(std::string(kv.key()), static_cast<int32_t>(id));
  }

  std::vector<std::pair<std::string, std::string>> merges;
  if (const json::value* merges_v = o->if_contains("merges"); merges_v && !merges_v->is_null()) {
    SIEVE_ASSIGN_OR_RETURN(const json::array* a, ctx.Array(*merges_v, path + ".merges"));
    merges.reserve(a->size());
    for (size_t i = 0; i < a->size(); ++i) {
      const json::value& m = (*a)[i];
      if (m.is_string()) {
        // Legacy form "left right": exactly one space (HF: BadMerges otherwise).
        std::string_view s = m.get_string();
        size_t sp = s.find(' ');
        if (sp == std::string_view::npos || s.find(' ', sp + 1) != std::string_view::npos) {
          return ctx.Error(StrFormat("%s.merges[%zu]", path.c_str(), i),
                           "expected \"left right\" (two tokens separated by one space)");
        }
        merges.emplace_back(std::string(s.substr(0, sp)), std::string(s.substr(sp + 1)));
      } else if (m.is_array() && m.get_array().size() == 2 && m.get_array()[0].is_string() &&
                 m.get_array()[1].is_string()) {
        merges.emplace_back(std::string(m.get_array()[0].get_string()),
                            std::string(m.get_array()[1].get_string()));
      } else {
        return ctx.Error(StrFormat("%s.merges[%zu]", path.c_str(), i),
                         "expected \"left right\" or [\"left\", \"right\"]");
      }
    }
  }
  return BpeModel::Build(std::move(vocab), merges, std::move(options), ctx.source());
}

Status ParseAddedTokens(const JsonContext& ctx, const json::value* v,
                        std::vector<AddedToken>* out) {
  if (v == nullptr || v->is_null()) return Status::Ok();
  SIEVE_ASSIGN_OR_RETURN(const json::array* a, ctx.Array(*v, "added_tokens"));
  for (size_t i = 0; i < a->size(); ++i) {
    const std::string path = StrFormat("added_tokens[%zu]", i);
    SIEVE_ASSIGN_OR_RETURN(const json::object* o, ctx.Object((*a)[i], path));
    AddedToken t;
    const json::value* id = o->if_contains("id");
    const json::value* content = o->if_contains("content");
    if (id == nullptr || content == nullptr)
      return ctx.Error(path, "expected \"id\" and \"content\"");
    SIEVE_ASSIGN_OR_RETURN(int64_t id64, ctx.Int(*id, path + ".id"));
    if (id64 < 0 || id64 > kMaxTokenId) {
      return ctx.Error(path + ".id", StrFormat("%lld out of range [0, %lld]", (long long)id64,
                                               (long long)kMaxTokenId));
    }
    t.id = static_cast<int32_t>(id64);
    SIEVE_ASSIGN_OR_RETURN(t.content, ctx.String(*content, path + ".content"));
    if (unicode::FindInvalidUtf8(t.content) != std::string_view::npos) {
      return ctx.Error(path + ".content", "not valid UTF-8");
    }
    SIEVE_ASSIGN_OR_RETURN(t.special, ctx.Bool(*o, "special", false, path));
    SIEVE_ASSIGN_OR_RETURN(t.single_word, ctx.Bool(*o, "single_word", false, path));
    SIEVE_ASSIGN_OR_RETURN(t.lstrip, ctx.Bool(*o, "lstrip", false, path));
    SIEVE_ASSIGN_OR_RETURN(t.rstrip, ctx.Bool(*o, "rstrip", false, path));
    SIEVE_ASSIGN_OR_RETURN(t.normalized, ctx.Bool(*o, "normalized", !t.special, path));
    out->push_back(std::move(t));
  }
  return Status::Ok();
}

// Resolves a post-processor special token name to ids: the template's own table, then the
// added tokens / vocabulary.
Status ParsePostProcessor(const JsonContext& ctx, const json::value& v, const std::string& path,
                          const std::function<std::optional<int32_t>(const std::string&)>& lookup,
                          std::vector<Template>* templates) {
  if (v.is_null()) return Status::Ok();
  SIEVE_ASSIGN_OR_RETURN(const json::object* o, ctx.Object(v, path));
  SIEVE_ASSIGN_OR_RETURN(std::string type, ctx.Type(*o, path));
  if (type == "Sequence") {
    const json::value* list = o->if_contains("processors");
    if (list == nullptr) return ctx.Error(path, "Sequence without \"processors\"");
    SIEVE_ASSIGN_OR_RETURN(const json::array* a, ctx.Array(*list, path + ".processors"));
    for (size_t i = 0; i < a->size(); ++i) {
      SIEVE_RETURN_IF_ERROR(ParsePostProcessor(
          ctx, (*a)[i], StrFormat("%s.processors[%zu]", path.c_str(), i), lookup, templates));
    }
    return Status::Ok();
  }
  if (type == "ByteLevel") return Status::Ok();  // offsets only
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    // single: cls $A sep
    Template t;
    for (const char* key : {"cls", "sep"}) {
      const json::value* pair = o->if_contains(key);
      const std::string kpath = path + "." + key;
      if (pair == nullptr || !pair->is_array() || pair->get_array().size() != 2) {
        return ctx.Error(kpath, "expected [token, id]");
      }
      SIEVE_ASSIGN_OR_RETURN(int64_t id, ctx.Int(pair->get_array()[1], kpath + "[1]"));
      TemplateItem item;
      item.ids.push_back(static_cast<int32_t>(id));
      t.push_back(std::move(item));
      if (std::string(key) == "cls") t.push_back(TemplateItem{.is_sequence = true, .ids = {}});
    }
    templates->push_back(std::move(t));
    return Status::Ok();
  }
  if (type == "TemplateProcessing") {
    std::unordered_map<std::string, std::vector<int32_t>> table;
    if (const json::value* st = o->if_contains("special_tokens"); st && !st->is_null()) {
      SIEVE_ASSIGN_OR_RETURN(const json::object* so, ctx.Object(*st, path + ".special_tokens"));
      for (const auto& kv : *so) {
        const std::string kpath = path + ".special_tokens[\"" + std::string(kv.key()) + "\"]";
        SIEVE_ASSIGN_OR_RETURN(const json::object* e, ctx.Object(kv.value(), kpath));
        const json::value* ids = e->if_contains("ids");
        if (ids == nullptr) return ctx.Error(kpath, "missing \"ids\"");
        SIEVE_ASSIGN_OR_RETURN(const json::array* ia, ctx.Array(*ids, kpath + ".ids"));
        std::vector<int32_t> list;
        for (const auto& x : *ia) {
          SIEVE_ASSIGN_OR_RETURN(int64_t id, ctx.Int(x, kpath + ".ids[]"));
          list.push_back(static_cast<int32_t>(id));
        }
        table[std::string(kv.key())] = std::move(list);
      }
    }
    const json::value* single = o->if_contains("single");
    if (single == nullptr) return ctx.Error(path, "missing \"single\"");
    if (single->is_string()) {
      return ctx.Unsupported(path + ".single",
                             "template given as a string; expected the serialized list form");
    }
    SIEVE_ASSIGN_OR_RETURN(const json::array* items, ctx.Array(*single, path + ".single"));
    Template t;
    for (size_t i = 0; i < items->size(); ++i) {
      const std::string ipath = StrFormat("%s.single[%zu]", path.c_str(), i);
      SIEVE_ASSIGN_OR_RETURN(const json::object* item, ctx.Object((*items)[i], ipath));
      if (const json::value* seq = item->if_contains("Sequence")) {
        SIEVE_ASSIGN_OR_RETURN(const json::object* so, ctx.Object(*seq, ipath + ".Sequence"));
        const json::value* id = so->if_contains("id");
        if (id == nullptr || !id->is_string() || id->get_string() != "A") {
          return ctx.Error(ipath + ".Sequence", "expected {\"id\": \"A\"} in a single template");
        }
        t.push_back(TemplateItem{.is_sequence = true, .ids = {}});
      } else if (const json::value* sp = item->if_contains("SpecialToken")) {
        SIEVE_ASSIGN_OR_RETURN(const json::object* so, ctx.Object(*sp, ipath + ".SpecialToken"));
        const json::value* id = so->if_contains("id");
        if (id == nullptr) return ctx.Error(ipath + ".SpecialToken", "missing \"id\"");
        SIEVE_ASSIGN_OR_RETURN(std::string name, ctx.String(*id, ipath + ".SpecialToken.id"));
        TemplateItem ti;
        if (auto it = table.find(name); it != table.end()) {
          ti.ids = it->second;
        } else if (std::optional<int32_t> tid = lookup(name)) {
          ti.ids.push_back(*tid);
        } else {
          return ctx.Error(ipath + ".SpecialToken",
                           "special token \"" + name + "\" is not in special_tokens nor the vocab");
        }
        t.push_back(std::move(ti));
      } else {
        return ctx.Error(ipath, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      }
    }
    templates->push_back(std::move(t));
    return Status::Ok();
  }
  return ctx.Unsupported(path, "post_processor type \"" + type +
                                   "\" is not supported (supported: TemplateProcessing, "
                                   "ByteLevel, Sequence, RobertaProcessing, BertProcessing)");
}

StatusOr<DecoderKind> ParseDecoder(const JsonContext& ctx, const json::value* v,
                                   const std::string& path) {
  if (v == nullptr || v->is_null()) return DecoderKind::kNone;
  SIEVE_ASSIGN_OR_RETURN(const json::object* o, ctx.Object(*v, path));
  SIEVE_ASSIGN_OR_RETURN(std::string type, ctx.Type(*o, path));
  if (type == "ByteLevel") return DecoderKind::kByteLevel;
  if (type == "Sequence") {
    const json::value* list = o->if_contains("decoders");
    if (list == nullptr) return ctx.Error(path, "Sequence without \"decoders\"");
    SIEVE_ASSIGN_OR_RETURN(const json::array* a, ctx.Array(*list, path + ".decoders"));
    if (a->size() == 1) return ParseDecoder(ctx, &(*a)[0], path + ".decoders[0]");
  }
  return ctx.Unsupported(
      path, "decoder type \"" + type + "\" is not supported (supported: ByteLevel, or null)");
}

// HF's ByteLevel decoder for one token: the bytes its characters stand for, or the token's own
// UTF-8 if any character is outside the byte-level alphabet.
std::string ByteLevelTokenBytes(std::string_view spelling) {
  std::string out;
  for (size_t i = 0; i < spelling.size();) {
    int b = ByteLevelByte(unicode::DecodeValid(spelling, &i));
    if (b < 0) return std::string(spelling);
    out.push_back(static_cast<char>(b));
  }
  return out;
}

}  // namespace

// ---- Tokenizer ----

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

StatusOr<Tokenizer> Tokenizer::FromFile(const std::string& tokenizer_json_path) {
  std::ifstream in(tokenizer_json_path, std::ios::binary);
  if (!in) {
    return Status::NotFound(
        StrFormat("%s: cannot open tokenizer file", tokenizer_json_path.c_str()));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    return Status::DataLoss(StrFormat("%s: read error", tokenizer_json_path.c_str()));
  }
  return FromJson(ss.str(), tokenizer_json_path);
}

StatusOr<Tokenizer> Tokenizer::FromJson(std::string_view json_text, std::string_view source_name) {
  JsonContext ctx{std::string(source_name)};
  boost::system::error_code ec;
  json::value root = json::parse(json_text, ec);
  if (ec) {
    return Status::InvalidArgument(
        StrFormat("%s: not valid JSON: %s", ctx.source().c_str(), ec.message().c_str()));
  }
  SIEVE_ASSIGN_OR_RETURN(const json::object* top, ctx.Object(root, "top level"));

  auto impl = std::make_shared<Impl>();
  impl->source = ctx.source();
  static const json::value kNull;
  auto member = [&](std::string_view key) -> const json::value& {
    const json::value* v = top->if_contains(key);
    return v ? *v : kNull;
  };

  SIEVE_RETURN_IF_ERROR(ParseNormalizer(ctx, member("normalizer"), "normalizer"));
  bool byte_level = false;
  SIEVE_RETURN_IF_ERROR(
      ParsePreTokenizer(ctx, member("pre_tokenizer"), "pre_tokenizer", &impl->steps, &byte_level));
  if (member("model").is_null()) return ctx.Error("model", "missing");
  SIEVE_ASSIGN_OR_RETURN(impl->model, ParseModel(ctx, member("model"), byte_level));
  SIEVE_RETURN_IF_ERROR(ParseAddedTokens(ctx, top->if_contains("added_tokens"), &impl->added));
  SIEVE_ASSIGN_OR_RETURN(impl->decoder, ParseDecoder(ctx, top->if_contains("decoder"), "decoder"));

  // Ids: model vocabulary, then added tokens on top (HF looks added tokens up first).
  int32_t max_id = impl->model->max_id();
  for (const AddedToken& t : impl->added) max_id = std::max(max_id, t.id);
  impl->vocab_size = max_id + 1;
  const size_t n = size_t(impl->vocab_size);
  impl->spelling.assign(n, std::string_view());
  impl->known.assign(n, 0);
  impl->special.assign(n, 0);
  impl->decoded.assign(n, std::string());
  for (int32_t id = 0; id <= impl->model->max_id(); ++id) {
    std::string_view s = impl->model->IdToToken(id);
    if (s.empty()) continue;
    impl->spelling[size_t(id)] = s;
    impl->known[size_t(id)] = 1;
  }
  std::vector<size_t> raw_members, normalized_members;
  for (size_t i = 0; i < impl->added.size(); ++i) {
    const AddedToken& t = impl->added[i];
    impl->spelling[size_t(t.id)] = t.content;
    impl->known[size_t(t.id)] = 1;
    impl->special[size_t(t.id)] = t.special ? 1 : 0;
    impl->added_by_content[t.content] = t.id;
    (t.normalized ? normalized_members : raw_members).push_back(i);
  }
  for (size_t id = 0; id < n; ++id) {
    if (impl->known[id] && impl->decoder == DecoderKind::kByteLevel) {
      impl->decoded[id] = ByteLevelTokenBytes(impl->spelling[id]);
    }
  }
  impl->raw_splitter = AddedTokenSplitter(&impl->added, std::move(raw_members));
  impl->normalized_splitter = AddedTokenSplitter(&impl->added, std::move(normalized_members));

  const Impl* raw_impl = impl.get();
  auto lookup = [raw_impl](const std::string& token) -> std::optional<int32_t> {
    if (auto it = raw_impl->added_by_content.find(token); it != raw_impl->added_by_content.end()) {
      return it->second;
    }
    return raw_impl->model->TokenToId(token);
  };
  SIEVE_RETURN_IF_ERROR(ParsePostProcessor(ctx, member("post_processor"), "post_processor", lookup,
                                           &impl->templates));
  if (!impl->templates.empty()) {
    for (const TemplateItem& item : impl->templates.front()) {
      if (item.is_sequence) break;
      if (!item.ids.empty()) {
        impl->bos = item.ids.front();
        break;
      }
    }
  }
  return Tokenizer(std::move(impl));
}

void Tokenizer::Impl::EncodeText(std::string_view text, std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  // Pieces are views into `text` or into `owned` (a deque: its strings never move).
  std::deque<std::string> owned;
  std::vector<std::string_view> cur{text}, next;
  std::vector<Span> spans;
  for (const PreTokenizerStep& step : steps) {
    next.clear();
    for (std::string_view piece : cur) {
      if (step.kind == PreTokenizerStep::Kind::kByteLevel && step.add_prefix_space &&
          piece.front() != ' ') {
        std::string& spaced = owned.emplace_back();
        spaced.reserve(piece.size() + 1);
        spaced.push_back(' ');
        spaced.append(piece);
        piece = spaced;
      }
      if (!step.regex && step.literal.empty()) {
        next.push_back(piece);
        continue;
      }
      FindSpans(step, piece, &spans);
      ApplyBehavior(step.behavior, step.invert, piece, spans, &next);
    }
    std::swap(cur, next);
  }
  for (std::string_view piece : cur) model->Tokenize(piece, ids);
}

StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view utf8,
                                                 bool add_special_tokens) const {
  const Impl& im = *impl_;
  size_t bad = unicode::FindInvalidUtf8(utf8);
  if (bad != std::string_view::npos) {
    return Status::InvalidArgument(
        StrFormat("tokenizer input is not valid UTF-8: ill-formed sequence at byte offset %zu "
                  "(byte 0x%02X)",
                  bad, static_cast<unsigned char>(utf8[bad])));
  }
  std::vector<int32_t> ids;
  ids.reserve(utf8.size() / 3 + 4);

  // Added tokens: non-normalized ones on the raw text, then normalized ones in what is left
  // (the normalizer is the identity, so both see the same text).
  std::vector<Segment> first, segments;
  if (im.raw_splitter.empty()) {
    first.push_back({0, utf8.size(), -1});
  } else {
    im.raw_splitter.Split(utf8, 0, utf8.size(), &first);
  }
  if (im.normalized_splitter.empty()) {
    segments = std::move(first);
  } else {
    for (const Segment& s : first) {
      if (s.id >= 0) {
        segments.push_back(s);
      } else {
        im.normalized_splitter.Split(utf8, s.begin, s.end, &segments);
      }
    }
  }
  for (const Segment& s : segments) {
    if (s.id >= 0) {
      ids.push_back(s.id);
    } else {
      im.EncodeText(utf8.substr(s.begin, s.end - s.begin), &ids);
    }
  }

  if (add_special_tokens) {
    for (const Template& t : im.templates) {
      std::vector<int32_t> out;
      out.reserve(ids.size() + 4);
      for (const TemplateItem& item : t) {
        if (item.is_sequence) {
          out.insert(out.end(), ids.begin(), ids.end());
        } else {
          out.insert(out.end(), item.ids.begin(), item.ids.end());
        }
      }
      ids = std::move(out);
    }
  }
  return ids;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::string bytes;
  bool first = true;
  for (int32_t id : ids) {
    if (!im.Known(id)) continue;
    if (skip_special_tokens && im.special[size_t(id)]) continue;
    im.AppendTokenBytes(id, first, &bytes);
    first = false;
  }
  if (im.decoder != DecoderKind::kByteLevel) return bytes;  // tokens are valid UTF-8 already
  std::string out;
  unicode::AppendLossyUtf8(bytes, /*hold_incomplete_tail=*/false, &out);
  return out;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end()) {
    return it->second;
  }
  return impl_->model->TokenToId(token);
}

std::string_view Tokenizer::IdToToken(int32_t id) const {
  if (!impl_->Known(id)) return {};
  return impl_->spelling[size_t(id)];
}

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }

bool Tokenizer::IsSpecial(int32_t id) const {
  return impl_->Known(id) && impl_->special[size_t(id)];
}

// ---- IncrementalDecoder ----

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tok, bool skip_special_tokens)
    : impl_(tok.impl_), skip_special_tokens_(skip_special_tokens) {}

std::string IncrementalDecoder::Push(int32_t id) {
  if (!impl_->Known(id)) return {};
  if (skip_special_tokens_ && impl_->special[size_t(id)]) return {};
  impl_->AppendTokenBytes(id, first_, &pending_);
  first_ = false;
  std::string out;
  size_t used = unicode::AppendLossyUtf8(pending_, /*hold_incomplete_tail=*/true, &out);
  pending_.erase(0, used);
  return out;
}

std::string IncrementalDecoder::Flush() {
  std::string out;
  unicode::AppendLossyUtf8(pending_, /*hold_incomplete_tail=*/false, &out);
  pending_.clear();
  first_ = true;
  return out;
}

}  // namespace sieve::coordinator
