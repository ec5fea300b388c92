// The audit stream (docs/audit.md), judged from outside: each child writes
// its stream to a pipe whose other end only the parent (the test) holds;
// the parent reads it after the child has ended and checks every record
// against the schema, and that each attack left exactly the record it
// should and nothing else. Descriptor numbers, markers in forged lines,
// system-call arguments and code bytes are random at run time.
#include "runtime/audit/audit.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/aio_abi.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "cordon/cordon.h"
#include "runtime/audit/hmac.h"
#include "runtime/audit/sha256.h"
#include "runtime/domains/domain.h"
#include "runtime/gates/gate_abi.h"
#include "runtime/gates/gate_config.h"
#include "runtime/signals/signals.h"
#include "tests/support/child.h"

extern "C" char __bss_start[], _end[];

namespace {

using cordon::testing::ChildOutcome;
using cordon::testing::RunInChild;

// ---- A small JSON reader, enough for the records' shape ----

struct Json {
  enum Kind { kNull, kInt, kString, kArray, kObject } kind = kNull;
  long long i = 0;
  bool negative = false;
  unsigned long long u = 0;
  std::string s;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> fields;  // in order
  const Json* Get(const std::string& name) const {
    for (const auto& f : fields)
      if (f.first == name) return &f.second;
    return nullptr;
  }
};

class Reader {
 public:
  explicit Reader(const std::string& t) : t_(t) {}
  bool Parse(Json* out) { return Value(out) && pos_ == t_.size(); }

 private:
  bool Value(Json* v) {
    if (pos_ >= t_.size()) return false;
    const char c = t_[pos_];
    if (c == '{') return Object(v);
    if (c == '[') return Array(v);
    if (c == '"') {
      v->kind = Json::kString;
      return String(&v->s);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return Number(v);
    return false;
  }
  bool Number(Json* v) {
    v->kind = Json::kInt;
    if (t_[pos_] == '-') {
      v->negative = true;
      ++pos_;
    }
    const size_t start = pos_;
    while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9') v->u = v->u * 10 + (t_[pos_++] - '0');
    if (pos_ == start) return false;
    v->i = v->negative ? -static_cast<long long>(v->u) : static_cast<long long>(v->u);
    return true;
  }
  bool String(std::string* s) {
    ++pos_;
    while (pos_ < t_.size() && t_[pos_] != '"') {
      const auto c = static_cast<unsigned char>(t_[pos_]);
      if (c < 0x20 || c >= 0x7f) return false;  // records are ASCII, control bytes escaped
      if (c == '\\') {
        if (++pos_ >= t_.size()) return false;
        const char e = t_[pos_];
        if (e == 'u') {
          if (pos_ + 4 >= t_.size()) return false;
          s->push_back(static_cast<char>(std::stoi(t_.substr(pos_ + 1, 4), nullptr, 16)));
          pos_ += 5;
          continue;
        }
        if (e != '"' && e != '\\') return false;
        s->push_back(e);
        ++pos_;
        continue;
      }
      s->push_back(static_cast<char>(c));
      ++pos_;
    }
    if (pos_ >= t_.size()) return false;
    ++pos_;
    return true;
  }
  bool Array(Json* v) {
    v->kind = Json::kArray;
    ++pos_;
    if (pos_ < t_.size() && t_[pos_] == ']') return ++pos_, true;
    while (true) {
      Json item;
      if (!Value(&item)) return false;
      v->items.push_back(item);
      if (pos_ >= t_.size()) return false;
      if (t_[pos_] == ']') return ++pos_, true;
      if (t_[pos_++] != ',') return false;
    }
  }
  bool Object(Json* v) {
    v->kind = Json::kObject;
    ++pos_;
    if (pos_ < t_.size() && t_[pos_] == '}') return ++pos_, true;
    while (true) {
      std::string name;
      if (pos_ >= t_.size() || t_[pos_] != '"' || !String(&name)) return false;
      if (pos_ >= t_.size() || t_[pos_++] != ':') return false;
      Json value;
      if (!Value(&value)) return false;
      v->fields.emplace_back(name, value);
      if (pos_ >= t_.size()) return false;
      if (t_[pos_] == '}') return ++pos_, true;
      if (t_[pos_++] != ',') return false;
    }
  }
  const std::string& t_;
  size_t pos_ = 0;
};

// ---- The contract (docs/audit.md), as the judge reads it ----

struct EventSpec {
  const char* name;
  std::vector<std::pair<const char*, const char*>> args;  // name, type
};

const std::map<int, EventSpec>& Events() {
  static const std::map<int, EventSpec> events = {
      {1,
       {"cordon_init",
        {{"version", "const char*"},
         {"platform", "const char*"},
         {"trusted_pkey", "int"},
         {"inspect_policy", "const char*"}}}},
      {2,
       {"inspection_finding",
        {{"address", "void*"},
         {"kind", "const char*"},
         {"verdict", "const char*"},
         {"action", "const char*"},
         {"object", "const char*"},
         {"symbol", "const char*"}}}},
      {3,
       {"domain_create",
        {{"domain", "int"},
         {"name", "const char*"},
         {"pkey", "int"},
         {"region_start", "void*"},
         {"region_size", "size_t"}}}},
      {4, {"cordon_lockdown", {{"violation", "const char*"}, {"status", "int"}}}},
      {5,
       {"code_publish",
        {{"block", "void*"},
         {"length", "size_t"},
         {"sha256", "const char*"},
         {"verdict", "const char*"},
         {"status", "int"}}}},
      {6, {"code_release", {{"block", "void*"}, {"status", "int"}}}},
      {7,
       {"syscall_refused",
        {{"syscall", "int"},
         {"syscall_name", "const char*"},
         {"syscall_args", "unsigned long[]"},
         {"ip", "void*"},
         {"action", "const char*"}}}},
      {8,
       {"pkey_fault",
        {{"address", "void*"},
         {"pkey", "int"},
         {"domain", "int"},
         {"si_code", "int"},
         {"ip", "void*"},
         {"action", "const char*"}}}},
      {9,
       {"gate_calls",
        {{"domain", "int"}, {"entry", "int"}, {"entry_name", "const char*"}, {"count", "u64"}}}},
      {10, {"audit_lost", {{"lost", "u64"}}}},
      {11, {"fatal", {{"message", "const char*"}, {"domain", "int"}}}},
  };
  return events;
}

struct Rec {
  std::string line;
  std::string mac;  // empty: none
  unsigned long long seq = 0;
  long long pid = 0;
  int id = 0;
  std::string name;
  std::map<std::string, Json> args;
  std::string Str(const char* n) const { return args.count(n) ? args.at(n).s : "<missing>"; }
  long long Int(const char* n) const { return args.count(n) ? args.at(n).i : -999999; }
};

std::string Hex(unsigned long long v) {
  char b[24];
  snprintf(b, sizeof b, "0x%llx", v);
  return b;
}

// The key of the stream RunAudited is capturing (the child inherits it):
// 32 random bytes, or empty for a stream without one.
std::string g_key;

std::string HexOf(const std::string& bytes, bool upper = false) {
  std::string out;
  for (const char c : bytes) {
    char b[4];
    snprintf(b, sizeof b, upper ? "%02X" : "%02x", static_cast<unsigned char>(c));
    out += b;
  }
  return out;
}

// The mac the key gives a record's text (the line before its ,"mac":).
std::string MacOf(const std::string& key, const std::string& text) {
  char hex[65];
  cordon::audit::HmacSha256Hex(key.data(), key.size(), text.data(), text.size(), hex);
  return hex;
}

// Checks one line against the schema; fills *r. With `keyed`, the line
// must end with a mac (its value is not judged here: see Authentic).
void CheckRecord(const std::string& line, Rec* r, bool keyed = false) {
  SCOPED_TRACE(line);
  r->line = line;
  Json j;
  ASSERT_TRUE(Reader(line).Parse(&j)) << "not one JSON object";
  ASSERT_EQ(j.kind, Json::kObject);
  const char* const order[] = {"timestamp", "schema",    "seq",     "processId", "threadId", "processName",
                               "eventId",   "eventName", "argsNum", "args",      "mac"};
  ASSERT_EQ(j.fields.size(), keyed ? 11u : 10u);
  for (size_t i = 0; i < j.fields.size(); ++i) ASSERT_EQ(j.fields[i].first, order[i]);
  if (keyed) {
    r->mac = j.fields[10].second.s;
    ASSERT_EQ(r->mac.size(), 64u);
    ASSERT_EQ(line.substr(line.size() - 74), ",\"mac\":\"" + r->mac + "\"}");
  }
  EXPECT_EQ(j.Get("schema")->s, "cordon.audit/1");
  EXPECT_EQ(j.Get("timestamp")->kind, Json::kInt);
  EXPECT_GT(j.Get("timestamp")->u, 1600000000ull * 1000000000ull);
  r->seq = j.Get("seq")->u;
  r->pid = j.Get("processId")->i;
  EXPECT_GT(j.Get("threadId")->i, 0);
  EXPECT_EQ(j.Get("processName")->kind, Json::kString);
  r->id = static_cast<int>(j.Get("eventId")->i);
  r->name = j.Get("eventName")->s;
  ASSERT_TRUE(Events().count(r->id)) << "unknown event id";
  const EventSpec& spec = Events().at(r->id);
  EXPECT_EQ(r->name, spec.name);
  const Json& args = *j.Get("args");
  ASSERT_EQ(args.kind, Json::kArray);
  ASSERT_EQ(static_cast<size_t>(j.Get("argsNum")->i), args.items.size());
  ASSERT_EQ(args.items.size(), spec.args.size());
  for (size_t i = 0; i < spec.args.size(); ++i) {
    const Json& a = args.items[i];
    ASSERT_EQ(a.fields.size(), 3u);
    EXPECT_EQ(a.fields[0].first, "name");
    EXPECT_EQ(a.fields[1].first, "type");
    EXPECT_EQ(a.fields[2].first, "value");
    EXPECT_EQ(a.fields[0].second.s, spec.args[i].first);
    EXPECT_EQ(a.fields[1].second.s, spec.args[i].second);
    const std::string type = spec.args[i].second;
    const Json& v = a.fields[2].second;
    if (type == "int" || type == "u64" || type == "size_t") {
      EXPECT_EQ(v.kind, Json::kInt);
      if (type != "int") EXPECT_FALSE(v.negative);
    } else if (type == "void*") {
      EXPECT_EQ(v.kind, Json::kString);
      EXPECT_EQ(v.s.rfind("0x", 0), 0u);
      EXPECT_TRUE(v.s == "0x0" || v.s[2] != '0') << "no leading zeros";
    } else if (type == "unsigned long[]") {
      EXPECT_EQ(v.kind, Json::kArray);
    } else {
      EXPECT_EQ(v.kind, Json::kString);
    }
    r->args[spec.args[i].first] = v;
  }
}

// Whether a keyed record's mac is the key's.
bool Authentic(const Rec& r, const std::string& key) {
  return r.mac == MacOf(key, r.line.substr(0, r.line.size() - 74));
}

struct Stream {
  ChildOutcome outcome;
  std::vector<Rec> records;          // with a key: the authentic ones
  std::vector<size_t> forged_lines;  // with a key: the lines (from 1) whose mac is wrong
  std::string raw;
  std::string key;  // the stream's key (raw bytes), or empty
};

// How RunAudited captures: a socket instead of a pipe; with a random key
// (InitWithAudit passes it); whether cordon-audit must find the stream
// valid; a tap: the write end of a pipe that gets every line the parent
// reads, as it reads it (an attacker who has read the stream).
struct Capture {
  bool socket = false;
  bool keyed = true;
  bool valid = true;
  int tap = -1;
};

// What `cordon-audit validate [--key-file F] -` said of a stream.
struct Verdict {
  int status = -1;
  std::string out;
};

// Runs body(fd) in a child whose audit stream goes to fd: a random
// descriptor number, the write end of a pipe whose read end only the
// parent holds. Every line is checked against the schema, and the
// sequence numbers must run 0, 1, 2, ... with no gap.
// The stream, whole, through `cordon-audit validate -` (with the stream's
// key in a key file when it has one): the project's reader judges what the
// runtime writes.
Verdict ValidateWithTheReader(const std::string& raw, const std::string& key) {
  Verdict v;
  std::string key_file;
  if (!key.empty()) {
    char path[] = "/tmp/cordon-audit-key-XXXXXX";
    const int kf = mkstemp(path);
    EXPECT_GE(kf, 0) << strerror(errno);
    const std::string hex = HexOf(key) + "\n";
    EXPECT_EQ(write(kf, hex.data(), hex.size()), static_cast<ssize_t>(hex.size()));
    close(kf);
    key_file = path;
  }
  int in[2], out[2];
  EXPECT_EQ(pipe(in), 0);
  EXPECT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  EXPECT_GE(pid, 0);
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    if (key_file.empty()) {
      execl(CORDON_AUDIT_TOOL, "cordon-audit", "validate", "-", static_cast<char*>(nullptr));
    } else {
      execl(CORDON_AUDIT_TOOL, "cordon-audit", "validate", "--key-file", key_file.c_str(), "-",
            static_cast<char*>(nullptr));
    }
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  std::thread collect([&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
      if (n > 0) v.out.append(buf, static_cast<size_t>(n));
    }
  });
  size_t done = 0;
  while (done < raw.size()) {
    const ssize_t w = write(in[1], raw.data() + done, raw.size() - done);
    if (w < 0 && errno == EINTR) continue;
    EXPECT_GT(w, 0) << strerror(errno);
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  close(in[1]);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  collect.join();
  close(out[0]);
  if (!key_file.empty()) unlink(key_file.c_str());
  EXPECT_TRUE(WIFEXITED(status));
  v.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  EXPECT_NE(v.status, 127) << "cordon-audit not found at " << CORDON_AUDIT_TOOL;
  return v;
}

Stream RunAudited(const std::function<void(int)>& body, const Capture& how = {}) {
  Stream s;
  if (how.keyed) {
    s.key.resize(cordon::audit::kMacKeySize);
    EXPECT_EQ(getrandom(s.key.data(), s.key.size(), 0), static_cast<ssize_t>(s.key.size()));
  }
  g_key = s.key;
  int p[2];
  if (how.socket) {
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
  } else {
    EXPECT_EQ(pipe(p), 0);
  }
  unsigned short r = 0;
  EXPECT_EQ(getrandom(&r, sizeof r, 0), static_cast<ssize_t>(sizeof r));
  const int fd = 100 + r % 800;
  // The parent reads while the child runs, so that a full pipe never
  // stalls it; the read ends when the child's end closes (its death).
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
      if (n > 0) s.raw.append(buf, static_cast<size_t>(n));
      if (n > 0 && how.tap >= 0) (void)!write(how.tap, buf, static_cast<size_t>(n));
    }
  });
  s.outcome = RunInChild([&] {
    close(p[0]);
    CHILD_CHECK(dup2(p[1], fd) == fd);
    close(p[1]);
    body(fd);
  });
  close(p[1]);
  reader.join();
  close(p[0]);
  g_key.clear();
  size_t start = 0, line = 0;
  while (start < s.raw.size()) {
    const size_t end = s.raw.find('\n', start);
    EXPECT_NE(end, std::string::npos) << "a record without its newline";
    if (end == std::string::npos) break;
    ++line;
    Rec rec;
    CheckRecord(s.raw.substr(start, end - start), &rec, how.keyed);
    start = end + 1;
    if (how.keyed && !Authentic(rec, s.key)) {
      s.forged_lines.push_back(line);
      continue;
    }
    EXPECT_EQ(rec.seq, s.records.size()) << rec.line;
    s.records.push_back(rec);
  }
  if (how.keyed) {
    // The key is nowhere in the stream, in hex of either case or as bytes.
    EXPECT_EQ(s.raw.find(HexOf(s.key)), std::string::npos);
    EXPECT_EQ(s.raw.find(HexOf(s.key, true)), std::string::npos);
    EXPECT_EQ(s.raw.find(s.key), std::string::npos);
  }
  if (how.valid) {
    EXPECT_TRUE(s.forged_lines.empty()) << s.raw;
    const Verdict v = ValidateWithTheReader(s.raw, s.key);
    EXPECT_EQ(v.status, 0) << "cordon-audit validate refused the stream:\n" << v.out << s.raw;
  }
  return s;
}

