/* What every fails-closed program in tests/vm checks: each failed check
 * prints its reason and counts, and after a refusal of cordon_init() with
 * `status`, nothing was set up and a second call refuses the same way. */
#ifndef CORDON_TESTS_VM_FAILS_CLOSED_H_
#define CORDON_TESTS_VM_FAILS_CLOSED_H_

#include <stdio.h>

#include "cordon/cordon.h"

static int failures;

static void check(int ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "FAIL: %s\n", what);
    ++failures;
  }
}

static void check_nothing_set_up(int status) {
  check(!cordon_is_initialized(), "Cordon reports itself initialised after a refusal");
  void* p = NULL;
  check(cordon_malloc(16, &p) == CORDON_E_NOT_INITIALIZED && p == NULL,
        "the trusted heap exists after a refusal");
  check(cordon_lockdown() == CORDON_E_NOT_INITIALIZED, "lockdown was possible after a refusal");
  check(cordon_init(NULL) == status, "a second cordon_init() did not refuse again");
}

#endif
