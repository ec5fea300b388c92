// Probe: arch_prctl(ARCH_MAP_VDSO_64 / _32 / _X32, addr) maps a kernel vDSO
// image (executable) at an address of the caller's choosing. The filter
// does not refuse it, so new executable memory appears after lockdown
// outside the code region, uninspected (the 32-bit and x32 images were never
// part of the process). The probe scans each new mapping for WRPKRU
// (0F 01 EF) and XRSTOR (0F AE /5, memory operand) at every byte offset.
//
//   tools/cordon-pku-run --kernel 6.1 -- build/redteam/map_vdso
#define _GNU_SOURCE
#include <cordon/cordon.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_MAP_VDSO_X32 0x2001
#define ARCH_MAP_VDSO_32 0x2002
#define ARCH_MAP_VDSO_64 0x2003

static void scan(const char* what, unsigned long lo, unsigned long hi) {
  const uint8_t* p = (const uint8_t*)lo;
  int hits = 0;
  for (unsigned long i = 0; i + 3 <= hi - lo; i++) {
    int w = p[i] == 0x0f && p[i + 1] == 0x01 && p[i + 2] == 0xef;
    int x = p[i] == 0x0f && p[i + 1] == 0xae && ((p[i + 2] >> 3) & 7) == 5 && (p[i + 2] >> 6) != 3;
    if (w || x) { printf("  %s: %s at %#lx (+%#lx)\n", what, w ? "WRPKRU" : "XRSTOR", lo + i, i); hits++; }
  }
  printf("  %s %#lx-%#lx: %d hit(s)\n", what, lo, hi, hits);
}

static void show_new(const char* tag, unsigned long want) {
  FILE* f = fopen("/proc/self/maps", "r");
  char line[512];
  while (fgets(line, sizeof line, f)) {
    unsigned long a, b;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) != 3) continue;
    if (a >= want && a < want + (1ul << 20)) {
      printf("  %s", line);
      if (perms[2] == 'x') scan(tag, a, b);
    }
  }
  fclose(f);
}

int main(void) {
  cordon_options o;
  cordon_options_init(&o);
  if (cordon_init(&o) != 0 || cordon_lockdown() != 0) { printf("init/lockdown failed\n"); return 1; }
  const struct { int code; const char* name; } kinds[] = {
      {ARCH_MAP_VDSO_64, "ARCH_MAP_VDSO_64"}, {ARCH_MAP_VDSO_32, "ARCH_MAP_VDSO_32"}, {ARCH_MAP_VDSO_X32, "ARCH_MAP_VDSO_X32"}};
  for (int k = 0; k < 3; k++) {
    // A free spot: reserve, release, ask for it.
    void* hole = mmap(0, 1 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(hole, 1 << 20);
    long r = syscall(SYS_arch_prctl, kinds[k].code, (unsigned long)hole);
    printf("%s at %p: %ld %s\n", kinds[k].name, hole, r, r < 0 ? strerror(errno) : "");
    if (r >= 0) show_new(kinds[k].name, (unsigned long)hole);
  }
  return 0;
}
