// Pre-tokenizer regex: parser, compiler to a small instruction set, a backtracking matcher with
// an explicit stack and (split, position) memoization, and the hand-written Llama-3 / GPT-2
// matchers. See pretokenizer_regex.h for the supported syntax and the semantics.
//
// Instruction set (one Program holds the main program and every lookaround/atomic body; each body
// ends in kMatch):
//   kChar a        text[sp] == a
//   kSet a         sets[a] contains text[sp]
//   kAny a         any code point (a = 1) or any but '\n' (a = 0)
//   kSplit a b     try a first, b on backtrack (memoized per position: a revisit fails, which
//                  is what ends an empty loop iteration and bounds the work)
//   kJmp a
//   kAssert a      zero-width assertion AssertKind(a)
//   kLook a        lookaround looks[a]: run its bodies in a nested matcher, test, don't consume
//   kAtomic a      run the body at pc a in a nested matcher and continue from its first match end
//   kMatch
//
// Tested by tests/unit/coordinator/pretokenizer_regex_test.cc.
#include "coordinator/pretokenizer_regex.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "coordinator/tokenizer_unicode.h"

namespace sieve::coordinator {
namespace {

using unicode::CodePointSet;

constexpr int kMaxNesting = 64;             // parser recursion (groups within groups)
constexpr size_t kMaxInstructions = 20000;  // after expanding counted repetition
constexpr int kMaxRepeat = 100000;          // Oniguruma's ONIG_MAX_REPEAT_NUM

enum class Op : uint8_t { kChar, kSet, kAny, kSplit, kJmp, kAssert, kLook, kAtomic, kMatch };

enum class AssertKind : uint32_t {
  kLineStart,        // ^
  kLineEnd,          // $
  kTextStart,        // \A
  kTextEnd,          // \z
  kTextEndNewline,   // \Z
  kWordBoundary,     // \b
  kNotWordBoundary,  // \B
};

struct Inst {
  Op op;
  uint32_t a = 0;
  uint32_t b = 0;
};

struct LookInfo {
  bool negate = false;
  bool behind = false;
  // Bodies: (start pc, width). Lookahead has one body (width unused); lookbehind one per
  // top-level alternative, each of fixed width.
  std::vector<std::pair<uint32_t, uint32_t>> bodies;
};

// ---- AST ----

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Node {
  enum class Kind { kEmpty, kChar, kSet, kAny, kConcat, kAlt, kRepeat, kLook, kAtomic, kAssert };
  Kind kind = Kind::kEmpty;
  char32_t cp = 0;      // kChar
  int set = -1;         // kSet
  bool dotall = false;  // kAny
  std::vector<NodePtr> kids;
  int min = 0, max = -1;  // kRepeat (max -1 = unbounded)
  bool greedy = true;
  bool possessive = false;
  bool negate = false, behind = false;  // kLook
  AssertKind assert_kind = AssertKind::kLineStart;

  static NodePtr Make(Kind k) {
    auto n = std::make_unique<Node>();
    n->kind = k;
    return n;
  }
};

}  // namespace

struct PretokenizerRegex::Program {
  std::vector<Inst> insts;
  std::vector<CodePointSet> sets;
  std::vector<LookInfo> looks;
  std::vector<int32_t> split_index;  // pc -> index among kSplit instructions, else -1
  uint32_t num_splits = 0;
  uint32_t start = 0;
  int max_depth = 0;     // nesting of kLook/kAtomic
  bool nullable = true;  // may match the empty string (then no first-char filter)
  CodePointSet first;    // code points a non-empty match can start with
  CodePointSet word;     // \w, for \b and \B
};

namespace {

using Program = PretokenizerRegex::Program;

// ---- Parser ----

// Code points consumed by every match of n, or -1 if that varies.
long FixedWidth(const Node& n) {
  switch (n.kind) {
    case Node::Kind::kEmpty:
    case Node::Kind::kAssert:
    case Node::Kind::kLook:
      return 0;
    case Node::Kind::kChar:
    case Node::Kind::kSet:
    case Node::Kind::kAny:
      return 1;
    case Node::Kind::kAtomic:
      return FixedWidth(*n.kids[0]);
    case Node::Kind::kConcat: {
      long sum = 0;
      for (auto& k : n.kids) {
        long w = FixedWidth(*k);
        if (w < 0) return -1;
        sum += w;
      }
      return sum;
    }
    case Node::Kind::kAlt: {
      long w0 = FixedWidth(*n.kids[0]);
      for (auto& k : n.kids) {
        if (FixedWidth(*k) != w0) return -1;
      }
      return w0;
    }
    case Node::Kind::kRepeat: {
      if (n.min != n.max) return -1;
      long w = FixedWidth(*n.kids[0]);
      return w < 0 ? -1 : w * n.min;
    }
  }
  return -1;
}

struct Flags {
  bool icase = false;
  bool dotall = false;  // Ruby/Oniguruma (?m)
  bool extended = false;
};

class Parser {
 public:
  Parser(std::u32string pattern, Program* prog) : p_(std::move(pattern)), prog_(prog) {}

  StatusOr<NodePtr> Parse() {
    Flags flags;
    SIEVE_ASSIGN_OR_RETURN(NodePtr root, ParseAlt(flags, 0));
    if (pos_ < p_.size()) return Error("unmatched ')'");
    return root;
  }

 private:
  bool AtEnd() const { return pos_ >= p_.size(); }
  char32_t Peek(size_t ahead = 0) const {
    return pos_ + ahead < p_.size() ? p_[pos_ + ahead] : char32_t(-1);
  }
  bool Eat(char32_t c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }

  Status Error(const std::string& what) const {
    return Status::InvalidArgument(StrFormat("regex: %s at offset %zu", what.c_str(), pos_));
  }
  Status Unsupported(const std::string& construct) const {
    return Status::Unimplemented(
        StrFormat("regex: unsupported construct %s at offset %zu", construct.c_str(), pos_));
  }

