// The audit stream's writer (audit.h, docs/audit.md). Trusted code: raw
// system calls, no allocation while recording, no stdio, no TLS.
#include "runtime/audit/audit.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "cordon/cordon.h"
#include "cordon/version.h"
#include "runtime/audit/hmac.h"
#include "runtime/domains/domain.h"
#include "runtime/domains/virtual.h"
#include "runtime/gates/call_counts.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/pkey.h"

extern "C" [[noreturn]] void cordon_internal_die(const char* message, size_t length);

namespace cordon::audit {
namespace {

using domains::EncodeStatus;
using domains::kTrustedDomain;
using gates::Config;

constexpr int kNamedCalls = 512;

// Phases: set-up records are accepted until the lockdown's record.
enum Phase : uint32_t { kNoInit = 0, kSetUp = 1, kClosed = 2 };

// The stream's HMAC key, if it has one.
struct Key {
  bool set;
  uint8_t bytes[kMacKeySize];
};

// In the trusted domain's heap (Config().audit_state).
struct State {
  int fd;
  std::atomic<uint64_t> seq;
  std::atomic<uint64_t> lost;  // records lost since the last audit_lost record
  std::atomic<uint32_t> phase;
  std::atomic<uint32_t> domains_recorded;  // bit d: domain_create written
  std::atomic<uint32_t> virtual_recorded;  // virtual domains 0..n-1 have their domain_create
  std::atomic<uint32_t> dying;             // 1 once a death is recorded: the fatal path's own record is not
  std::atomic<uint64_t> writer;  // pid << 32 | tid of the thread numbering and writing a record, or 0
  char comm[17];
  const char* names[kNamedCalls];  // libseccomp's names (read-only data), by number
  Key key;                         // with one, every record ends with its mac (docs/audit.md)
};

State* St() {
  return reinterpret_cast<State*>(Config().audit_state);
}

// A record's text, built on the stack. Longer than any record can get: a
// pipe takes a write of up to PIPE_BUF (4096) bytes whole, so a record
// never interleaves with another writer's.
constexpr size_t kMaxRecord = 4000;
constexpr size_t kMaxString = 400;  // bytes of one string argument, before escaping

class Line {
 public:
  void Raw(const char* s) {
    while (*s != '\0') Byte(*s++);
  }
  void Byte(char c) {
    if (len_ < sizeof text_) text_[len_++] = c;
  }
  void Unsigned(uint64_t v) {
    char d[24];
    size_t n = 0;
    do {
      d[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0) Byte(d[--n]);
  }
  void Signed(int64_t v) {
    if (v < 0) Byte('-');
    Unsigned(v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v));
  }
  void Hex(uint64_t v) {
    char d[16];
    size_t n = 0;
    do {
      d[n++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v != 0);
    Raw("\"0x");
    while (n > 0) Byte(d[--n]);
    Byte('"');
  }
  // JSON string: control bytes, '"', '\\' and bytes >= 0x80 escaped, so
  // that a record is always ASCII; at most kMaxString bytes of s.
  void String(const char* s) {
    Byte('"');
    for (size_t i = 0; s != nullptr && s[i] != '\0' && i < kMaxString; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c == '"' || c == '\\') {
        Byte('\\');
        Byte(static_cast<char>(c));
      } else if (c < 0x20 || c >= 0x7f) {
        Raw("\\u00");
        Byte("0123456789abcdef"[c >> 4]);
        Byte("0123456789abcdef"[c & 15]);
      } else {
        Byte(static_cast<char>(c));
      }
    }
    Byte('"');
  }
  bool Full() const { return len_ >= sizeof text_; }
  const char* data() const { return text_; }
  size_t size() const { return len_; }

