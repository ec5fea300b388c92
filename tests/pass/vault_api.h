/* The trusted API of the C end-to-end test (pass_c_test.c, pass_c_other.c):
 * declared CORDON_TRUSTED here, defined in two files. */
#ifndef CORDON_TESTS_PASS_VAULT_API_H_
#define CORDON_TESTS_PASS_VAULT_API_H_

#include <cordon/cordon.h>
#include <stddef.h>
#include <stdint.h>

/* Creates the secret in trusted memory; 0 on success. */
CORDON_TRUSTED int vault_init(uint64_t secret);
/* The secret's address, for the tests that try to read it directly. */
CORDON_TRUSTED const uint64_t* vault_secret_address(void);
/* Whether guess is the secret (never the secret itself). */
CORDON_TRUSTED int vault_check(uint64_t guess);
/* Adds to a trusted counter and returns it: six integer arguments. */
CORDON_TRUSTED long vault_add6(long a, long b, long c, long d, long e, long f);
/* Floating-point arguments and result. */
CORDON_TRUSTED double vault_scale(double x, int times, float y);
/* Defined in the other file: calls vault_check, a trusted-to-trusted call
 * across files. */
CORDON_TRUSTED int vault_check_twice(uint64_t guess);
/* Calls vault_check through a function pointer from trusted code. */
CORDON_TRUSTED int vault_check_indirect(int (*check)(uint64_t), uint64_t guess);
/* Returns the PKRU seen inside, to show that the body runs in the domain. */
CORDON_TRUSTED uint32_t vault_pkru_inside(void);

#endif
