// gate_icount: exact user-mode instruction counts of one gate round trip,
// measured by single-stepping a child process with ptrace (run it in the
// PKU VM: `tools/cordon-vm build/bench/gate_icount`).
//
// Wall-clock time under QEMU's TCG says nothing about WRPKRU on hardware,
// but the number of instructions a round trip executes is exact and the
// same on any machine with the same gate variant.
#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench/pass_target.h"
#include "cordon/cordon.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/platform.h"

extern "C" {
uint64_t icount_target(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
extern const char icount_target_end[];
extern const char cordon_gates_begin[];
extern const char cordon_gates_end[];
// Markers (icount_target.S), each a lone ret: the tracer counts every
// instruction executed after icount_begin(n) returns and before the call
// that enters icount_end().
void icount_begin(int scenario);
void icount_end();
}

namespace {

// The WRPKRU bytes, as data: written as an immediate in a compare, they would
// themselves be an unintended WRPKRU in this program's code, which
// cordon_init() refuses (it did).
const unsigned char kWrpkruBytes[3] = {0x0f, 0x01, 0xef};

const char* const kNames[] = {
    "gate round trip (cordon_call -> gate -> entry -> back)",
    "gate round trip, gate called directly",
    "direct call of the same function",
    "mprotect-based switch (mprotect RW, call, mprotect NONE)",
    "pass-generated gate round trip (a CORDON_TRUSTED function)",
    "pass-generated gate called by trusted code through a pointer",
};
constexpr int kScenarios = 6;
// Scenarios whose 'in gate' column counts pass_target's generated gate.
bool PassScenario(int s) {
  return s >= 4;
}

// [lo, hi) of a function whose symbol the program exports.
bool SymbolExtent(const void* fn, uintptr_t* lo, uintptr_t* hi) {
  Dl_info info;
  void* entry = nullptr;
  if (dladdr1(fn, &info, &entry, RTLD_DL_SYMENT) == 0 || entry == nullptr) return false;
  const auto* sym = static_cast<const ElfW(Sym)*>(entry);
  *lo = reinterpret_cast<uintptr_t>(info.dli_saddr);
  *hi = *lo + sym->st_size;
  return sym->st_size > 0;
}

// The body the plugin kept for pass_target, from its entry record (read
// directly: the tracer does not initialise Cordon).
uintptr_t PassBody() {
  for (size_t i = 0; i < cordon::gates::GeneratedEntryCount(); ++i) {
    const cordon::gates::GeneratedEntry e = cordon::gates::GeneratedEntryAt(i);
    if (e.gate == reinterpret_cast<uintptr_t>(&pass_target)) return e.body;
  }
  return 0;
}

int Child() {
  if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) return 10;
  if (cordon_init(nullptr) != CORDON_OK) return 11;
  cordon_entry e;
  if (cordon_register(cordon_trusted_domain(), icount_target, "nop", &e) != CORDON_OK) return 12;
  const auto gate = cordon::gates::GateFor(e.domain);
  (void)cordon_call(e, 0, 0, 0, 0, 0);  // warm: this thread's record is attached
  (void)pass_target(0, 0, 0, 0, 0);
  void* page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  raise(SIGSTOP);

  icount_begin(0);
  (void)cordon_call(e, 1, 2, 3, 4, 5);
  icount_end();
  icount_begin(1);
  (void)gate(1, 2, 3, 4, 5, e.id);
  icount_end();
  icount_begin(2);
  (void)icount_target(1, 2, 3, 4, 5);
  icount_end();
  icount_begin(3);
  (void)mprotect(page, 4096, PROT_READ | PROT_WRITE);
  (void)icount_target(1, 2, 3, 4, 5);
  (void)mprotect(page, 4096, PROT_NONE);
  icount_end();
  icount_begin(4);
  (void)pass_target(1, 2, 3, 4, 5);
  icount_end();
  icount_begin(5);
  (void)pass_outer(&pass_target);
  icount_end();
  return 0;
}

struct Count {
  long total = 0, in_gate = 0, in_target = 0, wrpkru = 0;
};

}  // namespace