// The records after the lockdown's (all of them if there is none).
std::vector<Rec> AfterLockdown(const Stream& s) {
  std::vector<Rec> out;
  for (const Rec& r : s.records) {
    if (r.id == 4)
      out.clear();
    else
      out.push_back(r);
  }
  return out;
}

std::string Dump(const Stream& s) {
  return s.raw + "---- stderr ----\n" + s.outcome.err;
}

uint64_t Random64() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) abort();
  return v;
}

std::string RandomHex(size_t bytes) {
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    char b[4];
    snprintf(b, sizeof b, "%02x", static_cast<unsigned>(Random64() & 0xff));
    out += b;
  }
  return out;
}

// With the stream's key, if RunAudited chose one.
void InitWithAudit(int fd) {
  cordon_options o;
  cordon_options_init(&o);
  o.audit_fd = fd;
  if (!g_key.empty()) {
    o.audit_key = g_key.data();
    o.audit_key_size = g_key.size();
  }
  CHILD_CHECK(cordon_init(&o) == CORDON_OK);
}

// With the child's fault reporter on the current stack (a handler with
// SA_ONSTACK makes the lockdown refuse), unless report_faults is false.
void LockDown(int violation, bool report_faults = true) {
  if (report_faults) cordon::testing::ReportFaultsOnTheCurrentStack();
  cordon_lockdown_options o;
  cordon_lockdown_options_init(&o);
  o.violation = violation;
  CHILD_CHECK(cordon_lockdown_ex(&o) == CORDON_OK);
}

// Values the child tells the parent, on stderr: "EXPECT key=value".
void Tell(const char* key, const std::string& value) {
  fprintf(stderr, "EXPECT %s=%s\n", key, value.c_str());
}
std::string Told(const ChildOutcome& o, const std::string& key) {
  const std::string tag = "EXPECT " + key + "=";
  const size_t at = o.err.find(tag);
  if (at == std::string::npos) return "<not told>";
  const size_t end = o.err.find('\n', at);
  return o.err.substr(at + tag.size(), end - at - tag.size());
}

// ---- Configuration ----

