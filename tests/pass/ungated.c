/* A CORDON_TRUSTED function compiled without the pass plugin has no gate and
 * would run unprotected: cordon_init() refuses the program, on any machine,
 * with a status and a sentence that say how to build it. Built three ways:
 * the function in this executable with the static library, in a shared
 * library the executable links, and in this executable with libcordon.so. */
#include <cordon/cordon.h>
#include <stdio.h>
#include <string.h>

#ifdef CORDON_UNGATED_IN_LIBRARY
/* The function lives in a shared library (ungated_lib.c). */
int not_gated_in_library(int x);
#define not_gated not_gated_in_library
#else
CORDON_TRUSTED int not_gated(int x) {
  return x + 1;
}
#endif

int main(void) {
  const int s = cordon_init(NULL);
  printf("cordon_init: %d: %s\n", s, cordon_strerror(s));
  if (s != CORDON_E_UNGATED_CODE) return 1;
  if (strstr(cordon_strerror(s), "cordon_enable_gates") == NULL) return 1;
  if (cordon_is_initialized()) return 1;
  return not_gated(-1);
}
