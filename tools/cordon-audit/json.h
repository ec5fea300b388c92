// A small strict JSON reader and writer for the audit stream (docs/audit.md).
// Strict where RFC 8259 leaves room: one value and nothing after it but
// whitespace, no duplicate keys, integers only where they fit 64 bits,
// ASCII input only (the stream escapes every byte >= 0x80), a nesting
// limit. Objects keep their members in order: the schema fixes the order.
#ifndef CORDON_TOOLS_CORDON_AUDIT_JSON_H_
#define CORDON_TOOLS_CORDON_AUDIT_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/base/expected.h"

namespace cordon::audit::json {

enum class Kind { kNull, kBool, kInteger, kReal, kString, kArray, kObject };

struct Value {
  Kind kind = Kind::kNull;
  bool boolean = false;
  // kInteger: the sign and the magnitude (-2^63 .. 2^64-1).
  bool negative = false;
  uint64_t magnitude = 0;
  // kReal: the number as written (it has a fraction or an exponent).
  // kString: the decoded text, one char per byte for \u0000-\u00ff and
  // UTF-8 above.
  std::string text;
  bool wide_escape = false;                            // kString: a \u escape above \u00ff
  std::vector<Value> items;                            // kArray
  std::vector<std::pair<std::string, Value>> members;  // kObject, in order
  size_t offset = 0;                                   // where the value starts in the parsed text

  bool IsInt64() const;
  bool IsUint64() const { return kind == Kind::kInteger && !negative; }
  int64_t AsInt64() const;  // IsInt64() must hold
  uint64_t AsUint64() const { return magnitude; }
  const Value* Find(std::string_view key) const;  // kObject member, or null

  static Value String(std::string s);
  static Value Int(int64_t v);
  static Value Uint(uint64_t v);
  static Value Bool(bool b);
  static Value Array(std::vector<Value> items);
  static Value Object(std::vector<std::pair<std::string, Value>> members);
};

// The JSON type's name for messages: "null", "boolean", "integer",
// "number", "string", "array", "object".
const char* KindName(Kind k);

// Parses one complete JSON text. The error says where (1-based column) and
// what.
Expected<Value> Parse(std::string_view text);

// Writes `v`; `indent` > 0 pretty-prints with that many spaces per level
// (arrays of scalars stay on one line). Strings are written ASCII-only:
// bytes >= 0x80 and control bytes as \u00XX.
std::string Write(const Value& v, int indent = 0);

// A JSON string literal of `s` (quotes included), as Write() writes it.
std::string Quote(std::string_view s);

}  // namespace cordon::audit::json

#endif