TEST(AuditConfig, BadDescriptorsAreRefusedAndNothingIsInitialized) {
  auto o = RunInChild([] {
    cordon_options opts;
    cordon_options_init(&opts);
    CHILD_CHECK(opts.audit_fd == -1);
    opts.audit_fd = 1000 + static_cast<int>(Random64() % 1000);  // not open
    CHILD_CHECK(cordon_init(&opts) == CORDON_E_INVALID_ARGUMENT);
    CHILD_CHECK(cordon_is_initialized() == 0);
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    opts.audit_fd = p[0];  // read end
    CHILD_CHECK(cordon_init(&opts) == CORDON_E_INVALID_ARGUMENT);
    CHILD_CHECK(setenv("CORDON_AUDIT_FD", "12x", 1) == 0);
    opts.audit_fd = -1;
    CHILD_CHECK(cordon_init(&opts) == CORDON_E_INVALID_ARGUMENT);
    CHILD_CHECK(cordon_is_initialized() == 0);
    CHILD_CHECK(cordon_audit_flush() == CORDON_E_NOT_INITIALIZED);
    // A struct from before audit_fd: no stream, and init works.
    unsetenv("CORDON_AUDIT_FD");
    opts.struct_size = offsetof(cordon_options, audit_fd);
    opts.audit_fd = p[1];
    CHILD_CHECK(cordon_init(&opts) == CORDON_OK);
    CHILD_CHECK(cordon_audit_flush() == CORDON_E_NOT_INITIALIZED);
  });
  EXPECT_TRUE(o.exited) << o.err;
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.err.find("not open"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("not open for writing"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("CORDON_AUDIT_FD=12x"), std::string::npos) << o.err;
}

TEST(AuditConfig, EnvironmentNamesTheDescriptorAndTheKey) {
  const Stream s = RunAudited([](int fd) {
    CHILD_CHECK(setenv("CORDON_AUDIT_FD", std::to_string(fd).c_str(), 1) == 0);
    CHILD_CHECK(setenv("CORDON_AUDIT_KEY", HexOf(g_key, Random64() % 2 == 0).c_str(), 1) == 0);
    CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
    // The digits are wiped where getenv finds them.
    CHILD_CHECK(getenv("CORDON_AUDIT_KEY") != nullptr && getenv("CORDON_AUDIT_KEY")[0] == '\0');
  });
  ASSERT_TRUE(s.outcome.exited) << Dump(s);
  ASSERT_EQ(s.outcome.exit_code, 0) << Dump(s);
  ASSERT_FALSE(s.records.empty()) << Dump(s);
  EXPECT_EQ(s.records[0].id, 1);
  EXPECT_TRUE(s.forged_lines.empty()) << Dump(s);
}

TEST(AuditConfig, WithoutAKeyRecordsHaveNoMac) {
  Capture how;
  how.keyed = false;
  const Stream s = RunAudited([](int fd) { InitWithAudit(fd); }, how);
  ASSERT_TRUE(s.outcome.exited) << Dump(s);
  ASSERT_FALSE(s.records.empty()) << Dump(s);
  EXPECT_EQ(s.raw.find("\"mac\""), std::string::npos) << Dump(s);
}

// Each bad key makes cordon_init() refuse with nothing initialised, and
// its message never holds the digits.
TEST(AuditKey, BadKeysAreRefusedAndNothingIsInitialized) {
  const std::string key = RandomHex(32);
  const size_t bad_at = Random64() % 64;
  std::string not_hex = key;
  not_hex[bad_at] = "gxz-"[Random64() % 4];
  auto o = RunInChild([&] {
    // No stream but the ones named here (the harness names its own).
    CHILD_CHECK(unsetenv("CORDON_AUDIT_FD") == 0);
    int p[2];
    CHILD_CHECK(pipe2(p, O_NONBLOCK) == 0);  // nobody reads: records beyond its size are lost
    cordon_options opts;
    cordon_options_init(&opts);
    CHILD_CHECK(opts.audit_key == nullptr && opts.audit_key_size == 0);
    unsigned char bytes[64];
    CHILD_CHECK(getrandom(bytes, sizeof bytes, 0) == sizeof bytes);
    opts.audit_fd = p[1];
    opts.audit_key = bytes;
    for (const size_t size : {size_t{0}, size_t{1}, size_t{31}, size_t{33}, size_t{64}}) {
      opts.audit_key_size = size;
      CHILD_CHECK(cordon_init(&opts) == CORDON_E_INVALID_ARGUMENT);
      CHILD_CHECK(cordon_is_initialized() == 0);
    }
    opts.audit_key = nullptr;
    opts.audit_key_size = 32;
    CHILD_CHECK(cordon_init(&opts) == CORDON_E_INVALID_ARGUMENT);
    // A key without a stream.
    opts.audit_fd = -1;
    opts.audit_key = bytes;
    CHILD_CHECK(cordon_init(&opts) == CORDON_E_INVALID_ARGUMENT);
    opts.audit_key = nullptr;
    opts.audit_key_size = 0;
    CHILD_CHECK(setenv("CORDON_AUDIT_KEY", key.c_str(), 1) == 0);
    CHILD_CHECK(cordon_init(&opts) == CORDON_E_INVALID_ARGUMENT);
    CHILD_CHECK(strcmp(getenv("CORDON_AUDIT_KEY"), key.c_str()) == 0);  // left as it was
    // Bad hex in the environment.
    opts.audit_fd = p[1];
    for (const std::string& bad : {key.substr(1), key + "0", not_hex}) {
      CHILD_CHECK(setenv("CORDON_AUDIT_KEY", bad.c_str(), 1) == 0);
      CHILD_CHECK(cordon_init(&opts) == CORDON_E_INVALID_ARGUMENT);
      CHILD_CHECK(cordon_is_initialized() == 0);
      CHILD_CHECK(strcmp(getenv("CORDON_AUDIT_KEY"), bad.c_str()) == 0);
    }
    CHILD_CHECK(cordon_audit_flush() == CORDON_E_NOT_INITIALIZED);
    // A struct from before the key's fields has none, whatever lies past it.
    unsetenv("CORDON_AUDIT_KEY");
    opts.struct_size = offsetof(cordon_options, audit_key);
    opts.audit_key = bytes;
    opts.audit_key_size = 5;
    CHILD_CHECK(cordon_init(&opts) == CORDON_OK);
    char first[8192];
    const ssize_t n = read(p[0], first, sizeof first - 1);
    CHILD_CHECK(n > 0);
    first[n] = '\0';
    CHILD_CHECK(strncmp(first, "{\"timestamp\":", 13) == 0);
    CHILD_CHECK(strstr(first, "\"mac\"") == nullptr);
  });
  EXPECT_TRUE(o.exited) << o.err;
  EXPECT_EQ(o.exit_code, 0) << o.err;
  for (const char* size : {"0", "1", "31", "33", "64"}) {
    EXPECT_NE(o.err.find(
                  std::string("cordon_options.audit_key must point at exactly 32 bytes (audit_key_size is ") +
                  size + ")"),
              std::string::npos)
        << size << "\n"
        << o.err;
  }
  EXPECT_NE(o.err.find("(audit_key_size is 32, audit_key NULL)"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("an audit key (cordon_options.audit_key or CORDON_AUDIT_KEY) without an audit stream"),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("CORDON_AUDIT_KEY has 63 characters, not the 64 hex digits of a 32-byte key"),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("CORDON_AUDIT_KEY has 65 characters"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("CORDON_AUDIT_KEY has a character that is not a hex digit at position " +
                       std::to_string(bad_at + 1)),
            std::string::npos)
      << o.err;
  EXPECT_EQ(o.err.find(key.substr(1, 40)), std::string::npos) << "a key's digits in a message: " << o.err;
}

// A program started with the key in its initial environment (the one
// /proc/self/environ shows): after cordon_init() neither getenv nor
// /proc/self/environ shows the digits, and the stream is keyed.
TEST(AuditKey, TheEnvironmentsKeyIsWipedAtInit) {
  std::string key(32, '\0');
  ASSERT_EQ(getrandom(key.data(), key.size(), 0), 32);
  const bool upper = Random64() % 2 == 0;
  int stream[2], out[2];
  ASSERT_EQ(pipe(stream), 0);
  ASSERT_EQ(pipe(out), 0);
  const int fd = 100 + static_cast<int>(Random64() % 800);
  const std::string fd_var = "CORDON_AUDIT_FD=" + std::to_string(fd);
  const std::string key_var = "CORDON_AUDIT_KEY=" + HexOf(key, upper);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(stream[1], fd);
    dup2(out[1], 1);
    close(stream[0]);
    close(out[0]);
    char* const argv[] = {const_cast<char*>("audit_env_key_main"), nullptr};
    // (LD_BIND_NOW: cordon_init() needs it to neutralize ld.so's XRSTOR.)
    char* const envp[] = {const_cast<char*>("LD_BIND_NOW=1"), const_cast<char*>(fd_var.c_str()),
                          const_cast<char*>(key_var.c_str()), nullptr};
    execve(CORDON_AUDIT_ENV_KEY_MAIN, argv, envp);
    _exit(127);
  }
  close(stream[1]);
  close(out[1]);
  std::string raw, printed;
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = read(stream[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
      if (n > 0) raw.append(buf, static_cast<size_t>(n));
    }
  });
  char buf[65536];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) printed.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  reader.join();
  close(stream[0]);
  close(out[0]);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "127: not found at " << CORDON_AUDIT_ENV_KEY_MAIN << "\n" << printed;
  EXPECT_EQ(printed.rfind("getenv=[]\n", 0), 0u) << printed;
  const std::string environ_text = printed.substr(printed.find('\n') + 1);
  // The variable is still there, its 64 digits zero bytes.
  EXPECT_NE(environ_text.find(std::string("CORDON_AUDIT_KEY=") + std::string(64, '\0') + '\0'),
            std::string::npos);
  EXPECT_NE(environ_text.find(fd_var), std::string::npos) << "not the program's own environment";
  for (const bool u : {false, true}) {
    const std::string hex = HexOf(key, u);
    for (size_t at = 0; at + 16 <= hex.size(); at += 16) {
      EXPECT_EQ(environ_text.find(hex.substr(at, 16)), std::string::npos) << at;
      EXPECT_EQ(raw.find(hex.substr(at, 16)), std::string::npos) << at;
    }
  }
  EXPECT_EQ(raw.find(key), std::string::npos);
  // Every record keyed, with the key's mac.
  size_t start = 0, records = 0;
  while (start < raw.size()) {
    const size_t end = raw.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    Rec r;
    CheckRecord(raw.substr(start, end - start), &r, true);
    EXPECT_TRUE(Authentic(r, key)) << r.line;
    ++records;
    start = end + 1;
  }
  EXPECT_GT(records, 2u);
  const Verdict v = ValidateWithTheReader(raw, key);
  EXPECT_EQ(v.status, 0) << v.out;
}

