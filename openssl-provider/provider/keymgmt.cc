// Key management for the provider's keys (RSA, EC P-256/P-384, Ed25519).
//
// A key comes only from the signer (load(), from a store or decoder
// reference); only its public half ever leaves: get_params and export give
// the public key (so libssl can match the certificate, and encoders can
// write the SubjectPublicKeyInfo), export with the private half selected
// fails, and import takes public keys only (for EVP_PKEY_eq against a
// certificate's key): no key material can be brought in.
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>

#include <cstring>

#include "openssl-provider/provider/provider.h"

namespace cordon_provider {
namespace {

constexpr int kPrivate = OSSL_KEYMGMT_SELECT_PRIVATE_KEY;
constexpr int kPublic = OSSL_KEYMGMT_SELECT_PUBLIC_KEY;

const char* GroupName(uint32_t type) {
  return type == CORDON_SIGNER_KEY_EC_P256   ? "prime256v1"
         : type == CORDON_SIGNER_KEY_EC_P384 ? "secp384r1"
                                             : nullptr;
}

bool IsEc(uint32_t t) {
  return t == CORDON_SIGNER_KEY_EC_P256 || t == CORDON_SIGNER_KEY_EC_P384;
}

// Whether a key of type t belongs to the keymgmt of family f (the type of
// its first key: RSA, EC_P256 for EC, ED25519).
bool SameFamily(uint32_t t, uint32_t f) {
  return IsEc(f) ? IsEc(t) : t == f;
}

int SecurityBits(const Key* k) {
  switch (k->type) {
    case CORDON_SIGNER_KEY_RSA:
      return k->bits >= 15360  ? 256
             : k->bits >= 7680 ? 192
             : k->bits >= 3072 ? 128
             : k->bits >= 2048 ? 112
                               : 80;
    case CORDON_SIGNER_KEY_EC_P256:
      return 128;
    case CORDON_SIGNER_KEY_EC_P384:
      return 192;
    case CORDON_SIGNER_KEY_ED25519:
      return 128;
    default:
      return 0;
  }
}

// Sets an RSA number (big-endian bytes) into a BN parameter.
int SetBn(OSSL_PARAM* p, const uint8_t* be, size_t n) {
  BIGNUM* b = BN_bin2bn(be, static_cast<int>(n), nullptr);
  const int ok = b != nullptr && OSSL_PARAM_set_BN(p, b);
  BN_free(b);
  return ok;
}

template <uint32_t kFamily>
void* New(void* provctx) {
  return NewKey(static_cast<ProvCtx*>(provctx), kFamily);
}

void Free(void* k) {
  FreeKey(static_cast<Key*>(k));
}

template <uint32_t kFamily>
void* Load(const void* reference, size_t size) {
  if (reference == nullptr || size != sizeof(KeyReference)) return nullptr;
  auto* ref = static_cast<KeyReference*>(const_cast<void*>(reference));
  if (ref->magic != kReferenceMagic || ref->key == nullptr || !SameFamily(ref->key->type, kFamily))
    return nullptr;
  Key* k = ref->key;
  ref->key = nullptr;  // ours now
  return k;
}

int Has(const void* vk, int selection) {
  const auto* k = static_cast<const Key*>(vk);
  if (k == nullptr) return 0;
  if ((selection & kPrivate) != 0 && k->handle == 0) return 0;
  if ((selection & kPublic) != 0 && k->public_len == 0) return 0;
  return 1;
}

int Match(const void* va, const void* vb, int selection) {
  const auto* a = static_cast<const Key*>(va);
  const auto* b = static_cast<const Key*>(vb);
  if (a->type != b->type) return 0;  // the curve, for EC domain parameters
  if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0) {
    // A private key is matched by its public half (the signer checked the pair).
    if (a->public_len == 0 || a->public_len != b->public_len ||
        memcmp(a->public_key, b->public_key, a->public_len) != 0) {
      return 0;
    }
  }
  return 1;
}

int GetParams(void* vk, OSSL_PARAM params[]) {
  const auto* k = static_cast<const Key*>(vk);
  OSSL_PARAM* p;
  if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_BITS)) != nullptr &&
      !OSSL_PARAM_set_int(p, static_cast<int>(k->bits)))
    return 0;
  if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_SECURITY_BITS)) != nullptr &&
      !OSSL_PARAM_set_int(p, SecurityBits(k)))
    return 0;
  if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_MAX_SIZE)) != nullptr &&
      !OSSL_PARAM_set_int(p, static_cast<int>(MaxSignature(k))))
    return 0;
  if (k->type == CORDON_SIGNER_KEY_ED25519) {
    // PureEdDSA: no digest (OpenSSL reads "" as none).
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_MANDATORY_DIGEST)) != nullptr &&
        !OSSL_PARAM_set_utf8_string(p, ""))
      return 0;
  } else if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST)) != nullptr &&
             !OSSL_PARAM_set_utf8_string(p, "SHA256")) {
    return 0;
  }
  if (k->public_len == 0) return 1;
  if (k->type == CORDON_SIGNER_KEY_RSA) {
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_N)) != nullptr &&
        !SetBn(p, k->public_key, k->rsa_n_len))
      return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_E)) != nullptr &&
        !SetBn(p, k->public_key + k->rsa_n_len, k->public_len - k->rsa_n_len))
      return 0;
    return 1;
  }
  if (IsEc(k->type)) {
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_GROUP_NAME)) != nullptr &&
        !OSSL_PARAM_set_utf8_string(p, GroupName(k->type)))
      return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT)) != nullptr &&
        !OSSL_PARAM_set_utf8_string(p, "uncompressed"))
      return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_EC_ENCODING)) != nullptr &&
        !OSSL_PARAM_set_utf8_string(p, "named_curve"))
      return 0;
  }
  if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY)) != nullptr &&
      !OSSL_PARAM_set_octet_string(p, k->public_key, k->public_len))
    return 0;
  if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PUB_KEY)) != nullptr &&
      !OSSL_PARAM_set_octet_string(p, k->public_key, k->public_len))
    return 0;
  return 1;
}

