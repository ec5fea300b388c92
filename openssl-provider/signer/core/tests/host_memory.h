/* The host tests' signer memory (host_memory.c): live-block count, and a
 * switch that makes cordon_signer_random fail. */
#ifndef CORDON_OPENSSL_SIGNER_CORE_TESTS_HOST_MEMORY_H_
#define CORDON_OPENSSL_SIGNER_CORE_TESTS_HOST_MEMORY_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

size_t signer_test_live_blocks(void);
void signer_test_fail_random(int fail);

#ifdef __cplusplus
}
#endif

#endif /* CORDON_OPENSSL_SIGNER_CORE_TESTS_HOST_MEMORY_H_ */