// ---- Set-up records ----

TEST(AuditStream, SetUpAndLockdownRecords) {
  const std::string name = "dom-" + RandomHex(6);
  const Stream s = RunAudited([&](int fd) {
    InitWithAudit(fd);
    cordon_domain_t d;
    CHILD_CHECK(cordon_domain_create(name.c_str(), &d) == CORDON_OK);
    const void* start;
    size_t size;
    CHILD_CHECK(cordon_domain_region(d, &start, &size) == CORDON_OK);
    Tell("domain", std::to_string(d));
    Tell("pkey", std::to_string(cordon_domain_pkey(d)));
    Tell("start", Hex(reinterpret_cast<uintptr_t>(start)));
    Tell("size", std::to_string(size));
    Tell("trusted_pkey", std::to_string(cordon_domain_pkey(cordon_trusted_domain())));
    Tell("pid", std::to_string(getpid()));
    Tell("gate_sites", std::to_string(cordon_gate_site_count()));
    LockDown(CORDON_VIOLATION_ERRNO_FOR_TESTS);
    CHILD_CHECK(cordon_audit_flush() == CORDON_OK);
    // Set-up is over for the stream too: no domain record can be added.
    CHILD_CHECK(cordon_domain_create("late", &d) == CORDON_E_LOCKED);
  });
  ASSERT_TRUE(s.outcome.exited) << Dump(s);
  ASSERT_EQ(s.outcome.exit_code, 0) << Dump(s);
  ASSERT_GE(s.records.size(), 4u) << Dump(s);
  const Rec& init = s.records[0];
  EXPECT_EQ(init.id, 1);
  EXPECT_EQ(init.Str("version"), cordon_version());
  EXPECT_EQ(std::to_string(init.Int("trusted_pkey")), Told(s.outcome, "trusted_pkey"));
  EXPECT_EQ(init.Str("inspect_policy"), "neutralize");
  EXPECT_NE(init.Str("platform").find("Linux"), std::string::npos);
  size_t domains = 0, gate_site_findings = 0, lockdowns = 0;
  for (const Rec& r : s.records) {
    EXPECT_EQ(std::to_string(r.pid), Told(s.outcome, "pid"));
    if (r.id == 1 || r.id == 9) continue;
    if (r.id == 3 && r.Int("domain") == 1) {
      ++domains;
      EXPECT_EQ(r.Str("name"), "trusted");
      EXPECT_EQ(std::to_string(r.Int("pkey")), Told(s.outcome, "trusted_pkey"));
    } else if (r.id == 3) {
      ++domains;
      EXPECT_EQ(std::to_string(r.Int("domain")), Told(s.outcome, "domain"));
      EXPECT_EQ(r.Str("name"), name);
      EXPECT_EQ(std::to_string(r.Int("pkey")), Told(s.outcome, "pkey"));
      EXPECT_EQ(r.Str("region_start"), Told(s.outcome, "start"));
      EXPECT_EQ(std::to_string(r.args.at("region_size").u), Told(s.outcome, "size"));
    } else if (r.id == 2 && r.Str("verdict") == "gate_site") {
      ++gate_site_findings;
      EXPECT_EQ(r.Str("action"), "none");
    } else if (r.id == 4) {
      ++lockdowns;
      EXPECT_EQ(r.Str("violation"), "errno_for_tests");
      EXPECT_EQ(r.Int("status"), 0);
    } else if (r.id != 2) {
      ADD_FAILURE() << "unexpected record: " << r.line;
    }
  }
  EXPECT_EQ(domains, 2u) << Dump(s);
  EXPECT_EQ(lockdowns, 1u) << Dump(s);
  // The gate sites at init and again at the lockdown's inspection.
  EXPECT_EQ(std::to_string(gate_site_findings / 2), Told(s.outcome, "gate_sites")) << Dump(s);
  // After it, only cordon_audit_flush()'s gate_calls.
  for (const Rec& r : AfterLockdown(s)) EXPECT_EQ(r.id, 9) << r.line;
}

// Virtual domains are in the stream like physical ones: one domain_create
// each, with the key their pages carry when made (the parking key), and one
// for each key slot the first of them set up. A record is made once: a
// second one for the same domain, or one for a domain not yet made, is
// refused.
TEST(AuditStream, VirtualDomainsAndTheirKeySlotsAreRecorded) {
  constexpr int kVirtual = 3;
  std::vector<std::string> names;
  for (int i = 0; i < kVirtual; ++i) names.push_back("v" + std::to_string(i) + "-" + RandomHex(6));
  const Stream s = RunAudited([&](int fd) {
    InitWithAudit(fd);
    for (int i = 0; i < kVirtual; ++i) {
      cordon_domain_t v;
      CHILD_CHECK(cordon_domain_create_virtual(names[i].c_str(), &v) == CORDON_OK);
      const void* start;
      size_t size;
      CHILD_CHECK(cordon_domain_region(v, &start, &size) == CORDON_OK);
      const std::string k = "v" + std::to_string(i);
      Tell((k + "_handle").c_str(), std::to_string(v));
      Tell((k + "_pkey").c_str(), std::to_string(cordon_domain_pkey(v)));
      Tell((k + "_start").c_str(), Hex(reinterpret_cast<uintptr_t>(start)));
      Tell((k + "_size").c_str(), std::to_string(size));
      if (i == 0) {
        // Forgeries: this one again, and the next one before it exists.
        CHILD_CHECK(cordon::audit::Call(cordon::audit::kOpDomain, static_cast<uint64_t>(v),
                                        reinterpret_cast<uint64_t>("forged")) ==
                    cordon::domains::EncodeStatus(CORDON_E_INVALID_ARGUMENT));
        CHILD_CHECK(cordon::audit::Call(cordon::audit::kOpDomain, static_cast<uint64_t>(v) + 1,
                                        reinterpret_cast<uint64_t>("forged")) ==
                    cordon::domains::EncodeStatus(CORDON_E_INVALID_ARGUMENT));
      }
    }
    Tell("parking", std::to_string(cordon_parking_pkey()));
    // The key slots: physical domains of the runtime's.
    std::string slots;
    for (uint32_t d = 1; d <= cordon::gates::Config().domain_count && d < CORDON_MAX_DOMAINS; ++d) {
      if (cordon::gates::Config().virt.slot_plus1[d] != 0) slots += std::to_string(d) + ",";
    }
    Tell("slots", slots);
    LockDown(CORDON_VIOLATION_ERRNO_FOR_TESTS);
  });
  ASSERT_TRUE(s.outcome.exited) << Dump(s);
  ASSERT_EQ(s.outcome.exit_code, 0) << Dump(s);
  const std::string parking = Told(s.outcome, "parking");
  ASSERT_NE(parking, "-1");
  std::string slots_seen;
  std::vector<int> virtual_seen(kVirtual, 0);
  size_t slot_records_before_first_virtual = 0;
  bool virtual_yet = false;
  for (const Rec& r : s.records) {
    if (r.id != 3 || r.Int("domain") == 1) continue;
    EXPECT_NE(r.Str("name"), "forged") << r.line;
    if (r.Int("domain") < CORDON_MAX_DOMAINS) {
      EXPECT_EQ(r.Str("name"), "cordon:key-slot") << r.line;
      EXPECT_NE(std::to_string(r.Int("pkey")), parking) << r.line;
      EXPECT_GT(r.args.at("region_size").u, 0u) << r.line;
      slots_seen += std::to_string(r.Int("domain")) + ",";
      if (!virtual_yet) ++slot_records_before_first_virtual;
      continue;
    }
    virtual_yet = true;
    const int i = static_cast<int>(r.Int("domain")) - CORDON_MAX_DOMAINS;
    ASSERT_GE(i, 0) << r.line;
    ASSERT_LT(i, kVirtual) << r.line;
    ++virtual_seen[i];
    const std::string k = "v" + std::to_string(i);
    EXPECT_EQ(std::to_string(r.Int("domain")), Told(s.outcome, k + "_handle"));
    EXPECT_EQ(r.Str("name"), names[i]);
    EXPECT_EQ(std::to_string(r.Int("pkey")), parking) << r.line;
    EXPECT_EQ(std::to_string(r.Int("pkey")), Told(s.outcome, k + "_pkey")) << r.line;
    EXPECT_EQ(r.Str("region_start"), Told(s.outcome, k + "_start")) << r.line;
    EXPECT_EQ(std::to_string(r.args.at("region_size").u), Told(s.outcome, k + "_size")) << r.line;
  }
  for (int i = 0; i < kVirtual; ++i) EXPECT_EQ(virtual_seen[i], 1) << "virtual domain " << i << Dump(s);
  EXPECT_FALSE(Told(s.outcome, "slots").empty());
  EXPECT_EQ(slots_seen, Told(s.outcome, "slots")) << Dump(s);
  // The slots are recorded as the first virtual domain set them up, before it.
  EXPECT_EQ(slot_records_before_first_virtual,
            static_cast<size_t>(std::count(slots_seen.begin(), slots_seen.end(), ',')));
}

