/* The second file of the C end-to-end test: trusted functions that call
 * trusted functions defined in pass_c_test.c. */
#include "vault_api.h"

CORDON_TRUSTED int vault_check_twice(uint64_t guess) {
  return vault_check(guess) + vault_check(guess);
}

CORDON_TRUSTED int vault_check_indirect(int (*check)(uint64_t), uint64_t guess) {
  /* check is the gated entry; called from inside the domain it runs the body
   * without a second gate (the gate sees the domain's PKRU). */
  return check(guess);
}

CORDON_TRUSTED uint32_t vault_pkru_inside(void) {
  uint32_t eax, edx;
  __asm__ volatile("rdpkru" : "=a"(eax), "=d"(edx) : "c"(0));
  return eax;
}
