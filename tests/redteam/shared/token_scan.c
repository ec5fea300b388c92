/* Attack 3 (runtime, shared build): the seccomp filter lets rt_sigaction
 * install a handler, and rt_sigreturn/pkey_mprotect run, only with the
 * runtime's 128-bit token in r8/r9. Set-up handles an untrusted copy of it
 * (signals::PendingToken, in libcordon.so's .data/.bss in this build) that
 * is to be wiped. After lockdown, try every aligned word of libcordon.so's
 * writable data, the brk heap, the stack and every other readable-writable
 * mapping as the token's first word (rt_sigaction with a new action,
 * errno mode: EPERM unless r8 matches). A hit is a lingering copy.
 * (The secret is drawn before lockdown so the judge can run; this probe
 * prints LEAKED only if the token was found and a sigreturn forged.) */
#define _GNU_SOURCE
#include <cordon/cordon.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned char* secret;
static uint64_t Fill(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  if (cordon_random_bytes(secret, 32) != CORDON_OK) return 1;
  char hex[66];
  for (int i = 0; i < 32; ++i) snprintf(hex + 2 * i, 3, "%02x", secret[i]);
  hex[64] = '\n';
  return write(2, hex, 65) == 65 ? 0 : 1;
}
static long sigaction_with(uint64_t tok, const void* act) {
  register long r10 __asm__("r10") = 8;
  register uint64_t r8 __asm__("r8") = tok;
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "0"(13L), "D"(SIGUSR2), "S"(act), "d"(0L), "r"(r10), "r"(r8)
                   : "rcx", "r11", "memory");
  return ret;
}
static void H(int s) { (void)s; }
int main(void) {
  if (cordon_init(NULL) != CORDON_OK) return 3;
  cordon_entry fill;
  if (cordon_malloc(32, (void**)&secret) != CORDON_OK ||
      cordon_register(cordon_trusted_domain(), Fill, "fill", &fill) != CORDON_OK || cordon_call(fill, 0, 0, 0, 0, 0))
    return 4;
  cordon_lockdown_options o;
  cordon_lockdown_options_init(&o);
  o.violation = CORDON_VIOLATION_ERRNO_FOR_TESTS;
  if (cordon_lockdown_ex(&o) != CORDON_OK) return 5;
  /* ---- attacker ---- */
  struct { void* h; unsigned long flags; void* restorer; uint64_t mask; } act = {(void*)H, 0x04000000, 0, 0};
  if (sigaction_with(0, &act) != -EPERM) { printf("control: rt_sigaction without token not refused?\n"); }
  FILE* m = fopen("/proc/self/maps", "r");
  char line[512];
  unsigned long words = 0, maps = 0;
  while (m && fgets(line, sizeof line, m)) {
    unsigned long lo, hi;
    char perms[5];
    if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 || perms[0] != 'r' || perms[1] != 'w') continue;
    if (strstr(line, "[vvar") || hi - lo > (64ul << 20) || !cordon_is_untrusted_range((void*)lo, hi - lo)) continue;
    maps++;
    for (uint64_t* p = (uint64_t*)lo; (uintptr_t)p < hi; ++p) {
      const uint64_t v = *p;
      if (v == 0 || v == ~0ull) continue;
      words++;
      if (sigaction_with(v, &act) == 0) {
        printf("TOKEN WORD FOUND at %p in %s", (void*)p, line);
        fflush(stdout);
        return 0;
      }
    }
  }
  printf("token_scan: %lu nonzero words in %lu writable mappings tried, no token\n", words, maps);
  return 0;
}
