/* The signer core's private parts, shared by its files: the key, a strict
 * DER reader, wiping, and the format readers (PEM, PBES2). */
#ifndef CORDON_OPENSSL_SIGNER_CORE_INTERNAL_H_
#define CORDON_OPENSSL_SIGNER_CORE_INTERNAL_H_

#include <nettle/ecc.h>
#include <nettle/rsa.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openssl-provider/signer/core/core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cordon_signer_key {
  uint32_t type; /* a cordon_signer_key_type */
  uint32_t bits;
  /* RSA */
  struct rsa_public_key rsa_pub;
  struct rsa_private_key rsa_priv;
  /* EC */
  const struct ecc_curve* curve;
  struct ecc_scalar ec_priv;
  uint8_t ec_priv_bytes[48];  /* the scalar, big-endian, the order's length */
  uint8_t ec_pub[1 + 2 * 48]; /* 04 || X || Y */
  size_t ec_pub_len;
  /* Ed25519 */
  uint8_t ed_priv[32];
  uint8_t ed_pub[32];
};

/* Zeroes n bytes in a way the compiler cannot drop as a dead store. */
void signer_wipe(void* p, size_t n);
/* Zeroes a stretch of the stack below the caller, where nettle's and GMP's
 * scratch (TMP_ALLOC, HMAC states, nonces) stays after they return. */
void signer_wipe_stack(void);
/* Wipes n bytes at p and frees them (NULL ok). */
void signer_free(void* p, size_t n);
/* Wipes an mpz's limbs and frees them. */
void signer_mpz_wipe_clear(mpz_t x);

/* A bounded view of DER bytes. Every reader checks lengths against it and
 * refuses what DER forbids (indefinite or non-minimal lengths, high tag
 * numbers), so that each input has one reading. */
typedef struct signer_der {
  const uint8_t* p;
  size_t n;
} signer_der;

enum {
  SIGNER_DER_INTEGER = 0x02,
  SIGNER_DER_BIT_STRING = 0x03,
  SIGNER_DER_OCTET_STRING = 0x04,
  SIGNER_DER_NULL = 0x05,
  SIGNER_DER_OID = 0x06,
  SIGNER_DER_SEQUENCE = 0x30,
  SIGNER_DER_CONTEXT0 = 0xa0, /* [0] constructed */
  SIGNER_DER_CONTEXT1 = 0xa1  /* [1] constructed */
};

/* The tag of the next element, or -1 at the end. */
int signer_der_peek(const signer_der* in);
/* Takes the next element, which must carry tag; its contents go to out. */
bool signer_der_get(signer_der* in, uint8_t tag, signer_der* out);
/* A non-negative INTEGER in minimal form; out holds its magnitude without
 * the sign byte (at least one byte). */
bool signer_der_get_uint(signer_der* in, signer_der* out);
/* A non-negative INTEGER no larger than max. */
bool signer_der_get_small(signer_der* in, uint64_t max, uint64_t* v);
/* Whether an OID's contents equal the encoded arcs enc. */
bool signer_der_oid_is(signer_der oid, const uint8_t* enc, size_t n);
#define SIGNER_OID_IS(oid, arr) signer_der_oid_is((oid), (arr), sizeof(arr))

/* PEM: the first private-key block of text (other blocks, such as EC
 * PARAMETERS, are skipped), base64-decoded into signer memory (*der_len
 * bytes at *der; free *der_cap bytes with cordon_signer_mem_free). *kind
 * names the block's label. */
enum signer_pem_kind {
  SIGNER_PEM_PKCS8 = 1,     /* PRIVATE KEY */
  SIGNER_PEM_ENCRYPTED = 2, /* ENCRYPTED PRIVATE KEY */
  SIGNER_PEM_RSA = 3,       /* RSA PRIVATE KEY */
  SIGNER_PEM_EC = 4         /* EC PRIVATE KEY */
};
int signer_pem_decode(const uint8_t* text, size_t len, int* kind, uint8_t** der, size_t* der_len,
                      size_t* der_cap);

/* PBES2 EncryptedPrivateKeyInfo's contents (the outer SEQUENCE's inside):
 * decrypts into signer memory (*plain, *plain_len; free with
 * cordon_signer_mem_free, *plain_cap bytes). */
int signer_pbes2_decrypt(signer_der epki, const char* pass, size_t pass_len, uint8_t** plain,
                         size_t* plain_len, size_t* plain_cap);

#ifdef __cplusplus
}
#endif

#endif /* CORDON_OPENSSL_SIGNER_CORE_INTERNAL_H_ */
