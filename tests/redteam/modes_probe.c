#define _GNU_SOURCE
// Ninth review (CPU modes): after lockdown in a default PIE program,
// (1) list executable mappings below 4 GiB (targets for 32-bit code via 0x23),
// (2) i386 (int 0x80) and x32 system calls, (3) gate calls with EFLAGS.AC set
// and with FS/GS/DS/ES selectors of the default GDT (0x2b, 0x7b) loaded.
// Each probe runs in a forked child; a leak would print the secret's hash
// from untrusted code (it never can here: the probes only check behaviour).
#include "common.h"
#include <sys/wait.h>
#include <sys/syscall.h>
#include <errno.h>
#include <signal.h>
#include <ucontext.h>
static void on_bus(int sig, siginfo_t* si, void* ucv) {
  ucontext_t* uc = ucv;
  char b[160];
  int n = snprintf(b, sizeof b, "  SIGBUS code %d addr %p rip %#llx rsp %#llx\n", si->si_code, si->si_addr,
                   (unsigned long long)uc->uc_mcontext.gregs[REG_RIP], (unsigned long long)uc->uc_mcontext.gregs[REG_RSP]);
  (void)!write(1, b, n);
  _exit(7);
}

static void low_exec(void) {
  FILE* f = fopen("/proc/self/maps", "r");
  char line[512];
  int n = 0;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long a, b; char perm[8];
    if (sscanf(line, "%lx-%lx %7s", &a, &b, perm) == 3 && perm[2] == 'x') {
      if (a < (1ul << 32)) { printf("LOW EXEC: %s", line); n++; }
    }
  }
  if (f) fclose(f);
  printf("executable mappings below 4 GiB: %d\n", n);
}

static int probe(const char* name, void (*fn)(void)) {
  fflush(stdout);
  pid_t p = fork();
  if (p == 0) { fn(); fflush(stdout); _exit(0); }
  int st = 0; waitpid(p, &st, 0);
  printf("%-28s status %#x (%s %d)\n", name, st, WIFEXITED(st) ? "exit" : "signal",
         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
  return st;
}

static void p_int80(void) {
  long r;
  __asm__ volatile("int 0x80" : "=a"(r) : "a"(20L) : "memory");  // i386 getpid
  printf("  int 0x80 getpid returned %ld\n", r);
}
static void p_x32(void) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(0x40000000L | 39) : "rcx", "r11", "memory");
  printf("  x32 getpid returned %ld\n", r);
}
static void p_ac(void) {
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_sigaction = on_bus; sa.sa_flags = SA_SIGINFO;
  printf("  cordon_sigaction %d; gate %p\n", cordon_sigaction(SIGBUS, &sa, 0), (void*)cordon_call);
  __asm__ volatile("pushfq\n or qword ptr [rsp], 0x40000\n popfq" ::: "memory", "cc");
  uint64_t h = cordon_call(g_hash, 0, 0, 0, 0, 0);
  unsigned long fl;
  __asm__ volatile("pushfq\n pop %0" : "=r"(fl));
  printf("  with AC: hash %016llx, eflags %#lx\n", (unsigned long long)h, fl);
}
static void p_segs(void) {
  unsigned long fsb;
  __asm__ volatile("rdfsbase %0" : "=r"(fsb));
  unsigned short s = 0x2b, c = 0x7b;
  __asm__ volatile("mov ds, %w0\n mov es, %w0\n mov gs, %w1\n mov fs, %w0\n wrfsbase %2"
                   :: "r"(s), "r"(c), "r"(fsb) : "memory");
  uint64_t h = 0;
  for (int i = 0; i < 100000; i++) h = cordon_call(g_hash, 0, 0, 0, 0, 0);
  unsigned short fs, gs;
  __asm__ volatile("mov %w0, fs\n mov %w1, gs" : "=r"(fs), "=r"(gs));
  printf("  with fs=%#x gs=%#x: hash %016llx\n", fs, gs, (unsigned long long)h);
}

int main(void) {
  setvbuf(stdout, 0, _IONBF, 0);
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_sigaction = on_bus; sa.sa_flags = SA_SIGINFO;
  cordon_sigaction(SIGBUS, &sa, 0);
  setup(1);
  low_exec();
  probe("i386 int 0x80", p_int80);
  probe("x32 syscall", p_x32);
  probe("gate with EFLAGS.AC", p_ac);
  probe("gate with GDT selectors", p_segs);
  printf("held (probe only)\n");
  return 0;
}
