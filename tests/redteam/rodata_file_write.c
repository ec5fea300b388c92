// Probe: after lockdown, can the process write the files behind the
// read-only data of its code (the executable, libc), and does the write
// show through its MAP_PRIVATE read-only mappings? The lockdown made the
// executable mappings private copies, but left read-only data mapped from
// the files; "Code stays as it is" guards it only against memory calls.
//
//   tools/cordon-pku-run --kernel 6.1 -- build/redteam/rodata_file_write
#define _GNU_SOURCE
#include <cordon/cordon.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char kMarker[] = "cordon-rodata-marker-0123456789";

struct ro { uintptr_t addr; size_t len; uint64_t off; char path[256]; };

static int find_ro(const char* want, const char* needle, size_t nlen, struct ro* out) {
  FILE* f = fopen("/proc/self/maps", "r");
  char line[512];
  while (fgets(line, sizeof line, f)) {
    unsigned long a, b, off; char perms[8], dev[16]; unsigned long ino; char path[256] = "";
    if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %255s", &a, &b, perms, &off, dev, &ino, path) < 6) continue;
    if (strcmp(perms, "r--p") != 0 || strstr(path, want) == NULL) continue;
    if (memmem((void*)a, b - a, needle, nlen) == NULL) continue;
    out->addr = a; out->len = b - a; out->off = off; snprintf(out->path, sizeof out->path, "%s", path);
    fclose(f);
    return 0;
  }
  fclose(f);
  return -1;
}

static void try_file(const char* what, const char* want, const char* needle, size_t nlen) {
  struct ro r;
  if (find_ro(want, needle, nlen, &r) != 0) { printf("%s: no r--p mapping\n", what); return; }
  // A byte of this mapping that we can recognise.
  const char* p = memmem((void*)r.addr, r.len, needle, nlen);
  if (p == NULL) { printf("%s: needle not in %s r--p\n", what, r.path); return; }
  const uint64_t file_off = r.off + (uint64_t)(p - (const char*)r.addr);
  int fd = open(r.path, O_WRONLY);
  if (fd < 0) { printf("%s: open(%s, O_WRONLY): %s\n", what, r.path, strerror(errno)); return; }
  const char orig = p[0];
  const char x = orig ^ 0x20;
  ssize_t n = pwrite(fd, &x, 1, (off_t)file_off);
  printf("%s: open(%s, O_WRONLY) ok, pwrite at file offset %#llx: %zd; mapped byte at %p was '%c', now '%c' -> %s\n",
         what, r.path, (unsigned long long)file_off, n, (void*)p, orig, p[0],
         p[0] != orig ? "READ-ONLY DATA OF CODE CHANGED" : "unchanged");
  (void)!pwrite(fd, &orig, 1, (off_t)file_off);  // put it back
  close(fd);
}

int main(void) {
  cordon_options o;
  cordon_options_init(&o);
  if (cordon_init(&o) != 0) { printf("init failed\n"); return 1; }
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 1; }
  printf("locked down, uid %d\n", getuid());
  char exe[256];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = 0;
  const char* base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
  try_file("executable", base, kMarker, sizeof kMarker - 1);
  try_file("libc", "libc.so", "GNU C Library", 13);
  return 0;
}
