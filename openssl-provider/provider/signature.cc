// Signatures with the provider's keys: RSA (PKCS#1 v1.5 and PSS), ECDSA,
// Ed25519. The message is hashed here, in untrusted memory, with the
// application's digests (the default provider's); only the digest (for
// Ed25519 the message) goes to the signer. Verification is not offered:
// peers' signatures are checked with the peers' keys, in the default
// provider. The RSA asymmetric cipher refuses decryption (TLS 1.2's RSA
// key exchange) with an error that says what to use instead.
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstring>
#include <new>
#include <vector>

#include "openssl-provider/provider/provider.h"

namespace cordon_provider {
namespace {

enum class Alg { kRsa, kEcdsa, kEd25519 };

struct SigCtx {
  ProvCtx* prov;
  Alg alg;
  const Key* key;
  int pad;       // RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING
  EVP_MD* md;    // NULL: none chosen (ECDSA/RSA raw sign takes the length)
  EVP_MD* mgf1;  // NULL: the digest's
  int saltlen;   // OpenSSL's: >= 0, or RSA_PSS_SALTLEN_DIGEST/_MAX/_AUTO
  EVP_MD_CTX* mdctx;
  std::vector<uint8_t> msg;  // Ed25519's message, for update/final
};

uint32_t DigestId(const EVP_MD* md) {
  if (md == nullptr) return CORDON_SIGNER_DIGEST_NONE;
  if (EVP_MD_is_a(md, "SHA1")) return CORDON_SIGNER_DIGEST_SHA1;
  if (EVP_MD_is_a(md, "SHA2-224")) return CORDON_SIGNER_DIGEST_SHA224;
  if (EVP_MD_is_a(md, "SHA2-256")) return CORDON_SIGNER_DIGEST_SHA256;
  if (EVP_MD_is_a(md, "SHA2-384")) return CORDON_SIGNER_DIGEST_SHA384;
  if (EVP_MD_is_a(md, "SHA2-512")) return CORDON_SIGNER_DIGEST_SHA512;
  return CORDON_SIGNER_DIGEST_NONE;
}

uint32_t DigestByLength(size_t n) {
  switch (n) {
    case 20:
      return CORDON_SIGNER_DIGEST_SHA1;
    case 28:
      return CORDON_SIGNER_DIGEST_SHA224;
    case 32:
      return CORDON_SIGNER_DIGEST_SHA256;
    case 48:
      return CORDON_SIGNER_DIGEST_SHA384;
    case 64:
      return CORDON_SIGNER_DIGEST_SHA512;
    default:
      return CORDON_SIGNER_DIGEST_NONE;
  }
}

bool SetDigest(SigCtx* c, const char* name, const char* props, EVP_MD** slot) {
  EVP_MD* md = EVP_MD_fetch(c->prov->libctx, name, props);
  if (md == nullptr || DigestId(md) == CORDON_SIGNER_DIGEST_NONE) {
    EVP_MD_free(md);
    RaiseError(kReasonUnsupported,
               "cordon: digest %s is not supported (SHA-1, SHA-224, SHA-256, SHA-384, SHA-512)", name);
    return false;
  }
  EVP_MD_free(*slot);
  *slot = md;
  return true;
}

template <Alg kAlg>
void* NewCtx(void* provctx, const char*) {
  auto* c = new (std::nothrow) SigCtx{};
  if (c == nullptr) return nullptr;
  c->prov = static_cast<ProvCtx*>(provctx);
  c->alg = kAlg;
  c->pad = RSA_PKCS1_PADDING;
  c->saltlen = RSA_PSS_SALTLEN_AUTO;
  return c;
}

void FreeCtx(void* vc) {
  auto* c = static_cast<SigCtx*>(vc);
  if (c == nullptr) return;
  EVP_MD_free(c->md);
  EVP_MD_free(c->mgf1);
  EVP_MD_CTX_free(c->mdctx);
  delete c;
}

void* DupCtx(void* vc) {
  const auto* c = static_cast<const SigCtx*>(vc);
  auto* d = new (std::nothrow) SigCtx(*c);
  if (d == nullptr) return nullptr;
  d->mdctx = nullptr;
  if ((d->md != nullptr && !EVP_MD_up_ref(d->md)) || (d->mgf1 != nullptr && !EVP_MD_up_ref(d->mgf1))) {
    delete d;
    return nullptr;
  }
  if (c->mdctx != nullptr) {
    d->mdctx = EVP_MD_CTX_new();
    if (d->mdctx == nullptr || !EVP_MD_CTX_copy_ex(d->mdctx, c->mdctx)) {
      FreeCtx(d);
      return nullptr;
    }
  }
  return d;
}

bool KeyFits(const SigCtx* c, const Key* k) {
  switch (c->alg) {
    case Alg::kRsa:
      return k->type == CORDON_SIGNER_KEY_RSA;
    case Alg::kEcdsa:
      return k->type == CORDON_SIGNER_KEY_EC_P256 || k->type == CORDON_SIGNER_KEY_EC_P384;
    case Alg::kEd25519:
      return k->type == CORDON_SIGNER_KEY_ED25519;
  }
  return false;
}

int SetCtxParams(void* vc, const OSSL_PARAM params[]);

int SignInit(void* vc, void* vk, const OSSL_PARAM params[]) {
  auto* c = static_cast<SigCtx*>(vc);
  auto* k = static_cast<Key*>(vk);
  if (k != nullptr) {
    if (!KeyFits(c, k)) {
      RaiseError(kReasonUnsupported, "cordon: this signature does not fit a %s key", TypeName(k->type));
      return 0;
    }
    c->key = k;
  }
  if (c->key == nullptr) return 0;
  return SetCtxParams(c, params);
}

// The PSS salt length for the signer's request.
bool SaltFor(const SigCtx* c, int32_t* out) {
  if (c->saltlen == RSA_PSS_SALTLEN_DIGEST)
    *out = -1;
  else if (c->saltlen == RSA_PSS_SALTLEN_MAX || c->saltlen == RSA_PSS_SALTLEN_AUTO)
    *out = -2;
  else if (c->saltlen >= 0)
    *out = c->saltlen;
  else
    return false;
  return true;
}

// Signs a digest (or Ed25519's message).
int SignData(SigCtx* c, unsigned char* sig, size_t* siglen, size_t sigsize, const unsigned char* tbs,
             size_t tbslen) {
  const Key* k = c->key;
  if (k == nullptr) return 0;
  const size_t max = MaxSignature(k);
  if (sig == nullptr) {
    *siglen = max;
    return 1;
  }
  uint32_t scheme = 0, digest = DigestId(c->md), mgf1 = CORDON_SIGNER_DIGEST_NONE;
  int32_t salt = 0;
  switch (c->alg) {
    case Alg::kEd25519:
      scheme = CORDON_SIGNER_ED25519;
      digest = CORDON_SIGNER_DIGEST_NONE;
      break;
    case Alg::kEcdsa:
      scheme = CORDON_SIGNER_ECDSA;
      if (digest == CORDON_SIGNER_DIGEST_NONE) digest = DigestByLength(tbslen);
      break;
    case Alg::kRsa:
      if (digest == CORDON_SIGNER_DIGEST_NONE) {
        RaiseError(kReasonUnsupported,
                   "cordon: RSA signing needs a digest (e.g. -pkeyopt digest:sha256): the signer adds the "
                   "DigestInfo itself and does no raw RSA");
        return 0;
      }
      if (c->pad == RSA_PKCS1_PSS_PADDING) {
        scheme = CORDON_SIGNER_RSA_PSS;
        mgf1 = c->mgf1 != nullptr ? DigestId(c->mgf1) : digest;
        if (!SaltFor(c, &salt)) {
          RaiseError(kReasonUnsupported, "cordon: PSS salt length %d is not supported", c->saltlen);
          return 0;
        }
      } else {
        scheme = CORDON_SIGNER_RSA_PKCS1;
      }
      break;
  }
  if (scheme != CORDON_SIGNER_ED25519 &&
      (digest == CORDON_SIGNER_DIGEST_NONE ||
       (c->md != nullptr && static_cast<size_t>(EVP_MD_get_size(c->md)) != tbslen))) {
    RaiseError(kReasonSign, "cordon: %zu bytes is not the length of the digest to sign", tbslen);
    return 0;
  }
  return Sign(k, scheme, digest, mgf1, salt, tbs, tbslen, sig, siglen, sigsize);
}

int SignOneShot(void* vc, unsigned char* sig, size_t* siglen, size_t sigsize, const unsigned char* tbs,
                size_t tbslen) {
  return SignData(static_cast<SigCtx*>(vc), sig, siglen, sigsize, tbs, tbslen);
}

int DigestSignInit(void* vc, const char* mdname, void* vk, const OSSL_PARAM params[]) {
  auto* c = static_cast<SigCtx*>(vc);
  if (!SignInit(vc, vk, nullptr)) return 0;
  if (c->alg == Alg::kEd25519) {
    if (mdname != nullptr && mdname[0] != '\0') {
      RaiseError(kReasonUnsupported, "cordon: Ed25519 signs the message itself: no digest (%s)", mdname);
      return 0;
    }
    c->msg.clear();
  } else {
    if (!SetDigest(c, mdname != nullptr && mdname[0] != '\0' ? mdname : "SHA256", nullptr, &c->md)) return 0;
    if (c->mdctx == nullptr && (c->mdctx = EVP_MD_CTX_new()) == nullptr) return 0;
    if (!EVP_DigestInit_ex2(c->mdctx, c->md, nullptr)) return 0;
  }
  return SetCtxParams(c, params);
}

int DigestSignUpdate(void* vc, const unsigned char* data, size_t len) {
  auto* c = static_cast<SigCtx*>(vc);
  if (c->alg == Alg::kEd25519) {
    c->msg.insert(c->msg.end(), data, data + len);
    return 1;
  }
  return c->mdctx != nullptr && EVP_DigestUpdate(c->mdctx, data, len);
}

int DigestSignFinal(void* vc, unsigned char* sig, size_t* siglen, size_t sigsize) {
  auto* c = static_cast<SigCtx*>(vc);
  if (sig == nullptr) return SignData(c, nullptr, siglen, sigsize, nullptr, 0);
  if (c->alg == Alg::kEd25519) return SignData(c, sig, siglen, sigsize, c->msg.data(), c->msg.size());
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  if (c->mdctx == nullptr || !EVP_DigestFinal_ex(c->mdctx, d, &dl)) return 0;
  return SignData(c, sig, siglen, sigsize, d, dl);
}

int DigestSign(void* vc, unsigned char* sig, size_t* siglen, size_t sigsize, const unsigned char* tbs,
               size_t tbslen) {
  auto* c = static_cast<SigCtx*>(vc);
  if (sig == nullptr || c->alg == Alg::kEd25519) return SignData(c, sig, siglen, sigsize, tbs, tbslen);
  return DigestSignUpdate(vc, tbs, tbslen) && DigestSignFinal(vc, sig, siglen, sigsize);
}

// ------------------------------------------------------------- parameters --
// The AlgorithmIdentifier of the signature, DER (X509_sign, openssl req).
int AlgorithmId(const SigCtx* c, unsigned char** der) {
  X509_ALGOR* alg = X509_ALGOR_new();
  if (alg == nullptr) return 0;
  int len = 0;
  if (c->alg == Alg::kEd25519) {
    X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ED25519), V_ASN1_UNDEF, nullptr);
  } else if (c->md == nullptr) {
    X509_ALGOR_free(alg);
    return 0;
  } else if (c->alg == Alg::kRsa && c->pad == RSA_PKCS1_PSS_PADDING) {
    // RSASSA-PSS-params with the digest, MGF1 digest and salt length.
    RSA_PSS_PARAMS* pss = RSA_PSS_PARAMS_new();
    const EVP_MD* mgf1 = c->mgf1 != nullptr ? c->mgf1 : c->md;
    X509_ALGOR* mgf1_md = X509_ALGOR_new();
    int32_t salt = 0;
    const int hlen = EVP_MD_get_size(c->md);
    const int em = static_cast<int>((c->key->bits - 1 + 7) / 8);
    bool ok = pss != nullptr && mgf1_md != nullptr && SaltFor(c, &salt);
    if (ok) salt = salt == -1 ? hlen : salt == -2 ? em - hlen - 2 : salt;
    ok = ok && salt >= 0;
    if (ok && !EVP_MD_is_a(c->md, "SHA1")) {
      pss->hashAlgorithm = X509_ALGOR_new();
      ok = pss->hashAlgorithm != nullptr;
      if (ok) X509_ALGOR_set_md(pss->hashAlgorithm, c->md);
    }
    if (ok && !EVP_MD_is_a(mgf1, "SHA1")) {
      X509_ALGOR_set_md(mgf1_md, mgf1);
      pss->maskGenAlgorithm = X509_ALGOR_new();
      ASN1_STRING* seq = ASN1_item_pack(mgf1_md, ASN1_ITEM_rptr(X509_ALGOR), nullptr);
      ok = pss->maskGenAlgorithm != nullptr && seq != nullptr;
      if (ok)
        X509_ALGOR_set0(pss->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE, seq);
      else
        ASN1_STRING_free(seq);
    }
    if (ok && salt != 20) {
      pss->saltLength = ASN1_INTEGER_new();
      ok = pss->saltLength != nullptr && ASN1_INTEGER_set(pss->saltLength, salt);
    }
    ASN1_STRING* params = ok ? ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), nullptr) : nullptr;
    RSA_PSS_PARAMS_free(pss);
    X509_ALGOR_free(mgf1_md);
    if (params == nullptr) {
      X509_ALGOR_free(alg);
      return 0;
    }
    X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE, params);
  } else {
    int sig_nid = 0;
    const int pkey_nid = c->alg == Alg::kRsa ? NID_rsaEncryption : NID_X9_62_id_ecPublicKey;
    if (!OBJ_find_sigid_by_algs(&sig_nid, EVP_MD_get_type(c->md), pkey_nid)) {
      X509_ALGOR_free(alg);
      return 0;
    }
    X509_ALGOR_set0(alg, OBJ_nid2obj(sig_nid), c->alg == Alg::kRsa ? V_ASN1_NULL : V_ASN1_UNDEF, nullptr);
  }
  len = i2d_X509_ALGOR(alg, der);
  X509_ALGOR_free(alg);
  return len;
}

