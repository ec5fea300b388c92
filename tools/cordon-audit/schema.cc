// Schema cordon.audit/1: the tables, the record and stream checks, and the
// JSON Schema written from the tables (schema.h). docs/audit.md is the
// contract; tests/audit/schema_agreement_test.py checks that these tables,
// docs/audit.md and docs/audit-schema-v1.json say the same.
#include "tools/cordon-audit/schema.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <limits>

#include "runtime/audit/hmac.h"

namespace cordon::audit {

using json::Kind;
using json::Value;

namespace {

// Each argument type: the name records give it, and its JSON Schema
// definition's name (a JSON pointer wants no '*', '[' or space). In
// ArgType's order.
struct TypeNames {
  ArgType type;
  const char* name;
  const char* def;
};
constexpr TypeNames kTypes[] = {
    {ArgType::kInt, "int", "int"},
    {ArgType::kU64, "u64", "u64"},
    {ArgType::kSizeT, "size_t", "size_t"},
    {ArgType::kPointer, "void*", "pointer"},
    {ArgType::kString, "const char*", "string"},
    {ArgType::kPointerArray, "unsigned long[]", "pointer_array"},
};

const TypeNames& Names(ArgType t) {
  return kTypes[static_cast<size_t>(t)];
}

}  // namespace

const char* ArgTypeName(ArgType t) {
  return Names(t).name;
}

const std::vector<EventSpec>& Events() {
  using T = ArgType;
  static const std::vector<EventSpec> events = {
      {1,
       "cordon_init",
       {{"version", T::kString},
        {"platform", T::kString},
        {"trusted_pkey", T::kInt},
        {"inspect_policy", T::kString, {"neutralize", "refuse"}}}},
      {2,
       "inspection_finding",
       {{"address", T::kPointer},
        {"kind", T::kString, {"WRPKRU", "XRSTOR"}},
        {"verdict", T::kString, {"gate_site", "instruction", "hidden"}},
        {"action", T::kString, {"none", "neutralized", "refused", "relocated"}},
        {"object", T::kString},
        {"symbol", T::kString}}},
      {3,
       "domain_create",
       {{"domain", T::kInt},
        {"name", T::kString},
        {"pkey", T::kInt},
        {"region_start", T::kPointer},
        {"region_size", T::kSizeT}}},
      {4, "cordon_lockdown", {{"violation", T::kString, {"kill", "errno_for_tests"}}, {"status", T::kInt}}},
      {5,
       "code_publish",
       {{"block", T::kPointer},
        {"length", T::kSizeT},
        {"sha256", T::kString, {}, /*sha256=*/true},
        {"verdict", T::kString, {"published", "refused"}},
        {"status", T::kInt}}},
      {6, "code_release", {{"block", T::kPointer}, {"status", T::kInt}}},
      {7,
       "syscall_refused",
       {{"syscall", T::kInt},
        {"syscall_name", T::kString},
        {"syscall_args", T::kPointerArray, {}, false, /*length=*/6},
        {"ip", T::kPointer},
        {"action", T::kString, {"killed", "errno"}}}},
      {8,
       "pkey_fault",
       {{"address", T::kPointer},
        {"pkey", T::kInt},
        {"domain", T::kInt},
        {"si_code", T::kInt},
        {"ip", T::kPointer},
        {"action", T::kString, {"handler", "killed"}}}},
      {9,
       "gate_calls",
       {{"domain", T::kInt}, {"entry", T::kInt}, {"entry_name", T::kString}, {"count", T::kU64}}},
      {10, "audit_lost", {{"lost", T::kU64}}},
      {11, "fatal", {{"message", T::kString}, {"domain", T::kInt}}},
  };
  return events;
}

const EventSpec* FindEvent(std::string_view name) {
  for (const EventSpec& e : Events()) {
    if (name == e.name) return &e;
  }
  return nullptr;
}

const std::vector<FieldSpec>& Fields() {
  using F = FieldType;
  static const std::vector<FieldSpec> fields = {
      {"timestamp", F::kU64},
      {"schema", F::kString},
      {"seq", F::kU64},
      {"processId", F::kPid},
      {"threadId", F::kPid},
      {"processName", F::kString},
      {"eventId", F::kEventId},
      {"eventName", F::kString},
      {"argsNum", F::kArgsNum},
      {"args", F::kArgs},
      {"mac", F::kMac, /*optional=*/true},
  };
  return fields;
}

const Arg& Record::Get(std::string_view name) const {
  for (const Arg& a : args) {
    if (name == a.spec->name) return a;
  }
  // A programming error: the callers name arguments from the table.
  fprintf(stderr, "cordon-audit: internal error: %s has no argument %.*s\n", event->name,
          static_cast<int>(name.size()), name.data());
  abort();
}

namespace {

// "0x" and lowercase hex, no leading zeros, at most 64 bits.
bool ParsePointer(const std::string& s, uint64_t* out) {
  if (s.size() < 3 || s.size() > 18 || s[0] != '0' || s[1] != 'x') return false;
  if (s[2] == '0' && s.size() > 3) return false;
  uint64_t v = 0;
  for (size_t i = 2; i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      v = v * 16 + static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v = v * 16 + static_cast<uint64_t>(c - 'a' + 10);
    } else {
      return false;
    }
  }
  *out = v;
  return true;
}

bool IsSha256(const std::string& s) {
  if (s.size() != 64) return false;
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string Got(const Value& v) {
  if (v.kind == Kind::kInteger || v.kind == Kind::kReal || v.kind == Kind::kBool || v.kind == Kind::kNull)
    return std::string(json::KindName(v.kind)) + " " + json::Write(v);
  return json::KindName(v.kind);
}

// A string that is bytes: every \u escape at most \u00ff.
std::string CheckBytes(const Value& v, const std::string& what) {
  if (v.kind != Kind::kString) return what + " must be a string, not " + Got(v);
  if (v.wide_escape) return what + " has a \\u escape above \\u00ff (the stream escapes single bytes)";
  return "";
}

std::string CheckArgValue(const ArgSpec& spec, const Value& v, Arg* out) {
  const std::string what = std::string("argument ") + spec.name + " (" + ArgTypeName(spec.type) + ")";
  switch (spec.type) {
    case ArgType::kInt:
      if (v.kind != Kind::kInteger || !v.IsInt64())
        return what + " must be a signed 64-bit integer, not " + Got(v);
      out->i = v.AsInt64();
      return "";
    case ArgType::kU64:
    case ArgType::kSizeT:
      if (!v.IsUint64()) return what + " must be an unsigned 64-bit integer, not " + Got(v);
      out->u = v.AsUint64();
      return "";
    case ArgType::kPointer:
      if (v.kind != Kind::kString) return what + " must be a \"0x\" hex string, not " + Got(v);
      if (!ParsePointer(v.text, &out->u))
        return what + " is " + json::Quote(v.text) + ", not \"0x\" and lowercase hex without leading zeros";
      return "";
    case ArgType::kString: {
      std::string e = CheckBytes(v, what);
      if (!e.empty()) return e;
      if (!spec.values.empty()) {
        bool known = false;
        std::string list;
        for (const char* s : spec.values) {
          known |= v.text == s;
          list += list.empty() ? s : std::string("|") + s;
        }
        if (!known) return what + " is " + json::Quote(v.text) + ", not one of " + list;
      }
      if (spec.sha256 && !IsSha256(v.text))
        return what + " is " + json::Quote(v.text) + ", not 64 lowercase hex digits";
      out->s = v.text;
      return "";
    }
    case ArgType::kPointerArray:
      if (v.kind != Kind::kArray) return what + " must be an array of \"0x\" hex strings, not " + Got(v);
      if (spec.length && v.items.size() != static_cast<size_t>(spec.length))
        return what + " has " + std::to_string(v.items.size()) + " values, not " +
               std::to_string(spec.length);
      for (size_t i = 0; i < v.items.size(); ++i) {
        const Value& item = v.items[i];
        uint64_t p = 0;
        if (item.kind != Kind::kString || !ParsePointer(item.text, &p))
          return what + " value " + std::to_string(i) + " is " +
                 (item.kind == Kind::kString ? json::Quote(item.text) : Got(item)) +
                 ", not \"0x\" and lowercase hex without leading zeros";
        out->list.push_back(p);
      }
      return "";
  }
  return "unknown type";
}

// The members of `v` must be exactly `names`, in that order; those from
// `required` on may be left out at the end.
std::string CheckMembers(const Value& v, const std::vector<const char*>& names, const std::string& where,
                         size_t required) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (i >= v.members.size() && i >= required) break;
    if (i >= v.members.size()) return where + "field \"" + names[i] + "\" missing";
    const std::string& have = v.members[i].first;
    if (have != names[i]) {
      bool known = false;
      for (const char* n : names) known |= have == n;
      if (!known && i >= required) return where + "unknown field " + json::Quote(have);
      if (!known) return where + "unknown field " + json::Quote(have) + " where \"" + names[i] + "\" belongs";
      if (v.Find(names[i]) == nullptr) return where + "field \"" + names[i] + "\" missing";
      return where + "fields out of order: " + json::Quote(have) + " where \"" + names[i] + "\" belongs";
    }
  }
  if (v.members.size() > names.size())
    return where + "unknown field " + json::Quote(v.members[names.size()].first);
  return "";
}

