/* The signer core: private-key parsing and signing on nettle, hogweed and
 * GMP, entirely in signer memory. It makes no Cordon calls itself; whoever
 * links it provides the four cordon_signer_mem_* / cordon_signer_random
 * functions below (the domain build: the domain heap and getrandom(); the
 * host tests: calloc with wiping). Trusted code: never throws, no libc
 * malloc, no stdio. Every function returns a cordon_signer_status
 * (openssl-provider/signer/signer_abi.h). */
#ifndef CORDON_OPENSSL_SIGNER_CORE_H_
#define CORDON_OPENSSL_SIGNER_CORE_H_

#include <stddef.h>
#include <stdint.h>

#include "openssl-provider/signer/signer_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Provided by whoever links the core: the domain build allocates with
 * cordon_domain_alloc(cordon_current_domain(), ...)/cordon_realloc/cordon_free
 * (blocks are zeroed; free wipes), the host-test build with calloc + wiping.
 * The sizes passed to _free and _realloc must not be relied on: nettle 3.8
 * passes some frees an element count instead of bytes (its TMP_GMP_FREE);
 * the allocator must know each block's size itself. */
void* cordon_signer_mem_alloc(size_t n);
void* cordon_signer_mem_realloc(void* p, size_t old_n, size_t new_n);
void cordon_signer_mem_free(void* p, size_t n);
int cordon_signer_random(void* buf, size_t n); /* getrandom; 0 on success */

typedef struct cordon_signer_key cordon_signer_key; /* opaque, in signer memory */
/* PEM or DER: PKCS#8 (plain, or PBES2 with PBKDF2-HMAC-SHA1/SHA256 and AES-128/256-CBC),
 * PKCS#1 RSAPrivateKey, SEC1 ECPrivateKey; RSA 1024..8192 bits, P-256, P-384, Ed25519.
 * Returns a cordon_signer_status. */
int cordon_signer_key_parse(const uint8_t* data, size_t len, const char* pass, size_t pass_len,
                            cordon_signer_key** out);
int cordon_signer_key_public(const cordon_signer_key* k, uint32_t* key_type, uint32_t* bits, uint8_t* pub,
                             size_t cap, size_t* pub_len, size_t* rsa_n_len);
int cordon_signer_key_sign(const cordon_signer_key* k, uint32_t scheme, uint32_t digest, uint32_t mgf1_digest,
                           int32_t salt_len, const uint8_t* tbs, size_t tbs_len, uint8_t* sig, size_t cap,
                           size_t* sig_len);
void cordon_signer_key_destroy(cordon_signer_key* k); /* wipes, frees; NULL ok */

#ifdef __cplusplus
}
#endif

#endif /* CORDON_OPENSSL_SIGNER_CORE_H_ */
