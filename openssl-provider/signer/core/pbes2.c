/* PKCS#8 EncryptedPrivateKeyInfo with PBES2 (RFC 8018): PBKDF2 with
 * HMAC-SHA1 or HMAC-SHA256, AES-128-CBC or AES-256-CBC. The derived key,
 * the cipher state and the plaintext stay in signer memory and are wiped. */
#include <nettle/aes.h>
#include <nettle/cbc.h>
#include <nettle/pbkdf2.h>
#include <string.h>

#include "openssl-provider/signer/core/internal.h"

static const uint8_t kOidPbes2[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d};
static const uint8_t kOidPbkdf2[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c};
static const uint8_t kOidHmacSha1[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x07};
static const uint8_t kOidHmacSha256[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09};
static const uint8_t kOidAes128Cbc[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02};
static const uint8_t kOidAes256Cbc[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a};

/* More rounds than any tool writes (OpenSSL: 2048) would only let a key
 * file keep the signer busy (10^7 rounds: 2 to 4 s on the Zen 3 host).
 * The fuzz target's copy (tests/fuzz/signer_key_fuzz) stops far lower:
 * mutants with a round count just under the real limit cost it seconds
 * each, and the limit's code path is the same. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
enum { kMaxIterations = 10 * 1000 };
#else
enum { kMaxIterations = 10 * 1000 * 1000 };
#endif

/* An AlgorithmIdentifier's OID, and its parameters (empty when absent). */
static bool get_algorithm(signer_der* in, signer_der* oid, signer_der* params) {
  signer_der alg;
  if (!signer_der_get(in, SIGNER_DER_SEQUENCE, &alg) || !signer_der_get(&alg, SIGNER_DER_OID, oid))
    return false;
  *params = alg;
  return true;
}