Error Fail(const std::string& what) {
  return Error{what};
}

}  // namespace

Expected<Record> ReadRecord(std::string_view line) {
  auto parsed = json::Parse(line);
  if (!parsed.ok()) return Fail("not JSON: " + parsed.error());
  const Value& v = *parsed;
  if (v.kind != Kind::kObject)
    return Fail(std::string("a record must be a JSON object, not ") + json::KindName(v.kind));
  std::vector<const char*> names;
  size_t required = 0;
  for (const FieldSpec& f : Fields()) {
    names.push_back(f.name);
    required += !f.optional;
  }
  std::string e = CheckMembers(v, names, "", required);
  if (!e.empty()) return Fail(e);

  Record r;
  const Value* event_id = nullptr;
  const Value* args_num = nullptr;
  const Value* args = nullptr;
  for (size_t i = 0; i < v.members.size(); ++i) {
    const FieldSpec& f = Fields()[i];
    const Value& m = v.members[i].second;
    const std::string what = std::string("field ") + f.name;
    switch (f.type) {
      case FieldType::kU64:
        if (!m.IsUint64()) return Fail(what + " must be an unsigned 64-bit integer, not " + Got(m));
        (std::string_view(f.name) == "seq" ? r.seq : r.timestamp) = m.AsUint64();
        break;
      case FieldType::kPid:
        if (!m.IsUint64() || m.AsUint64() < 1 || m.AsUint64() > uint64_t{std::numeric_limits<int32_t>::max()})
          return Fail(what + " must be an integer from 1 to 2147483647, not " + Got(m));
        (std::string_view(f.name) == "processId" ? r.pid : r.tid) = static_cast<int64_t>(m.AsUint64());
        break;
      case FieldType::kString: {
        e = CheckBytes(m, what);
        if (!e.empty()) return Fail(e);
        const std::string_view name = f.name;
        if (name == "schema" && m.text != kSchemaName)
          return Fail("field schema is " + json::Quote(m.text) + ", not \"" + kSchemaName + "\"");
        if (name == "processName") r.process_name = m.text;
        if (name == "eventName") {
          r.event = FindEvent(m.text);
          if (!r.event) return Fail("unknown eventName " + json::Quote(m.text));
        }
        break;
      }
      case FieldType::kEventId:
        event_id = &m;
        break;
      case FieldType::kArgsNum:
        args_num = &m;
        break;
      case FieldType::kArgs:
        args = &m;
        break;
      case FieldType::kMac:
        if (m.kind != Kind::kString || !IsSha256(m.text))
          return Fail(what + " must be 64 lowercase hex digits, not " +
                      (m.kind == Kind::kString ? json::Quote(m.text) : Got(m)));
        r.mac = m.text;
        break;
    }
  }
  const EventSpec& ev = *r.event;
  if (!event_id->IsUint64() || event_id->AsUint64() != static_cast<uint64_t>(ev.id))
    return Fail("field eventId is " + Got(*event_id) + ", but " + ev.name + " is event " +
                std::to_string(ev.id));
  if (args->kind != Kind::kArray) return Fail(std::string("field args must be an array, not ") + Got(*args));
  if (!args_num->IsUint64() || args_num->AsUint64() != args->items.size())
    return Fail("field argsNum is " + Got(*args_num) + ", but args has " +
                std::to_string(args->items.size()) + " entries");
  for (size_t i = 0; i < ev.args.size(); ++i) {
    const ArgSpec& spec = ev.args[i];
    if (i >= args->items.size())
      return Fail(std::string(ev.name) + ": argument " + spec.name + " missing (" +
                  std::to_string(ev.args.size()) + " expected, " + std::to_string(args->items.size()) +
                  " given)");
    const Value& a = args->items[i];
    const std::string where = std::string(ev.name) + ": args[" + std::to_string(i) + "]: ";
    if (a.kind != Kind::kObject) return Fail(where + "must be an object, not " + Got(a));
    e = CheckMembers(a, {"name", "type", "value"}, where, 3);
    if (!e.empty()) return Fail(e);
    const Value& name = a.members[0].second;
    const Value& type = a.members[1].second;
    if (name.kind != Kind::kString || name.text != spec.name) {
      const bool elsewhere = name.kind == Kind::kString && [&] {
        for (const ArgSpec& s : ev.args) {
          if (name.text == s.name) return true;
        }
        return false;
      }();
      return Fail(where + "name is " + (name.kind == Kind::kString ? json::Quote(name.text) : Got(name)) +
                  ", expected \"" + spec.name + "\"" + (elsewhere ? " (arguments out of order)" : ""));
    }
    if (type.kind != Kind::kString || type.text != ArgTypeName(spec.type))
      return Fail(where + "argument " + spec.name + " has type " +
                  (type.kind == Kind::kString ? json::Quote(type.text) : Got(type)) + ", expected \"" +
                  ArgTypeName(spec.type) + "\"");
    Arg out;
    out.spec = &spec;
    e = CheckArgValue(spec, a.members[2].second, &out);
    if (!e.empty()) return Fail(std::string(ev.name) + ": " + e);
    r.args.push_back(std::move(out));
  }
  if (args->items.size() > ev.args.size())
    return Fail(std::string(ev.name) + ": " + std::to_string(args->items.size()) + " arguments, expected " +
                std::to_string(ev.args.size()));
  return r;
}

