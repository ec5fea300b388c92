// Observation (not an attack): a trusted TCB is built from the init-time
// TLS images, but glibc's per-thread ctype cache (__libc_tsd_CTYPE_B etc.,
// .tbss, set by __ctype_init() at thread start) stays zero in it. Trusted
// code calling isdigit()/toupper() dereferences NULL (a crash: DoS only).
// Also prints the locale pointer the trusted TCB holds (glibc's
// __libc_tsd_LOCALE): &_nl_global_locale, in untrusted libc data.
//   tools/cordon-pku-run --kernel 6.1 -- build/redteam/tcb_ctype
#define _GNU_SOURCE
#include <ctype.h>
#include <locale.h>
#include "common.h"

static cordon_entry g_loc, g_digit;
static uint64_t e_loc(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  return (uint64_t)uselocale((locale_t)0);
}
static uint64_t e_digit(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)b; (void)c; (void)d; (void)e;
  return (uint64_t)(isdigit((int)a) != 0);
}
int main(void) {
  setup(0);
  cordon_register(g_dom, e_loc, "loc", &g_loc);
  cordon_register(g_dom, e_digit, "digit", &g_digit);
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 1; }
  printf("untrusted uselocale(0) = %p, trusted = %p, LC_GLOBAL_LOCALE = %p\n", (void*)uselocale((locale_t)0),
         (void*)cordon_call(g_loc, 0, 0, 0, 0, 0), (void*)LC_GLOBAL_LOCALE);
  fflush(stdout);
  printf("trusted isdigit('5') = %llu\n", (unsigned long long)cordon_call(g_digit, '5', 0, 0, 0, 0));
  return 0;
}
