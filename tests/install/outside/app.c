/* An outside program with an annotated trusted function: the installed pass
 * plugin generates its gate. Exits 0 when the call went through the gate and
 * came back with the value kept in trusted memory. */
#include <cordon/cordon.h>
#include <stdio.h>

static int* counter; /* in the trusted heap */

CORDON_TRUSTED int bump(int by) {
  *counter += by;
  return *counter;
}

int main(void) {
  const int s = cordon_init(NULL);
  if (s != CORDON_OK) {
    fprintf(stderr, "cordon_init: %s\n", cordon_strerror(s));
    return 2;
  }
  if (cordon_malloc(sizeof *counter, (void**)&counter) != CORDON_OK) return 3;
  if (cordon_generated_entry_count() != 1) return 4;
  const int a = bump(2), b = bump(3);
  printf("outside app: cordon %s, bump gave %d then %d, in domain %d now\n", cordon_version(), a, b,
         cordon_current_domain());
  return a == 2 && b == 5 && cordon_current_domain() == CORDON_DOMAIN_UNTRUSTED ? 0 : 1;
}
