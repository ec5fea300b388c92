/* Attack 2 (runtime, shared build): libcordon.so's gate config page sits in
 * its .data, among the shared libraries, guarded by exact rules instead of
 * the 16 GiB block rule; the gates' TLS offset sits in its RELRO GOT. Try
 * every memory call that could make either writable, replace or zero it,
 * in errno mode; if the config page ever becomes writable, set the
 * untrusted PKRU it holds to 0 (all rights) and read the secret.
 * usage: memrules CONFIG_OFFSET GOT_PAGE_OFFSET (from nm/readelf of libcordon.so) */
#define _GNU_SOURCE
#include <cordon/cordon.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned char* secret;
static uint64_t Fill(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  if (cordon_random_bytes(secret, 32) != CORDON_OK) return 1;
  char hex[66];
  for (int i = 0; i < 32; ++i) snprintf(hex + 2 * i, 3, "%02x", secret[i]);
  hex[64] = '\n';
  return write(2, hex, 65) == 65 ? 0 : 1;
}
static uintptr_t base;
static int cb(struct dl_phdr_info* i, size_t n, void* a) {
  (void)n, (void)a;
  if (strstr(i->dlpi_name, "libcordon")) base = i->dlpi_addr;
  return 0;
}
static int wins;
static void try(const char* what, long r, uintptr_t cfg) {
  printf("%-60s %s\n", what, r == -1 ? strerror(errno) : "SUCCEEDED");
  if (r != -1) {
    wins++;
    fflush(stdout);
    /* Writable now? */
    FILE* f = fopen("/proc/self/maps", "r"); char l[256];
    while (f && fgets(l, sizeof l, f)) { unsigned long lo, hi; if (sscanf(l, "%lx-%lx", &lo, &hi) == 2 && lo <= cfg && cfg < hi) printf("  config page now: %s", l); }
    if (f) fclose(f);
  }
}
int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const uintptr_t cfg_off = strtoul(argv[1], 0, 0), got_off = strtoul(argv[2], 0, 0);
  if (cordon_init(NULL) != CORDON_OK) return 3;
  cordon_entry fill;
  if (cordon_malloc(32, (void**)&secret) != CORDON_OK ||
      cordon_register(cordon_trusted_domain(), Fill, "fill", &fill) != CORDON_OK || cordon_call(fill, 0, 0, 0, 0, 0))
    return 4;
  dl_iterate_phdr(cb, NULL);
  const uintptr_t cfg = base + cfg_off, got = base + got_off;
  cordon_lockdown_options o;
  cordon_lockdown_options_init(&o);
  o.violation = CORDON_VIOLATION_ERRNO_FOR_TESTS;
  if (cordon_lockdown_ex(&o) != CORDON_OK) return 5;
  /* ---- attacker ---- */
  printf("config page %#lx, GOT page %#lx\n", (unsigned long)cfg, (unsigned long)got);
  char b[128];
#define T(desc, call) do { errno = 0; long r_ = (long)(call); snprintf(b, sizeof b, "%s", desc); try(b, r_ == (long)MAP_FAILED ? -1 : r_, cfg); } while (0)
  T("mprotect(cfg, 4096, RW)", mprotect((void*)cfg, 4096, PROT_READ | PROT_WRITE));
  T("mprotect(cfg-4096, 8192, RW)", mprotect((void*)(cfg - 4096), 8192, PROT_READ | PROT_WRITE));
  T("mprotect(cfg+1 (unaligned), 1, RW)", mprotect((void*)(cfg + 1), 1, PROT_READ | PROT_WRITE));
  T("mprotect(cfg-4096, 4097, RW)", mprotect((void*)(cfg - 4096), 4097, PROT_READ | PROT_WRITE));
  T("mprotect(cfg-2^34+4096, 2^34 (16 GiB), RW)", syscall(SYS_mprotect, cfg - (1ul << 34) + 4096, 1ul << 34, 3));
  T("mprotect(cfg-2^34+8192, 2^34-4096 (<16 GiB, covers cfg), RW)", syscall(SYS_mprotect, cfg - (1ul << 34) + 8192, (1ul << 34) - 4096, 3));
  T("set_tid_address(cfg)", syscall(SYS_set_tid_address, cfg));
  T("set_tid_address(cfg - 4)", syscall(SYS_set_tid_address, cfg - 4));
  T("mprotect(cfg, 4096, RW) upper bits in prot", syscall(SYS_mprotect, cfg, 4096, 0x100000003ul));
  T("madvise(cfg, 4096, DONTNEED)", madvise((void*)cfg, 4096, MADV_DONTNEED));
  T("madvise(cfg-4096, 8192, DONTNEED)", madvise((void*)(cfg - 4096), 8192, MADV_DONTNEED));
  T("madvise(cfg, 4096, MADV_FREE)", madvise((void*)cfg, 4096, MADV_FREE));
  T("madvise(cfg, 4096, WIPEONFORK)", madvise((void*)cfg, 4096, MADV_WIPEONFORK));
  T("mmap(cfg, FIXED anon RW)", mmap((void*)cfg, 4096, 3, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  T("mmap(cfg-8192, 3 pages FIXED anon RW)", mmap((void*)(cfg - 8192), 3 * 4096, 3, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  T("shmat(cfg, SHM_REMAP)", (long)shmat(shm, (void*)cfg, SHM_REMAP));
  T("shmat(cfg-4096 rounded, SHM_RND|SHM_REMAP)", (long)shmat(shm, (void*)(cfg + 1), SHM_RND | SHM_REMAP));
  T("munmap(cfg, 4096)", munmap((void*)cfg, 4096));
  T("munmap(cfg-4096, 8192)", munmap((void*)(cfg - 4096), 8192));
  T("mprotect(GOT page, RW)", mprotect((void*)got, 4096, 3));
  T("munmap(GOT page)", munmap((void*)got, 4096));
  T("madvise(GOT page, DONTNEED)", madvise((void*)got, 4096, MADV_DONTNEED));
  T("mmap(GOT page, FIXED anon)", mmap((void*)got, 4096, 3, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  T("pkey_mprotect(cfg, RW, key 0)", syscall(SYS_pkey_mprotect, cfg, 4096, 3, 0));
  T("mremap(cfg, 4096, 4096, MAYMOVE|FIXED, below)", syscall(SYS_mremap, cfg, 4096, 4096, 3, cfg - 0x100000000ul));
  /* If the config page is writable now, take every right. */
  if (mprotect((void*)cfg, 4096, 3) == 0) {
    *(volatile uint32_t*)cfg = 0; /* CFG_UNTRUSTED_PKRU */
    cordon_call(fill, 0, 0, 0, 0, 0);
    printf("LEAKED ");
    for (int i = 0; i < 32; ++i) printf("%02x", ((volatile unsigned char*)secret)[i]);
    printf("\n");
  }
  printf("memrules: %d call(s) succeeded\n", wins);
  return 0;
}
