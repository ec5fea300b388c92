// Decoders for cordon-key reference files (brief: "Reference files"), for
// programs that take only a key file name (nginx's ssl_certificate_key,
// s_server -key):
//
//   -----BEGIN CORDON KEY REFERENCE-----      the PEM decoder (named "DER",
//   base64 of the reference text              input pem) checks the file
//   -----END CORDON KEY REFERENCE-----        and hands it on, typed by its
//                                             `type` line;
//
// the reference decoders (named for the key types, input der, structure
// CordonKeyReference) have the signer load the key file it names, check
// that its public key is still the one the reference was written for, and
// hand the key on by reference to keymgmt's load(). The PEM decoder comes
// first so that both routes reach the second: the file store (which decodes
// a PEM's data again as DER of the given type) and a plain decoder chain
// (PEM_read_bio_PrivateKey). The format is cordon-key's
// (tools/cordon-key/reference.h), parsed by its one parser.
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstring>
#include <new>
#include <string>

#include "openssl-provider/provider/provider.h"
#include "tools/cordon-key/reference.h"

namespace cordon_provider {
namespace {

constexpr char kStructure[] = "CordonKeyReference";

struct TypeWord {
  const char* word;
  uint32_t type;
};
constexpr TypeWord kTypes[] = {{"rsa", CORDON_SIGNER_KEY_RSA},
                               {"ec-p256", CORDON_SIGNER_KEY_EC_P256},
                               {"ec-p384", CORDON_SIGNER_KEY_EC_P384},
                               {"ed25519", CORDON_SIGNER_KEY_ED25519}};

uint32_t TypeOf(const std::string& word) {
  for (const TypeWord& t : kTypes) {
    if (word == t.word) return t.type;
  }
  return 0;
}

// Whether the input is a reference file at all (else it is another
// decoder's, and this one returns empty-handed).
bool LooksLikeReference(const std::string& in) {
  return in.compare(0, sizeof cordon::keyref::kBegin - 1, cordon::keyref::kBegin) == 0;
}

struct DecCtx {
  ProvCtx* prov;
  uint32_t family;  // the key type this decoder makes (EC: either curve)
};

template <uint32_t kFamily>
void* NewCtx(void* provctx) {
  return new (std::nothrow) DecCtx{static_cast<ProvCtx*>(provctx), kFamily};
}

void FreeCtx(void* vc) {
  delete static_cast<DecCtx*>(vc);
}

int DoesSelection(void*, int selection) {
  return selection == 0 || (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0;
}

// The PEM decoder: the reference, checked and typed.
int DecodePem(void* vc, OSSL_CORE_BIO* cin, int, OSSL_CALLBACK* data_cb, void* data_arg,
              OSSL_PASSPHRASE_CALLBACK*, void*) {
  (void)vc;
  std::string in;
  if (!ReadAll(cin, &in) || !LooksLikeReference(in)) return 1;  // nothing of ours: not an error
  cordon::keyref::KeyReference ref;
  std::string why;
  if (!cordon::keyref::Parse(in, &ref, &why)) {
    RaiseError(kReasonReference, "cordon: corrupt key reference: %s (rewrite it with cordon-key ref)",
               why.c_str());
    return 0;
  }
  int object_type = OSSL_OBJECT_PKEY;
  OSSL_PARAM params[] = {
      OSSL_PARAM_int(OSSL_OBJECT_PARAM_TYPE, &object_type),
      OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                       const_cast<char*>(TypeName(TypeOf(ref.type))), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE, const_cast<char*>(kStructure), 0),
      OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_DATA, in.data(), in.size()),
      OSSL_PARAM_END,
  };
  return data_cb(params, data_arg);
}

bool SameFamily(uint32_t t, uint32_t f) {
  const bool ec_t = t == CORDON_SIGNER_KEY_EC_P256 || t == CORDON_SIGNER_KEY_EC_P384;
  const bool ec_f = f == CORDON_SIGNER_KEY_EC_P256 || f == CORDON_SIGNER_KEY_EC_P384;
  return ec_f ? ec_t : t == f;
}

// The reference decoders: the key, loaded by the signer and checked.
int DecodeReference(void* vc, OSSL_CORE_BIO* cin, int, OSSL_CALLBACK* data_cb, void* data_arg,
                    OSSL_PASSPHRASE_CALLBACK* pw_cb, void* pw_arg) {
  auto* c = static_cast<DecCtx*>(vc);
  std::string in;
  if (!ReadAll(cin, &in) || !LooksLikeReference(in)) return 1;  // not ours
  cordon::keyref::KeyReference ref;
  std::string why;
  if (!cordon::keyref::Parse(in, &ref, &why)) {
    RaiseError(kReasonReference, "cordon: corrupt key reference: %s (rewrite it with cordon-key ref)",
               why.c_str());
    return 0;
  }
  const uint32_t type = TypeOf(ref.type);
  if (!SameFamily(type, c->family)) return 1;  // another key type's decoder takes it
  const std::string what = "the key file " + ref.path + " of a cordon-key reference";
  Key* k = LoadKey(c->prov, ref.path.c_str(), pw_cb, pw_arg, what.c_str());
  if (k == nullptr) return 0;
  const std::string pub(reinterpret_cast<const char*>(k->public_key), k->public_len);
  const bool same = k->type == type && cordon::keyref::Sha256Hex(pub) == ref.public_sha256;
  if (!same) {
    FreeKey(k);
    const size_t slash = ref.path.rfind('/');
    RaiseError(kReasonReference,
               "cordon: %s changed since cordon-key wrote its reference (%s key, public key %s)",
               ref.path.c_str() + (slash == std::string::npos ? 0 : slash + 1), TypeName(type),
               "no longer the one recorded; run cordon-key ref again");
    return 0;
  }
  return PassKey(k, data_cb, data_arg);
}

using Fn = void (*)(void);
template <typename F>
Fn F_(F f) {
  return reinterpret_cast<Fn>(f);
}

const OSSL_DISPATCH kPemDecoder[] = {
    {OSSL_FUNC_DECODER_NEWCTX, F_(NewCtx<0>)},
    {OSSL_FUNC_DECODER_FREECTX, F_(FreeCtx)},
    {OSSL_FUNC_DECODER_DOES_SELECTION, F_(DoesSelection)},
    {OSSL_FUNC_DECODER_DECODE, F_(DecodePem)},
    {0, nullptr},
};

#define REFERENCE_DECODER(name, family)                      \
  const OSSL_DISPATCH name[] = {                             \
      {OSSL_FUNC_DECODER_NEWCTX, F_(NewCtx<family>)},        \
      {OSSL_FUNC_DECODER_FREECTX, F_(FreeCtx)},              \
      {OSSL_FUNC_DECODER_DOES_SELECTION, F_(DoesSelection)}, \
      {OSSL_FUNC_DECODER_DECODE, F_(DecodeReference)},       \
      {0, nullptr},                                          \
  }
REFERENCE_DECODER(kRsaDecoder, CORDON_SIGNER_KEY_RSA);
REFERENCE_DECODER(kEcDecoder, CORDON_SIGNER_KEY_EC_P256);
REFERENCE_DECODER(kEdDecoder, CORDON_SIGNER_KEY_ED25519);

}  // namespace

#define REF_PROPS "provider=cordon,input=der,structure=CordonKeyReference"
const OSSL_ALGORITHM kDecoder[] = {
    {"DER", "provider=cordon,input=pem", kPemDecoder, "cordon key reference, PEM to its text"},
    {"RSA:rsaEncryption:1.2.840.113549.1.1.1", REF_PROPS, kRsaDecoder, "cordon RSA key reference"},
    {"EC:id-ecPublicKey:1.2.840.10045.2.1", REF_PROPS, kEcDecoder, "cordon EC key reference"},
    {"ED25519:1.3.101.112", REF_PROPS, kEdDecoder, "cordon Ed25519 key reference"},
    {nullptr, nullptr, nullptr, nullptr},
};

}  // namespace cordon_provider
