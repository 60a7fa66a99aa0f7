// BPE model: see tokenizer_bpe.h.
//
// Merging follows HF's BPE::merge_word: symbols in a doubly linked list, candidate pairs in a
// min-heap ordered by (rank, position); a popped candidate is applied only if both symbols are
// still what they were when it was pushed, then the two new neighbor pairs are pushed. Merges
// live in an open-addressing table keyed by (left id, right id) -> (rank, merged id), so each
// pair lookup is one multiply and usually one probe.
//
// The word cache is 16 mutex-guarded shards; a shard that fills up is cleared (words repeat
// heavily, so the hot ones come back at once). With ignore_merges (Llama-3) most pre-tokens are
// whole vocabulary entries and never reach the merge loop or the cache.
//
// Tested by tests/unit/coordinator/tokenizer_test.cc.
#include "coordinator/tokenizer_bpe.h"

#include <algorithm>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "coordinator/tokenizer_unicode.h"

namespace sieve::coordinator {
namespace {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct ByteLevelTables {
  std::array<char32_t, 256> to_char{};
  std::unordered_map<char32_t, int> to_byte;
  ByteLevelTables() {
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_char[b] = printable ? char32_t(b) : char32_t(256 + extra++);
      to_byte[to_char[b]] = b;
    }
  }
};

const ByteLevelTables& Tables() {
  static const ByteLevelTables* t = new ByteLevelTables();
  return *t;
}

// The bytes a byte-level spelling stands for, or nullopt if some character is outside the
// byte-level alphabet.
std::optional<std::string> ByteLevelDecode(std::string_view spelling) {
  std::string out;
  out.reserve(spelling.size());
  size_t i = 0;
  if (unicode::FindInvalidUtf8(spelling) != std::string_view::npos) return std::nullopt;
  while (i < spelling.size()) {
    int b = ByteLevelByte(unicode::DecodeValid(spelling, &i));
    if (b < 0) return std::nullopt;
    out.push_back(static_cast<char>(b));
  }
  return out;
}

}  // namespace

char32_t ByteLevelChar(uint8_t byte) { return Tables().to_char[byte]; }

int ByteLevelByte(char32_t ch) {
  if (ch < 256) {
    bool printable = (ch >= 0x21 && ch <= 0x7E) || (ch >= 0xA1 && ch <= 0xAC) || (ch >= 0xAE);
    return printable ? int(ch) : -1;
  }
  if (ch >= 256 + 68) return -1;
  auto it = Tables().to_byte.find(ch);
  return it == Tables().to_byte.end() ? -1 : it->second;
}

struct BpeModel::Index {
  StringMap by_spelling;
  StringMap by_raw;  // byte-level mode: decoded bytes -> id
};

struct BpeModel::MergeTable {
  struct Slot {
    uint64_t key = 0;  // Pack(left, right); 0 = empty
    int32_t rank = 0;
    int32_t id = 0;
  };
  std::vector<Slot> slots;
  uint64_t mask = 0;
  int shift = 64;

  static uint64_t Pack(int32_t left, int32_t right) {
    return ((uint64_t(uint32_t(left)) << 32) | uint32_t(right)) + 1;
  }
  size_t Home(uint64_t key) const { return size_t((key * 0x9E3779B97F4A7C15ull) >> shift); }

  explicit MergeTable(size_t count) {
    size_t cap = 16;
    while (cap < count * 2) cap <<= 1;
    slots.resize(cap);
    mask = cap - 1;
    shift = 64 - __builtin_ctzll(cap);
  }

  // Later duplicates overwrite earlier ones (HF collects the merges into a HashMap).
  void Insert(int32_t left, int32_t right, int32_t rank, int32_t id) {
    uint64_t key = Pack(left, right);
    for (size_t i = Home(key);; i = (i + 1) & mask) {
      if (slots[i].key == 0 || slots[i].key == key) {
        slots[i] = {key, rank, id};
        return;
      }
    }
  }