uint64_t EchoEntry(uint64_t a0, uint64_t, uint64_t, uint64_t, uint64_t) {
  return a0 + 1;
}

// gate_calls: the counts the gates keep (docs/gates.md, "Call counts"),
// exact for an entry of the trusted domain called from two threads and for
// one of another domain, with the entries' names; random call numbers.
TEST(AuditStream, GateCallsCountEveryCallOfEachEntry) {
  const uint64_t n1 = 1 + Random64() % 700, n2 = 1 + Random64() % 700, n3 = 1 + Random64() % 300;
  const std::string other_name = "other-" + RandomHex(4);
  const Stream s = RunAudited([&](int fd) {
    InitWithAudit(fd);
    cordon_domain_t other;
    CHILD_CHECK(cordon_domain_create(other_name.c_str(), &other) == CORDON_OK);
    cordon_entry t{}, o{};
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), EchoEntry, "echo_trusted", &t) == CORDON_OK);
    CHILD_CHECK(cordon_register(other, EchoEntry, "echo_other", &o) == CORDON_OK);
    Tell("other", std::to_string(other));
    Tell("t_id", std::to_string(t.id));
    Tell("o_id", std::to_string(o.id));
    LockDown(CORDON_VIOLATION_ERRNO_FOR_TESTS);
    std::thread second([&] {
      for (uint64_t i = 0; i < n3; ++i) CHILD_CHECK(cordon_call(t, i, 0, 0, 0, 0) == i + 1);
    });
    for (uint64_t i = 0; i < n1; ++i) CHILD_CHECK(cordon_call(t, i, 0, 0, 0, 0) == i + 1);
    for (uint64_t i = 0; i < n2; ++i) CHILD_CHECK(cordon_call(o, i, 0, 0, 0, 0) == i + 1);
    second.join();
    CHILD_CHECK(cordon_audit_flush() == CORDON_OK);
    _exit(0);  // no atexit flush: the explicit one is the last word
  });
  ASSERT_TRUE(s.outcome.exited) << Dump(s);
  ASSERT_EQ(s.outcome.exit_code, 0) << Dump(s);
  size_t trusted_seen = 0, other_seen = 0;
  for (const Rec& r : AfterLockdown(s)) {
    ASSERT_EQ(r.id, 9) << r.line;
    const std::string domain = std::to_string(r.Int("domain")), entry = std::to_string(r.Int("entry"));
    if (domain == "1" && entry == Told(s.outcome, "t_id")) {
      ++trusted_seen;
      EXPECT_EQ(r.Str("entry_name"), "echo_trusted");
      EXPECT_EQ(r.args.at("count").u, n1 + n3) << r.line;
    } else if (domain == Told(s.outcome, "other") && entry == Told(s.outcome, "o_id")) {
      ++other_seen;
      EXPECT_EQ(r.Str("entry_name"), "echo_other");
      EXPECT_EQ(r.args.at("count").u, n2) << r.line;
    }
  }
  EXPECT_EQ(trusted_seen, 1u) << Dump(s);
  EXPECT_EQ(other_seen, 1u) << Dump(s);
}

