// gate_icount: exact user-mode instruction counts of one gate round trip,
// measured by single-stepping a child process with ptrace (run it in the
// PKU VM: `tools/cordon-vm build/bench/gate_icount`).
//
// Wall-clock time under QEMU's TCG says nothing about WRPKRU on hardware,
// but the number of instructions a round trip executes is exact and the
// same on any machine with the same gate variant.
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

#include "cordon/cordon.h"
#include "runtime/gates/gate_config.h"

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
};
constexpr int kScenarios = 4;

int Child() {
  if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) return 10;
  if (cordon_init(nullptr) != CORDON_OK) return 11;
  cordon_entry e;
  if (cordon_register(cordon_trusted_domain(), icount_target, "nop", &e) != CORDON_OK) return 12;
  const auto gate = cordon::gates::GateFor(e.domain);
  (void)cordon_call(e, 0, 0, 0, 0, 0);  // warm: this thread's record is attached
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
  return 0;
}

struct Count {
  long total = 0, in_gate = 0, in_target = 0, wrpkru = 0;
};

}  // namespace

int main() {
  const pid_t pid = fork();
  if (pid == 0) _exit(Child());
  int status;
  waitpid(pid, &status, 0);
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
    if (rip >= gate_lo && rip < gate_hi) {
      c.in_gate += 1;
      errno = 0;
      const long text = ptrace(PTRACE_PEEKTEXT, pid, reinterpret_cast<void*>(rip), nullptr);
      if (errno == 0 && memcmp(&text, kWrpkruBytes, sizeof kWrpkruBytes) == 0) c.wrpkru += 1;
    }
    if (rip >= target_lo && rip < target_hi) c.in_target += 1;
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
  const bool ok = counts[1].in_gate > 0 && counts[1].in_gate <= 40 && counts[1].wrpkru == 2;
  printf("target: at most 40 gate instructions and 2 WRPKRU per round trip: %s\n", ok ? "met" : "NOT MET");
  return ok ? 0 : 1;
}
