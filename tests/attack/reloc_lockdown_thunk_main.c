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
 * xrstor [rcx]). Expected (the fix): the filter refuses memory calls on the
 * new thunk page like on any code page. Exit 0 if so; a failing check prints
 * what and exits with its number. */
#define _GNU_SOURCE
#include <cordon/cordon.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int failures;
#define CHECK(n, cond, ...)                      \
  do {                                           \
    if (!(cond)) {                               \
      fprintf(stderr, "FAIL %d: ", n);           \
      fprintf(stderr, __VA_ARGS__);              \
      fprintf(stderr, "\n");                     \
      if (!failures) failures = n;               \
    } else {                                     \
      printf("ok %d: ", n);                      \
      printf(__VA_ARGS__);                       \
      printf("\n");                              \
    }                                            \
  } while (0)

enum { kPage = 4096, kCodeOff = 0x800 };
/* As data, so that no immediate of this program holds the pattern. */
static volatile uint8_t g_code[8] = {0x48, 0x8b, 0x05, 0x0f, 0xae, 0x29, 0x00, 0xc3}; /* mov rax,[rip+0x29ae0f]; ret */

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
    CHECK(10, 0, "the thunk page now holds %02x %02x %02x... (was %02x): a zeroed executable page",
          thunk[0], thunk[1], thunk[2], 0x48);
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
