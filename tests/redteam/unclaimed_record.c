// Probe: the fast path claims a record by the TLS index with no owner check.
// A record no thread ever attached to has REC_TCB = 0, so trusted code runs
// with fs = 0. Expected: an entry that needs no TLS works, and one that
// reads a thread_local faults inside the domain (DoS only).
#define _GNU_SOURCE
#include "common.h"
#include <sys/syscall.h>
extern __thread uint32_t cordon_tls_records[];
static __thread int t_counter = 5;
static uint64_t e_fs(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  uint64_t fs;
  asm volatile("rdfsbase %0" : "=r"(fs));
  return fs;
}
static uint64_t e_tls(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  return (uint64_t)++t_counter;
}
int main(void) {
  cordon_entry fs_e, tls_e;
  setup(0);
  cordon_register(g_dom, e_fs, "fs", &fs_e);
  cordon_register(g_dom, e_tls, "tls", &tls_e);
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 1; }
  printf("own record %u: fs inside %#llx\n", cordon_tls_records[1], (unsigned long long)cordon_call(fs_e, 0, 0, 0, 0, 0));
  cordon_tls_records[1] = 7;  // a record no thread attached to (max_threads default > 7)
  printf("record 7: fs inside %#llx\n", (unsigned long long)cordon_call(fs_e, 0, 0, 0, 0, 0));
  fflush(stdout);
  printf("record 7: thread_local -> %llu\n", (unsigned long long)cordon_call(tls_e, 0, 0, 0, 0, 0));
  return 0;
}
