// The cordon OpenSSL provider's untrusted glue: what its parts share.
//
// Nothing here holds private key material: a key is a handle the signer
// (openssl-provider/signer/, inside the "openssl-keys" domain) checks, plus
// its public half. The glue's own state (the entries' handles, the
// lockdown policy, the error library) is untrusted memory by design; the
// signer never reads it.
#ifndef CORDON_OPENSSL_PROVIDER_PROVIDER_H_
#define CORDON_OPENSSL_PROVIDER_PROVIDER_H_

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "openssl-provider/signer/signer_abi.h"

namespace cordon_provider {

struct ProvCtx {
  const OSSL_CORE_HANDLE* handle;
  OSSL_LIB_CTX* libctx;  // the application's: digests come from it
};

// Reasons of the provider's error library (ERR_raise_data adds the details).
enum Reason {
  kReasonInit = 1,         // the runtime or the domain could not be set up
  kReasonLoad = 2,         // a key could not be loaded
  kReasonSign = 3,         // a signature failed
  kReasonLockdown = 4,     // the lockdown failed or refused the operation
  kReasonUnsupported = 5,  // an operation or parameter the provider does not do
  kReasonReference = 6,    // a bad key reference file
  kReasonUri = 7,          // a bad cordon: URI
  kReasonRefused = 8,      // refused by design (decryption, private import/export)
  kReasonPassphrase = 9,   // no or a wrong passphrase
};

// Raises an OpenSSL error of the provider's library; fmt is printf-style.
void RaiseError(int reason, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// A key of the provider: the signer's handle and the public half.
struct Key {
  ProvCtx* prov;
  uint64_t handle;  // 0: public only (imported, for comparisons)
  uint32_t type;    // a cordon_signer_key_type
  uint32_t bits;
  size_t public_len;
  size_t rsa_n_len;
  uint8_t public_key[CORDON_SIGNER_MAX_PUBLIC];
};

Key* NewKey(ProvCtx* prov, uint32_t type);
void FreeKey(Key* k);  // frees the signer's key too
// The OpenSSL names of a key type: the keymgmt's ("RSA", "EC", "ED25519").
const char* TypeName(uint32_t type);
// The largest signature of the key.
size_t MaxSignature(const Key* k);

// Loads the key file at path through the signer: first without a
// passphrase, then, if the file is encrypted, with one from pw_cb (which
// may be NULL). what names the source in errors (the URI or the reference
// file). Raises an error and returns NULL on failure.
Key* LoadKey(ProvCtx* prov, const char* path, OSSL_PASSPHRASE_CALLBACK* pw_cb, void* pw_arg,
             const char* what);

// Signs through the signer, after the lockdown policy's first-use
// lockdown. 1 on success.
int Sign(const Key* k, uint32_t scheme, uint32_t digest, uint32_t mgf1_digest, int32_t salt_len,
         const uint8_t* tbs, size_t tbs_len, uint8_t* sig, size_t* sig_len, size_t sig_cap);

// How a store or decoder hands a loaded key to keymgmt's load(): the
// object reference is this struct, whose size differs from a pointer's so
// that no other provider's load() takes it for one of its own objects.
struct KeyReference {
  uint64_t magic;
  Key* key;  // taken (set to NULL) by load()
  uint64_t type;
};
constexpr uint64_t kReferenceMagic = 0x636f72646f6e5246ull;  // "cordonRF"

// Hands *key to object_cb as a PKEY reference; frees it unless load() took it.
int PassKey(Key* key, OSSL_CALLBACK* object_cb, void* object_arg);

// Reads a core BIO to its end (at most 1 MiB) with the core's upcall.
bool ReadAll(OSSL_CORE_BIO* in, std::string* out);

// Dispatch tables of the operations.
extern const OSSL_ALGORITHM kKeymgmt[];
extern const OSSL_ALGORITHM kSignature[];
extern const OSSL_ALGORITHM kAsymCipher[];
extern const OSSL_ALGORITHM kStore[];
extern const OSSL_ALGORITHM kDecoder[];

}  // namespace cordon_provider

#endif  // CORDON_OPENSSL_PROVIDER_PROVIDER_H_