int GetCtxParams(void* vc, OSSL_PARAM params[]) {
  const auto* c = static_cast<const SigCtx*>(vc);
  OSSL_PARAM* p;
  if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID)) != nullptr) {
    unsigned char* der = nullptr;
    const int len = AlgorithmId(c, &der);
    const int ok = len > 0 && OSSL_PARAM_set_octet_string(p, der, static_cast<size_t>(len));
    OPENSSL_free(der);
    if (!ok) return 0;
  }
  if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) != nullptr &&
      !OSSL_PARAM_set_utf8_string(p, c->md != nullptr ? EVP_MD_get0_name(c->md) : ""))
    return 0;
  if (c->alg != Alg::kRsa) return 1;
  if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != nullptr) {
    const char* name =
        c->pad == RSA_PKCS1_PSS_PADDING ? OSSL_PKEY_RSA_PAD_MODE_PSS : OSSL_PKEY_RSA_PAD_MODE_PKCSV15;
    if (p->data_type == OSSL_PARAM_INTEGER ? !OSSL_PARAM_set_int(p, c->pad)
                                           : !OSSL_PARAM_set_utf8_string(p, name))
      return 0;
  }
  if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != nullptr) {
    const char* name = c->saltlen == RSA_PSS_SALTLEN_DIGEST ? OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST
                       : c->saltlen == RSA_PSS_SALTLEN_MAX  ? OSSL_PKEY_RSA_PSS_SALT_LEN_MAX
                       : c->saltlen == RSA_PSS_SALTLEN_AUTO ? OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO
                                                            : nullptr;
    if (p->data_type == OSSL_PARAM_INTEGER || name == nullptr ? !OSSL_PARAM_set_int(p, c->saltlen)
                                                              : !OSSL_PARAM_set_utf8_string(p, name))
      return 0;
  }
  if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != nullptr) {
    const EVP_MD* m = c->mgf1 != nullptr ? c->mgf1 : c->md;
    if (!OSSL_PARAM_set_utf8_string(p, m != nullptr ? EVP_MD_get0_name(m) : "")) return 0;
  }
  return 1;
}