  const Slot* Find(int32_t left, int32_t right) const {
    uint64_t key = Pack(left, right);
    for (size_t i = Home(key);; i = (i + 1) & mask) {
      if (slots[i].key == key) return &slots[i];
      if (slots[i].key == 0) return nullptr;
    }
  }
};

struct BpeModel::WordCache {
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxWordBytes = 256;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  std::array<Shard, kShards> shards;
  size_t per_shard = 0;

  bool Lookup(std::string_view word, size_t hash, std::vector<int32_t>* out) {
    Shard& s = shards[hash % kShards];
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.map.find(word);
    if (it == s.map.end()) return false;
    out->insert(out->end(), it->second.begin(), it->second.end());
    return true;
  }
  void Insert(std::string_view word, size_t hash, std::vector<int32_t> ids) {
    Shard& s = shards[hash % kShards];
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.map.size() >= per_shard) s.map.clear();
    s.map.emplace(std::string(word), std::move(ids));
  }
};

BpeModel::~BpeModel() = default;

StatusOr<std::unique_ptr<BpeModel>> BpeModel::Build(
    std::vector<std::pair<std::string, int32_t>> vocab,
    const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
    std::string_view source) {
  std::unique_ptr<BpeModel> m(new BpeModel());
  m->options_ = std::move(options);
  m->index_ = std::make_unique<Index>();
  for (const auto& [token, id] : vocab) {
    if (id < 0) {
      return Status::InvalidArgument(StrFormat("%.*s: model.vocab: token id %d is negative",
                                               int(source.size()), source.data(), id));
    }
    m->max_id_ = std::max(m->max_id_, id);
  }
  m->id_to_token_.resize(size_t(m->max_id_ + 1));
  for (auto& [token, id] : vocab) {
    if (m->options_.byte_level) {
      if (std::optional<std::string> raw = ByteLevelDecode(token)) {
        m->index_->by_raw[*raw] = id;
      }
    }
    m->id_to_token_[size_t(id)] = token;
    m->index_->by_spelling[std::move(token)] = id;
  }

  auto lookup = [&](const std::string& t) -> int32_t {
    auto it = m->index_->by_spelling.find(t);
    return it == m->index_->by_spelling.end() ? -1 : it->second;
  };
  m->merges_ = std::make_unique<MergeTable>(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    int32_t l = lookup(left), r = lookup(right), merged = lookup(left + right);
    if (l < 0 || r < 0 || merged < 0) {
      const std::string& missing = l < 0 ? left : (r < 0 ? right : left + right);
      return Status::InvalidArgument(StrFormat(
          "%.*s: model.merges[%zu] (\"%s\", \"%s\"): token \"%s\" is not in model.vocab",
          int(source.size()), source.data(), rank, left.c_str(), right.c_str(), missing.c_str()));
    }
    m->merges_->Insert(l, r, static_cast<int32_t>(rank), merged);
  }

  m->byte_ids_.fill(-1);
  m->fallback_ids_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    if (m->options_.byte_level) {
      std::string spelling;
      unicode::AppendUtf8(ByteLevelChar(static_cast<uint8_t>(b)), &spelling);
      m->byte_ids_[b] = lookup(spelling);
    }
    if (m->options_.byte_fallback) m->fallback_ids_[b] = lookup(StrFormat("<0x%02X>", b));
  }
  if (m->options_.unk_token) {
    m->unk_id_ = lookup(*m->options_.unk_token);
    if (m->unk_id_ < 0) {
      return Status::InvalidArgument(StrFormat("%.*s: model.unk_token \"%s\" is not in model.vocab",
                                               int(source.size()), source.data(),
                                               m->options_.unk_token->c_str()));
    }
  }
  if (m->options_.cache_capacity > 0) {
    m->cache_ = std::make_unique<WordCache>();
    m->cache_->per_shard = std::max<size_t>(1, m->options_.cache_capacity / WordCache::kShards);
  }
  return m;
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = index_->by_spelling.find(token);
  if (it == index_->by_spelling.end()) return std::nullopt;
  return it->second;
}

std::string_view BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || id > max_id_) return {};
  return id_to_token_[size_t(id)];
}