Expected<MacKey> ParseKey(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  MacKey key{};
  if (text.size() != 2 * sizeof key.bytes)
    return Fail("the key has " + std::to_string(text.size()) + " characters, not the 64 hex digits of a " +
                "32-byte key");
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const int d = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
    if (d < 0) return Fail("the key's character " + std::to_string(i + 1) + " is not a hex digit");
    key.bytes[i / 2] = static_cast<uint8_t>(key.bytes[i / 2] << 4 | d);
  }
  return key;
}

std::string Authenticate(std::string_view line, const Record& r, const MacKey& key) {
  constexpr std::string_view kMember = ",\"mac\":\"";
  const std::string forged = "forged or altered record: ";
  if (r.mac.empty()) return forged + "it has no mac, and with a key every record must carry one";
  // The writer's form: `,"mac":"<64 digits>"}` ends the line.
  const size_t tail = kMember.size() + r.mac.size() + 2;
  if (line.size() < tail || line.substr(line.size() - tail, kMember.size()) != kMember ||
      line.substr(line.size() - 2) != "\"}")
    return forged + "its mac is not at the line's end in the writer's form ,\"mac\":\"...\"}";
  char expected[2 * audit::Sha256::kDigestSize + 1];
  HmacSha256Hex(key.bytes, sizeof key.bytes, line.data(), line.size() - tail, expected);
  unsigned diff = 0;  // every digit compared
  for (size_t i = 0; i < r.mac.size(); ++i) diff |= static_cast<unsigned char>(expected[i] ^ r.mac[i]);
  if (diff != 0) return forged + "its mac is not the key's HMAC-SHA256 of the line before ,\"mac\":";
  return "";
}