int SetCtxParams(void* vc, const OSSL_PARAM params[]) {
  auto* c = static_cast<SigCtx*>(vc);
  if (params == nullptr) return 1;
  const OSSL_PARAM* p;
  const char* props = nullptr;
  if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PROPERTIES)) != nullptr &&
      !OSSL_PARAM_get_utf8_string_ptr(p, &props))
    return 0;
  if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST)) != nullptr) {
    const char* name = nullptr;
    if (!OSSL_PARAM_get_utf8_string_ptr(p, &name)) return 0;
    if (c->alg == Alg::kEd25519) {
      if (name[0] != '\0') {
        RaiseError(kReasonUnsupported, "cordon: Ed25519 signs the message itself: no digest (%s)", name);
        return 0;
      }
    } else if (!SetDigest(c, name, props, &c->md)) {
      return 0;
    }
  }
  if (c->alg != Alg::kRsa) return 1;
  if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != nullptr) {
    int mode = 0;
    if (p->data_type == OSSL_PARAM_INTEGER) {
      if (!OSSL_PARAM_get_int(p, &mode)) return 0;
    } else {
      const char* s = nullptr;
      if (!OSSL_PARAM_get_utf8_string_ptr(p, &s)) return 0;
      mode = strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0 ? RSA_PKCS1_PADDING
             : strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0   ? RSA_PKCS1_PSS_PADDING
                                                            : -1;
    }
    if (mode != RSA_PKCS1_PADDING && mode != RSA_PKCS1_PSS_PADDING) {
      RaiseError(kReasonUnsupported, "cordon: RSA signatures are PKCS#1 v1.5 or PSS only");
      return 0;
    }
    c->pad = mode;
  }
  if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != nullptr) {
    int len = 0;
    if (p->data_type == OSSL_PARAM_INTEGER) {
      if (!OSSL_PARAM_get_int(p, &len)) return 0;
    } else {
      const char* s = nullptr;
      if (!OSSL_PARAM_get_utf8_string_ptr(p, &s)) return 0;
      if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0)
        len = RSA_PSS_SALTLEN_DIGEST;
      else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0)
        len = RSA_PSS_SALTLEN_MAX;
      else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0)
        len = RSA_PSS_SALTLEN_AUTO;
      else {
        char* end = nullptr;
        const long v = strtol(s, &end, 10);
        if (end == s || *end != '\0' || v < 0 || v > 1024) {
          RaiseError(kReasonUnsupported, "cordon: bad PSS salt length %s", s);
          return 0;
        }
        len = static_cast<int>(v);
      }
    }
    if (len < RSA_PSS_SALTLEN_MAX) {
      RaiseError(kReasonUnsupported, "cordon: PSS salt length %d is not supported", len);
      return 0;
    }
    c->saltlen = len;
  }
  if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != nullptr) {
    const char* name = nullptr;
    const char* mprops = nullptr;
    const OSSL_PARAM* pp = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES);
    if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) ||
        (pp != nullptr && !OSSL_PARAM_get_utf8_string_ptr(pp, &mprops)))
      return 0;
    if (!SetDigest(c, name, mprops, &c->mgf1)) return 0;
  }
  return 1;
}

