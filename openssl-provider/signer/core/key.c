/* The signer core's keys (core.h): reading PKCS#8 (plain and PBES2),
 * PKCS#1 RSAPrivateKey and SEC1 ECPrivateKey, in PEM or DER; checking each
 * key before it is kept; its public half; wiping it. Every byte of the key,
 * in every encoding, lives in signer memory (cordon_signer_mem_*) or on the
 * signer's stack, and is wiped before it is freed. */
#include <gmp.h>
#include <nettle/bignum.h>
#include <nettle/ecc-curve.h>
#include <nettle/eddsa.h>
#include <string.h>

#include "openssl-provider/signer/core/internal.h"

static const uint8_t kOidRsa[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
static const uint8_t kOidEcPublicKey[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t kOidP256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t kOidP384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t kOidEd25519[] = {0x2b, 0x65, 0x70};

enum { kRsaMinBits = 1024, kRsaMaxBits = 8192 };
/* The public exponent travels beside n in CORDON_SIGNER_MAX_PUBLIC bytes,
 * 16 of them past RSA-8192's n, and the provider carries no more for any n.
 * A longer e (OpenSSL's own RSA takes at most 64 bits past 3072-bit
 * moduli) would load, then fail the public-key read with E_BUFFER or the
 * provider's export: refused here instead, as a key the signer does not do. */
enum { kRsaMaxExponentBytes = CORDON_SIGNER_MAX_PUBLIC - kRsaMaxBits / 8 };

void signer_wipe(void* p, size_t n) {
  if (n == 0) return;
  memset(p, 0, n);
  /* The asm may read the bytes, so the stores above must happen. */
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

__attribute__((noinline)) void signer_wipe_stack(void) {
  /* Below the caller's frame: where the calls it just made kept their
   * scratch. 32 KiB covers nettle's and GMP's stack use for RSA-8192 and
   * stays well inside the trusted stack (256 KiB by default). */
  uint8_t area[32 * 1024];
  signer_wipe(area, sizeof area);
}

void signer_free(void* p, size_t n) {
  if (p == NULL) return;
  signer_wipe(p, n);
  cordon_signer_mem_free(p, n);
}

void signer_mpz_wipe_clear(mpz_t x) {
  signer_wipe(x->_mp_d, (size_t)x->_mp_alloc * sizeof(mp_limb_t));
  mpz_clear(x);
}

/* Bytes of the key's group order, for EC keys. */
static size_t ec_bytes(const struct ecc_curve* curve) {
  return (ecc_bit_size(curve) + 7) / 8;
}

static void mpz_from(mpz_t x, signer_der v) {
  nettle_mpz_set_str_256_u(x, v.n, v.p);
}

/* ---- RSA ---- */

/* RSAPrivateKey's contents (RFC 8017 A.1.2), two primes only. */
static int parse_rsa(signer_der in, cordon_signer_key* k) {
  uint64_t version;
  signer_der n, e, d, p, q, dp, dq, qinv;
  if (!signer_der_get_small(&in, 1, &version)) return CORDON_SIGNER_E_FORMAT;
  if (version != 0) return CORDON_SIGNER_E_UNSUPPORTED; /* multi-prime */
  if (!signer_der_get_uint(&in, &n) || !signer_der_get_uint(&in, &e) || !signer_der_get_uint(&in, &d) ||
      !signer_der_get_uint(&in, &p) || !signer_der_get_uint(&in, &q) || !signer_der_get_uint(&in, &dp) ||
      !signer_der_get_uint(&in, &dq) || !signer_der_get_uint(&in, &qinv) || in.n != 0)
    return CORDON_SIGNER_E_FORMAT;
  /* Size first: a number too large to keep is refused before any arithmetic. */
  if (n.n > kRsaMaxBits / 8 || e.n > n.n || d.n > n.n || p.n > n.n || q.n > n.n || dp.n > n.n || dq.n > n.n ||
      qinv.n > n.n)
    return n.n > kRsaMaxBits / 8 ? CORDON_SIGNER_E_UNSUPPORTED : CORDON_SIGNER_E_FORMAT;
  if (e.n > kRsaMaxExponentBytes) return CORDON_SIGNER_E_UNSUPPORTED;

  rsa_public_key_init(&k->rsa_pub);
  rsa_private_key_init(&k->rsa_priv);
  k->type = CORDON_SIGNER_KEY_RSA; /* from here destroy clears the numbers */
  mpz_from(k->rsa_pub.n, n);
  mpz_from(k->rsa_pub.e, e);
  mpz_from(k->rsa_priv.d, d);
  mpz_from(k->rsa_priv.p, p);
  mpz_from(k->rsa_priv.q, q);
  mpz_from(k->rsa_priv.a, dp);
  mpz_from(k->rsa_priv.b, dq);
  mpz_from(k->rsa_priv.c, qinv);
  size_t bits = mpz_sizeinbase(k->rsa_pub.n, 2);
  if (mpz_sgn(k->rsa_pub.n) == 0 || bits < kRsaMinBits || bits > kRsaMaxBits)
    return CORDON_SIGNER_E_UNSUPPORTED;
  k->bits = (uint32_t)bits;

  /* The key must be one: n = p q, e odd and in (1, n), and the CRT parts
   * consistent with e (e dp = 1 mod p-1, e dq = 1 mod q-1, q qinv = 1 mod p),
   * which is all the CRT signature uses. The _tr signing functions then also
   * check each signature against e. */
  int rc = CORDON_SIGNER_E_FORMAT;
  mpz_t t, m;
  mpz_init(t);
  mpz_init(m);
  if (mpz_cmp_ui(k->rsa_pub.e, 3) < 0 || mpz_even_p(k->rsa_pub.e) || mpz_cmp(k->rsa_pub.e, k->rsa_pub.n) >= 0)
    goto out;
  if (mpz_cmp_ui(k->rsa_priv.p, 3) < 0 || mpz_cmp_ui(k->rsa_priv.q, 3) < 0) goto out;
  mpz_mul(t, k->rsa_priv.p, k->rsa_priv.q);
  if (mpz_cmp(t, k->rsa_pub.n) != 0) goto out;
  mpz_sub_ui(m, k->rsa_priv.p, 1);
  mpz_mul(t, k->rsa_pub.e, k->rsa_priv.a);
  mpz_mod(t, t, m);
  if (mpz_cmp_ui(t, 1) != 0) goto out;
  mpz_sub_ui(m, k->rsa_priv.q, 1);
  mpz_mul(t, k->rsa_pub.e, k->rsa_priv.b);
  mpz_mod(t, t, m);
  if (mpz_cmp_ui(t, 1) != 0) goto out;
  mpz_mul(t, k->rsa_priv.q, k->rsa_priv.c);
  mpz_mod(t, t, k->rsa_priv.p);
  if (mpz_cmp_ui(t, 1) != 0) goto out;
  if (!rsa_public_key_prepare(&k->rsa_pub) || !rsa_private_key_prepare(&k->rsa_priv) ||
      k->rsa_priv.size != k->rsa_pub.size)
    goto out;
  rc = CORDON_SIGNER_OK;
out:
  signer_mpz_wipe_clear(t);
  signer_mpz_wipe_clear(m);
  return rc;
}

/* ---- EC ---- */

/* The curve a namedCurve OID names. */
static int curve_from_oid(signer_der params, const struct ecc_curve** curve) {
  signer_der oid;
  if (signer_der_peek(&params) == SIGNER_DER_SEQUENCE) return CORDON_SIGNER_E_UNSUPPORTED; /* explicit */
  if (!signer_der_get(&params, SIGNER_DER_OID, &oid) || params.n != 0) return CORDON_SIGNER_E_FORMAT;
  if (SIGNER_OID_IS(oid, kOidP256)) {
    *curve = nettle_get_secp_256r1();
  } else if (SIGNER_OID_IS(oid, kOidP384)) {
    *curve = nettle_get_secp_384r1();
  } else {
    return CORDON_SIGNER_E_UNSUPPORTED; /* P-521, brainpool, ... */
  }
  return CORDON_SIGNER_OK;
}

/* A BIT STRING's contents as whole bytes. */
static bool bit_string_bytes(signer_der bits, signer_der* out) {
  if (bits.n < 1 || bits.p[0] != 0) return false;
  out->p = bits.p + 1;
  out->n = bits.n - 1;
  return true;
}

/* Sets the scalar, derives the public point into k->ec_pub and, when the
 * file states one, checks that it is the same point. */
static int set_ec(cordon_signer_key* k, const struct ecc_curve* curve, signer_der scalar,
                  const signer_der* stated) {
  size_t size = ec_bytes(curve);
  if (scalar.n == 0 || scalar.n > size) return CORDON_SIGNER_E_FORMAT;
  k->curve = curve;
  k->type = curve == nettle_get_secp_256r1() ? CORDON_SIGNER_KEY_EC_P256 : CORDON_SIGNER_KEY_EC_P384;
  k->bits = (uint32_t)ecc_bit_size(curve);
  ecc_scalar_init(&k->ec_priv, curve); /* from here destroy clears it */
  /* The scalar as fixed-length big-endian bytes, kept for the nonces. */
  memcpy(k->ec_priv_bytes + (size - scalar.n), scalar.p, scalar.n);
  int rc = CORDON_SIGNER_E_FORMAT;
  mpz_t z, x, y;
  mpz_init(z);
  mpz_init(x);
  mpz_init(y);
  struct ecc_point pub;
  ecc_point_init(&pub, curve);
  nettle_mpz_set_str_256_u(z, size, k->ec_priv_bytes);
  if (!ecc_scalar_set(&k->ec_priv, z)) goto out; /* 0, or not below the order */
  ecc_point_mul_g(&pub, &k->ec_priv);
  ecc_point_get(&pub, x, y);
  k->ec_pub[0] = 0x04;
  nettle_mpz_get_str_256(size, k->ec_pub + 1, x);
  nettle_mpz_get_str_256(size, k->ec_pub + 1 + size, y);
  k->ec_pub_len = 1 + 2 * size;
  if (stated != NULL) {
    if (stated->n == k->ec_pub_len && stated->p[0] == 0x04) {
      if (memcmp(stated->p, k->ec_pub, k->ec_pub_len) != 0) goto out;
    } else if (stated->n == 1 + size && (stated->p[0] == 0x02 || stated->p[0] == 0x03)) {
      /* Compressed: X, and Y's parity in the first byte. */
      if (memcmp(stated->p + 1, k->ec_pub + 1, size) != 0 ||
          (stated->p[0] & 1) != (k->ec_pub[k->ec_pub_len - 1] & 1))
        goto out;
    } else {
      goto out;
    }
  }
  rc = CORDON_SIGNER_OK;
out:
  ecc_point_clear(&pub); /* public */
  signer_mpz_wipe_clear(z);
  signer_mpz_wipe_clear(x);
  signer_mpz_wipe_clear(y);
  return rc;
}

/* ECPrivateKey's contents (RFC 5915). curve: the PKCS#8 algorithm's curve,
 * or NULL when the key stands alone and must name its own. */
static int parse_ec(signer_der in, const struct ecc_curve* curve, cordon_signer_key* k) {
  uint64_t version;
  signer_der scalar;
  if (!signer_der_get_small(&in, 1, &version) || version != 1 ||
      !signer_der_get(&in, SIGNER_DER_OCTET_STRING, &scalar))
    return CORDON_SIGNER_E_FORMAT;
  if (signer_der_peek(&in) == SIGNER_DER_CONTEXT0) {
    signer_der params;
    const struct ecc_curve* named = NULL;
    if (!signer_der_get(&in, SIGNER_DER_CONTEXT0, &params)) return CORDON_SIGNER_E_FORMAT;
    int rc = curve_from_oid(params, &named);
    if (rc != CORDON_SIGNER_OK) return rc;
    if (curve != NULL && named != curve) return CORDON_SIGNER_E_FORMAT;
    curve = named;
  }
  if (curve == NULL) return CORDON_SIGNER_E_FORMAT;
  signer_der stated;
  bool has_public = false;
  if (signer_der_peek(&in) == SIGNER_DER_CONTEXT1) {
    signer_der wrap, bits;
    if (!signer_der_get(&in, SIGNER_DER_CONTEXT1, &wrap) ||
        !signer_der_get(&wrap, SIGNER_DER_BIT_STRING, &bits) || wrap.n != 0 ||
        !bit_string_bytes(bits, &stated) || stated.n == 0)
      return CORDON_SIGNER_E_FORMAT;
    has_public = true;
  }
  if (in.n != 0) return CORDON_SIGNER_E_FORMAT;
  return set_ec(k, curve, scalar, has_public ? &stated : NULL);
}

/* ---- PKCS#8 ---- */

/* PrivateKeyInfo / OneAsymmetricKey's contents (RFC 5208, RFC 5958). */
static int parse_pkcs8(signer_der in, cordon_signer_key* k) {
  uint64_t version;
  signer_der alg, oid, key;
  if (!signer_der_get_small(&in, 1, &version) || !signer_der_get(&in, SIGNER_DER_SEQUENCE, &alg) ||
      !signer_der_get(&alg, SIGNER_DER_OID, &oid) || !signer_der_get(&in, SIGNER_DER_OCTET_STRING, &key))
    return CORDON_SIGNER_E_FORMAT;
  if (signer_der_peek(&in) == SIGNER_DER_CONTEXT0) { /* attributes: not needed */
    signer_der attrs;
    if (!signer_der_get(&in, SIGNER_DER_CONTEXT0, &attrs)) return CORDON_SIGNER_E_FORMAT;
  }
  signer_der stated;
  bool has_public = false;
  if (signer_der_peek(&in) == 0x81) { /* [1] IMPLICIT BIT STRING, version 2 only */
    signer_der bits;
    if (version != 1 || !signer_der_get(&in, 0x81, &bits) || !bit_string_bytes(bits, &stated))
      return CORDON_SIGNER_E_FORMAT;
    has_public = true;
  }
  if (in.n != 0) return CORDON_SIGNER_E_FORMAT;

  if (SIGNER_OID_IS(oid, kOidRsa)) {
    signer_der null, rsa;
    if (alg.n != 0 && (!signer_der_get(&alg, SIGNER_DER_NULL, &null) || null.n != 0 || alg.n != 0))
      return CORDON_SIGNER_E_FORMAT;
    if (has_public || !signer_der_get(&key, SIGNER_DER_SEQUENCE, &rsa) || key.n != 0)
      return CORDON_SIGNER_E_FORMAT;
    return parse_rsa(rsa, k);
  }
  if (SIGNER_OID_IS(oid, kOidEcPublicKey)) {
    const struct ecc_curve* curve = NULL;
    signer_der ec;
    int rc = curve_from_oid(alg, &curve);
    if (rc != CORDON_SIGNER_OK) return rc;
    if (has_public || !signer_der_get(&key, SIGNER_DER_SEQUENCE, &ec) || key.n != 0)
      return CORDON_SIGNER_E_FORMAT;
    return parse_ec(ec, curve, k);
  }
  if (SIGNER_OID_IS(oid, kOidEd25519)) {
    signer_der seed;
    if (alg.n != 0 || !signer_der_get(&key, SIGNER_DER_OCTET_STRING, &seed) || key.n != 0 || seed.n != 32)
      return CORDON_SIGNER_E_FORMAT;
    k->type = CORDON_SIGNER_KEY_ED25519;
    k->bits = 253;
    memcpy(k->ed_priv, seed.p, 32);
    ed25519_sha512_public_key(k->ed_pub, k->ed_priv);
    if (has_public && (stated.n != 32 || memcmp(stated.p, k->ed_pub, 32) != 0)) return CORDON_SIGNER_E_FORMAT;
    return CORDON_SIGNER_OK;
  }
  /* RSA-PSS-only keys, DSA, X25519, X448, Ed448, ... */
  return CORDON_SIGNER_E_UNSUPPORTED;
}

/* ---- Formats ---- */

enum der_shape { SHAPE_PKCS8 = 1, SHAPE_ENCRYPTED, SHAPE_RSA, SHAPE_EC };

/* Which structure a DER SEQUENCE's contents are, from its first two fields. */
static int der_shape(signer_der body) {
  int first = signer_der_peek(&body);
  if (first == SIGNER_DER_SEQUENCE) return SHAPE_ENCRYPTED;
  signer_der version;
  if (first != SIGNER_DER_INTEGER || !signer_der_get(&body, SIGNER_DER_INTEGER, &version)) return 0;
  switch (signer_der_peek(&body)) {
    case SIGNER_DER_SEQUENCE:
      return SHAPE_PKCS8;
    case SIGNER_DER_INTEGER:
      return SHAPE_RSA;
    case SIGNER_DER_OCTET_STRING:
      return SHAPE_EC;
    default:
      return 0;
  }
}

/* One DER private key, filling k. want: the shape a PEM label promised, or
 * 0 for a DER file. */
static int parse_der(const uint8_t* p, size_t n, int want, const char* pass, size_t pass_len,
                     cordon_signer_key* k) {
  signer_der in = {p, n}, body;
  if (!signer_der_get(&in, SIGNER_DER_SEQUENCE, &body) || in.n != 0) return CORDON_SIGNER_E_FORMAT;
  int shape = der_shape(body);
  if (shape == 0 || (want != 0 && shape != want)) return CORDON_SIGNER_E_FORMAT;
  switch (shape) {
    case SHAPE_PKCS8:
      return parse_pkcs8(body, k);
    case SHAPE_RSA:
      return parse_rsa(body, k);
    case SHAPE_EC:
      return parse_ec(body, NULL, k);
    default:
      break;
  }
  uint8_t* plain = NULL;
  size_t plain_len = 0, plain_cap = 0;
  int rc = signer_pbes2_decrypt(body, pass, pass_len, &plain, &plain_len, &plain_cap);
  if (rc != CORDON_SIGNER_OK) return rc;
  signer_der dec = {plain, plain_len}, info;
  /* Right padding, wrong key: what a wrong passphrase decrypts to. */
  if (!signer_der_get(&dec, SIGNER_DER_SEQUENCE, &info) || dec.n != 0 || der_shape(info) != SHAPE_PKCS8) {
    rc = CORDON_SIGNER_E_PASSPHRASE;
  } else {
    rc = parse_pkcs8(info, k);
  }
  signer_free(plain, plain_cap);
  return rc;
}

static int shape_of_pem(int kind) {
  switch (kind) {
    case SIGNER_PEM_PKCS8:
      return SHAPE_PKCS8;
    case SIGNER_PEM_ENCRYPTED:
      return SHAPE_ENCRYPTED;
    case SIGNER_PEM_RSA:
      return SHAPE_RSA;
    default:
      return SHAPE_EC;
  }
}

int cordon_signer_key_parse(const uint8_t* data, size_t len, const char* pass, size_t pass_len,
                            cordon_signer_key** out) {
  if (out == NULL) return CORDON_SIGNER_E_ARGUMENT;
  *out = NULL;
  if ((data == NULL && len != 0) || (pass == NULL && pass_len != 0)) return CORDON_SIGNER_E_ARGUMENT;
  if (len == 0) return CORDON_SIGNER_E_FORMAT;
  cordon_signer_key* k = cordon_signer_mem_alloc(sizeof *k);
  if (k == NULL) return CORDON_SIGNER_E_NO_MEMORY;
  memset(k, 0, sizeof *k);
  int rc;
  if (data[0] == SIGNER_DER_SEQUENCE) {
    rc = parse_der(data, len, 0, pass, pass_len, k);
  } else {
    int kind = 0;
    uint8_t* der = NULL;
    size_t der_len = 0, der_cap = 0;
    rc = signer_pem_decode(data, len, &kind, &der, &der_len, &der_cap);
    if (rc == CORDON_SIGNER_OK) {
      rc = parse_der(der, der_len, shape_of_pem(kind), pass, pass_len, k);
      signer_free(der, der_cap);
    }
  }
  signer_wipe_stack();
  if (rc != CORDON_SIGNER_OK) {
    cordon_signer_key_destroy(k);
    return rc;
  }
  *out = k;
  return CORDON_SIGNER_OK;
}

static size_t mpz_bytes(const mpz_t x) {
  return nettle_mpz_sizeinbase_256_u(x);
}

int cordon_signer_key_public(const cordon_signer_key* k, uint32_t* key_type, uint32_t* bits, uint8_t* pub,
                             size_t cap, size_t* pub_len, size_t* rsa_n_len) {
  if (k == NULL || key_type == NULL || bits == NULL || pub_len == NULL || rsa_n_len == NULL ||
      (pub == NULL && cap != 0))
    return CORDON_SIGNER_E_ARGUMENT;
  *key_type = k->type;
  *bits = k->bits;
  *rsa_n_len = 0;
  size_t need;
  switch (k->type) {
    case CORDON_SIGNER_KEY_RSA: {
      size_t n_len = mpz_bytes(k->rsa_pub.n), e_len = mpz_bytes(k->rsa_pub.e);
      need = n_len + e_len;
      *pub_len = need;
      if (cap < need) return CORDON_SIGNER_E_BUFFER;
      nettle_mpz_get_str_256(n_len, pub, k->rsa_pub.n);
      nettle_mpz_get_str_256(e_len, pub + n_len, k->rsa_pub.e);
      *rsa_n_len = n_len;
      return CORDON_SIGNER_OK;
    }
    case CORDON_SIGNER_KEY_EC_P256:
    case CORDON_SIGNER_KEY_EC_P384:
      need = k->ec_pub_len;
      *pub_len = need;
      if (cap < need) return CORDON_SIGNER_E_BUFFER;
      memcpy(pub, k->ec_pub, need);
      return CORDON_SIGNER_OK;
    case CORDON_SIGNER_KEY_ED25519:
      *pub_len = sizeof k->ed_pub;
      if (cap < sizeof k->ed_pub) return CORDON_SIGNER_E_BUFFER;
      memcpy(pub, k->ed_pub, sizeof k->ed_pub);
      return CORDON_SIGNER_OK;
    default:
      return CORDON_SIGNER_E_ARGUMENT;
  }
}

void cordon_signer_key_destroy(cordon_signer_key* k) {
  if (k == NULL) return;
  if (k->type == CORDON_SIGNER_KEY_RSA) {
    signer_mpz_wipe_clear(k->rsa_pub.n);
    signer_mpz_wipe_clear(k->rsa_pub.e);
    signer_mpz_wipe_clear(k->rsa_priv.d);
    signer_mpz_wipe_clear(k->rsa_priv.p);
    signer_mpz_wipe_clear(k->rsa_priv.q);
    signer_mpz_wipe_clear(k->rsa_priv.a);
    signer_mpz_wipe_clear(k->rsa_priv.b);
    signer_mpz_wipe_clear(k->rsa_priv.c);
  } else if (k->curve != NULL) {
    signer_wipe(k->ec_priv.p, ecc_size(k->curve) * sizeof(mp_limb_t));
    ecc_scalar_clear(&k->ec_priv);
  }
  signer_free(k, sizeof *k);
}
