// The audit stream's strict JSON reader and writer (json.h).
#include "tools/cordon-audit/json.h"

#include <cstdio>
#include <limits>

namespace cordon::audit::json {

bool Value::IsInt64() const {
  if (kind != Kind::kInteger) return false;
  return negative ? magnitude <= (uint64_t{1} << 63)
                  : magnitude <= uint64_t{std::numeric_limits<int64_t>::max()};
}

int64_t Value::AsInt64() const {
  // Two's complement by hand: -(2^63) has no positive int64.
  return negative ? static_cast<int64_t>(~magnitude + 1) : static_cast<int64_t>(magnitude);
}

const Value* Value::Find(std::string_view key) const {
  for (const auto& m : members) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

Value Value::String(std::string s) {
  Value v;
  v.kind = Kind::kString;
  v.text = std::move(s);
  return v;
}

Value Value::Int(int64_t i) {
  Value v;
  v.kind = Kind::kInteger;
  v.negative = i < 0;
  v.magnitude = i < 0 ? ~static_cast<uint64_t>(i) + 1 : static_cast<uint64_t>(i);
  return v;
}

Value Value::Uint(uint64_t u) {
  Value v;
  v.kind = Kind::kInteger;
  v.magnitude = u;
  return v;
}

Value Value::Bool(bool b) {
  Value v;
  v.kind = Kind::kBool;
  v.boolean = b;
  return v;
}

Value Value::Array(std::vector<Value> items) {
  Value v;
  v.kind = Kind::kArray;
  v.items = std::move(items);
  return v;
}

Value Value::Object(std::vector<std::pair<std::string, Value>> members) {
  Value v;
  v.kind = Kind::kObject;
  v.members = std::move(members);
  return v;
}

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "boolean";
    case Kind::kInteger:
      return "integer";
    case Kind::kReal:
      return "number";
    case Kind::kString:
      return "string";
    case Kind::kArray:
      return "array";
    case Kind::kObject:
      return "object";
  }
  return "?";
}

namespace {

// Deep enough for any record (three levels), shallow enough that hostile
// input cannot exhaust the stack.
constexpr int kMaxDepth = 32;

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Expected<Value> Document() {
    for (size_t i = 0; i < s_.size(); ++i) {
      const auto c = static_cast<unsigned char>(s_[i]);
      if (c >= 0x80) return Fail(i, "non-ASCII byte 0x" + Hex2(c) + " (the stream escapes bytes >= 0x80)");
    }
    SkipSpace();
    Value v;
    if (!ParseValue(&v, 0)) return Error{error_};
    SkipSpace();
    if (pos_ != s_.size()) return Fail(pos_, "trailing characters after the JSON value");
    return v;
  }

 private:
  static std::string Hex2(unsigned c) {
    char b[4];
    snprintf(b, sizeof b, "%02x", c & 0xff);
    return b;
  }

