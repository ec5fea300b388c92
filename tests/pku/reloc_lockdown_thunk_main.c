/* reloc_lockdown_thunk_main: a thunk that cordon_lockdown() makes is not
 * immutable (attack on beb0d13, "Relocate chance occurrences").
 *
 * cordon_lockdown() computes the filter's immutable ranges (every
 * executable mapping, seccomp_filter.h) from the maps BEFORE it runs
 * EnforceOnProcess() again (lockdown.cc, "Code that set-up created since
 * cordon_init() is inspected like the rest"). That second inspection
 * relocates chance occurrences in code set-up made after cordon_init(),
 * onto thunk pages at new addresses, which the ranges do not cover. After
 * lockdown untrusted code can then munmap, mprotect or MADV_DONTNEED the
 * thunk: the relocated instruction jumps into nothing, or into a zeroed
 * page (`add [rax], al` x 2048) - with a domain's rights when trusted code
 * runs it, which is exactly what the immutable ranges exist to prevent.
 *
 * Set-up code here is a JIT-style anonymous page made executable before
 * lockdown, holding `mov rax, [rip + 0x0029ae0f]` (disp32 bytes 0f ae 29 =
 * xrstor [rcx]), with an unwind entry registered for it (__register_frame),
 * as a JIT that supports unwinding does: the runtime relocates only inside
 * functions the unwind tables know. Expected (the fix): the filter refuses
 * memory calls on the new thunk page like on any code page. Exit 0 if so; a failing check prints what and
 * exits with its number. */
#define _GNU_SOURCE
#include <cordon/cordon.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "support/numbered_check.h"


enum { kPage = 4096, kCodeOff = 0x800 };
/* As data, so that no immediate of this program holds the pattern. */
static volatile uint8_t g_code[8] = {0x48, 0x8b, 0x05, 0x0f,
                                     0xae, 0x29, 0x00, 0xc3}; /* mov rax,[rip+0x29ae0f]; ret */

/* libgcc's registration of unwind tables for code it did not load. */
void __register_frame(void* begin);

/* An .eh_frame with one CIE and one FDE covering [pc, pc + len), then the
 * terminator: the least a JIT registers (CFA = rsp + 8, return address at
 * CFA - 8), absolute pointers. */
static uint8_t g_eh_frame[96] __attribute__((aligned(8)));
static void RegisterUnwindEntry(const void* pc, uint64_t len) {
  static const uint8_t cie[] = {
      0x14, 0,    0,    0, /* length 20 */
      0,    0,    0,    0, /* CIE id */
      1,                   /* version */
      'z',  'R',  0,       /* augmentation */
      1,                   /* code alignment */
      0x78,                /* data alignment -8 */
      16,                  /* return address column (rip) */
      1,    0x00,          /* augmentation data: FDE pointers are absolute */
      0x0c, 0x07, 0x08,    /* DW_CFA_def_cfa rsp, 8 */
      0x90, 0x01,          /* DW_CFA_offset rip, cfa - 8 */
      0,    0,             /* DW_CFA_nop padding to 24 bytes */
  };
  memcpy(g_eh_frame, cie, sizeof cie);
  uint8_t* fde = g_eh_frame + sizeof cie;
  const uint32_t fde_len = 4 + 8 + 8 + 1 + 3; /* CIE pointer, pc_begin, pc_range, aug length, padding */
  const uint32_t cie_ptr = (uint32_t)(fde + 4 - g_eh_frame);
  const uint64_t begin = (uint64_t)(uintptr_t)pc;
  memcpy(fde, &fde_len, 4);
  memcpy(fde + 4, &cie_ptr, 4);
  memcpy(fde + 8, &begin, 8);
  memcpy(fde + 16, &len, 8);
  fde[24] = 0; /* augmentation data length */
  fde[25] = fde[26] = fde[27] = 0;
  memset(fde + 28, 0, 4); /* terminator */
  __register_frame(g_eh_frame);
}

int main(void) {
  const int s = cordon_init(NULL);
  CHECK(1, s == CORDON_OK, "cordon_init: %s", cordon_strerror(s));
  if (s != CORDON_OK) return failures;

  /* Set-up, after cordon_init: code page + the data it loads, 3 MiB apart. */
  const size_t len = 4u << 20;
  uint8_t* base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(2, base != MAP_FAILED, "mmap");
  memset(base, 0xcc, kPage);
  uint8_t* fn = base + kCodeOff;
  for (int i = 0; i < 8; ++i) fn[i] = g_code[i];
  int32_t disp;
  memcpy(&disp, fn + 3, 4);
  uint64_t* word = (uint64_t*)(fn + 7 + disp);
  *word = 0x5eed5eed5eed5eedULL;
  RegisterUnwindEntry(fn, 8);
  CHECK(3, mprotect(base, kPage, PROT_READ | PROT_EXEC) == 0, "set-up makes its code executable");
  uint64_t (*load)(void) = (uint64_t(*)(void))fn;
  CHECK(4, load() == 0x5eed5eed5eed5eedULL, "the set-up code runs");

  cordon_lockdown_options lo;
  cordon_lockdown_options_init(&lo);
  lo.violation = CORDON_VIOLATION_ERRNO_FOR_TESTS;
  const int l = cordon_lockdown_ex(&lo);
  CHECK(5, l == CORDON_OK, "cordon_lockdown relocates the new occurrence: %s", cordon_strerror(l));
  if (l != CORDON_OK) return failures;
  CHECK(6, fn[0] == 0xe9, "the site became a jmp to a thunk (%02x)", fn[0]);
  int32_t rel;
  memcpy(&rel, fn + 1, 4);
  uint8_t* thunk = fn + 5 + rel;
  void* thunk_page = (void*)((uintptr_t)thunk & ~(uintptr_t)(kPage - 1));
  CHECK(7, load() == 0x5eed5eed5eed5eedULL, "the relocated code runs through %p", (void*)thunk);

  /* Control: the site's page (code at lockdown) is immutable. */
  errno = 0;
  const int site_rc = madvise(base, kPage, MADV_DONTNEED);
  CHECK(8, site_rc == -1 && errno == EPERM, "MADV_DONTNEED on the site's page is refused (%d, %s)", site_rc,
        strerror(errno));

  /* The thunk page must be too. */
  errno = 0;
  const int dn = madvise(thunk_page, kPage, MADV_DONTNEED);
  const int dn_errno = errno;
  CHECK(9, dn == -1 && dn_errno == EPERM, "MADV_DONTNEED on the lockdown's thunk page %p is refused (%d, %s)",
        thunk_page, dn, strerror(dn_errno));
  if (dn == 0) {
    CHECK(10, 0, "the thunk page now holds %02x %02x %02x... (was %02x): a zeroed executable page", thunk[0],
          thunk[1], thunk[2], 0x48);
  }
  errno = 0;
  const int mp = mprotect(thunk_page, kPage, PROT_READ);
  CHECK(11, mp == -1 && errno == EPERM, "mprotect(PROT_READ) on the thunk page is refused (%d, %s)", mp,
        strerror(errno));
  errno = 0;
  const int um = munmap(thunk_page, kPage);
  CHECK(12, um == -1 && errno == EPERM, "munmap of the thunk page is refused (%d, %s)", um, strerror(errno));
  return failures;
}