 private:
  char text_[kMaxRecord];
  size_t len_ = 0;
};

// No value in a record may be the token (docs/lockdown.md): a refused
// call's r8 and r9 might hold it, if it was the runtime's own.
uint64_t Redacted(uint64_t v) {
  const uint64_t* t = domains::TokenOf(kTrustedDomain);
  return v == t[0] || v == t[1] ? 0 : v;
}

// One record: the arguments first, then the header around them at Emit().
class Record {
 public:
  Record(int id, const char* name) : id_(id), name_(name) {}
  Record& Int(const char* name, int64_t v) {
    Begin(name, "int");
    args_.Signed(static_cast<int64_t>(Redacted(static_cast<uint64_t>(v))));
    return End();
  }
  Record& U64(const char* name, const char* type, uint64_t v) {
    Begin(name, type);
    args_.Unsigned(Redacted(v));
    return End();
  }
  Record& Ptr(const char* name, uint64_t v) {
    Begin(name, "void*");
    args_.Hex(Redacted(v));
    return End();
  }
  Record& Str(const char* name, const char* s) {
    Begin(name, "const char*");
    args_.String(s);
    return End();
  }
  Record& Ulongs(const char* name, const uint64_t* v, size_t n) {
    Begin(name, "unsigned long[]");
    args_.Byte('[');
    for (size_t i = 0; i < n; ++i) {
      if (i != 0) args_.Byte(',');
      args_.Hex(Redacted(v[i]));
    }
    args_.Byte(']');
    return End();
  }
  void Emit();

 private:
  void Begin(const char* name, const char* type) {
    if (argc_ != 0) args_.Byte(',');
    args_.Raw("{\"name\":\"");
    args_.Raw(name);
    args_.Raw("\",\"type\":\"");
    args_.Raw(type);
    args_.Raw("\",\"value\":");
  }
  Record& End() {
    args_.Byte('}');
    ++argc_;
    return *this;
  }
  bool Write(State* s, uint64_t seq);