int signer_pbes2_decrypt(signer_der epki, const char* pass, size_t pass_len, uint8_t** plain_out,
                         size_t* plain_len_out, size_t* plain_cap_out) {
  signer_der oid, params, data;
  if (!get_algorithm(&epki, &oid, &params) || !signer_der_get(&epki, SIGNER_DER_OCTET_STRING, &data) ||
      epki.n != 0)
    return CORDON_SIGNER_E_FORMAT;
  if (!SIGNER_OID_IS(oid, kOidPbes2)) return CORDON_SIGNER_E_UNSUPPORTED; /* PBES1, PKCS#12 PBEs */
  signer_der pbes2, kdf_oid, kdf, enc_oid, enc;
  if (!signer_der_get(&params, SIGNER_DER_SEQUENCE, &pbes2) || params.n != 0 ||
      !get_algorithm(&pbes2, &kdf_oid, &kdf) || !get_algorithm(&pbes2, &enc_oid, &enc) || pbes2.n != 0)
    return CORDON_SIGNER_E_FORMAT;
  if (!SIGNER_OID_IS(kdf_oid, kOidPbkdf2)) return CORDON_SIGNER_E_UNSUPPORTED; /* scrypt */

  size_t key_len;
  if (SIGNER_OID_IS(enc_oid, kOidAes128Cbc)) {
    key_len = AES128_KEY_SIZE;
  } else if (SIGNER_OID_IS(enc_oid, kOidAes256Cbc)) {
    key_len = AES256_KEY_SIZE;
  } else {
    return CORDON_SIGNER_E_UNSUPPORTED; /* DES-EDE3, AES-192, ... */
  }
  signer_der iv;
  if (!signer_der_get(&enc, SIGNER_DER_OCTET_STRING, &iv) || iv.n != AES_BLOCK_SIZE || enc.n != 0)
    return CORDON_SIGNER_E_FORMAT;

  /* PBKDF2-params: salt, iterationCount, keyLength OPTIONAL, prf DEFAULT
   * hmacWithSHA1. */
  signer_der kp, salt;
  uint64_t iterations;
  if (!signer_der_get(&kdf, SIGNER_DER_SEQUENCE, &kp) || kdf.n != 0 ||
      !signer_der_get(&kp, SIGNER_DER_OCTET_STRING, &salt) ||
      !signer_der_get_small(&kp, UINT64_MAX, &iterations))
    return CORDON_SIGNER_E_FORMAT;
  if (iterations == 0) return CORDON_SIGNER_E_FORMAT;
  if (iterations > kMaxIterations) return CORDON_SIGNER_E_UNSUPPORTED;
  if (signer_der_peek(&kp) == SIGNER_DER_INTEGER) {
    uint64_t stated;
    if (!signer_der_get_small(&kp, 1024, &stated) || stated != key_len) return CORDON_SIGNER_E_FORMAT;
  }
  bool sha256 = false;
  if (kp.n != 0) {
    signer_der prf_oid, prf_params;
    if (!get_algorithm(&kp, &prf_oid, &prf_params) || kp.n != 0) return CORDON_SIGNER_E_FORMAT;
    if (prf_params.n != 0) {
      signer_der null;
      if (!signer_der_get(&prf_params, SIGNER_DER_NULL, &null) || null.n != 0 || prf_params.n != 0)
        return CORDON_SIGNER_E_FORMAT;
    }
    if (SIGNER_OID_IS(prf_oid, kOidHmacSha256)) {
      sha256 = true;
    } else if (!SIGNER_OID_IS(prf_oid, kOidHmacSha1)) {
      return CORDON_SIGNER_E_UNSUPPORTED;
    }
  }
  if (data.n == 0 || data.n % AES_BLOCK_SIZE != 0) return CORDON_SIGNER_E_FORMAT;
  /* Encrypted and no passphrase: the caller asks for one. */
  if (pass == NULL) return CORDON_SIGNER_E_PASSPHRASE;

  uint8_t key[AES256_KEY_SIZE];
  if (sha256) {
    pbkdf2_hmac_sha256(pass_len, (const uint8_t*)pass, (unsigned)iterations, salt.n, salt.p, key_len, key);
  } else {
    pbkdf2_hmac_sha1(pass_len, (const uint8_t*)pass, (unsigned)iterations, salt.n, salt.p, key_len, key);
  }
  uint8_t* plain = cordon_signer_mem_alloc(data.n);
  if (plain == NULL) {
    signer_wipe(key, sizeof key);
    return CORDON_SIGNER_E_NO_MEMORY;
  }
  uint8_t ivb[AES_BLOCK_SIZE];
  memcpy(ivb, iv.p, sizeof ivb);
  if (key_len == AES128_KEY_SIZE) {
    struct aes128_ctx ctx;
    aes128_set_decrypt_key(&ctx, key);
    cbc_decrypt(&ctx, (nettle_cipher_func*)aes128_decrypt, AES_BLOCK_SIZE, ivb, data.n, plain, data.p);
    signer_wipe(&ctx, sizeof ctx);
  } else {
    struct aes256_ctx ctx;
    aes256_set_decrypt_key(&ctx, key);
    cbc_decrypt(&ctx, (nettle_cipher_func*)aes256_decrypt, AES_BLOCK_SIZE, ivb, data.n, plain, data.p);
    signer_wipe(&ctx, sizeof ctx);
  }
  signer_wipe(key, sizeof key);
  signer_wipe(ivb, sizeof ivb);

  /* PKCS#7 padding, checked in full: a wrong passphrase shows here first
   * (and, in the 1 in 256 cases it passes, as a corrupt PrivateKeyInfo). */
  uint8_t pad = plain[data.n - 1];
  unsigned bad = (pad == 0) | (pad > AES_BLOCK_SIZE);
  if (!bad) {
    for (size_t i = 0; i < pad; i++) bad |= plain[data.n - 1 - i] != pad;
  }
  if (bad) {
    signer_free(plain, data.n);
    return CORDON_SIGNER_E_PASSPHRASE;
  }
  *plain_out = plain;
  *plain_len_out = data.n - pad;
  *plain_cap_out = data.n;
  return CORDON_SIGNER_OK;
}
