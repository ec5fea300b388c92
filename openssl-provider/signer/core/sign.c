/* The signer core's signatures (core.h): RSA PKCS#1 v1.5 and PSS through
 * nettle's side-channel-silent _tr functions (blinding, and a check of each
 * signature against the public key), ECDSA with hedged nonces, Ed25519.
 *
 * Randomness: nettle takes a random function that cannot fail, so each
 * signature first draws 32 bytes from cordon_signer_random (failing with
 * E_CRYPTO if that fails) and seeds an HMAC-DRBG (SP 800-90A) with them,
 * the digest and, for ECDSA, the private scalar: RFC 6979's construction
 * with added entropy, so a nonce is neither repeated under a weak random
 * source nor predictable from the key and message alone. */
#include <nettle/bignum.h>
#include <nettle/dsa.h>
#include <nettle/ecdsa.h>
#include <nettle/eddsa.h>
#include <nettle/hmac.h>
#include <nettle/sha2.h>
#include <string.h>

#include "openssl-provider/signer/core/internal.h"

/* ---- HMAC-DRBG ---- */

typedef struct signer_drbg {
  const struct nettle_hash* hash;
  uint8_t k[SHA512_DIGEST_SIZE];
  uint8_t v[SHA512_DIGEST_SIZE];
} signer_drbg;

/* out = HMAC(d->k, a || b || c), each part optional. */
static void drbg_hmac(const signer_drbg* d, const uint8_t* a, size_t a_len, const uint8_t* b, size_t b_len,
                      const uint8_t* c, size_t c_len, uint8_t* out) {
  struct sha512_ctx outer, inner, state; /* the largest context of the two hashes */
  size_t len = d->hash->digest_size;
  hmac_set_key(&outer, &inner, &state, d->hash, len, d->k);
  hmac_update(&state, d->hash, a_len, a);
  if (b_len) hmac_update(&state, d->hash, b_len, b);
  if (c_len) hmac_update(&state, d->hash, c_len, c);
  hmac_digest(&outer, &inner, &state, d->hash, len, out);
  signer_wipe(&outer, sizeof outer);
  signer_wipe(&inner, sizeof inner);
  signer_wipe(&state, sizeof state);
}

/* SP 800-90A HMAC_DRBG_Update. */
static void drbg_update(signer_drbg* d, const uint8_t* seed, size_t seed_len) {
  static const uint8_t kZero = 0x00, kOne = 0x01;
  size_t len = d->hash->digest_size;
  drbg_hmac(d, d->v, len, &kZero, 1, seed, seed_len, d->k);
  drbg_hmac(d, d->v, len, NULL, 0, NULL, 0, d->v);
  if (seed_len == 0) return;
  drbg_hmac(d, d->v, len, &kOne, 1, seed, seed_len, d->k);
  drbg_hmac(d, d->v, len, NULL, 0, NULL, 0, d->v);
}

static void drbg_init(signer_drbg* d, const struct nettle_hash* hash, const uint8_t* seed, size_t seed_len) {
  d->hash = hash;
  memset(d->k, 0x00, sizeof d->k);
  memset(d->v, 0x01, sizeof d->v);
  drbg_update(d, seed, seed_len);
}

/* A nettle_random_func: each call one HMAC_DRBG_Generate. */
static void drbg_random(void* ctx, size_t n, uint8_t* dst) {
  signer_drbg* d = ctx;
  size_t len = d->hash->digest_size;
  while (n > 0) {
    drbg_hmac(d, d->v, len, NULL, 0, NULL, 0, d->v);
    size_t take = n < len ? n : len;
    memcpy(dst, d->v, take);
    dst += take;
    n -= take;
  }
  drbg_update(d, NULL, 0);
}

/* ---- Digests ---- */

typedef struct digest_info {
  size_t len;
  /* DER DigestInfo up to the digest (RFC 8017, 9.2 note 1). */
  const uint8_t* prefix;
  size_t prefix_len;
} digest_info;

static const uint8_t kPrefixSha1[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                      0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
static const uint8_t kPrefixSha224[] = {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                        0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c};
static const uint8_t kPrefixSha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                        0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t kPrefixSha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                        0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
static const uint8_t kPrefixSha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                        0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};

static bool digest_of(uint32_t digest, digest_info* out) {
  switch (digest) {
    case CORDON_SIGNER_DIGEST_SHA1:
      *out = (digest_info){20, kPrefixSha1, sizeof kPrefixSha1};
      return true;
    case CORDON_SIGNER_DIGEST_SHA224:
      *out = (digest_info){28, kPrefixSha224, sizeof kPrefixSha224};
      return true;
    case CORDON_SIGNER_DIGEST_SHA256:
      *out = (digest_info){32, kPrefixSha256, sizeof kPrefixSha256};
      return true;
    case CORDON_SIGNER_DIGEST_SHA384:
      *out = (digest_info){48, kPrefixSha384, sizeof kPrefixSha384};
      return true;
    case CORDON_SIGNER_DIGEST_SHA512:
      *out = (digest_info){64, kPrefixSha512, sizeof kPrefixSha512};
      return true;
    default:
      return false;
  }
}