#define COMMON_GETTABLE                                                                                  \
  OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, nullptr), OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, nullptr), \
      OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, nullptr)

const OSSL_PARAM* RsaGettable(void*) {
  static const OSSL_PARAM kParams[] = {
      COMMON_GETTABLE,
      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, nullptr, 0),
      OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, nullptr, 0),
      OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, nullptr, 0),
      OSSL_PARAM_END,
  };
  return kParams;
}

const OSSL_PARAM* EcGettable(void*) {
  static const OSSL_PARAM kParams[] = {
      COMMON_GETTABLE,
      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, nullptr, 0),
      OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0),
      OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0),
      OSSL_PARAM_END,
  };
  return kParams;
}

const OSSL_PARAM* EdGettable(void*) {
  static const OSSL_PARAM kParams[] = {
      COMMON_GETTABLE,
      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, nullptr, 0),
      OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0),
      OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0),
      OSSL_PARAM_END,
  };
  return kParams;
}

// ----------------------------------------------------------- export/import --
int Export(void* vk, int selection, OSSL_CALLBACK* cb, void* cbarg) {
  const auto* k = static_cast<const Key*>(vk);
  if ((selection & kPrivate) != 0) {
    // Also what OpenSSL asks when it moves a key to another provider to
    // use it there: refusing keeps every private operation here.
    RaiseError(kReasonRefused, "cordon: the private half of a cordon key never leaves its domain");
    return 0;
  }
  if (k->public_len == 0) return 0;
  OSSL_PARAM params[4];
  int n = 0;
  BIGNUM* bn_n = nullptr;
  BIGNUM* bn_e = nullptr;
  unsigned char nbuf[CORDON_SIGNER_MAX_PUBLIC], ebuf[16];
  if ((selection & kPublic) != 0 || (selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0) {
    if (k->type == CORDON_SIGNER_KEY_RSA) {
      if ((selection & kPublic) != 0) {
        const size_t e_len = k->public_len - k->rsa_n_len;
        bn_n = BN_bin2bn(k->public_key, static_cast<int>(k->rsa_n_len), nullptr);
        bn_e = BN_bin2bn(k->public_key + k->rsa_n_len, static_cast<int>(e_len), nullptr);
        if (bn_n == nullptr || bn_e == nullptr || e_len > sizeof ebuf) {
          BN_free(bn_n);
          BN_free(bn_e);
          return 0;
        }
        // Native-endian bytes for OSSL_PARAM_construct_BN's layout.
        BN_bn2nativepad(bn_n, nbuf, static_cast<int>(k->rsa_n_len));
        BN_bn2nativepad(bn_e, ebuf, static_cast<int>(e_len));
        params[n++] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_N, nbuf, k->rsa_n_len);
        params[n++] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_E, ebuf, e_len);
      }
    } else {
      if (IsEc(k->type)) {
        params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                       const_cast<char*>(GroupName(k->type)), 0);
      }
      if ((selection & kPublic) != 0) {
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                        const_cast<uint8_t*>(k->public_key), k->public_len);
      }
    }
  }
  params[n] = OSSL_PARAM_construct_end();
  const int ok = cb(params, cbarg);
  BN_free(bn_n);
  BN_free(bn_e);
  return ok;
}