TEST(AuditStream, InspectionFindingNeutralized) {
  // A real WRPKRU at a random offset of an anonymous executable page made
  // before cordon_init().
  const size_t offset = 16 + Random64() % 4000;
  const Stream s = RunAudited([&](int fd) {
    auto* page = static_cast<unsigned char*>(
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    CHILD_CHECK(page != MAP_FAILED);
    memset(page, 0x90, 4096);  // NOP
    page[offset] = 0x0f;
    page[offset + 1] = 0x01;
    page[offset + 2] = 0xef;
    page[offset + 3] = 0xc3;
    CHILD_CHECK(mprotect(page, 4096, PROT_READ | PROT_EXEC) == 0);
    Tell("at", Hex(reinterpret_cast<uintptr_t>(page) + offset));
    InitWithAudit(fd);
  });
  ASSERT_TRUE(s.outcome.exited) << Dump(s);
  size_t matching = 0;
  for (const Rec& r : s.records) {
    if (r.id != 2 || r.Str("address") != Told(s.outcome, "at")) continue;
    ++matching;
    EXPECT_EQ(r.Str("kind"), "WRPKRU");
    EXPECT_EQ(r.Str("verdict"), "instruction");
    EXPECT_EQ(r.Str("action"), "neutralized");
    EXPECT_EQ(r.Str("object"), "[anonymous]");
  }
  EXPECT_EQ(matching, 1u) << Dump(s);
}

// ---- Attacks after the lockdown: exactly the matching record ----

TEST(AuditAttack, RefusedSyscallInKillModeIsRecordedWithItsArguments) {
  uint64_t args[6];
  for (auto& a : args) a = Random64();
  const Stream s = RunAudited([&](int fd) {
    InitWithAudit(fd);
    LockDown(CORDON_VIOLATION_KILL);
    syscall(SYS_ptrace, args[0], args[1], args[2], args[3], args[4], args[5]);
    _exit(3);
  });
  EXPECT_TRUE(s.outcome.exited);
  EXPECT_EQ(s.outcome.exit_code, CORDON_VIOLATION_EXIT) << Dump(s);
  EXPECT_NE(s.outcome.err.find("system call ptrace (101)"), std::string::npos) << Dump(s);
  const auto after = AfterLockdown(s);
  ASSERT_EQ(after.size(), 1u) << Dump(s);
  const Rec& r = after[0];
  EXPECT_EQ(r.id, 7);
  EXPECT_EQ(r.Int("syscall"), SYS_ptrace);
  EXPECT_EQ(r.Str("syscall_name"), "ptrace");
  EXPECT_EQ(r.Str("action"), "killed");
  ASSERT_EQ(r.args.at("syscall_args").items.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r.args.at("syscall_args").items[i].s, Hex(args[i])) << i;
}

TEST(AuditAttack, TheTokenNeverAppearsInARecord) {
  // The child learns the token before the lockdown wipes it from untrusted
  // memory, and makes a refused call with it in r8 and r9.
  const Stream s = RunAudited([&](int fd) {
    InitWithAudit(fd);
    const uint64_t t0 = cordon::signals::PendingToken()[0], t1 = cordon::signals::PendingToken()[1];
    Tell("t0", Hex(t0));
    Tell("t1", Hex(t1));
    LockDown(CORDON_VIOLATION_KILL);
    syscall(SYS_ptrace, 1, 2, 3, 4, t0, t1);
    _exit(3);
  });
  EXPECT_EQ(s.outcome.exit_code, CORDON_VIOLATION_EXIT) << Dump(s);
  const auto after = AfterLockdown(s);
  ASSERT_EQ(after.size(), 1u) << Dump(s);
  EXPECT_EQ(after[0].args.at("syscall_args").items[3].s, "0x4");
  EXPECT_EQ(after[0].args.at("syscall_args").items[4].s, "0x0");
  EXPECT_EQ(after[0].args.at("syscall_args").items[5].s, "0x0");
  const std::string t0 = Told(s.outcome, "t0").substr(2), t1 = Told(s.outcome, "t1").substr(2);
  ASSERT_GT(t0.size(), 8u);
  EXPECT_EQ(s.raw.find(t0), std::string::npos);
  EXPECT_EQ(s.raw.find(t1), std::string::npos);
  EXPECT_EQ(s.raw.find(std::to_string(std::stoull(t0, nullptr, 16))), std::string::npos);
}

TEST(AuditAttack, PkeyFaultOnTrustedMemoryWithAHandler) {
  const size_t offset = 8 * (Random64() % 64);
  const Stream s = RunAudited([&](int fd) {
    InitWithAudit(fd);
    void* block = nullptr;
    CHILD_CHECK(cordon_malloc(4096, &block) == CORDON_OK);
    auto* target = static_cast<volatile char*>(block) + offset;
    Tell("at", Hex(reinterpret_cast<uintptr_t>(target)));
    Tell("pkey", std::to_string(cordon_domain_pkey(cordon_trusted_domain())));
    LockDown(CORDON_VIOLATION_ERRNO_FOR_TESTS);
    (void)*target;
  });
  EXPECT_EQ(s.outcome.signal, SIGSEGV) << Dump(s);
  EXPECT_EQ(s.outcome.fault_code, cordon::testing::kSegvPkuErr);
  const auto after = AfterLockdown(s);
  ASSERT_EQ(after.size(), 1u) << Dump(s);
  const Rec& r = after[0];
  EXPECT_EQ(r.id, 8);
  EXPECT_EQ(r.Str("address"), Told(s.outcome, "at"));
  EXPECT_EQ(std::to_string(r.Int("pkey")), Told(s.outcome, "pkey"));
  EXPECT_EQ(r.Int("domain"), 1);
  EXPECT_EQ(r.Int("si_code"), cordon::testing::kSegvPkuErr);
  EXPECT_EQ(r.Str("action"), "handler");
  EXPECT_NE(r.Str("ip"), "0x0");
}

TEST(AuditAttack, PkeyFaultThatKillsIsRecordedBeforeTheProcessDies) {
  const Stream s = RunAudited([&](int fd) {
    InitWithAudit(fd);
    void* block = nullptr;
    CHILD_CHECK(cordon_malloc(64, &block) == CORDON_OK);
    Tell("at", Hex(reinterpret_cast<uintptr_t>(block)));
    signal(SIGSEGV, SIG_DFL);  // the kernel's default: the fault ends the process
    LockDown(CORDON_VIOLATION_ERRNO_FOR_TESTS, false);
    (void)*static_cast<volatile char*>(block);
    _exit(3);
  });
  EXPECT_FALSE(s.outcome.exited) << Dump(s);
  EXPECT_EQ(s.outcome.signal, SIGSEGV) << Dump(s);
  const auto after = AfterLockdown(s);
  ASSERT_EQ(after.size(), 1u) << Dump(s);
  EXPECT_EQ(after[0].id, 8);
  EXPECT_EQ(after[0].Str("address"), Told(s.outcome, "at"));
  EXPECT_EQ(after[0].Str("action"), "killed");
}

TEST(AuditAttack, GateViolationIsRecordedOnTheFatalPath) {
  const uint32_t id = 512 + static_cast<uint32_t>(Random64() % 256);
  const Stream s = RunAudited([&](int fd) {
    InitWithAudit(fd);
    LockDown(CORDON_VIOLATION_ERRNO_FOR_TESTS);
    cordon_call(cordon_entry{cordon_trusted_domain(), id}, 0, 0, 0, 0, 0);
    _exit(3);
  });
  EXPECT_EQ(s.outcome.exit_code, CORDON_VIOLATION_EXIT) << Dump(s);
  const auto after = AfterLockdown(s);
  ASSERT_EQ(after.size(), 1u) << Dump(s);
  EXPECT_EQ(after[0].id, 11);
  EXPECT_EQ(after[0].Str("message"),
            "gate violation: call to unregistered entry id " + std::to_string(id) + " of domain 1");
  EXPECT_EQ(after[0].Int("domain"), 1);
}

extern "C" uint64_t probe_jump_to_site(uintptr_t site, uint32_t eax, uint64_t id);  // register_probe.S
extern "C" uint64_t cordon_gate_avx_9(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

// Deaths decided in the gates' assembly (cordon_gate_die): the check after
// a WRPKRU that a jump reached with a forged EAX, and a gate of a domain
// that does not exist. Each is recorded, once, with the message the
// process prints, from a thread that has entered the trusted domain.
TEST(AuditAttack, GateDeathsDecidedInAssemblyAreRecorded) {
  const uint32_t forged = static_cast<uint32_t>(Random64()) & ~3u;
  for (int which = 0; which < 2; ++which) {
    const Stream s = RunAudited([&](int fd) {
      InitWithAudit(fd);
      LockDown(CORDON_VIOLATION_KILL);
      uintptr_t site = 0;
      const bool wide = cordon::gates::Config().wide_scrub != 0;
      for (size_t i = 0; i < cordon::gates::SiteCount(); ++i) {
        const auto e = cordon::gates::SiteAt(i);
        if (e.kind == SITE_ENTRY && e.wide == wide && e.domain == cordon_trusted_domain()) site = e.address;
      }
      CHILD_CHECK(site != 0);
      if (which == 0) (void)probe_jump_to_site(site, forged, 8);
      if (which == 1) (void)cordon_gate_avx_9(0, 0, 0, 0, 0, 8);
      _exit(3);
    });
    EXPECT_TRUE(s.outcome.exited) << Dump(s);
    EXPECT_EQ(s.outcome.exit_code, CORDON_VIOLATION_EXIT) << Dump(s);
    const auto after = AfterLockdown(s);
    ASSERT_EQ(after.size(), 1u) << Dump(s);
    EXPECT_EQ(after[0].id, 11) << after[0].line;
    const std::string message = after[0].Str("message");
    if (which == 0) {
      EXPECT_EQ(message.rfind("gate violation: a WRPKRU in a call gate loaded a PKRU value", 0), 0u)
          << message;
    } else {
      EXPECT_EQ(message,
                "gate called for a domain that does not exist or before cordon_init(); process stopped");
    }
    EXPECT_NE(s.outcome.err.find(message), std::string::npos) << s.outcome.err;
    // The rights at the death: the forged value (no domain's), or the
    // untrusted ones (the unknown domain is refused before any WRPKRU).
    EXPECT_EQ(after[0].Int("domain"), which == 0 ? -1 : 0) << after[0].line;
  }
}

TEST(AuditAttack, UnsafeCodePublishIsRefusedWithItsHash) {
  // Random bytes without the patterns, a WRPKRU at a random offset.
  std::vector<unsigned char> code(100 + Random64() % 3000);
  for (auto& b : code) b = static_cast<unsigned char>(Random64() % 0x0e);  // never 0F
  const size_t at = Random64() % (code.size() - 3);
  std::vector<unsigned char> safe = code;
  code[at] = 0x0f;
  code[at + 1] = 0x01;
  code[at + 2] = 0xef;
  char unsafe_hash[65], safe_hash[65];
  cordon::audit::Sha256Hex(code.data(), code.size(), unsafe_hash);
  cordon::audit::Sha256Hex(safe.data(), safe.size(), safe_hash);
  const Stream s = RunAudited([&](int fd) {
    InitWithAudit(fd);
    LockDown(CORDON_VIOLATION_ERRNO_FOR_TESTS);
    void* block = nullptr;
    CHILD_CHECK(cordon_code_load(code.data(), code.size(), &block) == CORDON_E_UNSAFE_CODE);
    CHILD_CHECK(cordon_code_load(safe.data(), safe.size(), &block) == CORDON_OK);
    Tell("block", Hex(reinterpret_cast<uintptr_t>(block)));
  });
  ASSERT_TRUE(s.outcome.exited) << Dump(s);
  const auto after = AfterLockdown(s);
  ASSERT_EQ(after.size(), 3u) << Dump(s);
  EXPECT_EQ(after[0].id, 5);
  EXPECT_EQ(after[0].Str("verdict"), "refused");
  EXPECT_EQ(after[0].Int("status"), CORDON_E_UNSAFE_CODE);
  EXPECT_EQ(after[0].args.at("length").u, code.size());
  EXPECT_EQ(after[0].Str("sha256"), unsafe_hash);
  EXPECT_EQ(after[1].id, 6) << "cordon_code_load releases the refused block";
  EXPECT_EQ(after[1].Str("block"), after[0].Str("block"));
  EXPECT_EQ(after[1].Int("status"), 0);
  EXPECT_EQ(after[2].id, 5);
  EXPECT_EQ(after[2].Str("verdict"), "published");
  EXPECT_EQ(after[2].Int("status"), 0);
  EXPECT_EQ(after[2].Str("sha256"), safe_hash);
  EXPECT_EQ(after[2].Str("block"), Told(s.outcome, "block"));
}

// ---- Tampering with the stream after the lockdown ----

struct Tamper {
  const char* name;
  long nr;  // the call the filter must refuse
  std::function<void(int fd, const std::string& forged)> attack;
};

long RawSyscall6(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  long ret;
  register long r10 asm("r10") = a3;
  register long r8 asm("r8") = a4;
  register long r9 asm("r9") = a5;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
}

std::vector<Tamper> Tampers() {
  return {
      {"write", SYS_write, [](int fd, const std::string& f) { (void)!write(fd, f.data(), f.size()); }},
      {"write_random_r8", SYS_write,
       [](int fd, const std::string& f) {
         RawSyscall6(SYS_write, fd, reinterpret_cast<long>(f.data()), static_cast<long>(f.size()), 0,
                     static_cast<long>(Random64()), static_cast<long>(Random64()));
       }},
      {"write_high_bits", SYS_write,
       [](int fd, const std::string& f) {
         RawSyscall6(SYS_write, fd | (1L << 32), reinterpret_cast<long>(f.data()),
                     static_cast<long>(f.size()), 0, 0, 0);
       }},
      {"writev", SYS_writev,
       [](int fd, const std::string& f) {
         iovec v{const_cast<char*>(f.data()), f.size()};
         (void)writev(fd, &v, 1);
       }},
      {"pwrite64", SYS_pwrite64,
       [](int fd, const std::string& f) { (void)!pwrite(fd, f.data(), f.size(), 0); }},
      {"close", SYS_close, [](int fd, const std::string&) { close(fd); }},
      {"dup", SYS_dup, [](int fd, const std::string&) { (void)dup(fd); }},
      {"dup2_onto", SYS_dup2, [](int fd, const std::string&) { (void)dup2(2, fd); }},
      {"dup3_onto", SYS_dup3, [](int fd, const std::string&) { (void)dup3(2, fd, 0); }},
      {"dup3_from", SYS_dup3, [](int fd, const std::string&) { (void)dup3(fd, fd + 1, 0); }},
      {"close_range", SYS_close_range, [](int, const std::string&) { syscall(SYS_close_range, 3, ~0u, 0); }},
      {"close_range_high_bits", SYS_close_range,
       [](int, const std::string&) { RawSyscall6(SYS_close_range, 1L << 32 | 3, ~0u, 0, 0, 0, 0); }},
      {"fcntl_dupfd_then_write", SYS_fcntl,
       [](int fd, const std::string& f) {
         const int copy = fcntl(fd, F_DUPFD, 10);
         (void)!write(copy, f.data(), f.size());
       }},
      {"fcntl_nonblock", SYS_fcntl, [](int fd, const std::string&) { (void)fcntl(fd, F_SETFL, O_NONBLOCK); }},
      {"lseek", SYS_lseek, [](int fd, const std::string&) { (void)lseek(fd, 0, SEEK_SET); }},
      {"ftruncate", SYS_ftruncate, [](int fd, const std::string&) { (void)!ftruncate(fd, 0); }},
      {"ioctl", SYS_ioctl,
       [](int fd, const std::string&) {
         int on = 1;
         (void)ioctl(fd, FIONBIO, &on);
       }},
      {"mmap", SYS_mmap,
       [](int fd, const std::string&) {
         (void)mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
       }},
      {"sendfile", SYS_sendfile,
       [](int fd, const std::string& f) {
         FILE* tmp = tmpfile();
         if (tmp != nullptr) {
           fputs(f.c_str(), tmp);
           fflush(tmp);
         }
         off_t off = 0;
         (void)sendfile(fd, tmp != nullptr ? fileno(tmp) : 0, &off, f.size());
       }},
      {"splice", SYS_splice,
       [](int fd, const std::string& f) {
         int p[2];
         if (pipe(p) != 0) return;
         (void)!write(p[1], f.data(), f.size());
         (void)splice(p[0], nullptr, fd, nullptr, f.size(), 0);
       }},
      {"vmsplice", SYS_vmsplice,
       [](int fd, const std::string& f) {
         iovec v{const_cast<char*>(f.data()), f.size()};
         (void)vmsplice(fd, &v, 1, 0);
       }},
      {"io_submit", SYS_io_submit,
       [](int fd, const std::string& f) {
         aio_context_t ctx = 0;
         if (syscall(SYS_io_setup, 1, &ctx) != 0) return;
         iocb cb{};
         cb.aio_fildes = static_cast<uint32_t>(fd);
         cb.aio_lio_opcode = IOCB_CMD_PWRITE;
         cb.aio_buf = reinterpret_cast<uint64_t>(f.data());
         cb.aio_nbytes = f.size();
         iocb* list[1] = {&cb};
         syscall(SYS_io_submit, ctx, 1, list);
       }},
  };
}

class AuditTamper : public ::testing::TestWithParam<size_t> {};

TEST_P(AuditTamper, IsRefusedRecordedAndForgesNothing) {
  const Tamper t = Tampers()[GetParam()];
  SCOPED_TRACE(t.name);
  const std::string marker = RandomHex(16);
  const std::string forged =
      "{\"timestamp\":1,\"schema\":\"cordon.audit/"
      "1\",\"seq\":1,\"processId\":1,\"threadId\":1,\"processName\":"
      "\"" +
      marker + "\",\"eventId\":10,\"eventName\":\"audit_lost\",\"argsNum\":0,\"args\":[]}\n";
  const Stream s = RunAudited([&](int fd) {
    InitWithAudit(fd);
    LockDown(CORDON_VIOLATION_KILL);
    t.attack(fd, forged);
    _exit(3);
  });
  EXPECT_TRUE(s.outcome.exited) << Dump(s);
  EXPECT_EQ(s.outcome.exit_code, CORDON_VIOLATION_EXIT) << Dump(s);
  EXPECT_EQ(s.raw.find(marker), std::string::npos) << Dump(s);
  const auto after = AfterLockdown(s);
  ASSERT_EQ(after.size(), 1u) << Dump(s);
  EXPECT_EQ(after[0].id, 7);
  EXPECT_EQ(after[0].Int("syscall"), t.nr) << Dump(s);
  EXPECT_EQ(after[0].Str("action"), "killed");
}

INSTANTIATE_TEST_SUITE_P(Calls, AuditTamper, ::testing::Range<size_t>(0, Tampers().size()),
                         [](const ::testing::TestParamInfo<size_t>& i) { return Tampers()[i.param].name; });

// A socket cannot be opened again through /proc/self/fd (ENXIO): nothing
// can be written into it but by the runtime (docs/audit.md, Limits).
TEST(AuditTamperMore, ReopeningASocketThroughProcSelfFdIsImpossible) {
  const std::string marker = RandomHex(16);
  Capture how;
  how.socket = true;
  const Stream s = RunAudited(
      [&](int fd) {
        InitWithAudit(fd);
        LockDown(CORDON_VIOLATION_KILL);
        const std::string path = "/proc/self/fd/" + std::to_string(fd);
        for (const int flags : {O_WRONLY, O_RDWR, O_RDONLY, O_WRONLY | O_APPEND}) {
          errno = 0;
          const int copy = open(path.c_str(), flags);
          if (copy >= 0) {
            const std::string line = marker + "\n";
            (void)!write(copy, line.data(), line.size());
            Tell("reopened", std::to_string(flags));
          } else {
            Tell("refused", std::to_string(errno));
          }
        }
      },
      how);
  EXPECT_TRUE(s.outcome.exited) << Dump(s);
  EXPECT_EQ(s.outcome.exit_code, 0) << Dump(s);
  EXPECT_EQ(Told(s.outcome, "reopened"), "<not told>") << Dump(s);
  EXPECT_EQ(Told(s.outcome, "refused"), std::to_string(ENXIO)) << Dump(s);
  EXPECT_EQ(s.raw.find(marker), std::string::npos) << Dump(s);
  EXPECT_TRUE(AfterLockdown(s).empty()) << Dump(s);
}

// A pipe can be opened again through /proc/self/fd, and a copy of any
// descriptor can come back over SCM_RIGHTS: no rule of the lockdown's can
// stop either (docs/audit.md, Limits), so untrusted code can write lines
// into the stream. The attacker here has read the stream (the tap: every
// line as the parent reads it), copies the lockdown's record with the next
// seq and a random mac, writes it and exits. With the key, the reader
// names exactly that line as forged; without it, the stream looks valid
// (or, when genuine records follow, it blames the genuine one).
void ForgeryIsDetected(const std::function<int(int fd)>& route, bool genuine_after) {
  int tap[2];
  ASSERT_EQ(pipe(tap), 0);
  ASSERT_GT(fcntl(tap[1], F_SETPIPE_SZ, 1 << 20), 0);  // never stalls the parent's reader
  Capture how;
  how.valid = false;
  how.tap = tap[1];
  const Stream s = RunAudited(
      [&](int fd) {
        close(tap[1]);
        InitWithAudit(fd);
        LockDown(CORDON_VIOLATION_KILL);
        // The lockdown's record, as read by the attacker.
        std::string seen, lockdown;
        char buf[65536];
        while (lockdown.empty()) {
          const ssize_t n = read(tap[0], buf, sizeof buf);
          CHILD_CHECK(n > 0);
          seen.append(buf, static_cast<size_t>(n));
          const size_t at = seen.find("\"eventName\":\"cordon_lockdown\"");
          const size_t end = at == std::string::npos ? at : seen.find('\n', at);
          if (end == std::string::npos) continue;
          const size_t begin = seen.rfind('\n', at) + 1;  // npos + 1 == 0
          lockdown = seen.substr(begin, end - begin);
        }
        const size_t seq_at = lockdown.find("\"seq\":") + 6;
        const size_t seq_end = lockdown.find(',', seq_at);
        const std::string next = std::to_string(std::stoull(lockdown.substr(seq_at, seq_end - seq_at)) + 1);
        const std::string mac = RandomHex(32);
        std::string forged = lockdown.substr(0, seq_at) + next + lockdown.substr(seq_end);
        forged.replace(forged.size() - 66, 64, mac);
        forged += "\n";
        const int copy = route(fd);
        CHILD_CHECK(copy >= 0);
        CHILD_CHECK(write(copy, forged.data(), forged.size()) == static_cast<ssize_t>(forged.size()));
        Tell("forged_mac", mac);
        if (genuine_after) CHILD_CHECK(cordon_audit_flush() == CORDON_OK);
        _exit(0);  // no atexit flush: what the test chose is the last word
      },
      how);
  close(tap[0]);
  close(tap[1]);
  ASSERT_TRUE(s.outcome.exited) << Dump(s);
  ASSERT_EQ(s.outcome.exit_code, 0) << Dump(s);
  const size_t lines = static_cast<size_t>(std::count(s.raw.begin(), s.raw.end(), '\n'));
  ASSERT_EQ(s.forged_lines.size(), 1u) << Dump(s);
  const size_t forged = s.forged_lines[0];
  const std::string mac = Told(s.outcome, "forged_mac");
  EXPECT_NE(s.raw.find(mac), std::string::npos) << Dump(s);
  const auto after = AfterLockdown(s);
  if (genuine_after) {
    ASSERT_FALSE(after.empty()) << Dump(s);
    for (const Rec& r : after) EXPECT_EQ(r.id, 9) << r.line;
  } else {
    EXPECT_EQ(forged, lines) << Dump(s);
    EXPECT_TRUE(after.empty()) << Dump(s);
  }
  EXPECT_EQ(s.records.size(), lines - 1);
  // With the key: that line, and only it.
  const Verdict keyed = ValidateWithTheReader(s.raw, s.key);
  EXPECT_EQ(keyed.status, 1) << keyed.out;
  EXPECT_EQ(keyed.out,
            "<stdin>:" + std::to_string(forged) +
                ": forged or altered record: its mac is not the key's HMAC-SHA256 of the line before "
                ",\"mac\":\n<stdin>: INVALID: 1 error(s) in " +
                std::to_string(lines) + " line(s); 1 forged or altered record(s) (no valid mac), " +
                std::to_string(lines - 1) + " authenticated\n")
      << Dump(s);
  // Without it the forgery passes for a record.
  const Verdict plain = ValidateWithTheReader(s.raw, "");
  if (genuine_after) {
    EXPECT_EQ(plain.status, 1) << plain.out;
    EXPECT_EQ(plain.out.rfind("<stdin>:" + std::to_string(forged + 1) + ": seq ", 0), 0u)
        << "the genuine record after the forgery is blamed:\n"
        << plain.out;
  } else {
    EXPECT_EQ(plain.status, 0) << plain.out;
    EXPECT_EQ(plain.out,
              "<stdin>: valid: " + std::to_string(lines) + " record(s); " + std::to_string(lines) + " of " +
                  std::to_string(lines) +
                  " record(s) carry a mac, NOT authenticated (no --key-file or --key-env given)\n");
  }
}

int ReopenedThroughProc(int fd) {
  return open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_WRONLY);
}

// The descriptor sent to itself over a Unix socket: the filter cannot
// read sendmsg's control data.
int CopiedOverScmRights(int fd) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) return -1;
  char byte = 'x';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(sv[0], &m, 0) != 1) return -1;
  alignas(cmsghdr) char got[CMSG_SPACE(sizeof(int))] = {};
  msghdr r{};
  r.msg_iov = &iov;
  r.msg_iovlen = 1;
  r.msg_control = got;
  r.msg_controllen = sizeof got;
  if (recvmsg(sv[1], &r, 0) != 1) return -1;
  c = CMSG_FIRSTHDR(&r);
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS) return -1;
  int copy = -1;
  memcpy(&copy, CMSG_DATA(c), sizeof copy);
  return copy;
}