enum { kEntropy = 32, kMaxDigest = 64, kMaxScalar = 48 };

/* ---- RSA ---- */

static int sign_rsa(const cordon_signer_key* k, uint32_t scheme, uint32_t digest, uint32_t mgf1_digest,
                    int32_t salt_len, const uint8_t* tbs, size_t tbs_len, uint8_t* sig, size_t cap,
                    size_t* sig_len) {
  digest_info di;
  if (!digest_of(digest, &di)) return CORDON_SIGNER_E_ARGUMENT;
  if (tbs_len != di.len) return CORDON_SIGNER_E_MISMATCH;
  size_t k_len = k->rsa_pub.size;
  size_t salt = 0;
  if (scheme == CORDON_SIGNER_RSA_PSS) {
    /* nettle's PSS: SHA-256/384/512 with MGF1 over the same digest. */
    if (digest != CORDON_SIGNER_DIGEST_SHA256 && digest != CORDON_SIGNER_DIGEST_SHA384 &&
        digest != CORDON_SIGNER_DIGEST_SHA512)
      return CORDON_SIGNER_E_UNSUPPORTED;
    if (mgf1_digest != digest) return CORDON_SIGNER_E_UNSUPPORTED;
    /* emLen = ceil((modBits - 1) / 8) >= hLen + sLen + 2 (RFC 8017 9.1.1). */
    size_t em_len = (k->bits - 1 + 7) / 8;
    if (em_len < di.len + 2) return CORDON_SIGNER_E_MISMATCH;
    size_t max_salt = em_len - di.len - 2;
    if (salt_len == -1) {
      salt = di.len;
    } else if (salt_len == -2) {
      salt = max_salt;
    } else if (salt_len >= 0) {
      salt = (size_t)salt_len;
    } else {
      return CORDON_SIGNER_E_ARGUMENT;
    }
    if (salt > max_salt) return CORDON_SIGNER_E_MISMATCH;
  }
  *sig_len = k_len;
  if (cap < k_len) return CORDON_SIGNER_E_BUFFER;

  uint8_t seed[kEntropy + kMaxDigest];
  if (cordon_signer_random(seed, kEntropy) != 0) return CORDON_SIGNER_E_CRYPTO;
  memcpy(seed + kEntropy, tbs, tbs_len);
  signer_drbg drbg;
  drbg_init(&drbg, &nettle_sha256, seed, kEntropy + tbs_len);
  signer_wipe(seed, sizeof seed);

  int rc = CORDON_SIGNER_E_CRYPTO;
  uint8_t* salt_buf = NULL;
  mpz_t s;
  mpz_init(s);
  int ok;
  if (scheme == CORDON_SIGNER_RSA_PKCS1) {
    uint8_t info[19 + kMaxDigest];
    memcpy(info, di.prefix, di.prefix_len);
    memcpy(info + di.prefix_len, tbs, tbs_len);
    ok = rsa_pkcs1_sign_tr(&k->rsa_pub, &k->rsa_priv, &drbg, drbg_random, di.prefix_len + tbs_len, info, s);
    signer_wipe(info, sizeof info);
  } else {
    /* The salt is public (it is in the signature); from the random source. */
    salt_buf = cordon_signer_mem_alloc(salt + 1);
    if (salt_buf == NULL) {
      rc = CORDON_SIGNER_E_NO_MEMORY;
      goto out;
    }
    if (salt != 0 && cordon_signer_random(salt_buf, salt) != 0) goto out;
    switch (digest) {
      case CORDON_SIGNER_DIGEST_SHA256:
        ok = rsa_pss_sha256_sign_digest_tr(&k->rsa_pub, &k->rsa_priv, &drbg, drbg_random, salt, salt_buf, tbs,
                                           s);
        break;
      case CORDON_SIGNER_DIGEST_SHA384:
        ok = rsa_pss_sha384_sign_digest_tr(&k->rsa_pub, &k->rsa_priv, &drbg, drbg_random, salt, salt_buf, tbs,
                                           s);
        break;
      default:
        ok = rsa_pss_sha512_sign_digest_tr(&k->rsa_pub, &k->rsa_priv, &drbg, drbg_random, salt, salt_buf, tbs,
                                           s);
        break;
    }
  }
  /* 0: the self-check found a wrong signature (a fault, or a bad key). */
  if (ok) {
    nettle_mpz_get_str_256(k_len, sig, s);
    rc = CORDON_SIGNER_OK;
  }
out:
  signer_free(salt_buf, salt + 1);
  signer_mpz_wipe_clear(s);
  signer_wipe(&drbg, sizeof drbg);
  return rc;
}

/* ---- ECDSA ---- */