std::string StreamChecker::Check(const Record& r, size_t line) {
  const bool init = std::string_view(r.event->name) == "cordon_init";
  auto it = processes_.find(r.pid);
  if (init && r.seq == 0) {
    if (it != processes_.end() && r.timestamp < it->second.last_timestamp)
      return "cordon_init at seq 0 of process " + std::to_string(r.pid) +
             " with a timestamp before its last record's: its start written again, not a new program (exec)";
    processes_[r.pid] = Process{1, r.process_name, r.timestamp};
    return "";
  }
  if (init) return "cordon_init at seq " + std::to_string(r.seq) + ": a process's cordon_init is its seq 0";
  if (it == processes_.end()) {
    // Adopt the process from here, so that one missing start is one error.
    processes_[r.pid] = Process{r.seq + 1, r.process_name, r.timestamp};
    return "process " + std::to_string(r.pid) + " starts with " + r.event->name + " at seq " +
           std::to_string(r.seq) + ", not with cordon_init at seq 0";
  }
  Process& p = it->second;
  std::string error;
  if (r.process_name != p.name)
    error = "processName " + json::Quote(r.process_name) + " differs from the process's " +
            json::Quote(p.name) + " (its name at cordon_init)";
  if (r.seq < p.next_seq) {
    if (error.empty())
      error = "seq " + std::to_string(r.seq) + " repeats or goes back (process " + std::to_string(r.pid) +
              " is at seq " + std::to_string(p.next_seq) + ")";
    return error;
  }
  const bool lost_record = std::string_view(r.event->name) == "audit_lost";
  const uint64_t missing = r.seq - p.next_seq;
  if (missing > 0) {
    const bool reported = lost_record && r.U64("lost") == missing;
    gaps_.push_back(Gap{r.pid, p.next_seq, r.seq - 1, reported, line});
    if (!reported && error.empty()) {
      error = "seq jumps from " + std::to_string(p.next_seq - 1) + " to " + std::to_string(r.seq) + ": " +
              std::to_string(missing) + " record(s) missing" +
              (lost_record ? " but audit_lost reports " + std::to_string(r.U64("lost"))
                           : ", and no audit_lost reports them");
    }
  } else if (lost_record && r.U64("lost") != 0 && error.empty()) {
    error = "audit_lost reports " + std::to_string(r.U64("lost")) +
            " lost record(s) but no seq number was skipped";
  }
  p.next_seq = r.seq + 1;
  p.last_timestamp = std::max(p.last_timestamp, r.timestamp);
  return error;
}