TEST(AuditForgery, AForgedLineThroughAReopenedPipeIsDetected) {
  ForgeryIsDetected(ReopenedThroughProc, false);
}

TEST(AuditForgery, AForgedLineBeforeGenuineOnesIsTheOneDetected) {
  ForgeryIsDetected(ReopenedThroughProc, true);
}

TEST(AuditForgery, AForgedLineThroughAnScmRightsCopyIsDetected) {
  ForgeryIsDetected(CopiedOverScmRights, false);
}

TEST(AuditTamperMore, OverwrittenUntrustedMemoryChangesNoRecord) {
  // The attacker fills the executable's whole .bss (the runtime's own
  // untrusted bookkeeping among it: handler table, message slots, name
  // table) with random bytes, then writes a forged line with a raw
  // system call.
  const std::string marker = RandomHex(16);
  const Stream s = RunAudited([&](int fd) {
    InitWithAudit(fd);
    LockDown(CORDON_VIOLATION_KILL);
    const std::string line = marker + "\n";
    char copy[64];
    memcpy(copy, line.data(), line.size());
    const size_t n = line.size();
    CHILD_CHECK(syscall(SYS_getrandom, __bss_start, _end - __bss_start, 0) == _end - __bss_start);
    RawSyscall6(SYS_write, fd, reinterpret_cast<long>(copy), static_cast<long>(n), 0, 0, 0);
    RawSyscall6(SYS_exit_group, 3, 0, 0, 0, 0, 0);
  });
  EXPECT_TRUE(s.outcome.exited) << Dump(s);
  EXPECT_EQ(s.outcome.exit_code, CORDON_VIOLATION_EXIT) << Dump(s);
  EXPECT_EQ(s.raw.find(marker), std::string::npos) << Dump(s);
  const auto after = AfterLockdown(s);
  ASSERT_EQ(after.size(), 1u) << Dump(s);
  EXPECT_EQ(after[0].id, 7);
  EXPECT_EQ(after[0].Int("syscall"), SYS_write);
  EXPECT_EQ(after[0].Str("syscall_name"), "write");
}

