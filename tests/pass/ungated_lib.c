/* A shared library with a CORDON_TRUSTED function compiled without the pass
 * plugin: cordon_init() must refuse the program that loads it too
 * (ungated.c, CORDON_UNGATED_IN_LIBRARY). */
#include <cordon/cordon.h>

CORDON_TRUSTED int not_gated_in_library(int x) {
  return x + 1;
}