const OSSL_PARAM* GettableCtxParams(void*, void*) {
  static const OSSL_PARAM kParams[] = {
      OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, nullptr, 0),
      OSSL_PARAM_END,
  };
  return kParams;
}

const OSSL_PARAM* SettableCtxParams(void*, void*) {
  static const OSSL_PARAM kParams[] = {
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, nullptr, 0),
      OSSL_PARAM_END,
  };
  return kParams;
}

using Fn = void (*)(void);
template <typename F>
Fn F_(F f) {
  return reinterpret_cast<Fn>(f);
}

#define SIGNATURE_TABLE(name, alg)                                      \
  const OSSL_DISPATCH name[] = {                                        \
      {OSSL_FUNC_SIGNATURE_NEWCTX, F_(NewCtx<alg>)},                    \
      {OSSL_FUNC_SIGNATURE_FREECTX, F_(FreeCtx)},                       \
      {OSSL_FUNC_SIGNATURE_DUPCTX, F_(DupCtx)},                         \
      {OSSL_FUNC_SIGNATURE_SIGN_INIT, F_(SignInit)},                    \
      {OSSL_FUNC_SIGNATURE_SIGN, F_(SignOneShot)},                      \
      {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, F_(DigestSignInit)},       \
      {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, F_(DigestSignUpdate)},   \
      {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, F_(DigestSignFinal)},     \
      {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, F_(DigestSign)},                \
      {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, F_(GetCtxParams)},           \
      {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, F_(GettableCtxParams)}, \
      {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, F_(SetCtxParams)},           \
      {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, F_(SettableCtxParams)}, \
      {0, nullptr},                                                     \
  }

