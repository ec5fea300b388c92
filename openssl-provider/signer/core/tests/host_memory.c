/* The signer core's memory and random source for host tests: calloc with a
 * size header (the size a free or realloc names is not trusted: nettle 3.8's
 * TMP_GMP_FREE passes an element count, not bytes), wiping before free, a count of live blocks for the leak
 * checks, and getrandom(), which a test can make fail. */
#include "openssl-provider/signer/core/tests/host_memory.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "openssl-provider/signer/core/core.h"

enum { kHeader = 16 };

static size_t g_live;
static int g_random_fails;

size_t signer_test_live_blocks(void) {
  return g_live;
}

void signer_test_fail_random(int fail) {
  g_random_fails = fail;
}

void* cordon_signer_mem_alloc(size_t n) {
  uint8_t* p = calloc(1, n + kHeader);
  if (p == NULL) return NULL;
  memcpy(p, &n, sizeof n);
  g_live++;
  return p + kHeader;
}

void cordon_signer_mem_free(void* p, size_t n) {
  if (p == NULL) return;
  uint8_t* base = (uint8_t*)p - kHeader;
  size_t had;
  memcpy(&had, base, sizeof had);
  (void)n;
  memset(base, 0, had + kHeader);
  __asm__ __volatile__("" : : "r"(base) : "memory");
  free(base);
  g_live--;
}

void* cordon_signer_mem_realloc(void* p, size_t old_n, size_t new_n) {
  void* q = cordon_signer_mem_alloc(new_n);
  if (q == NULL) return NULL;
  if (p != NULL) {
    size_t had;
    memcpy(&had, (uint8_t*)p - kHeader, sizeof had);
    (void)old_n;
    memcpy(q, p, had < new_n ? had : new_n);
    cordon_signer_mem_free(p, old_n);
  }
  return q;
}

int cordon_signer_random(void* buf, size_t n) {
  if (g_random_fails) return -1;
  uint8_t* b = buf;
  while (n > 0) {
    ssize_t got = getrandom(b, n, 0);
    if (got <= 0) return -1;
    b += got;
    n -= (size_t)got;
  }
  return 0;
}