/* One DER INTEGER of a non-negative mpz at out (room checked by the caller). */
static size_t put_der_int(uint8_t* out, const mpz_t x) {
  size_t n = nettle_mpz_sizeinbase_256_u(x);
  uint8_t* body = out + 2;
  nettle_mpz_get_str_256(n, body, x);
  size_t pad = (body[0] & 0x80) ? 1 : 0;
  if (pad) {
    memmove(body + 1, body, n);
    body[0] = 0;
  }
  out[0] = SIGNER_DER_INTEGER;
  out[1] = (uint8_t)(n + pad);
  return 2 + n + pad;
}

static int sign_ecdsa(const cordon_signer_key* k, uint32_t digest, const uint8_t* tbs, size_t tbs_len,
                      uint8_t* sig, size_t cap, size_t* sig_len) {
  digest_info di;
  if (digest != CORDON_SIGNER_DIGEST_NONE && !digest_of(digest, &di)) return CORDON_SIGNER_E_ARGUMENT;
  /* Any digest: SEC1 4.1.3 uses its leftmost bits (nettle truncates). */
  if (tbs_len == 0 || tbs_len > kMaxDigest || (digest != CORDON_SIGNER_DIGEST_NONE && tbs_len != di.len))
    return CORDON_SIGNER_E_MISMATCH;
  size_t size = (ecc_bit_size(k->curve) + 7) / 8;
  /* SEQUENCE of two INTEGERs, each up to size + 1 bytes: under 128 bytes,
   * so every length is one byte. */
  size_t max = 2 + 2 * (2 + size + 1);
  if (cap < max) {
    *sig_len = max;
    return CORDON_SIGNER_E_BUFFER;
  }
  uint8_t seed[kMaxScalar + kMaxDigest + kEntropy];
  memcpy(seed, k->ec_priv_bytes, size);
  memcpy(seed + size, tbs, tbs_len);
  if (cordon_signer_random(seed + size + tbs_len, kEntropy) != 0) {
    signer_wipe(seed, sizeof seed);
    return CORDON_SIGNER_E_CRYPTO;
  }
  signer_drbg drbg;
  drbg_init(&drbg, size > 32 ? &nettle_sha384 : &nettle_sha256, seed, size + tbs_len + kEntropy);
  signer_wipe(seed, sizeof seed);

  struct dsa_signature rs;
  dsa_signature_init(&rs);
  ecdsa_sign(&k->ec_priv, &drbg, drbg_random, tbs_len, tbs, &rs);
  signer_wipe(&drbg, sizeof drbg);
  uint8_t der[2 + 2 * (2 + kMaxScalar + 1)];
  size_t n = 2;
  n += put_der_int(der + n, rs.r);
  n += put_der_int(der + n, rs.s);
  der[0] = SIGNER_DER_SEQUENCE;
  der[1] = (uint8_t)(n - 2);
  memcpy(sig, der, n);
  *sig_len = n;
  signer_mpz_wipe_clear(rs.r);
  signer_mpz_wipe_clear(rs.s);
  return CORDON_SIGNER_OK;
}

/* ---- Entry ---- */

int cordon_signer_key_sign(const cordon_signer_key* k, uint32_t scheme, uint32_t digest, uint32_t mgf1_digest,
                           int32_t salt_len, const uint8_t* tbs, size_t tbs_len, uint8_t* sig, size_t cap,
                           size_t* sig_len) {
  if (k == NULL || sig_len == NULL || (tbs == NULL && tbs_len != 0) || (sig == NULL && cap != 0))
    return CORDON_SIGNER_E_ARGUMENT;
  *sig_len = 0;
  int rc;
  switch (scheme) {
    case CORDON_SIGNER_RSA_PKCS1:
    case CORDON_SIGNER_RSA_PSS:
      if (k->type != CORDON_SIGNER_KEY_RSA) return CORDON_SIGNER_E_MISMATCH;
      rc = sign_rsa(k, scheme, digest, mgf1_digest, salt_len, tbs, tbs_len, sig, cap, sig_len);
      break;
    case CORDON_SIGNER_ECDSA:
      if (k->type != CORDON_SIGNER_KEY_EC_P256 && k->type != CORDON_SIGNER_KEY_EC_P384)
        return CORDON_SIGNER_E_MISMATCH;
      rc = sign_ecdsa(k, digest, tbs, tbs_len, sig, cap, sig_len);
      break;
    case CORDON_SIGNER_ED25519:
      if (k->type != CORDON_SIGNER_KEY_ED25519) return CORDON_SIGNER_E_MISMATCH;
      if (digest != CORDON_SIGNER_DIGEST_NONE) return CORDON_SIGNER_E_ARGUMENT;
      *sig_len = ED25519_SIGNATURE_SIZE;
      if (cap < ED25519_SIGNATURE_SIZE) return CORDON_SIGNER_E_BUFFER;
      ed25519_sha512_sign(k->ed_pub, k->ed_priv, tbs_len, tbs, sig);
      rc = CORDON_SIGNER_OK;
      break;
    default:
      return CORDON_SIGNER_E_ARGUMENT;
  }
  signer_wipe_stack();
  if (rc != CORDON_SIGNER_OK && rc != CORDON_SIGNER_E_BUFFER) *sig_len = 0;
  return rc;
}