SIGNATURE_TABLE(kRsaSignature, Alg::kRsa);
SIGNATURE_TABLE(kEcdsaSignature, Alg::kEcdsa);
SIGNATURE_TABLE(kEd25519Signature, Alg::kEd25519);

// ------------------------------------------------------------ asym cipher --
void* CipherNewCtx(void* provctx) {
  return provctx;  // nothing to keep: every operation is refused
}
void CipherFreeCtx(void*) {}
int CipherRefuse(void*, void*, const OSSL_PARAM[]) {
  RaiseError(kReasonRefused,
             "cordon: RSA decryption and encryption with a cordon key are refused: the signer only signs "
             "(TLS 1.2's RSA key exchange needs decryption; use ECDHE cipher suites or TLS 1.3)");
  return 0;
}
int CipherNever(void*, unsigned char*, size_t*, size_t, const unsigned char*, size_t) {
  return 0;  // never reached: the inits refuse
}

const OSSL_DISPATCH kRsaCipher[] = {
    {OSSL_FUNC_ASYM_CIPHER_NEWCTX, F_(CipherNewCtx)},
    {OSSL_FUNC_ASYM_CIPHER_FREECTX, F_(CipherFreeCtx)},
    {OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT, F_(CipherRefuse)},
    {OSSL_FUNC_ASYM_CIPHER_ENCRYPT, F_(CipherNever)},
    {OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, F_(CipherRefuse)},
    {OSSL_FUNC_ASYM_CIPHER_DECRYPT, F_(CipherNever)},
    {0, nullptr},
};

}  // namespace

const OSSL_ALGORITHM kSignature[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", "provider=cordon", kRsaSignature, "cordon RSA signatures"},
    {"ECDSA", "provider=cordon", kEcdsaSignature, "cordon ECDSA"},
    {"ED25519:1.3.101.112", "provider=cordon", kEd25519Signature, "cordon Ed25519"},
    {nullptr, nullptr, nullptr, nullptr},
};

const OSSL_ALGORITHM kAsymCipher[] = {
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", "provider=cordon", kRsaCipher,
     "refused: cordon keys only sign"},
    {nullptr, nullptr, nullptr, nullptr},
};

}  // namespace cordon_provider