// The JSON Schema.

namespace {

using Members = std::vector<std::pair<std::string, Value>>;

Value S(const char* s) {
  return Value::String(s);
}
Value Ref(const std::string& def) {
  return Value::Object({{"$ref", Value::String("#/$defs/" + def)}});
}

const char* TypeDef(ArgType t) {
  return Names(t).def;
}

constexpr char kDigestPattern[] = "^[0-9a-f]{64}$";  // a sha256 argument, the mac
constexpr char kPointerPattern[] = "^0x(0|[1-9a-f][0-9a-f]{0,15})$";
// Decoded, a string is bytes: code points up to U+00FF only.
constexpr char kBytesPattern[] = "^[\\u0000-\\u00ff]*$";

Value TypeDefinition(ArgType t) {
  const Value int_min = Value::Int(std::numeric_limits<int64_t>::min());
  const Value int_max = Value::Int(std::numeric_limits<int64_t>::max());
  const Value u_max = Value::Uint(std::numeric_limits<uint64_t>::max());
  Members m = {{"title", S(ArgTypeName(t))}};
  switch (t) {
    case ArgType::kInt:
      m.insert(m.end(), {{"type", S("integer")}, {"minimum", int_min}, {"maximum", int_max}});
      break;
    case ArgType::kU64:
    case ArgType::kSizeT:
      m.insert(m.end(), {{"type", S("integer")}, {"minimum", Value::Int(0)}, {"maximum", u_max}});
      break;
    case ArgType::kPointer:
      m.insert(m.end(), {{"type", S("string")}, {"pattern", S(kPointerPattern)}});
      break;
    case ArgType::kString:
      m.insert(m.end(), {{"type", S("string")}, {"pattern", S(kBytesPattern)}});
      break;
    case ArgType::kPointerArray:
      m.insert(m.end(), {{"type", S("array")}, {"items", Ref("pointer")}});
      break;
  }
  return Value::Object(std::move(m));
}

Value ArgSchema(const ArgSpec& a) {
  Members value;
  if (!a.values.empty()) {
    std::vector<Value> list;
    for (const char* s : a.values) list.push_back(S(s));
    value = {{"enum", Value::Array(std::move(list))}};
  } else if (a.sha256) {
    value = {{"type", S("string")}, {"pattern", S(kDigestPattern)}};
  } else if (a.length) {
    value = {{"$ref", S("#/$defs/pointer_array")},
             {"minItems", Value::Int(a.length)},
             {"maxItems", Value::Int(a.length)}};
  } else {
    value = {{"$ref", Value::String(std::string("#/$defs/") + TypeDef(a.type))}};
  }
  return Value::Object({
      {"type", S("object")},
      {"properties", Value::Object({{"name", Value::Object({{"const", S(a.name)}})},
                                    {"type", Value::Object({{"const", S(ArgTypeName(a.type))}})},
                                    {"value", Value::Object(std::move(value))}})},
      {"required", Value::Array({S("name"), S("type"), S("value")})},
      {"additionalProperties", Value::Bool(false)},
  });
}

Value EventSchema(const EventSpec& e) {
  std::vector<Value> items;
  for (const ArgSpec& a : e.args) items.push_back(ArgSchema(a));
  const auto n = static_cast<int64_t>(e.args.size());
  return Value::Object({
      {"properties", Value::Object({
                         {"eventId", Value::Object({{"const", Value::Int(e.id)}})},
                         {"eventName", Value::Object({{"const", S(e.name)}})},
                         {"argsNum", Value::Object({{"const", Value::Int(n)}})},
                         {"args", Value::Object({{"prefixItems", Value::Array(std::move(items))},
                                                 {"items", Value::Bool(false)},
                                                 {"minItems", Value::Int(n)}})},
                     })},
  });
}

}  // namespace