TEST(AuditTamperMore, AnotherDescriptorOfTheStreamRefusesTheLockdown) {
  const Stream s = RunAudited([&](int fd) {
    InitWithAudit(fd);
    const int copy = dup(fd);
    CHILD_CHECK(copy >= 0);
    cordon::testing::ReportFaultsOnTheCurrentStack();
    cordon_lockdown_options o;
    cordon_lockdown_options_init(&o);
    CHILD_CHECK(cordon_lockdown_ex(&o) == CORDON_E_LOCKDOWN_FAILED);
    close(copy);
    CHILD_CHECK(cordon_lockdown_ex(&o) == CORDON_OK);
  });
  EXPECT_TRUE(s.outcome.exited) << Dump(s);
  EXPECT_EQ(s.outcome.exit_code, 0) << Dump(s);
  EXPECT_NE(s.outcome.err.find("reaches the audit stream's file"), std::string::npos) << Dump(s);
  size_t lockdowns = 0;
  for (const Rec& r : s.records) {
    if (r.id != 4) continue;
    EXPECT_EQ(r.Int("status"), lockdowns == 0 ? CORDON_E_LOCKDOWN_FAILED : 0) << r.line;
    ++lockdowns;
  }
  EXPECT_EQ(lockdowns, 2u) << Dump(s);
}

// ---- Losses ----

TEST(AuditLost, AFullNonBlockingPipeLosesRecordsAndSaysHowMany) {
  int p[2], go[2], ready[2];
  ASSERT_EQ(pipe2(p, O_NONBLOCK), 0);
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_GT(fcntl(p[1], F_SETPIPE_SZ, 4096), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p[0]);
    close(go[1]);
    close(ready[0]);
    cordon_options o;
    cordon_options_init(&o);
    o.audit_fd = p[1];
    if (cordon_init(&o) != CORDON_OK) _exit(1);
    // The init's records fill a page of pipe and more: some are lost. The
    // parent drains the pipe once init is done (not before: under a loaded
    // VM init outlasts any fixed wait, and records written after the drain
    // would be lost too), then one more record.
    if (write(ready[1], "r", 1) != 1) _exit(4);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(2);
    cordon_domain_t d;
    if (cordon_domain_create("after", &d) != CORDON_OK) _exit(3);
    _exit(0);
  }
  close(p[1]);
  close(go[0]);
  close(ready[1]);
  {
    char r;
    ASSERT_EQ(read(ready[0], &r, 1), 1) << "the child did not finish cordon_init()";
    close(ready[0]);
  }
  std::string raw;
  char buf[65536];
  ssize_t n;
  // Drain what fitted (the child is waiting for the go byte).
  for (int tries = 0; tries < 50; ++tries) {
    while ((n = read(p[0], buf, sizeof buf)) > 0) raw.append(buf, static_cast<size_t>(n));
    if (!raw.empty()) break;
    usleep(100 * 1000);
  }
  ASSERT_EQ(write(go[1], "g", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  while ((n = read(p[0], buf, sizeof buf)) > 0) raw.append(buf, static_cast<size_t>(n));
  close(p[0]);
  close(go[1]);
  std::vector<Rec> recs;
  size_t start = 0;
  while (start < raw.size()) {
    const size_t end = raw.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    Rec r;
    CheckRecord(raw.substr(start, end - start), &r);
    recs.push_back(r);
    start = end + 1;
  }
  ASSERT_GE(recs.size(), 3u) << raw;
  // Every skipped number is owned up to by an audit_lost record, and the
  // last record, written after the drain, is the domain's.
  unsigned long long gaps = 0, owned = 0;
  for (size_t i = 0; i < recs.size(); ++i) {
    const unsigned long long expected = i == 0 ? 0 : recs[i - 1].seq + 1;
    ASSERT_GE(recs[i].seq, expected) << raw;
    gaps += recs[i].seq - expected;
    if (recs[i].id == 10) owned += recs[i].args.at("lost").u;
  }
  EXPECT_GT(gaps, 0u) << raw;
  EXPECT_EQ(owned, gaps) << raw;
  EXPECT_EQ(recs.back().id, 3) << raw;
  EXPECT_EQ(recs.back().Str("name"), "after");
}

// ---- SHA-256 (FIPS 180-4 and NIST CAVP vectors) ----

TEST(AuditSha256, KnownVectors) {
  struct V {
    std::string in;
    const char* out;
  };
  const V vectors[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopq"
       "rst"
       "nopqrstu",
       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
      {std::string(1000000, 'a'), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
      {std::string(55, 'a'), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
      {std::string(56, 'a'), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
      {std::string(64, 'a'), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
  };
  for (const V& v : vectors) {
    char hex[65];
    cordon::audit::Sha256Hex(v.in.data(), v.in.size(), hex);
    EXPECT_EQ(std::string(hex), v.out) << v.in.size() << " bytes";
  }
  // Fed in pieces of every size, the same digest.
  const std::string text(1000, 'x');
  char whole[65];
  cordon::audit::Sha256Hex(text.data(), text.size(), whole);
  for (size_t piece = 1; piece < 130; ++piece) {
    cordon::audit::Sha256 h;
    for (size_t i = 0; i < text.size(); i += piece)
      h.Update(text.data() + i, std::min(piece, text.size() - i));
    uint8_t d[32];
    h.Final(d);
    char hex[65];
    for (int i = 0; i < 32; ++i) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    EXPECT_EQ(std::string(hex), whole) << piece;
  }
}

}  // namespace