// Public keys only (EVP_PKEY_eq of a certificate's key against ours).
template <uint32_t kFamily>
int Import(void* vk, int selection, const OSSL_PARAM params[]) {
  auto* k = static_cast<Key*>(vk);
  static const char* const kPrivateNames[] = {OSSL_PKEY_PARAM_PRIV_KEY, OSSL_PKEY_PARAM_RSA_D,
                                              OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_EXPONENT1};
  for (const char* name : kPrivateNames) {
    if (OSSL_PARAM_locate_const(params, name) != nullptr) {
      RaiseError(kReasonRefused,
                 "cordon: private keys cannot be imported into the cordon provider; "
                 "load the key file with a cordon: URI or a cordon-key reference");
      return 0;
    }
  }
  if ((selection & kPublic) == 0 || k == nullptr || k->handle != 0) return 0;
  const OSSL_PARAM* p;
  if (kFamily == CORDON_SIGNER_KEY_RSA) {
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    const OSSL_PARAM* pn = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_N);
    const OSSL_PARAM* pe = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_E);
    int ok = pn != nullptr && pe != nullptr && OSSL_PARAM_get_BN(pn, &n) && OSSL_PARAM_get_BN(pe, &e);
    const size_t nl = ok ? static_cast<size_t>(BN_num_bytes(n)) : 0,
                 el = ok ? static_cast<size_t>(BN_num_bytes(e)) : 0;
    ok = ok && nl + el <= sizeof k->public_key;
    if (ok) {
      BN_bn2bin(n, k->public_key);
      BN_bn2bin(e, k->public_key + nl);
      k->rsa_n_len = nl;
      k->public_len = nl + el;
      k->bits = static_cast<uint32_t>(BN_num_bits(n));
    }
    BN_free(n);
    BN_free(e);
    return ok;
  }
  if (kFamily == CORDON_SIGNER_KEY_EC_P256) {
    const char* group = nullptr;
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME);
    if (p == nullptr || !OSSL_PARAM_get_utf8_string_ptr(p, &group)) return 0;
    if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
      k->type = CORDON_SIGNER_KEY_EC_P256;
      k->bits = 256;
    } else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
      k->type = CORDON_SIGNER_KEY_EC_P384;
      k->bits = 384;
    } else {
      return 0;  // not a curve of ours: it cannot match
    }
  } else {
    k->bits = 253;
  }
  const void* pub = nullptr;
  size_t len = 0;
  p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PUB_KEY);
  if (p == nullptr || !OSSL_PARAM_get_octet_string_ptr(p, &pub, &len) || len == 0 ||
      len > sizeof k->public_key)
    return 0;
  memcpy(k->public_key, pub, len);
  k->public_len = len;
  return 1;
}

const OSSL_PARAM* RsaTypes(int) {
  static const OSSL_PARAM kParams[] = {OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, nullptr, 0),
                                       OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, nullptr, 0), OSSL_PARAM_END};
  return kParams;
}

const OSSL_PARAM* EcTypes(int) {
  static const OSSL_PARAM kParams[] = {OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, nullptr, 0),
                                       OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0),
                                       OSSL_PARAM_END};
  return kParams;
}

const OSSL_PARAM* EdTypes(int) {
  static const OSSL_PARAM kParams[] = {OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0),
                                       OSSL_PARAM_END};
  return kParams;
}

const char* EcOperationName(int operation_id) {
  return operation_id == OSSL_OP_SIGNATURE ? "ECDSA" : nullptr;
}

using Fn = void (*)(void);
template <typename F>
Fn F_(F f) {
  return reinterpret_cast<Fn>(f);
}

#define KEYMGMT_COMMON(family, gettable, types)                                                      \
  {OSSL_FUNC_KEYMGMT_NEW, F_(New<family>)}, {OSSL_FUNC_KEYMGMT_FREE, F_(Free)},                      \
      {OSSL_FUNC_KEYMGMT_LOAD, F_(Load<family>)}, {OSSL_FUNC_KEYMGMT_HAS, F_(Has)},                  \
      {OSSL_FUNC_KEYMGMT_MATCH, F_(Match)}, {OSSL_FUNC_KEYMGMT_GET_PARAMS, F_(GetParams)},           \
      {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, F_(gettable)}, {OSSL_FUNC_KEYMGMT_EXPORT, F_(Export)},     \
      {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, F_(types)}, {OSSL_FUNC_KEYMGMT_IMPORT, F_(Import<family>)}, { \
    OSSL_FUNC_KEYMGMT_IMPORT_TYPES, F_(types)                                                        \
  }

const OSSL_DISPATCH kRsaKeymgmt[] = {KEYMGMT_COMMON(CORDON_SIGNER_KEY_RSA, RsaGettable, RsaTypes),
                                     {0, nullptr}};
const OSSL_DISPATCH kEcKeymgmt[] = {KEYMGMT_COMMON(CORDON_SIGNER_KEY_EC_P256, EcGettable, EcTypes),
                                    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, F_(EcOperationName)},
                                    {0, nullptr}};
const OSSL_DISPATCH kEdKeymgmt[] = {KEYMGMT_COMMON(CORDON_SIGNER_KEY_ED25519, EdGettable, EdTypes),
                                    {0, nullptr}};

}  // namespace

const OSSL_ALGORITHM kKeymgmt[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", "provider=cordon", kRsaKeymgmt, "cordon RSA keys"},
    {"EC:id-ecPublicKey:1.2.840.10045.2.1", "provider=cordon", kEcKeymgmt, "cordon EC keys (P-256, P-384)"},
    {"ED25519:1.3.101.112", "provider=cordon", kEdKeymgmt, "cordon Ed25519 keys"},
    {nullptr, nullptr, nullptr, nullptr},
};

}  // namespace cordon_provider
