// Decoders for cordon-key reference files (brief: "Reference files"), for
// programs that take only a key file name (nginx's ssl_certificate_key,
// s_server -key):
//
//   -----BEGIN CORDON KEY REFERENCE-----      the PEM decoder (named "DER",
//   base64 of the reference text              input pem) gives the text,
//   -----END CORDON KEY REFERENCE-----        typed by its `type` line;
//
// the reference decoders (named for the key types, input der, structure
// CordonKeyReference) parse the text, have the signer load the key file it
// names, check that its public key is still the one the reference was
// written for, and hand the key on by reference to keymgmt's load(). The
// PEM decoder comes first so that both routes reach the second: the file
// store (which decodes a PEM's data again as DER of the given type) and a
// plain decoder chain (PEM_read_bio_PrivateKey).
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include <cstring>
#include <new>
#include <string>

#include "openssl-provider/provider/provider.h"

namespace cordon_provider {
namespace {

constexpr char kPemName[] = "CORDON KEY REFERENCE";
constexpr char kStructure[] = "CordonKeyReference";
constexpr char kMagicLine[] = "cordon-key-reference 1\n";

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

// The value of `key value\n` at *pos; advances past it.
bool Field(const std::string& text, size_t* pos, const char* key, std::string* value) {
  const size_t klen = strlen(key);
  if (text.compare(*pos, klen, key) != 0 || text.size() <= *pos + klen || text[*pos + klen] != ' ')
    return false;
  const size_t start = *pos + klen + 1;
  const size_t end = text.find('\n', start);
  if (end == std::string::npos || end == start) return false;
  *value = text.substr(start, end - start);
  *pos = end + 1;
  return true;
}

struct Reference {
  std::string path;
  uint32_t type;
  std::string sha256;
};

bool ParseReference(const std::string& text, Reference* r) {
  if (text.compare(0, sizeof kMagicLine - 1, kMagicLine) != 0) return false;
  size_t pos = sizeof kMagicLine - 1;
  std::string type;
  if (!Field(text, &pos, "path", &r->path) || !Field(text, &pos, "type", &type) ||
      !Field(text, &pos, "public-sha256", &r->sha256) || pos != text.size()) {
    return false;
  }
  r->type = TypeOf(type);
  if (r->path[0] != '/' || r->path.find('\0') != std::string::npos || r->type == 0 || r->sha256.size() != 64)
    return false;
  for (char ch : r->sha256) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  }
  return true;
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

// The PEM decoder: the reference's text, typed.
int DecodePem(void* vc, OSSL_CORE_BIO* cin, int, OSSL_CALLBACK* data_cb, void* data_arg,
              OSSL_PASSPHRASE_CALLBACK*, void*) {
  (void)vc;
  std::string in;
  if (!ReadAll(cin, &in)) return 1;  // nothing of ours
  BIO* mem = BIO_new_mem_buf(in.data(), static_cast<int>(in.size()));
  if (mem == nullptr) return 0;
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  ERR_set_mark();
  const int got = PEM_read_bio(mem, &name, &header, &data, &len);
  ERR_pop_to_mark();
  BIO_free(mem);
  int ok = 1;  // empty-handed is not an error
  if (got && strcmp(name, kPemName) == 0) {
    Reference ref;
    const std::string text(reinterpret_cast<const char*>(data), static_cast<size_t>(len));
    if (!ParseReference(text, &ref)) {
      RaiseError(kReasonReference,
                 "cordon: corrupt key reference: expected the lines cordon-key-reference 1, path /..., type "
                 "rsa|ec-p256|ec-p384|ed25519, public-sha256 <64 hex> (rewrite it with cordon-key ref)");
      ok = 0;
    } else {
      int object_type = OSSL_OBJECT_PKEY;
      OSSL_PARAM params[] = {
          OSSL_PARAM_int(OSSL_OBJECT_PARAM_TYPE, &object_type),
          OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, const_cast<char*>(TypeName(ref.type)), 0),
          OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE, const_cast<char*>(kStructure), 0),
          OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_DATA, data, static_cast<size_t>(len)),
          OSSL_PARAM_END,
      };
      ok = data_cb(params, data_arg);
    }
  }
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  return ok;
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
  std::string text;
  if (!ReadAll(cin, &text) || text.compare(0, sizeof kMagicLine - 1, kMagicLine) != 0) return 1;  // not ours
  Reference ref;
  if (!ParseReference(text, &ref)) {
    RaiseError(kReasonReference, "cordon: corrupt key reference (rewrite it with cordon-key ref)");
    return 0;
  }
  if (!SameFamily(ref.type, c->family)) return 1;  // another key type's decoder takes it
  const std::string what = "the key file " + ref.path + " of a cordon-key reference";
  Key* k = LoadKey(c->prov, ref.path.c_str(), pw_cb, pw_arg, what.c_str());
  if (k == nullptr) return 0;
  unsigned char md[32];
  unsigned int md_len = 0;
  char hex[65];
  bool same = k->type == ref.type &&
              EVP_Digest(k->public_key, k->public_len, md, &md_len, EVP_sha256(), nullptr) &&
              md_len == sizeof md;
  if (same) {
    for (size_t i = 0; i < sizeof md; ++i) {
      static const char kHex[] = "0123456789abcdef";
      hex[2 * i] = kHex[md[i] >> 4];
      hex[2 * i + 1] = kHex[md[i] & 15];
    }
    hex[64] = '\0';
    same = ref.sha256 == hex;
  }
  if (!same) {
    FreeKey(k);
    const size_t slash = ref.path.rfind('/');
    RaiseError(kReasonReference,
               "cordon: %s changed since cordon-key wrote its reference (%s key, public key %s)",
               ref.path.c_str() + (slash == std::string::npos ? 0 : slash + 1), TypeName(ref.type),
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