void BpeModel::Tokenize(std::string_view piece, std::vector<int32_t>* out) const {
  if (piece.empty()) return;
  if (options_.ignore_merges) {
    const StringMap& map = options_.byte_level ? index_->by_raw : index_->by_spelling;
    auto it = map.find(piece);
    if (it != map.end()) {
      out->push_back(it->second);
      return;
    }
  }
  if (cache_ == nullptr || piece.size() > WordCache::kMaxWordBytes) {
    MergeWord(piece, out);
    return;
  }
  const size_t hash = StringHash{}(piece);
  if (cache_->Lookup(piece, hash, out)) return;
  const size_t before = out->size();
  MergeWord(piece, out);
  cache_->Insert(piece, hash, std::vector<int32_t>(out->begin() + before, out->end()));
}

// The word's symbols before any merge, unknown characters already resolved (byte fallback, unk,
// or dropped when the model has neither, as HF does).
void BpeModel::InitialSymbols(std::string_view piece, std::vector<int32_t>* symbols) const {
  bool last_was_unk = false;
  auto unknown = [&](std::string_view spelling) {
    if (options_.byte_fallback) {
      bool all = true;
      for (unsigned char b : spelling) all = all && fallback_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : spelling) symbols->push_back(fallback_ids_[b]);
        last_was_unk = false;
        return;
      }
    }
    if (unk_id_ < 0) return;
    if (options_.fuse_unk && last_was_unk) return;
    symbols->push_back(unk_id_);
    last_was_unk = true;
  };
  if (options_.byte_level) {
    for (unsigned char b : piece) {
      if (byte_ids_[b] >= 0) {
        symbols->push_back(byte_ids_[b]);
        last_was_unk = false;
      } else {
        std::string spelling;
        unicode::AppendUtf8(ByteLevelChar(b), &spelling);
        unknown(spelling);
      }
    }
    return;
  }
  for (size_t i = 0; i < piece.size();) {
    size_t start = i;
    unicode::DecodeValid(piece, &i);
    std::string_view ch = piece.substr(start, i - start);
    auto it = index_->by_spelling.find(ch);
    if (it != index_->by_spelling.end()) {
      symbols->push_back(it->second);
      last_was_unk = false;
    } else {
      unknown(ch);
    }
  }
}

void BpeModel::MergeWord(std::string_view piece, std::vector<int32_t>* out) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;  // left symbol
    int32_t left;
    int32_t right;
    int32_t merged;
    // std::push_heap builds a max-heap: "less" means lower priority (higher rank / position).
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  thread_local std::vector<int32_t> ids;
  thread_local std::vector<Symbol> syms;
  thread_local std::vector<Candidate> heap;
  ids.clear();
  InitialSymbols(piece, &ids);
  const int32_t n = static_cast<int32_t>(ids.size());
  if (n <= 1) {
    out->insert(out->end(), ids.begin(), ids.end());
    return;
  }
  syms.resize(size_t(n));
  heap.clear();
  auto push_pair = [&](int32_t pos) {
    const Symbol& l = syms[size_t(pos)];
    if (l.next < 0) return;
    const Symbol& r = syms[size_t(l.next)];
    if (const MergeTable::Slot* m = merges_->Find(l.id, r.id)) {
      heap.push_back({m->rank, pos, l.id, r.id, m->id});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (int32_t i = 0; i < n; ++i) syms[size_t(i)] = {ids[size_t(i)], i - 1, i + 1 < n ? i + 1 : -1};
  for (int32_t i = 0; i + 1 < n; ++i) push_pair(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    Candidate c = heap.back();
    heap.pop_back();
    Symbol& l = syms[size_t(c.pos)];
    if (l.id != c.left || l.next < 0) continue;
    Symbol& r = syms[size_t(l.next)];
    if (r.id != c.right) continue;
    l.id = c.merged;
    r.id = -1;
    l.next = r.next;
    if (r.next >= 0) syms[size_t(r.next)].prev = c.pos;
    if (l.prev >= 0) push_pair(l.prev);
    push_pair(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = syms[size_t(i)].next) out->push_back(syms[size_t(i)].id);
}

}  // namespace sieve::coordinator
