// Shared harness: a random secret drawn inside trusted code, a hash printed.
#pragma once
#include <cordon/cordon.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static cordon_domain_t g_dom;
static cordon_entry g_gen, g_hash;
static uint8_t* g_secret;  // trusted pointer, never dereferenced untrusted

static uint64_t fnv(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
static uint64_t e_gen(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  void* p = 0;
  if (cordon_malloc(32, &p) != 0) return 0;
  if (getrandom(p, 32, 0) != 32) return 0;
  return (uint64_t)p;
}
static uint64_t e_hash(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return fnv(g_secret, 32);
}
static void setup(int lock) {
  cordon_options o;
  cordon_options_init(&o);
  if (cordon_init(&o) != 0) { printf("init failed\n"); exit(1); }
  g_dom = cordon_trusted_domain();
  cordon_register(g_dom, e_gen, "gen", &g_gen);
  cordon_register(g_dom, e_hash, "hash", &g_hash);
  g_secret = (uint8_t*)cordon_call(g_gen, 0, 0, 0, 0, 0);
  printf("secret at %p, fnv hash %016llx\n", g_secret, (unsigned long long)cordon_call(g_hash, 0, 0, 0, 0, 0));
  fflush(stdout);
  if (lock && cordon_lockdown() != 0) { printf("lockdown failed\n"); exit(1); }
}
static void dump(const char* what, const uint8_t* p, size_t n) {
  printf("%s: ", what);
  for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
  printf("  fnv %016llx\n", (unsigned long long)fnv(p, n));
  fflush(stdout);
}