  Error Fail(size_t at, const std::string& what) {
    return Error{"column " + std::to_string(at + 1) + ": " + what};
  }
  bool Bad(size_t at, const std::string& what) {
    error_ = Fail(at, what).message;
    return false;
  }

  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Bad(pos_, "invalid literal");
    pos_ += word.size();
    return true;
  }

  bool ParseValue(Value* v, int depth) {
    if (depth > kMaxDepth) return Bad(pos_, "nesting deeper than " + std::to_string(kMaxDepth));
    if (pos_ >= s_.size()) return Bad(pos_, "unexpected end of input, a value expected");
    v->offset = pos_;
    const char c = s_[pos_];
    switch (c) {
      case '{':
        return ParseObject(v, depth);
      case '[':
        return ParseArray(v, depth);
      case '"':
        v->kind = Kind::kString;
        return ParseString(&v->text, &v->wide_escape);
      case 't':
        v->kind = Kind::kBool;
        v->boolean = true;
        return Literal("true");
      case 'f':
        v->kind = Kind::kBool;
        return Literal("false");
      case 'n':
        v->kind = Kind::kNull;
        return Literal("null");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(v);
        return Bad(pos_, std::string("unexpected character '") +
                             (c >= 0x20 && c < 0x7f ? std::string(1, c)
                                                    : "\\x" + Hex2(static_cast<unsigned char>(c))) +
                             "'");
    }
  }

  bool ParseObject(Value* v, int depth) {
    v->kind = Kind::kObject;
    ++pos_;
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Bad(pos_, "a member name (a string) expected");
      const size_t key_at = pos_;
      std::string key;
      bool wide = false;
      if (!ParseString(&key, &wide)) return false;
      if (v->Find(key)) return Bad(key_at, "duplicate key " + Quote(key));
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Bad(pos_, "':' expected after a member name");
      ++pos_;
      SkipSpace();
      Value member;
      if (!ParseValue(&member, depth + 1)) return false;
      v->members.emplace_back(std::move(key), std::move(member));
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return Bad(pos_,
                 pos_ >= s_.size() ? "unexpected end of input inside an object" : "',' or '}' expected");
    }
  }

  bool ParseArray(Value* v, int depth) {
    v->kind = Kind::kArray;
    ++pos_;
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      SkipSpace();
      Value item;
      if (!ParseValue(&item, depth + 1)) return false;
      v->items.push_back(std::move(item));
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return Bad(pos_, pos_ >= s_.size() ? "unexpected end of input inside an array" : "',' or ']' expected");
    }
  }

  static int HexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool Hex4(size_t at, unsigned* out) {
    if (at + 4 > s_.size()) return Bad(at - 2, "truncated \\u escape");
    unsigned v = 0;
    for (size_t i = 0; i < 4; ++i) {
      const int d = HexDigit(s_[at + i]);
      if (d < 0) return Bad(at - 2, "bad \\u escape (four hex digits expected)");
      v = v * 16 + static_cast<unsigned>(d);
    }
    *out = v;
    return true;
  }

  static void AppendUtf8(std::string* out, unsigned cp) {
    if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    }
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }

  bool ParseString(std::string* out, bool* wide) {
    const size_t start = pos_;
    ++pos_;  // the opening quote
    for (;;) {
      if (pos_ >= s_.size()) return Bad(start, "unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20)
        return Bad(pos_, "control byte 0x" + Hex2(static_cast<unsigned char>(c)) +
                             " inside a string (must be escaped)");
      if (c != '\\') {
        out->push_back(c);
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= s_.size()) return Bad(pos_, "unterminated escape");
      const char e = s_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          unsigned cp = 0;
          if (!Hex4(pos_, &cp)) return false;
          pos_ += 4;
          if (cp <= 0xff) {
            out->push_back(static_cast<char>(cp));  // a byte, as the stream writes them
            break;
          }
          *wide = true;
          if (cp >= 0xdc00 && cp <= 0xdfff) return Bad(pos_ - 6, "lone low surrogate in a \\u escape");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            unsigned lo = 0;
            if (s_.substr(pos_, 2) != "\\u") return Bad(pos_ - 6, "high surrogate without its low half");
            if (!Hex4(pos_ + 2, &lo)) return false;
            if (lo < 0xdc00 || lo > 0xdfff) return Bad(pos_ - 6, "high surrogate without its low half");
            pos_ += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return Bad(pos_ - 2,
                     std::string("bad escape '\\") + (e >= 0x20 && e < 0x7f ? std::string(1, e) : "?") + "'");
      }
    }
  }

  bool ParseNumber(Value* v) {
    const size_t start = pos_;
    bool neg = false;
    if (s_[pos_] == '-') {
      neg = true;
      ++pos_;
    }
    auto digit = [&](size_t i) { return i < s_.size() && s_[i] >= '0' && s_[i] <= '9'; };
    if (!digit(pos_)) return Bad(start, "a digit expected in a number");
    const size_t int_start = pos_;
    if (s_[pos_] == '0') {
      ++pos_;
      if (digit(pos_)) return Bad(start, "leading zero in a number");
    } else {
      while (digit(pos_)) ++pos_;
    }
    const size_t int_end = pos_;
    bool real = false;
    if (pos_ < s_.size() && s_[pos_] == '.') {
      real = true;
      ++pos_;
      if (!digit(pos_)) return Bad(start, "a digit expected after the decimal point");
      while (digit(pos_)) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      real = true;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digit(pos_)) return Bad(start, "a digit expected in the exponent");
      while (digit(pos_)) ++pos_;
    }
    if (real) {
      v->kind = Kind::kReal;
      v->text = std::string(s_.substr(start, pos_ - start));
      return true;
    }
    uint64_t m = 0;
    for (size_t i = int_start; i < int_end; ++i) {
      const uint64_t d = static_cast<uint64_t>(s_[i] - '0');
      if (m > (std::numeric_limits<uint64_t>::max() - d) / 10)
        return Bad(start, "integer " + std::string(s_.substr(start, pos_ - start)) + " out of 64-bit range");
      m = m * 10 + d;
    }
    if (neg && m > (uint64_t{1} << 63))
      return Bad(start, "integer " + std::string(s_.substr(start, pos_ - start)) + " out of 64-bit range");
    v->kind = Kind::kInteger;
    v->negative = neg && m != 0;
    v->magnitude = m;
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

bool IsScalar(const Value& v) {
  return v.kind != Kind::kArray && v.kind != Kind::kObject;
}

void WriteTo(const Value& v, int indent, int level, std::string* out) {
  auto newline = [&](int lvl) {
    if (indent <= 0) return;
    out->push_back('\n');
    out->append(static_cast<size_t>(indent * lvl), ' ');
  };
  switch (v.kind) {
    case Kind::kNull:
      out->append("null");
      return;
    case Kind::kBool:
      out->append(v.boolean ? "true" : "false");
      return;
    case Kind::kInteger:
      if (v.negative) out->push_back('-');
      out->append(std::to_string(v.magnitude));
      return;
    case Kind::kReal:
      out->append(v.text);
      return;
    case Kind::kString:
      out->append(Quote(v.text));
      return;
    case Kind::kArray: {
      bool flat = true;
      for (const Value& i : v.items) flat &= IsScalar(i);
      out->push_back('[');
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i) out->append(flat && indent > 0 ? ", " : ",");
        if (!flat) newline(level + 1);
        WriteTo(v.items[i], indent, level + 1, out);
      }
      if (!flat && !v.items.empty()) newline(level);
      out->push_back(']');
      return;
    }
    case Kind::kObject: {
      // {"const": 1} stays on one line.
      const bool flat = v.members.size() == 1 && IsScalar(v.members[0].second);
      out->push_back('{');
      for (size_t i = 0; i < v.members.size(); ++i) {
        if (i) out->push_back(',');
        if (!flat) newline(level + 1);
        out->append(Quote(v.members[i].first));
        out->append(indent > 0 ? ": " : ":");
        WriteTo(v.members[i].second, indent, level + 1, out);
      }
      if (!flat && !v.members.empty()) newline(level);
      out->push_back('}');
      return;
    }
  }
}

}  // namespace

Expected<Value> Parse(std::string_view text) {
  return Parser(text).Document();
}

std::string Write(const Value& v, int indent) {
  std::string out;
  WriteTo(v, indent, 0, &out);
  return out;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\t') {
      out.append("\\t");
    } else if (c < 0x20 || c >= 0x7f) {
      char b[8];
      snprintf(b, sizeof b, "\\u%04x", c);
      out.append(b);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace cordon::audit::json
