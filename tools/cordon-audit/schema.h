// Schema cordon.audit/1 (docs/audit.md) in one place: the record's fields,
// the events and their arguments. validate, summary and follow read records
// through CheckRecord and StreamChecker; `cordon-audit schema` writes the
// JSON Schema (docs/audit-schema-v1.json) from the same tables.
#ifndef CORDON_TOOLS_CORDON_AUDIT_SCHEMA_H_
#define CORDON_TOOLS_CORDON_AUDIT_SCHEMA_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/base/expected.h"
#include "tools/cordon-audit/json.h"

namespace cordon::audit {

inline constexpr char kSchemaName[] = "cordon.audit/1";

// An argument's type, as the record's "type" names it.
enum class ArgType { kInt, kU64, kSizeT, kPointer, kString, kPointerArray };
const char* ArgTypeName(ArgType t);

struct ArgSpec {
  ArgSpec(const char* n, ArgType t, std::vector<const char*> v = {}, bool sha = false, int len = 0)
      : name(n), type(t), values(std::move(v)), sha256(sha), length(len) {}
  const char* name;
  ArgType type;
  std::vector<const char*> values;  // a string's fixed set of values; empty: any
  bool sha256 = false;              // a string of 64 lowercase hex digits
  int length = 0;                   // kPointerArray: exactly this many values
};

struct EventSpec {
  int id;
  const char* name;
  std::vector<ArgSpec> args;
};

// The events, in eventId order (ids 1..N).
const std::vector<EventSpec>& Events();
const EventSpec* FindEvent(std::string_view name);

// A record's top-level field: its name and JSON type, in the record's order.
// The optional ones come last (the mac: only a stream with a key has it).
enum class FieldType { kU64, kPid, kString, kEventId, kArgsNum, kArgs, kMac };
struct FieldSpec {
  const char* name;
  FieldType type;
  bool optional = false;
};
const std::vector<FieldSpec>& Fields();

// One argument's value, decoded according to its spec.
struct Arg {
  const ArgSpec* spec = nullptr;
  int64_t i = 0;               // kInt
  uint64_t u = 0;              // kU64, kSizeT, kPointer
  std::string s;               // kString (the bytes)
  std::vector<uint64_t> list;  // kPointerArray
};

struct Record {
  uint64_t timestamp = 0;
  uint64_t seq = 0;
  int64_t pid = 0;
  int64_t tid = 0;
  std::string process_name;
  const EventSpec* event = nullptr;
  std::vector<Arg> args;  // in the spec's order
  std::string mac;        // 64 lowercase hex digits, or empty: the record has none

  // The named argument (the name must be one of the event's).
  const Arg& Get(std::string_view name) const;
  int64_t Int(std::string_view name) const { return Get(name).i; }
  uint64_t U64(std::string_view name) const { return Get(name).u; }
  const std::string& Str(std::string_view name) const { return Get(name).s; }
};

// One line (without its '\n') checked against the schema: ASCII, JSON, the
// fields in order, the event's arguments. The error says what and where.
Expected<Record> ReadRecord(std::string_view line);

// The key a stream's records are authenticated with (docs/audit.md,
// "Authenticated records").
struct MacKey {
  uint8_t bytes[32];
};
// A key as its file or variable holds it: 64 hex digits (either case),
// optionally one trailing newline. The error says what is wrong, never
// the digits.
Expected<MacKey> ParseKey(std::string_view text);
// Empty when the record `line` (read into r) carries the mac `key` gives
// its text: HMAC-SHA256 of the line up to, not including, its `,"mac":`;
// else why it is a forged or altered record.
std::string Authenticate(std::string_view line, const Record& r, const MacKey& key);

// The rules across records of a stream: per process, seq 0 is cordon_init,
// then +1 per record, where a gap must be the audit_lost record's own
// `lost`; a process keeps the processName of its cordon_init. A cordon_init
// at seq 0 from a known pid starts a new stream (the pid was reused, or the
// program called exec), unless its timestamp is before that process's last
// record's: then it is the stream's own start written again (a replay).
class StreamChecker {
 public:
  struct Gap {
    int64_t pid;
    uint64_t from, to;  // seq numbers missing: from .. to inclusive
    bool reported;      // by the audit_lost right after it
    size_t line;
  };
  // Empty when the record fits; else why not (the record is then not
  // counted as the process's: the next one is checked against the same
  // expectation).
  std::string Check(const Record& r, size_t line);
  const std::vector<Gap>& gaps() const { return gaps_; }

 private:
  struct Process {
    uint64_t next_seq;
    std::string name;
    uint64_t last_timestamp;  // of its latest record
  };
  std::map<int64_t, Process> processes_;
  std::vector<Gap> gaps_;
};

// The JSON Schema (draft 2020-12) of one record, from the tables above.
json::Value JsonSchema();

}  // namespace cordon::audit

#endif
