/* The unit of Cordon's gate figures: a bare WRPKRU pair (2 x 0F 01 EF, the
 * least any PKU domain switch can cost), in a process of its own so that
 * these bytes are never in a program that links Cordon (whose inspection
 * would, rightly, refuse them). Driven by bench/gate_ratio over a pipe:
 * reads a count N per line on stdin, runs N pairs, and answers the
 * nanoseconds per pair. It links nothing of Cordon. Exit 2 without PKU. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline uint32_t rdpkru(void) {
  uint32_t eax, edx;
  __asm__ volatile(".byte 0x0f, 0x01, 0xee" : "=a"(eax), "=d"(edx) : "c"(0));
  return eax;
}

static inline void wrpkru(uint32_t v) {
  __asm__ volatile(".byte 0x0f, 0x01, 0xef" : : "a"(v), "c"(0), "d"(0) : "memory");
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((c >> 3) & 1) || !((c >> 4) & 1)) {
    fprintf(stderr, "wrpkru_reference: this CPU or kernel has no PKU (CPUID pku/ospke)\n");
    return 2;
  }
  /* Enter and leave, as a gate does: open key 15's bits, then close them
   * again (no memory carries key 15 here). */
  const uint32_t closed = rdpkru(), open = closed & ~(3u << 30);
  long n;
  while (scanf("%ld", &n) == 1 && n > 0) {
    const double t0 = now_ns();
    for (long i = 0; i < n; ++i) {
      wrpkru(open);
      wrpkru(closed);
    }
    const double t1 = now_ns();
    printf("%.4f\n", (t1 - t0) / (double)n);
    fflush(stdout);
  }
  return 0;
}