int main() {
  printf("platform: %s\n", cordon::hw::DescribePlatform().c_str());
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) _exit(Child());
  int status;
  waitpid(pid, &status, 0);
  // Signals before the child's SIGSTOP (cordon_init() delivers one to
  // itself to probe the signal frame layout) are passed on.
  while (WIFSTOPPED(status) && WSTOPSIG(status) != SIGSTOP) {
    ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<long>(WSTOPSIG(status))));
    waitpid(pid, &status, 0);
  }
  if (!WIFSTOPPED(status)) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 11) {
      fprintf(stderr,
              "gate_icount: cordon_init failed in the child (its message is above; without PKU, run "
              "under tools/cordon-vm)\n");
    } else {
      fprintf(stderr, "gate_icount: the child did not reach its measurements (status %#x)\n", status);
    }
    return 1;
  }
  const auto begin = reinterpret_cast<uintptr_t>(&icount_begin);
  const auto end = reinterpret_cast<uintptr_t>(&icount_end);
  const auto gate_lo = reinterpret_cast<uintptr_t>(cordon_gates_begin);
  const auto gate_hi = reinterpret_cast<uintptr_t>(cordon_gates_end);
  const auto target_lo = reinterpret_cast<uintptr_t>(&icount_target);
  const auto target_hi = reinterpret_cast<uintptr_t>(icount_target_end);

  // The child has the same addresses.
  uintptr_t pass_lo = 0, pass_hi = 0;
  if (!SymbolExtent(reinterpret_cast<const void*>(&pass_target), &pass_lo, &pass_hi)) {
    fprintf(stderr, "gate_icount: cannot find the extent of pass_target's gate (is it exported?)\n");
    return 1;
  }
  const uintptr_t pass_body = PassBody();

  Count counts[kScenarios];
  int scenario = -1;
  while (ptrace(PTRACE_SINGLESTEP, pid, nullptr, nullptr) == 0) {
    if (waitpid(pid, &status, 0) < 0 || WIFEXITED(status) || WIFSIGNALED(status)) break;
    user_regs_struct regs;
    ptrace(PTRACE_GETREGS, pid, nullptr, &regs);
    const uintptr_t rip = regs.rip;
    if (rip == begin) {  // about to run the marker's ret: count from the next step
      scenario = regs.rdi < kScenarios ? static_cast<int>(regs.rdi) : -1;
      continue;
    }
    if (rip == end) {  // the call into the marker was the last counted step
      if (scenario >= 0) counts[scenario].total -= 1;
      scenario = -1;
      continue;
    }
    if (scenario < 0) continue;
    Count& c = counts[scenario];
    c.total += 1;
    const bool pass = PassScenario(scenario);
    if (pass ? rip >= pass_lo && rip < pass_hi : rip >= gate_lo && rip < gate_hi) c.in_gate += 1;
    // Every WRPKRU of the scenario, wherever it runs.
    errno = 0;
    const long text = ptrace(PTRACE_PEEKTEXT, pid, reinterpret_cast<void*>(rip), nullptr);
    if (errno == 0 && memcmp(&text, kWrpkruBytes, sizeof kWrpkruBytes) == 0) c.wrpkru += 1;
    // Bodies are at least 16-byte aligned and these are 3 bytes long.
    if (pass ? rip >= pass_body && rip < pass_body + 16 : rip >= target_lo && rip < target_hi)
      c.in_target += 1;
  }
  waitpid(pid, &status, 0);

  printf("Exact user-mode instruction counts (ptrace single-step), gate variant: %s\n",
         __builtin_cpu_supports("avx512f") ? "avx512" : "avx");
  printf("%-58s %8s %8s %8s %7s\n", "scenario", "total", "in gate", "target", "WRPKRU");
  for (int i = 0; i < kScenarios; ++i) {
    printf("%-58s %8ld %8ld %8ld %7ld\n", kNames[i], counts[i].total, counts[i].in_gate, counts[i].in_target,
           counts[i].wrpkru);
  }
  printf(
      "(total: every instruction of the scenario, its calls included; 'in gate': the gate's own,\n"
      " stack switch and register scrub included; 'target': the entry function's.)\n");
  const bool ok = counts[1].in_gate > 0 && counts[1].in_gate <= 55 && counts[1].wrpkru == 2;
  printf("target: at most 55 gate instructions and 2 WRPKRU per round trip: %s\n", ok ? "met" : "NOT MET");
  // Both budgets include the move of the TLS record index out of xmm15
  // (1 instruction): the index is read before the entry WRPKRU, so that no
  // fs access happens with the domain's rights (docs/gates.md); and the
  // VZEROUPPER after the row is copied into the record's TCB (1), without
  // which trusted code's first legacy-SSE instruction stalls for about four
  // WRPKRU pairs on Zen 3 (gate_sequences.inc, TLS_ROW_TO_TCB); and the
  // ADD that counts the call in the record (1, docs/gates.md "Call counts");
  // and the switched-to bit of the saved stack pointer, flipped after the
  // stack switch and back after the exit (2, gate_sequences.inc
  // SWITCH_TO_RECORD), without which a held claim could be continued by
  // another thread than the one running on it.
  // The generated gate does three things the runtime gate does not: the
  // first-call check (2 instructions), the RDPKRU test for trusted callers (2
  // more than the runtime gate's register clearing) and the AVX-512 scrub
  // branch (2); it saves the table dispatch (2). bench/README.md has the list.
  const bool pass_ok =
      counts[4].in_gate > 0 && counts[4].in_gate <= 59 && counts[4].wrpkru == 2 && counts[4].in_target == 2;
  printf("target: at most 59 instructions and 2 WRPKRU for the pass-generated gate: %s\n",
         pass_ok ? "met" : "NOT MET");
  // Through a pointer from inside the domain: pass_outer's gate pays the two
  // WRPKRU, pass_target's gate recognises the domain and jumps to the body.
  const bool nested_ok = counts[5].wrpkru == 2 && counts[5].in_gate > 0 && counts[5].in_gate < 16;
  printf("target: no second gate (no WRPKRU, under 16 instructions) for a trusted caller: %s\n",
         nested_ok ? "met" : "NOT MET");
  return ok && pass_ok && nested_ok ? 0 : 1;
}
