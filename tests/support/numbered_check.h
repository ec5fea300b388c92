/* Numbered checks for the C test programs: CHECK(n, cond, fmt, ...) prints
 * "ok n: ..." on stdout or "FAIL n: ..." on stderr, and keeps the first
 * failing number in `failures`, which main returns as its exit status. */
#ifndef CORDON_TESTS_SUPPORT_NUMBERED_CHECK_H_
#define CORDON_TESTS_SUPPORT_NUMBERED_CHECK_H_

#include <stdio.h>

static int failures;
#define CHECK(n, cond, ...)            \
  do {                                 \
    if (!(cond)) {                     \
      fprintf(stderr, "FAIL %d: ", n); \
      fprintf(stderr, __VA_ARGS__);    \
      fprintf(stderr, "\n");           \
      if (!failures) failures = n;     \
    } else {                           \
      printf("ok %d: ", n);            \
      printf(__VA_ARGS__);             \
      printf("\n");                    \
    }                                  \
  } while (0)

#endif
