// Process-stopping error paths shared by the runtime (see check.h). The
// message is assembled here, handed over in untrusted memory, and written by
// cordon_gate_die (gate.S), which blocks every signal, leaves every domain
// and makes sure the process ends even if fd 2 is a full pipe. Raw syscalls
// only, no TLS: these run with any PKRU, on any stack, in signal handlers.
#include <csignal>
#include <cstddef>

#include "runtime/audit/audit.h"
#include "runtime/base/check.h"
#include "runtime/domains/domain.h"
#include "runtime/gates/gate_config.h"

extern "C" [[noreturn]] void cordon_internal_die(const char* message, size_t length);

namespace cordon::internal {
namespace {

// Where the messages go: untrusted memory, because cordon_gate_die writes
// them after it has left every domain. Threads that die at the same time
// each take a slot of their own, so that the one whose exit_group comes
// first has written its own message; past the last slot a thread ends the
// process without one (untrusted code can take slots too, and so only
// silence messages).
constexpr int kSlots = 4;
char g_messages[kSlots][512];
int g_next_slot;

}  // namespace

// Every signal is blocked with the config page's "every signal" word (all
// ones from the start, gate.S): on kernels that write signal frames anywhere
// the filter traps any other blocking set, and a trap in a handler that has
// SIGSYS blocked would end the process before the message is out.
FatalMessage::FatalMessage() {
  const uint64_t* all = &gates::Config().signal_block_all;
  long ret;
  register long size asm("r10") = 8;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(14 /* SYS_rt_sigprocmask */), "D"(SIG_BLOCK), "S"(all), "d"(nullptr), "r"(size)
               : "rcx", "r11", "memory");
  (void)ret;
}

FatalMessage& FatalMessage::Add(const char* s) {
  while (*s != '\0' && length_ < sizeof text_) text_[length_++] = *s++;
  return *this;
}

FatalMessage& FatalMessage::Number(unsigned long long n) {
  char digits[24];
  size_t pos = sizeof digits;
  do {
    digits[--pos] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  while (pos < sizeof digits && length_ < sizeof text_) text_[length_++] = digits[pos++];
  return *this;
}

FatalMessage& FatalMessage::Signed(long long n) {
  if (n < 0) Add("-");
  return Number(n < 0 ? 0ull - static_cast<unsigned long long>(n) : static_cast<unsigned long long>(n));
}

FatalMessage& FatalMessage::Hex(unsigned long long n) {
  char digits[16];
  size_t pos = sizeof digits;
  do {
    digits[--pos] = "0123456789abcdef"[n & 15];
    n >>= 4;
  } while (n != 0);
  Add("0x");
  while (pos < sizeof digits && length_ < sizeof text_) text_[length_++] = digits[pos++];
  return *this;
}

namespace {

// With an audit stream (docs/audit.md), a death is recorded once, by the
// trusted domain, which keeps the only flag that decides it (untrusted
// memory decides nothing). Inside the trusted domain the operation writes
// the record and then ends the process itself. Anywhere else the die path
// writes the message first and then enters the trusted domain to record
// (gate.S, cordon_gate_die): a death while recording must not cost the
// first message. A death whose record is written already (a refused
// call's, a fault's) finds the trusted flag set and adds none.
[[noreturn]] void DieRecording(const char* message, size_t n) {
  if (audit::Enabled() && domains::PositionFor(domains::kTrustedDomain) == domains::Position::kInside) {
    (void)audit::Call(audit::kOpDieFatal, reinterpret_cast<uint64_t>(message), n,
                      static_cast<uint64_t>(static_cast<int64_t>(domains::Current())), 0);
  }
  cordon_internal_die(message, n);
}

}  // namespace

void FatalMessage::Die() {
  const int slot = __atomic_fetch_add(&g_next_slot, 1, __ATOMIC_ACQ_REL);
  if (slot < 0 || slot >= kSlots) DieRecording(g_messages[0], 0);
  char* g_message = g_messages[slot];
  static constexpr char kPrefix[] = "cordon: ";
  size_t n = 0;
  for (const char c : kPrefix) {
    if (c != '\0') g_message[n++] = c;
  }
  for (size_t i = 0; i < length_ && n < sizeof g_messages[0] - 1; ++i) g_message[n++] = text_[i];
  g_message[n++] = '\n';
  DieRecording(g_message, n);
}

void Die(const char* message) {
  FatalMessage().Add(message).Die();
}

void DieWithNumbers(const char* a, unsigned long long n1, const char* b, unsigned long long n2) {
  FatalMessage m;
  m.Add(a).Number(n1);
  if (b != nullptr) m.Add(b).Number(n2);
  m.Die();
}

}  // namespace cordon::internal