Value JsonSchema() {
  Members properties;
  std::vector<Value> required;
  std::vector<Value> names;
  for (const EventSpec& e : Events()) names.push_back(S(e.name));
  for (const FieldSpec& f : Fields()) {
    Value p;
    switch (f.type) {
      case FieldType::kU64:
        p = Ref("u64");
        break;
      case FieldType::kPid:
        p = Value::Object(
            {{"type", S("integer")}, {"minimum", Value::Int(1)}, {"maximum", Value::Int(2147483647)}});
        break;
      case FieldType::kString:
        if (std::string_view(f.name) == "schema") {
          p = Value::Object({{"const", S(kSchemaName)}});
        } else if (std::string_view(f.name) == "eventName") {
          p = Value::Object({{"enum", Value::Array(names)}});
        } else {
          p = Ref("string");
        }
        break;
      case FieldType::kEventId:
        p = Value::Object({{"type", S("integer")},
                           {"minimum", Value::Int(1)},
                           {"maximum", Value::Int(static_cast<int64_t>(Events().size()))}});
        break;
      case FieldType::kArgsNum:
        p = Value::Object({{"type", S("integer")}, {"minimum", Value::Int(0)}});
        break;
      case FieldType::kArgs:
        p = Value::Object({{"type", S("array")}});
        break;
      case FieldType::kMac:
        p = Value::Object({{"type", S("string")}, {"pattern", S(kDigestPattern)}});
        break;
    }
    properties.emplace_back(f.name, std::move(p));
    if (!f.optional) required.push_back(S(f.name));
  }
  Members defs;
  for (const TypeNames& t : kTypes) defs.emplace_back(t.def, TypeDefinition(t.type));
  std::vector<Value> one_of;
  for (const EventSpec& e : Events()) {
    defs.emplace_back(e.name, EventSchema(e));
    one_of.push_back(Ref(e.name));
  }
  return Value::Object({
      {"$schema", S("https://json-schema.org/draft/2020-12/schema")},
      {"$id", S("urn:cordon:audit-schema-v1")},
      {"title", S("One record of Cordon's audit stream, schema cordon.audit/1 (docs/audit.md)")},
      {"description",
       S("One JSON object per line, ASCII only. Beyond what JSON Schema can say: the fields come in the "
         "order "
         "listed here, and each argument's members in the order name, type, value; per process seq is 0 "
         "(cordon_init) and then grows by one, a gap being the next audit_lost record's lost. A stream "
         "written with a key ends each record with mac, the key's HMAC-SHA256 of the line before "
         "`,\"mac\":`. `cordon-audit validate` checks all of it (the mac with --key-file or --key-env).")},
      {"type", S("object")},
      {"properties", Value::Object(std::move(properties))},
      {"required", Value::Array(std::move(required))},
      {"additionalProperties", Value::Bool(false)},
      {"oneOf", Value::Array(std::move(one_of))},
      {"$defs", Value::Object(std::move(defs))},
  });
}

}  // namespace cordon::audit