  void SkipExtended(const Flags& flags) {
    if (!flags.extended) return;
    while (!AtEnd()) {
      char32_t c = Peek();
      if (c == '#') {
        while (!AtEnd() && Peek() != '\n') ++pos_;
      } else if (unicode::IsWhiteSpace(c)) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  int AddSet(CodePointSet s) {
    prog_->sets.push_back(std::move(s));
    return static_cast<int>(prog_->sets.size() - 1);
  }

  NodePtr SetNode(CodePointSet s) {
    auto n = Node::Make(Node::Kind::kSet);
    n->set = AddSet(std::move(s));
    return n;
  }

  NodePtr CharNode(char32_t c, const Flags& flags) {
    if (flags.icase) {
      std::vector<char32_t> orbit = unicode::CaseOrbit(c);
      if (orbit.size() > 1) {
        CodePointSet s;
        for (char32_t m : orbit) s.AddRange(m, m);
        return SetNode(std::move(s));
      }
    }
    auto n = Node::Make(Node::Kind::kChar);
    n->cp = c;
    return n;
  }

  // alternation: seq ('|' seq)*
  StatusOr<NodePtr> ParseAlt(Flags& flags, int depth) {
    if (depth > kMaxNesting) return Error("groups nested too deeply");
    std::vector<NodePtr> alts;
    for (;;) {
      SIEVE_ASSIGN_OR_RETURN(NodePtr seq, ParseSeq(flags, depth));
      alts.push_back(std::move(seq));
      if (!Eat('|')) break;
    }
    if (alts.size() == 1) return std::move(alts[0]);
    auto n = Node::Make(Node::Kind::kAlt);
    n->kids = std::move(alts);
    return n;
  }

  StatusOr<NodePtr> ParseSeq(Flags& flags, int depth) {
    auto seq = Node::Make(Node::Kind::kConcat);
    for (;;) {
      SkipExtended(flags);
      if (AtEnd() || Peek() == '|' || Peek() == ')') break;
      // Isolated option (?imx-imx): Oniguruma applies it to the rest of the enclosing group,
      // alternatives included (a(?i)b|c == a(?i:b|c)).
      if (Peek() == '(' && Peek(1) == '?') {
        size_t save = pos_;
        pos_ += 2;
        Flags inner = flags;
        bool isolated = false;
        if (ParseFlagLetters(&inner) && Eat(')')) isolated = true;
        if (isolated) {
          SIEVE_ASSIGN_OR_RETURN(NodePtr rest, ParseAlt(inner, depth + 1));
          seq->kids.push_back(std::move(rest));
          break;
        }
        pos_ = save;
      }
      SIEVE_ASSIGN_OR_RETURN(NodePtr atom, ParseAtom(flags, depth));
      if (!atom) continue;  // a comment group
      SIEVE_ASSIGN_OR_RETURN(atom, ParseQuantifiers(std::move(atom), flags));
      seq->kids.push_back(std::move(atom));
    }
    if (seq->kids.size() == 1) return std::move(seq->kids[0]);
    if (seq->kids.empty()) return Node::Make(Node::Kind::kEmpty);
    return seq;
  }

  // Reads [imx]*(-[imx]*)? into *flags; false if something else is there (pos_ then undefined).
  bool ParseFlagLetters(Flags* flags) {
    bool on = true;
    bool any = false;
    while (!AtEnd()) {
      char32_t c = Peek();
      if (c == '-' && on) {
        on = false;
      } else if (c == 'i') {
        flags->icase = on;
      } else if (c == 'm') {
        flags->dotall = on;
      } else if (c == 'x') {
        flags->extended = on;
      } else {
        break;
      }
      any = true;
      ++pos_;
    }
    return any;
  }

  StatusOr<NodePtr> ParseQuantifiers(NodePtr atom, const Flags& flags) {
    for (;;) {
      SkipExtended(flags);
      int min = 0, max = -1;
      bool interval = false;
      char32_t c = Peek();
      if (c == '*') {
        min = 0;
        max = -1;
      } else if (c == '+') {
        min = 1;
        max = -1;
      } else if (c == '?') {
        min = 0;
        max = 1;
      } else if (c == '{') {
        size_t save = pos_;
        auto parsed = ParseInterval(&min, &max);
        if (!parsed.ok()) return parsed.status();
        if (!*parsed) {
          pos_ = save;  // not an interval: '{' is a literal (Oniguruma allows it)
          return atom;
        }
        interval = true;
      } else {
        return atom;
      }
      if (!interval) ++pos_;
      if (atom->kind == Node::Kind::kAssert || atom->kind == Node::Kind::kLook) {
        return Error("target of repeat operator is invalid");
      }
      auto rep = Node::Make(Node::Kind::kRepeat);
      rep->min = min;
      rep->max = max;
      if (Eat('?')) {
        rep->greedy = false;
      } else if (!interval && Eat('+')) {
        rep->possessive = true;  // *+ ++ ?+ (an interval followed by '+' repeats again instead)
      }
      rep->kids.push_back(std::move(atom));
      atom = std::move(rep);
    }
  }

  // After '{': n | n, | n,m | ,m then '}'. Returns false (nothing consumed for the caller) when
  // the text is not an interval.
  StatusOr<bool> ParseInterval(int* min, int* max) {
    ++pos_;                                 // '{'
    auto read_num = [&](int* out) -> int {  // -1 none, 0 ok, 1 too large
      size_t start = pos_;
      long v = 0;
      while (!AtEnd() && Peek() >= '0' && Peek() <= '9') {
        v = v * 10 + (Peek() - '0');
        if (v > kMaxRepeat) return 1;
        ++pos_;
      }
      if (pos_ == start) return -1;
      *out = static_cast<int>(v);
      return 0;
    };
    int lo = 0, hi = -1;
    int r1 = read_num(&lo);
    if (r1 == 1) return Error("repeat count too large");
    if (Eat(',')) {
      int r2 = read_num(&hi);
      if (r2 == 1) return Error("repeat count too large");
      if (r1 < 0 && r2 < 0) return false;
      if (r1 < 0) lo = 0;
      if (r2 < 0) hi = -1;
    } else {
      if (r1 < 0) return false;
      hi = lo;
    }
    if (!Eat('}')) return false;
    if (hi >= 0 && hi < lo) return Error("upper bound of repeat is less than lower bound");
    *min = lo;
    *max = hi;
    return true;
  }

  StatusOr<NodePtr> ParseAtom(Flags& flags, int depth) {
    char32_t c = Peek();
    switch (c) {
      case '(':
        return ParseGroup(flags, depth);
      case '[': {
        SIEVE_ASSIGN_OR_RETURN(CodePointSet s, ParseClass(flags, depth));
        return SetNode(std::move(s));
      }
      case '.': {
        ++pos_;
        auto n = Node::Make(Node::Kind::kAny);
        n->dotall = flags.dotall;
        return n;
      }
      case '^':
        ++pos_;
        return AssertNode(AssertKind::kLineStart);
      case '$':
        ++pos_;
        return AssertNode(AssertKind::kLineEnd);
      case '*':
      case '+':
      case '?':
        return Error("target of repeat operator is not specified");
      case '\\':
        return ParseEscape(flags);
      default:
        ++pos_;
        return CharNode(c, flags);
    }
  }

  static NodePtr AssertNode(AssertKind k) {
    auto n = Node::Make(Node::Kind::kAssert);
    n->assert_kind = k;
    return n;
  }

  StatusOr<NodePtr> ParseGroup(Flags& flags, int depth) {
    size_t open = pos_;
    ++pos_;  // '('
    Flags inner = flags;
    NodePtr wrapper;  // kLook / kAtomic around the body, or null for a plain group
    if (Eat('?')) {
      char32_t c = Peek();
      if (c == ':') {
        ++pos_;
      } else if (c == '=' || c == '!') {
        ++pos_;
        wrapper = Node::Make(Node::Kind::kLook);
        wrapper->negate = c == '!';
      } else if (c == '>') {
        ++pos_;
        wrapper = Node::Make(Node::Kind::kAtomic);
      } else if (c == '#') {
        while (!AtEnd() && Peek() != ')') ++pos_;
        if (!Eat(')')) return Error("unterminated comment group");
        return NodePtr();
      } else if (c == '<' && (Peek(1) == '=' || Peek(1) == '!')) {
        wrapper = Node::Make(Node::Kind::kLook);
        wrapper->behind = true;
        wrapper->negate = Peek(1) == '!';
        pos_ += 2;
      } else if (c == '<' || c == '\'' || (c == 'P' && Peek(1) == '<')) {
        // Named group: the name is irrelevant (matches are whole-pattern only).
        if (c == 'P') ++pos_;
        char32_t close = Peek() == '<' ? '>' : '\'';
        ++pos_;
        size_t name_start = pos_;
        while (!AtEnd() && Peek() != close) {
          if (!unicode::IsWordChar(Peek())) return Error("invalid group name");
          ++pos_;
        }
        if (pos_ == name_start || !Eat(close)) return Error("invalid group name");
      } else if (c == 'i' || c == 'm' || c == 'x' || c == '-') {
        if (!ParseFlagLetters(&inner) || !Eat(':')) {
          pos_ = open;
          return Unsupported("'(?" + Utf8Of(c) + "...' (unknown group option)");
        }
      } else {
        return Unsupported("'(?" + Utf8Of(c) + "' group");
      }
    }
    SIEVE_ASSIGN_OR_RETURN(NodePtr body, ParseAlt(inner, depth + 1));
    if (!Eat(')')) {
      pos_ = open;
      return Error("end pattern with unmatched parenthesis");
    }
    if (!wrapper) return body;
    if (wrapper->kind == Node::Kind::kLook && wrapper->behind) {
      // Every top-level alternative must have a fixed width.
      std::vector<const Node*> alts;
      if (body->kind == Node::Kind::kAlt) {
        for (auto& k : body->kids) alts.push_back(k.get());
      } else {
        alts.push_back(body.get());
      }
      for (const Node* a : alts) {
        if (FixedWidth(*a) < 0) {
          pos_ = open;
          return Unsupported("variable-width lookbehind");
        }
      }
    }
    wrapper->kids.push_back(std::move(body));
    return wrapper;
  }

  static std::string Utf8Of(char32_t c) {
    std::string s;
    if (c <= unicode::kMaxCodePoint && !(c >= 0xD800 && c <= 0xDFFF)) unicode::AppendUtf8(c, &s);
    return s;
  }

  // After '\' outside a class.
  StatusOr<NodePtr> ParseEscape(const Flags& flags) {
    size_t esc = pos_;
    ++pos_;
    if (AtEnd()) return Error("end pattern at escape");
    char32_t c = Peek();
    switch (c) {
      case 'A':
        ++pos_;
        return AssertNode(AssertKind::kTextStart);
      case 'z':
        ++pos_;
        return AssertNode(AssertKind::kTextEnd);
      case 'Z':
        ++pos_;
        return AssertNode(AssertKind::kTextEndNewline);
      case 'b':
        ++pos_;
        return AssertNode(AssertKind::kWordBoundary);
      case 'B':
        ++pos_;
        return AssertNode(AssertKind::kNotWordBoundary);
      default:
        break;
    }
    pos_ = esc;
    SIEVE_ASSIGN_OR_RETURN(ClassAtom atom, ParseClassEscape(/*in_class=*/false));
    if (atom.is_set) {
      return SetNode(flags.icase ? atom.set.CaseClosed() : std::move(atom.set));
    }
    return CharNode(atom.cp, flags);
  }

  struct ClassAtom {
    bool is_set = false;
    char32_t cp = 0;
    CodePointSet set;
  };

  // Parses an escape at pos_ ('\' included) that denotes one code point or a set.
  StatusOr<ClassAtom> ParseClassEscape(bool in_class) {
    ++pos_;  // '\'
    if (AtEnd()) return Error("end pattern at escape");
    char32_t c = Peek();
    ++pos_;
    ClassAtom atom;
    auto single = [&](char32_t v) -> StatusOr<ClassAtom> {
      atom.cp = v;
      return atom;
    };
    auto set = [&](CodePointSet s) -> StatusOr<ClassAtom> {
      atom.is_set = true;
      atom.set = std::move(s);
      return atom;
    };
    switch (c) {
      case 't':
        return single('\t');
      case 'n':
        return single('\n');
      case 'r':
        return single('\r');
      case 'f':
        return single('\f');
      case 'v':
        return single('\v');
      case 'a':
        return single(0x07);
      case 'e':
        return single(0x1B);
      case 'b':
        if (in_class) return single(0x08);
        break;
      case 'x': {
        SIEVE_ASSIGN_OR_RETURN(char32_t v, ParseHex(/*braced_ok=*/true, 2));
        return single(v);
      }
      case 'u': {
        SIEVE_ASSIGN_OR_RETURN(char32_t v, ParseHex(/*braced_ok=*/false, 4));
        return single(v);
      }
      case '0': {
        char32_t v = 0;
        for (int k = 0; k < 2 && Peek() >= '0' && Peek() <= '7'; ++k)
          v = v * 8 + (p_[pos_++] - '0');
        return single(v);
      }
      case 'd':
        return set(
            CodePointSet::FromCategories(unicode::CategoryBit(unicode::GeneralCategory::kNd)));
      case 'D':
        return set(CodePointSet::FromCategories(unicode::CategoryBit(unicode::GeneralCategory::kNd))
                       .Negated());
      case 's':
        return set(CodePointSet::WhiteSpace());
      case 'S':
        return set(CodePointSet::WhiteSpace().Negated());
      case 'w':
        return set(CodePointSet::Word());
      case 'W':
        return set(CodePointSet::Word().Negated());
      case 'h':
        return set(HexDigits());
      case 'H':
        return set(HexDigits().Negated());
      case 'p':
      case 'P': {
        SIEVE_ASSIGN_OR_RETURN(CodePointSet s, ParseProperty(c == 'P'));
        return set(std::move(s));
      }
      default:
        break;
    }
    pos_ -= 2;
    if (c >= '1' && c <= '9') return Unsupported("backreference '\\" + Utf8Of(c) + "'");
    if (c == 'k') return Unsupported("named backreference '\\k'");
    if (c == 'g') return Unsupported("subexpression call '\\g'");
    if (c < 128 && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
      return Unsupported("escape '\\" + Utf8Of(c) + "'");
    }
    pos_ += 2;
    return single(c);  // escaped punctuation or any other non-alphanumeric: itself
  }

  static CodePointSet HexDigits() {
    CodePointSet s;
    s.AddRange('0', '9');
    s.AddRange('a', 'f');
    s.AddRange('A', 'F');
    return s;
  }

  // After \x or \u: {H...} (braced_ok) or exactly `digits` hex digits (\x: 1-2).
  StatusOr<char32_t> ParseHex(bool braced_ok, int digits) {
    auto hexval = [](char32_t h) -> int {
      if (h >= '0' && h <= '9') return int(h - '0');
      if (h >= 'a' && h <= 'f') return int(h - 'a' + 10);
      if (h >= 'A' && h <= 'F') return int(h - 'A' + 10);
      return -1;
    };
    uint64_t v = 0;
    if (braced_ok && Eat('{')) {
      int n = 0;
      while (!AtEnd() && hexval(Peek()) >= 0 && n < 8) {
        v = v * 16 + hexval(p_[pos_++]);
        ++n;
      }
      if (n == 0 || !Eat('}')) return Error("invalid code point value in \\x{...}");
    } else {
      int n = 0;
      while (n < digits && !AtEnd() && hexval(Peek()) >= 0) {
        v = v * 16 + hexval(p_[pos_++]);
        ++n;
      }
      if (n == 0 || (digits == 4 && n != 4)) return Error("invalid hex escape");
    }
    if (v > unicode::kMaxCodePoint || (v >= 0xD800 && v <= 0xDFFF)) {
      return Error("escape is not a Unicode scalar value");
    }
    return static_cast<char32_t>(v);
  }

  // After \p or \P: {Name}, {^Name} or a single letter.
  StatusOr<CodePointSet> ParseProperty(bool negated) {
    std::string name;
    if (Eat('{')) {
      if (Eat('^')) negated = !negated;
      while (!AtEnd() && Peek() != '}') {
        char32_t c = p_[pos_++];
        if (c == ' ' || c == '_' || c == '-') continue;
        if (c >= 128) return Error("invalid character in property name");
        name.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
      }
      if (!Eat('}')) return Error("unterminated \\p{...}");
    } else if (!AtEnd() && Peek() < 128) {
      char32_t c = p_[pos_++];
      name.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    } else {
      return Error("invalid \\p");
    }
    std::optional<CodePointSet> s = PropertySet(name);
    if (!s) return Unsupported("Unicode property \\p{" + name + "}");
    return negated ? s->Negated() : std::move(*s);
  }

  static std::optional<CodePointSet> PropertySet(const std::string& name) {
    using unicode::CategoryBit;
    using G = unicode::GeneralCategory;
    struct Entry {
      const char* names[4];
      uint32_t mask;
    };
    const uint32_t lc = CategoryBit(G::kLu) | CategoryBit(G::kLl) | CategoryBit(G::kLt);
    const uint32_t p = CategoryBit(G::kPc) | CategoryBit(G::kPd) | CategoryBit(G::kPs) |
                       CategoryBit(G::kPe) | CategoryBit(G::kPi) | CategoryBit(G::kPf) |
                       CategoryBit(G::kPo);
    const uint32_t s =
        CategoryBit(G::kSm) | CategoryBit(G::kSc) | CategoryBit(G::kSk) | CategoryBit(G::kSo);
    const uint32_t z = CategoryBit(G::kZs) | CategoryBit(G::kZl) | CategoryBit(G::kZp);
    const uint32_t c = CategoryBit(G::kCc) | CategoryBit(G::kCf) | CategoryBit(G::kCs) |
                       CategoryBit(G::kCo) | CategoryBit(G::kCn);
    const Entry table[] = {
        {{"l", "letter"}, unicode::kLetterMask},
        {{"lu", "uppercaseletter"}, CategoryBit(G::kLu)},
        {{"ll", "lowercaseletter"}, CategoryBit(G::kLl)},
        {{"lt", "titlecaseletter"}, CategoryBit(G::kLt)},
        {{"lc", "l&", "casedletter"}, lc},
        {{"lm", "modifierletter"}, CategoryBit(G::kLm)},
        {{"lo", "otherletter"}, CategoryBit(G::kLo)},
        {{"m", "mark", "combiningmark"}, unicode::kMarkMask},
        {{"mn", "nonspacingmark"}, CategoryBit(G::kMn)},
        {{"mc", "spacingmark"}, CategoryBit(G::kMc)},
        {{"me", "enclosingmark"}, CategoryBit(G::kMe)},
        {{"n", "number"}, unicode::kNumberMask},
        {{"nd", "decimalnumber", "digit"}, CategoryBit(G::kNd)},
        {{"nl", "letternumber"}, CategoryBit(G::kNl)},
        {{"no", "othernumber"}, CategoryBit(G::kNo)},
        {{"p", "punctuation"}, p},
        {{"pc", "connectorpunctuation"}, CategoryBit(G::kPc)},
        {{"pd", "dashpunctuation"}, CategoryBit(G::kPd)},
        {{"ps", "openpunctuation"}, CategoryBit(G::kPs)},
        {{"pe", "closepunctuation"}, CategoryBit(G::kPe)},
        {{"pi", "initialpunctuation"}, CategoryBit(G::kPi)},
        {{"pf", "finalpunctuation"}, CategoryBit(G::kPf)},
        {{"po", "otherpunctuation"}, CategoryBit(G::kPo)},
        {{"s", "symbol"}, s},
        {{"sm", "mathsymbol"}, CategoryBit(G::kSm)},
        {{"sc", "currencysymbol"}, CategoryBit(G::kSc)},
        {{"sk", "modifiersymbol"}, CategoryBit(G::kSk)},
        {{"so", "othersymbol"}, CategoryBit(G::kSo)},
        {{"z", "separator"}, z},
        {{"zs", "spaceseparator"}, CategoryBit(G::kZs)},
        {{"zl", "lineseparator"}, CategoryBit(G::kZl)},
        {{"zp", "paragraphseparator"}, CategoryBit(G::kZp)},
        {{"c", "other"}, c},
        {{"cc", "control", "cntrl"}, CategoryBit(G::kCc)},
        {{"cf", "format"}, CategoryBit(G::kCf)},
        {{"cs", "surrogate"}, CategoryBit(G::kCs)},
        {{"co", "privateuse"}, CategoryBit(G::kCo)},
        {{"cn", "unassigned"}, CategoryBit(G::kCn)},
        {{"assigned"}, ~CategoryBit(G::kCn)},
        {{"any"}, ~0u},
    };
    for (const Entry& e : table) {
      for (const char* n : e.names) {
        if (n != nullptr && name == n) return CodePointSet::FromCategories(e.mask);
      }
    }
    if (name == "space" || name == "whitespace" || name == "wspace") {
      return CodePointSet::WhiteSpace();
    }
    if (name == "word") return CodePointSet::Word();
    if (name == "xdigit") return HexDigits();
    return std::nullopt;
  }

  // '[' ... ']'
  StatusOr<CodePointSet> ParseClass(const Flags& flags, int depth) {
    if (depth > kMaxNesting) return Error("character classes nested too deeply");
    size_t open = pos_;
    ++pos_;  // '['
    if (Peek() == ':') {
      // [:alpha:] style POSIX bracket (only meaningful inside a class, but reject both).
      return Unsupported("POSIX bracket '[:...:]'");
    }
    bool negate = Eat('^');
    SIEVE_ASSIGN_OR_RETURN(CodePointSet s, ParseClassBody(flags, depth, open));
    if (flags.icase) s = s.CaseClosed();
    return negate ? s.Negated() : std::move(s);
  }

  // Items up to and including the closing ']'. '&&' intersects with the rest of the class.
  StatusOr<CodePointSet> ParseClassBody(const Flags& flags, int depth, size_t open) {
    CodePointSet s;
    bool first = true;
    for (;;) {
      if (AtEnd()) {
        pos_ = open;
        return Error("premature end of char-class");
      }
      char32_t c = Peek();
      if (c == ']' && !first) {
        ++pos_;
        return s;
      }
      first = false;
      if (c == '[') {
        if (Peek(1) == ':') return Unsupported("POSIX bracket '[:...:]'");
        SIEVE_ASSIGN_OR_RETURN(CodePointSet nested, ParseClass(flags, depth + 1));
        s.AddSet(nested);
        continue;
      }
      if (c == '&' && Peek(1) == '&') {
        pos_ += 2;
        SIEVE_ASSIGN_OR_RETURN(CodePointSet rhs, ParseClassBody(flags, depth + 1, open));
        return s.Intersect(rhs);
      }
      SIEVE_ASSIGN_OR_RETURN(ClassAtom lo, ParseClassAtom());
      if (!lo.is_set && Peek() == '-' && Peek(1) != ']' && pos_ + 1 < p_.size()) {
        ++pos_;  // '-'
        if (Peek() == '[') return Error("char-class value at end of range");
        SIEVE_ASSIGN_OR_RETURN(ClassAtom hi, ParseClassAtom());
        if (hi.is_set) return Error("char-class value at end of range");
        if (hi.cp < lo.cp) return Error("empty range in char class");
        s.AddRange(lo.cp, hi.cp);
        continue;
      }
      if (lo.is_set) {
        s.AddSet(lo.set);
      } else {
        s.AddRange(lo.cp, lo.cp);
      }
    }
  }

  StatusOr<ClassAtom> ParseClassAtom() {
    if (Peek() == '\\') return ParseClassEscape(/*in_class=*/true);
    ClassAtom a;
    a.cp = p_[pos_++];
    return a;
  }

  std::u32string p_;
  size_t pos_ = 0;
  Program* prog_;
};

// ---- Compiler ----

class Compiler {
 public:
  explicit Compiler(Program* prog) : prog_(prog) {}

  // Emits the main program, then every lookaround/atomic body after it, then numbers the splits.
  Status Compile(const Node& root) {
    prog_->start = Pc();
    SIEVE_RETURN_IF_ERROR(Emit(root, 0));
    SIEVE_RETURN_IF_ERROR(Add({Op::kMatch}));
    while (!work_.empty()) {
      Work w = work_.back();
      work_.pop_back();
      uint32_t start = Pc();
      if (w.plain_repeat) {
        SIEVE_RETURN_IF_ERROR(EmitRepeat(*w.node, w.depth, /*allow_possessive=*/false));
      } else {
        SIEVE_RETURN_IF_ERROR(Emit(*w.node, w.depth));
      }
      SIEVE_RETURN_IF_ERROR(Add({Op::kMatch}));
      if (w.look < 0) {
        prog_->insts[w.inst].a = start;
      } else {
        prog_->looks[w.look].bodies[w.body].first = start;
      }
    }
    prog_->split_index.assign(prog_->insts.size(), -1);
    prog_->num_splits = 0;
    for (size_t pc = 0; pc < prog_->insts.size(); ++pc) {
      if (prog_->insts[pc].op == Op::kSplit) prog_->split_index[pc] = prog_->num_splits++;
    }
    return Status::Ok();
  }

 private:
  // A body compiled after the main program: for the kAtomic instruction at `inst` (look < 0) or
  // for body `body` of lookaround `look`.
  struct Work {
    const Node* node;
    int depth;
    bool plain_repeat = false;  // node is a possessive repeat: emit it as a plain one
    size_t inst = 0;
    int look = -1;
    size_t body = 0;
  };

  uint32_t Pc() const { return static_cast<uint32_t>(prog_->insts.size()); }

  Status Add(Inst in) {
    if (prog_->insts.size() >= kMaxInstructions) {
      return Status::InvalidArgument(
          StrFormat("regex: pattern too large (over %zu instructions after expanding counted "
                    "repetition)",
                    kMaxInstructions));
    }
    prog_->insts.push_back(in);
    return Status::Ok();
  }

  Status Emit(const Node& n, int depth) {
    prog_->max_depth = std::max(prog_->max_depth, depth);
    switch (n.kind) {
      case Node::Kind::kEmpty:
        return Status::Ok();
      case Node::Kind::kChar:
        return Add({Op::kChar, n.cp});
      case Node::Kind::kSet:
        return Add({Op::kSet, static_cast<uint32_t>(n.set)});
      case Node::Kind::kAny:
        return Add({Op::kAny, n.dotall ? 1u : 0u});
      case Node::Kind::kAssert:
        return Add({Op::kAssert, static_cast<uint32_t>(n.assert_kind)});
      case Node::Kind::kConcat:
        for (const auto& k : n.kids) SIEVE_RETURN_IF_ERROR(Emit(*k, depth));
        return Status::Ok();
      case Node::Kind::kAlt: {
        // split(alt0, next); alt0; jmp end; next: split(alt1, ...) ... altN; end:
        std::vector<uint32_t> jumps;
        for (size_t i = 0; i < n.kids.size(); ++i) {
          if (i + 1 < n.kids.size()) {
            uint32_t split = Pc();
            SIEVE_RETURN_IF_ERROR(Add({Op::kSplit, split + 1, 0}));
            SIEVE_RETURN_IF_ERROR(Emit(*n.kids[i], depth));
            jumps.push_back(Pc());
            SIEVE_RETURN_IF_ERROR(Add({Op::kJmp}));
            prog_->insts[split].b = Pc();
          } else {
            SIEVE_RETURN_IF_ERROR(Emit(*n.kids[i], depth));
          }
        }
        for (uint32_t j : jumps) prog_->insts[j].a = Pc();
        return Status::Ok();
      }
      case Node::Kind::kRepeat:
        return EmitRepeat(n, depth, /*allow_possessive=*/true);
      case Node::Kind::kAtomic: {
        work_.push_back({.node = n.kids[0].get(), .depth = depth + 1, .inst = Pc()});
        return Add({Op::kAtomic});
      }
      case Node::Kind::kLook: {
        LookInfo info;
        info.negate = n.negate;
        info.behind = n.behind;
        std::vector<const Node*> bodies;
        if (n.behind && n.kids[0]->kind == Node::Kind::kAlt) {
          for (const auto& k : n.kids[0]->kids) bodies.push_back(k.get());
        } else {
          bodies.push_back(n.kids[0].get());
        }
        const int look = static_cast<int>(prog_->looks.size());
        for (size_t i = 0; i < bodies.size(); ++i) {
          uint32_t width = n.behind ? static_cast<uint32_t>(FixedWidth(*bodies[i])) : 0;
          info.bodies.emplace_back(0, width);
          work_.push_back({.node = bodies[i], .depth = depth + 1, .look = look, .body = i});
        }
        prog_->looks.push_back(std::move(info));
        return Add({Op::kLook, static_cast<uint32_t>(look)});
      }
    }
    return Status::Internal("regex: unknown node");
  }

  Status EmitRepeat(const Node& n, int depth, bool allow_possessive) {
    if (n.possessive && allow_possessive) {
      // x*+ == (?>x*)
      work_.push_back({.node = &n, .depth = depth + 1, .plain_repeat = true, .inst = Pc()});
      return Add({Op::kAtomic});
    }
    const Node& body = *n.kids[0];
    for (int i = 0; i < n.min; ++i) SIEVE_RETURN_IF_ERROR(Emit(body, depth));
    if (n.max < 0) {
      // loop: split(body, exit); body; jmp loop; exit:
      uint32_t loop = Pc();
      SIEVE_RETURN_IF_ERROR(Add({Op::kSplit}));
      SIEVE_RETURN_IF_ERROR(Emit(body, depth));
      SIEVE_RETURN_IF_ERROR(Add({Op::kJmp, loop}));
      SetSplit(loop, loop + 1, Pc(), n.greedy);
      return Status::Ok();
    }
    // (max - min) optional copies, each guarded by a split that can skip all remaining copies.
    std::vector<uint32_t> splits;
    for (int i = n.min; i < n.max; ++i) {
      splits.push_back(Pc());
      SIEVE_RETURN_IF_ERROR(Add({Op::kSplit}));
      SIEVE_RETURN_IF_ERROR(Emit(body, depth));
    }
    for (uint32_t s : splits) SetSplit(s, s + 1, Pc(), n.greedy);
    return Status::Ok();
  }

  void SetSplit(uint32_t pc, uint32_t body, uint32_t exit, bool greedy) {
    prog_->insts[pc].a = greedy ? body : exit;
    prog_->insts[pc].b = greedy ? exit : body;
  }

  Program* prog_;
  std::vector<Work> work_;
};

// First-character analysis: can the node match empty, and which code points can start a
// non-empty match.
struct FirstInfo {
  bool nullable;
  CodePointSet first;
};

FirstInfo AnalyzeFirst(const Node& n, const Program& prog) {
  switch (n.kind) {
    case Node::Kind::kEmpty:
    case Node::Kind::kAssert:
    case Node::Kind::kLook:
      return {true, {}};
    case Node::Kind::kChar:
      return {false, CodePointSet::Of(n.cp)};
    case Node::Kind::kSet:
      return {false, prog.sets[n.set]};
    case Node::Kind::kAny:
      return {false, CodePointSet::All()};
    case Node::Kind::kAtomic:
      return AnalyzeFirst(*n.kids[0], prog);
    case Node::Kind::kConcat: {
      FirstInfo out{true, {}};
      for (const auto& k : n.kids) {
        FirstInfo f = AnalyzeFirst(*k, prog);
        out.first.AddSet(f.first);
        if (!f.nullable) {
          out.nullable = false;
          break;
        }
      }
      return out;
    }
    case Node::Kind::kAlt: {
      FirstInfo out{false, {}};
      for (const auto& k : n.kids) {
        FirstInfo f = AnalyzeFirst(*k, prog);
        out.first.AddSet(f.first);
        out.nullable = out.nullable || f.nullable;
      }
      return out;
    }
    case Node::Kind::kRepeat: {
      FirstInfo f = AnalyzeFirst(*n.kids[0], prog);
      if (n.min == 0) f.nullable = true;
      return f;
    }
  }
  return {true, {}};
}

// ---- Matcher ----

class Backtracker {
 public:
  Backtracker(const Program& prog, std::span<const char32_t> text)
      : prog_(prog), text_(text), scratch_(prog.max_depth + 1) {}

  // End of the leftmost-first match anchored at pos, or -1.
  ptrdiff_t Run(uint32_t start_pc, size_t pos, int depth) {
    Scratch& sc = scratch_[depth];
    sc.stack.clear();
    sc.stack.emplace_back(start_pc, pos);
    const size_t n = text_.size();
    const size_t nsplits = prog_.num_splits;
    size_t max_bit = 0;
    bool marked = false;
    ptrdiff_t result = -1;
    while (!sc.stack.empty() && result < 0) {
      auto [pc, sp] = sc.stack.back();
      sc.stack.pop_back();
      for (;;) {
        const Inst& in = prog_.insts[pc];
        bool ok = true;
        switch (in.op) {
          case Op::kChar:
            ok = sp < n && text_[sp] == in.a;
            if (ok) ++pc, ++sp;
            break;
          case Op::kSet:
            ok = sp < n && prog_.sets[in.a].Contains(text_[sp]);
            if (ok) ++pc, ++sp;
            break;
          case Op::kAny:
            ok = sp < n && (in.a || text_[sp] != '\n');
            if (ok) ++pc, ++sp;
            break;
          case Op::kSplit: {
            size_t bit = (sp - pos) * nsplits + prog_.split_index[pc];
            size_t word = bit >> 6;
            if (word >= sc.visited.size())
              sc.visited.resize(std::max(word + 1, sc.visited.size() * 2));
            uint64_t mask = 1ull << (bit & 63);
            if (sc.visited[word] & mask) {
              ok = false;
              break;
            }
            sc.visited[word] |= mask;
            max_bit = std::max(max_bit, bit);
            marked = true;
            sc.stack.emplace_back(in.b, sp);
            pc = in.a;
            break;
          }
          case Op::kJmp:
            pc = in.a;
            break;
          case Op::kAssert:
            ok = CheckAssert(static_cast<AssertKind>(in.a), sp);
            if (ok) ++pc;
            break;
          case Op::kLook: {
            const LookInfo& look = prog_.looks[in.a];
            bool found = false;
            for (const auto& [body_pc, width] : look.bodies) {
              if (look.behind) {
                if (sp < width) continue;
                found = Run(body_pc, sp - width, depth + 1) >= 0;
              } else {
                found = Run(body_pc, sp, depth + 1) >= 0;
              }
              if (found) break;
            }
            ok = found != look.negate;
            if (ok) ++pc;
            break;
          }
          case Op::kAtomic: {
            ptrdiff_t e = Run(in.a, sp, depth + 1);
            ok = e >= 0;
            if (ok) {
              sp = static_cast<size_t>(e);
              ++pc;
            }
            break;
          }
          case Op::kMatch:
            result = static_cast<ptrdiff_t>(sp);
            ok = false;  // leave the inner loop
            break;
        }
        if (!ok) break;
      }
    }
    if (marked) std::fill(sc.visited.begin(), sc.visited.begin() + (max_bit >> 6) + 1, 0);
    return result;
  }

  // Leftmost match starting at or after `from`: sets *begin and returns the end, or -1.
  ptrdiff_t Search(size_t from, size_t* begin) {
    const size_t n = text_.size();
    for (size_t s = from; s <= n; ++s) {
      if (!prog_.nullable && (s == n || !prog_.first.Contains(text_[s]))) continue;
      ptrdiff_t e = Run(prog_.start, s, 0);
      if (e >= 0) {
        *begin = s;
        return e;
      }
    }
    return -1;
  }

 private:
  struct Scratch {
    std::vector<std::pair<uint32_t, size_t>> stack;
    std::vector<uint64_t> visited;
  };

  bool CheckAssert(AssertKind k, size_t sp) const {
    const size_t n = text_.size();
    switch (k) {
      case AssertKind::kLineStart:
        return sp == 0 || text_[sp - 1] == '\n';
      case AssertKind::kLineEnd:
        return sp == n || text_[sp] == '\n';
      case AssertKind::kTextStart:
        return sp == 0;
      case AssertKind::kTextEnd:
        return sp == n;
      case AssertKind::kTextEndNewline:
        return sp == n || (sp + 1 == n && text_[sp] == '\n');
      case AssertKind::kWordBoundary:
      case AssertKind::kNotWordBoundary: {
        bool before = sp > 0 && prog_.word.Contains(text_[sp - 1]);
        bool after = sp < n && prog_.word.Contains(text_[sp]);
        return (before != after) == (k == AssertKind::kWordBoundary);
      }
    }
    return false;
  }

  const Program& prog_;
  std::span<const char32_t> text_;
  std::vector<Scratch> scratch_;
};

// ---- Hand-written matchers ----
// Each returns the end of the match anchored at i (always > i: both patterns match every code
// point and never match empty). The comments give the alternative being reproduced.

inline bool IsCrLf(char32_t c) { return c == '\r' || c == '\n'; }

// A code point outside \s, \p{L} and \p{N} ("other" in both patterns).
inline bool IsOther(char32_t c) {
  return !unicode::IsWhiteSpace(c) &&
         !unicode::InCategories(c, unicode::kLetterMask | unicode::kNumberMask);
}

// Simple case folding restricted to what the contraction letters can meet: ASCII letters,
// U+017F (long s -> s) and U+212A (Kelvin -> k). No other code point folds to an ASCII letter.
inline char32_t FoldContractionLetter(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c == 0x017F) return 's';
  if (c == 0x212A) return 'k';
  return c;
}

// Shared tail: \s+(?!\S)|\s+ from i (text[i] is white space). With `crlf_alt`, first
// \s*[\r\n]+ (Llama-3).
inline size_t MatchSpaces(std::span<const char32_t> t, size_t i, bool crlf_alt) {
  const size_t n = t.size();
  size_t j = i + 1;
  while (j < n && unicode::IsWhiteSpace(t[j])) ++j;
  if (crlf_alt) {
    // \s* backtracks from the end of the run to the last CR/LF in it; [\r\n]+ then stops there.
    for (size_t k = j; k > i; --k) {
      if (IsCrLf(t[k - 1])) return k;
    }
  }
  if (j == n) return j;          // \s+(?!\S) at the end of the text
  if (j - i >= 2) return j - 1;  // \s+(?!\S) leaves the last space for the next word
  return j;                      // \s+
}

size_t MatchLlama3(std::span<const char32_t> t, size_t i) {
  const size_t n = t.size();
  const char32_t c = t[i];
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
  if (c == '\'' && i + 1 < n) {
    char32_t c1 = FoldContractionLetter(t[i + 1]);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
    if (i + 2 < n) {
      char32_t c2 = FoldContractionLetter(t[i + 2]);
      if (((c1 == 'r' || c1 == 'v') && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return i + 3;
    }
  }
  const unicode::GeneralCategory cat = unicode::CategoryOf(c);
  const bool is_letter = unicode::CategoryBit(cat) & unicode::kLetterMask;
  const bool is_number = unicode::CategoryBit(cat) & unicode::kNumberMask;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  size_t k = i;
  if (!is_letter && !is_number && !IsCrLf(c) && i + 1 < n && unicode::IsLetter(t[i + 1])) {
    k = i + 1;
  }
  if (k > i || is_letter) {
    size_t j = k + 1;
    while (j < n && unicode::IsLetter(t[j])) ++j;
    return j;
  }
  // \p{N}{1,3}
  if (is_number) {
    size_t j = i + 1;
    while (j < n && j < i + 3 && unicode::IsNumber(t[j])) ++j;
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  k = (c == ' ' && i + 1 < n && IsOther(t[i + 1])) ? i + 1 : i;
  if (k > i || !unicode::IsWhiteSpace(c)) {
    size_t j = k + 1;
    while (j < n && IsOther(t[j])) ++j;
    while (j < n && IsCrLf(t[j])) ++j;
    return j;
  }
  // \s*[\r\n]+|\s+(?!\S)|\s+
  return MatchSpaces(t, i, /*crlf_alt=*/true);
}

size_t MatchGpt2(std::span<const char32_t> t, size_t i) {
  const size_t n = t.size();
  const char32_t c = t[i];
  // 's|'t|'re|'ve|'m|'ll|'d
  if (c == '\'' && i + 1 < n) {
    char32_t c1 = t[i + 1];
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
    if (i + 2 < n) {
      char32_t c2 = t[i + 2];
      if (((c1 == 'r' || c1 == 'v') && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return i + 3;
    }
  }
  //  ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+ : the optional space binds to the class of what follows.
  auto run = [&](size_t from, auto pred) {
    size_t j = from + 1;
    while (j < n && pred(t[j])) ++j;
    return j;
  };
  auto is_letter = [](char32_t x) { return unicode::IsLetter(x); };
  auto is_number = [](char32_t x) { return unicode::IsNumber(x); };
  const bool spaced = c == ' ' && i + 1 < n;
  if (spaced && is_letter(t[i + 1])) return run(i + 1, is_letter);
  if (is_letter(c)) return run(i, is_letter);
  if (spaced && is_number(t[i + 1])) return run(i + 1, is_number);
  if (is_number(c)) return run(i, is_number);
  if (spaced && IsOther(t[i + 1])) return run(i + 1, IsOther);
  if (IsOther(c)) return run(i, IsOther);
  // \s+(?!\S)|\s+
  return MatchSpaces(t, i, /*crlf_alt=*/false);
}

}  // namespace

StatusOr<PretokenizerRegex> PretokenizerRegex::Compile(std::string_view pattern,
                                                       bool allow_fast_path) {
  size_t bad = unicode::FindInvalidUtf8(pattern);
  if (bad != std::string_view::npos) {
    return Status::InvalidArgument(
        StrFormat("regex: pattern is not valid UTF-8 (byte offset %zu)", bad));
  }
  std::u32string cps;
  for (size_t i = 0; i < pattern.size();) cps.push_back(unicode::DecodeValid(pattern, &i));

  auto prog = std::make_shared<Program>();
  Parser parser(std::move(cps), prog.get());
  SIEVE_ASSIGN_OR_RETURN(NodePtr root, parser.Parse());
  SIEVE_RETURN_IF_ERROR(Compiler(prog.get()).Compile(*root));
  FirstInfo first = AnalyzeFirst(*root, *prog);
  prog->nullable = first.nullable;
  prog->first = std::move(first.first);
  prog->word = CodePointSet::Word();

  PretokenizerRegex re;
  re.pattern_ = std::string(pattern);
  re.program_ = std::move(prog);
  if (allow_fast_path) {
    if (pattern == kLlama3SplitPattern) re.matcher_ = Matcher::kLlama3;
    if (pattern == kGpt2SplitPattern) re.matcher_ = Matcher::kGpt2;
  }
  return re;
}

PretokenizerRegex::PretokenizerRegex(PretokenizerRegex&&) noexcept = default;
PretokenizerRegex& PretokenizerRegex::operator=(PretokenizerRegex&&) noexcept = default;
PretokenizerRegex::PretokenizerRegex(const PretokenizerRegex&) = default;
PretokenizerRegex& PretokenizerRegex::operator=(const PretokenizerRegex&) = default;
PretokenizerRegex::~PretokenizerRegex() = default;

void PretokenizerRegex::FindAll(std::span<const char32_t> text,
                                std::vector<RegexMatch>* out) const {
  const size_t n = text.size();
  if (matcher_ != Matcher::kGeneric) {
    auto match = matcher_ == Matcher::kLlama3 ? MatchLlama3 : MatchGpt2;
    for (size_t i = 0; i < n;) {
      size_t e = match(text, i);
      out->push_back({i, e});
      i = e;
    }
    return;
  }
  // The onig crate's find_iter: search from the previous match end; an empty match found while
  // the search starts right at the previous match end is skipped by advancing one code point.
  Backtracker m(*program_, text);
  size_t last_end = 0;
  std::optional<size_t> last_match_end;
  while (last_end <= n) {
    size_t begin = 0;
    ptrdiff_t e = m.Search(last_end, &begin);
    if (e < 0) break;
    size_t end = static_cast<size_t>(e);
    if (begin == end && last_match_end == last_end) {
      ++last_end;
      continue;
    }
    last_end = end;
    last_match_end = end;
    out->push_back({begin, end});
  }
}

ptrdiff_t PretokenizerRegex::MatchAt(std::span<const char32_t> text, size_t pos) const {
  if (pos > text.size()) return -1;
  if (matcher_ == Matcher::kLlama3) return pos < text.size() ? MatchLlama3(text, pos) : -1;
  if (matcher_ == Matcher::kGpt2) return pos < text.size() ? MatchGpt2(text, pos) : -1;
  Backtracker m(*program_, text);
  return m.Run(program_->start, pos, 0);
}

}  // namespace sieve::coordinator