  int id_;
  const char* name_;
  int argc_ = 0;
  Line args_;
};

long Raw(long nr, long a0 = 0, long a1 = 0, long a2 = 0) {
  return hw::RawSyscall3(nr, a0, a1, a2);
}

// Writes the whole line with the token (a partial write, to a file, goes
// on; EINTR is retried). false: the record is lost.
bool WriteAll(int fd, const char* p, size_t n) {
  const uint64_t* token = domains::TokenOf(kTrustedDomain);
  while (n > 0) {
    const long w = hw::SysWithToken(SYS_write, fd, reinterpret_cast<long>(p), static_cast<long>(n), 0, token);
    if (w == -EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool Record::Write(State* s, uint64_t seq) {
  Line line;
  timespec ts{};
  (void)Raw(SYS_clock_gettime, CLOCK_REALTIME, reinterpret_cast<long>(&ts));
  line.Raw("{\"timestamp\":");
  line.Unsigned(static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec));
  line.Raw(",\"schema\":\"cordon.audit/1\",\"seq\":");
  line.Unsigned(seq);
  line.Raw(",\"processId\":");
  line.Signed(Raw(SYS_getpid));
  line.Raw(",\"threadId\":");
  line.Signed(Raw(SYS_gettid));
  line.Raw(",\"processName\":");
  line.String(s->comm);
  line.Raw(",\"eventId\":");
  line.Signed(id_);
  line.Raw(",\"eventName\":\"");
  line.Raw(name_);
  line.Raw("\",\"argsNum\":");
  line.Signed(argc_);
  line.Raw(",\"args\":[");
  for (size_t i = 0; i < args_.size(); ++i) line.Byte(args_.data()[i]);
  line.Byte(']');
  if (s->key.set && !line.Full()) {
    // The mac covers the line as written so far (docs/audit.md); the key's
    // pads and hash states stay on this (trusted) stack and are wiped.
    char mac[2 * Sha256::kDigestSize + 1];
    HmacSha256Hex(s->key.bytes, sizeof s->key.bytes, line.data(), line.size(), mac);
    line.Raw(",\"mac\":\"");
    line.Raw(mac);
    line.Byte('"');
  }
  line.Raw("}\n");
  // A record too long for one write is cut by no one: it is lost whole
  // (strings are bounded, so only a bug gets here).
  if (line.Full()) return false;
  return WriteAll(s->fd, line.data(), line.size());
}

// Why one writer at a time: a record's number is taken and its line
// written as one step, so the stream's lines come in seq order whatever
// the threads do, and an audit_lost record always directly follows the
// gap it owns up to (docs/audit.md, "Losses and blocking").
// Why every signal is blocked meanwhile: a program's handler that ran
// while this thread held the writer could end the thread (SYS_exit) and
// leave the writer held for good, every later record, and every death
// behind one, waiting forever (the runtime's "block everything" set, the
// one the 6.12 filter lets through; SIG_UNBLOCK puts the rest back).
// Why the owner word holds the pid: a fork() child copies a writer that
// another thread of the parent held; it is no one's in the child.
void Record::Emit() {
  State* s = St();
  if (s == nullptr) return;
  const uint64_t* token = domains::TokenOf(kTrustedDomain);
  uint64_t before = 0;
  (void)hw::SysWithToken(SYS_rt_sigprocmask, SIG_BLOCK, reinterpret_cast<long>(&Config().signal_block_all),
                         reinterpret_cast<long>(&before), 8, token);
  const uint64_t pid = static_cast<uint64_t>(Raw(SYS_getpid));
  const uint64_t self = pid << 32 | static_cast<uint32_t>(Raw(SYS_gettid));
  uint64_t held = 0;
  while (!s->writer.compare_exchange_weak(held, self, std::memory_order_acquire)) {
    if (held >> 32 != pid) continue;  // a parent's writer, copied by fork(): take it over
    held = 0;
    __builtin_ia32_pause();
  }
  // Records lost before this one are owned up to first, under a number
  // of their own.
  if (const uint64_t lost = s->lost.exchange(0); lost != 0) {
    Record r(10, "audit_lost");
    r.U64("lost", "u64", lost);
    if (!r.Write(s, s->seq.fetch_add(1))) s->lost.fetch_add(lost + 1);
  }
  if (!Write(s, s->seq.fetch_add(1))) s->lost.fetch_add(1);
  s->writer.store(0, std::memory_order_release);
  const uint64_t unblock = Config().signal_block_all & ~before;
  (void)hw::SysWithToken(SYS_rt_sigprocmask, SIG_UNBLOCK, reinterpret_cast<long>(&unblock), 0, 8, token);
}

// Up to max bytes of a string in untrusted memory, copied into out (max +
// 1 bytes) and NUL-terminated; the length. Each byte is read once, and
// each page is checked to be untrusted before the first byte of it is
// read: a string that another thread changes meanwhile (its NUL taken
// away) can only run on into memory that is checked too, and stops at the
// first page that is not untrusted.
size_t CopyUntrusted(uint64_t p, size_t max, char* out) {
  size_t n = 0;
  for (; p != 0 && n < max; ++n) {
    const uint64_t at = p + n;
    if ((n == 0 || (at & 4095) == 0) && !domains::IsUntrustedRange(reinterpret_cast<void*>(at), 1)) break;
    const char c = *reinterpret_cast<const volatile char*>(at);
    if (c == '\0') break;
    out[n] = c;
  }
  out[n] = '\0';
  return n;
}

// A string argument from untrusted memory (set-up's names, the platform
// line, an entry's name), copied once (CopyUntrusted); "" when it does not
// start in untrusted memory. Lives until the end of the record's statement.
class UntrustedText {
 public:
  explicit UntrustedText(uint64_t p) { (void)CopyUntrusted(p, kMaxString, text_); }
  const char* c_str() const { return text_; }

 private:
  char text_[kMaxString + 1];
};

const char* SyscallName(const State* s, long nr) {
  return nr >= 0 && nr < kNamedCalls && s->names[nr] != nullptr ? s->names[nr] : "unknown";
}

// A signal's siginfo and ucontext, copied out of untrusted memory (the
// frame the kernel wrote on the untrusted stack, or the runtime's copy of
// it there). false when either is not untrusted memory.
bool CopyFrame(uint64_t info, uint64_t uc, siginfo_t* si, ucontext_t* u) {
  if (!domains::IsUntrustedRange(reinterpret_cast<void*>(info), sizeof *si) ||
      !domains::IsUntrustedRange(reinterpret_cast<void*>(uc), sizeof *u)) {
    return false;
  }
  memcpy(si, reinterpret_cast<void*>(info), sizeof *si);
  memcpy(u, reinterpret_cast<void*>(uc), sizeof *u);
  return true;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The key kOpSetUp was given, read from untrusted memory straight into
// the trusted state (no copy of it anywhere else). false: not a key.
bool TakeKey(uint64_t from, uint64_t form, Key* k) {
  const auto* p = reinterpret_cast<const char*>(from);
  if (form == kKeyBytes) {
    if (!domains::IsUntrustedRange(p, kMacKeySize)) return false;
    memcpy(k->bytes, p, kMacKeySize);
  } else {
    if (!domains::IsUntrustedRange(p, 2 * kMacKeySize + 1) || p[2 * kMacKeySize] != '\0') return false;
    for (size_t i = 0; i < kMacKeySize; ++i) {
      const int hi = HexDigit(p[2 * i]), lo = HexDigit(p[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        Wipe(k->bytes, sizeof k->bytes);
        return false;
      }
      k->bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
  }
  k->set = true;
  return true;
}

uint64_t SetUp(uint64_t fd, uint64_t key, uint64_t form, uint64_t tls_slot_below) {
  if (Config().audit_state != 0 || Config().locked != 0) return EncodeStatus(CORDON_E_ALREADY_INITIALIZED);
  if (form != kNoKey && form != kKeyBytes && form != kKeyHex) return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
  const uint64_t mem = domains::HeapAllocInside(kTrustedDomain, sizeof(State), alignof(State));
  if (domains::IsStatus(mem)) return mem;
  auto* s = new (reinterpret_cast<void*>(mem)) State{};
  if (form != kNoKey && !TakeKey(key, form, &s->key)) {
    (void)domains::HeapFreeInside(kTrustedDomain, s);
    return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
  }
  s->fd = static_cast<int>(fd);
  (void)Raw(SYS_prctl, PR_GET_NAME, reinterpret_cast<long>(s->comm));
  s->comm[16] = '\0';
  for (int nr = 0; nr < kNamedCalls; ++nr)
    s->names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
  const bool ok = gates::UpdateConfig([&](gates::GateConfig& c) {
    c.audit_state = mem;
    c.audit_fd = static_cast<int32_t>(fd);
    c.tls_slot_below = tls_slot_below;
  });
  return ok ? 0 : EncodeStatus(CORDON_E_SYSCALL);
}

const char* const kKinds[] = {"WRPKRU", "XRSTOR"};
const char* const kVerdicts[] = {"gate_site", "instruction", "hidden"};
const char* const kActions[] = {"none", "neutralized", "refused", "relocated"};

template <size_t N>
const char* Pick(const char* const (&names)[N], uint64_t i) {
  return i < N ? names[i] : "unknown";
}

uint64_t SetUpRecord(State* s, uint64_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) {
  const uint32_t phase = s->phase.load();
  if (phase == kClosed) return EncodeStatus(CORDON_E_LOCKED);
  switch (op) {
    case kOpInit: {
      uint32_t expected = kNoInit;
      if (!s->phase.compare_exchange_strong(expected, kSetUp))
        return EncodeStatus(CORDON_E_ALREADY_INITIALIZED);
      Record(1, "cordon_init")
          .Str("version", CORDON_VERSION_STRING)
          .Str("platform", UntrustedText(a0).c_str())
          .Int("trusted_pkey", domains::KeyOf(kTrustedDomain))
          .Str("inspect_policy", a1 == CORDON_INSPECT_REFUSE ? "refuse" : "neutralize")
          .Emit();
      return 0;
    }
    case kOpFinding:
      if (phase != kSetUp) return EncodeStatus(CORDON_E_NOT_INITIALIZED);
      Record(2, "inspection_finding")
          .Ptr("address", a0)
          .Str("kind", Pick(kKinds, a1 & 0xff))
          .Str("verdict", Pick(kVerdicts, (a1 >> 8) & 0xff))
          .Str("action", Pick(kActions, (a1 >> 16) & 0xff))
          .Str("object", UntrustedText(a2).c_str())
          .Str("symbol", UntrustedText(a3).c_str())
          .Emit();
      return 0;
    case kOpDomain: {
      if (phase != kSetUp) return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
      if (a0 <= INT32_MAX && domains::virt::IsVirtual(static_cast<int>(a0))) {
        // Virtual domains are made in order, each recorded once: the next
        // one only. Its pages carry the parking key until its first load.
        const auto index = static_cast<uint32_t>(a0 - domains::virt::kFirstHandle);
        uint32_t expected = index;
        if (!s->virtual_recorded.compare_exchange_strong(expected, index + 1))
          return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
        Record(3, "domain_create")
            .Int("domain", static_cast<int64_t>(a0))
            .Str("name", UntrustedText(a1).c_str())
            .Int("pkey", Config().virt.parking_key)
            .Ptr("region_start", domains::virt::RegionStart(index))
            .U64("region_size", "size_t", Config().virt.vstride)
            .Emit();
        return 0;
      }
      if (!domains::Exists(static_cast<int>(a0))) return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
      const uint32_t bit = 1u << (a0 & 31);
      if ((s->domains_recorded.fetch_or(bit) & bit) != 0) return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
      const auto& dc = Config().domains[a0];
      Record(3, "domain_create")
          .Int("domain", static_cast<int64_t>(a0))
          .Str("name", UntrustedText(a1).c_str())
          .Int("pkey", domains::KeyOf(static_cast<int>(a0)))
          .Ptr("region_start", dc.region_start)
          .U64("region_size", "size_t", dc.region_end - dc.region_start)
          .Emit();
      return 0;
    }
    case kOpLockdown: {
      if (phase != kSetUp) return EncodeStatus(CORDON_E_NOT_INITIALIZED);
      const int status = static_cast<int>(static_cast<int64_t>(a1));
      // Set-up is over once the process is locked, even partly: no more
      // set-up records, from anyone.
      if (Config().locked != 0) s->phase.store(kClosed);
      Record(4, "cordon_lockdown")
          .Str("violation", a0 == CORDON_VIOLATION_ERRNO_FOR_TESTS ? "errno_for_tests" : "kill")
          .Int("status", status)
          .Emit();
      return 0;
    }
    default:
      break;
  }
  (void)a2;
  (void)a3;
  return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
}

// The domain owning a key, 0 for none.
int DomainOfKey(int key) {
  for (int d = 1; d <= static_cast<int>(Config().domain_count); ++d) {
    if (domains::KeyOf(d) == key) return d;
  }
  return 0;
}

// The domain whose rights a PKRU value is: 0 for untrusted code's, -1 for
// none (a forged value).
int64_t DomainOfPkru(uint32_t pkru) {
  if (pkru == Config().untrusted_pkru) return 0;
  for (uint32_t d = 1; d <= Config().domain_count && d < CORDON_MAX_DOMAINS; ++d) {
    if (Config().domains[d].pkru == pkru) return d;
  }
  return -1;
}

constexpr int kSegvPkuErr = 4;

uint64_t Fault(State* s, uint64_t info, uint64_t uc, uint64_t handler) {
  siginfo_t si;
  ucontext_t u;
  if (!CopyFrame(info, uc, &si, &u)) return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
  const int key = si.si_code == kSegvPkuErr ? static_cast<int>(si.si_pkey) : -1;
  Record(8, "pkey_fault")
      .Ptr("address", reinterpret_cast<uint64_t>(si.si_addr))
      .Int("pkey", key)
      .Int("domain", key >= 0 ? DomainOfKey(key) : 0)
      .Int("si_code", si.si_code)
      .Ptr("ip", static_cast<uint64_t>(u.uc_mcontext.gregs[REG_RIP]))
      .Str("action", handler != 0 ? "handler" : "killed")
      .Emit();
  if (handler != 0) return 0;
  s->dying.store(1);
  // Then the death the fault would have brought without the stream: the
  // kernel's default action for SIGSEGV, from a fault of its own.
  struct {
    uint64_t handler, flags, restorer, mask;
  } dfl{0, 0, 0, 0};
  (void)hw::SysWithToken(SYS_rt_sigaction, SIGSEGV, reinterpret_cast<long>(&dfl), 0, 8,
                         domains::TokenOf(kTrustedDomain));
  *reinterpret_cast<volatile char*>(8) = 0;
  cordon_internal_die("", 0);
}

// The filter's SIGSYS in kill mode: the record, then the message (built
// here from the names in trusted memory, so that nothing untrusted code
// can overwrite decides whether the record and the message come out),
// then the end of the process.
[[noreturn]] void DieSyscall(uint64_t info, uint64_t uc) {
  internal::FatalMessage m;  // every signal blocked
  siginfo_t si{};
  ucontext_t u{};
  State* s = St();
  const bool copied = CopyFrame(info, uc, &si, &u);
  const bool native = si.si_arch == AUDIT_ARCH_X86_64 && (si.si_syscall & 0x40000000) == 0;
  const char* name = s != nullptr && native ? SyscallName(s, si.si_syscall) : "unknown";
  if (s != nullptr && copied) {
    const greg_t* g = u.uc_mcontext.gregs;
    const uint64_t args[6] = {static_cast<uint64_t>(g[REG_RDI]), static_cast<uint64_t>(g[REG_RSI]),
                              static_cast<uint64_t>(g[REG_RDX]), static_cast<uint64_t>(g[REG_R10]),
                              static_cast<uint64_t>(g[REG_R8]),  static_cast<uint64_t>(g[REG_R9])};
    s->dying.store(1);
    Record(7, "syscall_refused")
        .Int("syscall", si.si_syscall)
        .Str("syscall_name", name)
        .Ulongs("syscall_args", args, 6)
        .Ptr("ip", reinterpret_cast<uint64_t>(si.si_call_addr))
        .Str("action", "killed")
        .Emit();
  }
  ViolationMessage(m, si, strcmp(name, "unknown") == 0 ? nullptr : name);
  m.Die();  // inside the trusted domain: the record is out, the flag set
}

}  // namespace

bool Enabled() {
  return Config().audit_state != 0;
}

int Descriptor() {
  return Enabled() ? Config().audit_fd : -1;
}

std::string CheckDescriptor(int fd) {
  if (fd < 0) return "CORDON_AUDIT_FD / cordon_options.audit_fd is negative";
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return "descriptor " + std::to_string(fd) + " is not open";
  if ((flags & O_ACCMODE) == O_RDONLY || (flags & O_PATH) != 0) {
    return "descriptor " + std::to_string(fd) + " is not open for writing";
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) return "cannot fstat descriptor " + std::to_string(fd);
  if (!S_ISFIFO(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISSOCK(st.st_mode) && !S_ISCHR(st.st_mode)) {
    return "descriptor " + std::to_string(fd) + " is neither a pipe, a file, a socket nor a character device";
  }
  return {};
}

std::string CheckHexKey(const char* hex) {
  const size_t n = strlen(hex);
  if (n != 2 * kMacKeySize) {
    return "has " + std::to_string(n) + " characters, not the " + std::to_string(2 * kMacKeySize) +
           " hex digits of a " + std::to_string(kMacKeySize) + "-byte key";
  }
  for (size_t i = 0; i < n; ++i) {
    if (HexDigit(hex[i]) < 0)
      return "has a character that is not a hex digit at position " + std::to_string(i + 1);
  }
  return {};
}

namespace {

// The gate finds the calling thread's record through fs (gate.S reads
// cordon_tls_records there): from a signal handler or the fatal path, fs
// is whatever untrusted code left, and one aimed into trusted memory would
// make the gate fault (the stream's calls are the only gate calls those
// paths make). How far below the thread pointer the trusted domain's slot
// lies is the same for every thread (static TLS), noted at set-up with a
// sane fs; untrusted memory, so that untrusted code can change it only to
// lose records, which it can anyway.
uint64_t FsBase() {
  uint64_t v;
  asm volatile("rdfsbase %0" : "=r"(v));
  return v;
}

bool TlsSlotIsUntrusted() {
  return domains::IsUntrustedRange(reinterpret_cast<void*>(FsBase() - Config().tls_slot_below),
                                   sizeof(uint32_t));
}

}  // namespace

uint64_t Call(uint64_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) {
  switch (domains::PositionFor(kTrustedDomain)) {
    case domains::Position::kUntrusted:
      if (op == kOpSetUp) {
        a3 = FsBase() - reinterpret_cast<uint64_t>(&cordon_tls_records[kTrustedDomain]);
      } else if (!TlsSlotIsUntrusted()) {
        return EncodeStatus(CORDON_E_WRONG_DOMAIN);
      }
      return gates::GateFor(kTrustedDomain)(op, a0, a1, a2, a3, domains::kBuiltinCode);
    case domains::Position::kInside:
      return RunInside(op, a0, a1, a2, a3);
    case domains::Position::kElsewhere:
      break;
  }
  return EncodeStatus(CORDON_E_WRONG_DOMAIN);
}

uint64_t RunInside(uint64_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) {
  if (op == kOpSetUp) return SetUp(a0, a1, a2, a3);
  State* s = St();
  if (op == kOpDieFatal) {
    static_assert(kOpDieFatal == DIE_AUDIT_OP && domains::kBuiltinCode == DIE_BUILTIN_CODE);
    // One death per process is recorded: the one that decided it (the
    // records of a refused call or a fault end on the fatal path too,
    // which then has nothing to add). From the die path (a3: its marker)
    // the message is out already and a2 is the PKRU the death found;
    // otherwise a2 is the caller's domain and the message comes after.
    const bool from_die_path = a3 == DIE_RECORDING_MARKER;
    if (s != nullptr && s->dying.exchange(1) == 0) {
      char text[512];
      const size_t n = CopyUntrusted(a0, a1 < sizeof text ? a1 : sizeof text - 1, text);
      size_t from = n >= 8 && memcmp(text, "cordon: ", 8) == 0 ? 8 : 0, to = 0;
      for (size_t i = from; i < n && text[i] != '\n'; ++i) text[to++] = text[i];
      text[to] = '\0';
      const int64_t domain =
          from_die_path ? DomainOfPkru(static_cast<uint32_t>(a2)) : static_cast<int64_t>(a2);
      Record(11, "fatal").Str("message", text).Int("domain", domain).Emit();
    } else if (s != nullptr) {
      // Another death's record may be on its way out: the end waits for
      // the writer, so that it does not cut that record off.
      const uint64_t pid = static_cast<uint64_t>(Raw(SYS_getpid));
      for (uint64_t w; (w = s->writer.load(std::memory_order_acquire)) != 0 && w >> 32 == pid;)
        __builtin_ia32_pause();
    }
    if (from_die_path) cordon_internal_die(nullptr, 0);
    cordon_internal_die(reinterpret_cast<const char*>(a0), a1);
  }
  if (op == kOpDieSyscall) DieSyscall(a0, a1);
  if (s == nullptr) return EncodeStatus(CORDON_E_NOT_INITIALIZED);
  switch (op) {
    case kOpInit:
    case kOpFinding:
    case kOpDomain:
    case kOpLockdown:
      return SetUpRecord(s, op, a0, a1, a2, a3);
    case kOpGateCalls: {
      const int d = static_cast<int>(a0);
      if (!domains::Exists(d) || a1 >= gates::kCountedIds) return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
      // The trusted domain's counts are its own memory: read here, not taken.
      const uint64_t count = d == kTrustedDomain ? gates::EntryCallCount(d, static_cast<uint32_t>(a1)) : a3;
      if (count == 0) return 0;
      Record(9, "gate_calls")
          .Int("domain", d)
          .Int("entry", static_cast<int64_t>(a1))
          .Str("entry_name", UntrustedText(a2).c_str())
          .U64("count", "u64", count)
          .Emit();
      return 0;
    }
    case kOpFault:
      return Fault(s, a0, a1, a2);
    default:
      return EncodeStatus(CORDON_E_INVALID_ARGUMENT);
  }
}

void ViolationMessage(internal::FatalMessage& m, const siginfo_t& si, const char* name) {
  const int nr = si.si_syscall;
  const auto at = reinterpret_cast<unsigned long long>(si.si_call_addr);
  if (si.si_arch != AUDIT_ARCH_X86_64) {
    m.Add("lockdown violation: a 32-bit system call (int 0x80, number ")
        .Signed(nr)
        .Add(") at ")
        .Hex(at)
        .Add("; only x86-64 system calls are allowed; process stopped");
  } else if ((nr & 0x40000000) != 0) {
    m.Add("lockdown violation: an x32 system call (number ")
        .Hex(static_cast<unsigned>(nr))
        .Add(") at ")
        .Hex(at)
        .Add("; process stopped");
  } else {
    m.Add("lockdown violation: system call ")
        .Add(name != nullptr ? name : "?")
        .Add(" (")
        .Signed(nr)
        .Add(") at ")
        .Hex(at)
        .Add(
            " is forbidden after cordon_lockdown(), with these arguments (docs/lockdown.md lists the rules); "
            "process stopped");
  }
}

void RecordCodePublish(uint64_t block, uint64_t length, const char* sha256_hex, int status) {
  if (St() == nullptr) return;
  Record(5, "code_publish")
      .Ptr("block", block)
      .U64("length", "size_t", length)
      .Str("sha256", sha256_hex)
      .Str("verdict", status == CORDON_OK ? "published" : "refused")
      .Int("status", status)
      .Emit();
}

void RecordCodeRelease(uint64_t block, int status) {
  if (St() == nullptr) return;
  Record(6, "code_release").Ptr("block", block).Int("status", status).Emit();
}

}  // namespace cordon::audit
