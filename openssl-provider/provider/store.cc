// The OSSL_STORE loader of scheme "cordon": `cordon:/absolute/path/key.pem`
// (or cordon:///absolute/path) names a private key file that the signer
// opens and reads inside its domain. It yields one object: the key, by
// reference, which keymgmt's load() takes. The passphrase comes from the
// application's passphrase callback, asked only when the signer says the
// file is encrypted.
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/store.h>

#include <cstring>
#include <new>
#include <string>

#include "openssl-provider/provider/provider.h"

namespace cordon_provider {
namespace {

struct StoreCtx {
  ProvCtx* prov;
  std::string uri;
  std::string path;
  int expect;  // an OSSL_STORE_INFO_* or 0
  bool done;
};

void* Open(void* provctx, const char* uri) {
  const char* rest = nullptr;
  if (uri != nullptr && strncasecmp(uri, "cordon:", 7) == 0) rest = uri + 7;
  if (rest != nullptr && strncmp(rest, "//", 2) == 0) rest += 2;  // an empty authority
  if (rest == nullptr || rest[0] != '/') {
    RaiseError(kReasonUri,
               "cordon: %s: a cordon URI names a key file by its absolute path: cordon:/path/to/key.pem",
               uri != nullptr ? uri : "(null)");
    return nullptr;
  }
  auto* c = new (std::nothrow) StoreCtx{};
  if (c == nullptr) return nullptr;
  c->prov = static_cast<ProvCtx*>(provctx);
  c->uri = uri;
  c->path = rest;
  return c;
}

const OSSL_PARAM* SettableCtxParams(void*) {
  static const OSSL_PARAM kParams[] = {OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, nullptr), OSSL_PARAM_END};
  return kParams;
}

int SetCtxParams(void* vc, const OSSL_PARAM params[]) {
  auto* c = static_cast<StoreCtx*>(vc);
  const OSSL_PARAM* p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
  if (p != nullptr && !OSSL_PARAM_get_int(p, &c->expect)) return 0;
  return 1;
}

int Load(void* vc, OSSL_CALLBACK* object_cb, void* object_arg, OSSL_PASSPHRASE_CALLBACK* pw_cb,
         void* pw_arg) {
  auto* c = static_cast<StoreCtx*>(vc);
  if (c->done) return 1;
  c->done = true;
  // Only a private key lives here (its public half comes with it).
  if (c->expect != 0 && c->expect != OSSL_STORE_INFO_PKEY) return 1;
  Key* k = LoadKey(c->prov, c->path.c_str(), pw_cb, pw_arg, c->uri.c_str());
  if (k == nullptr) return 0;
  return PassKey(k, object_cb, object_arg);
}

int Eof(void* vc) {
  return static_cast<StoreCtx*>(vc)->done ? 1 : 0;
}

int Close(void* vc) {
  delete static_cast<StoreCtx*>(vc);
  return 1;
}

using Fn = void (*)(void);
template <typename F>
Fn F_(F f) {
  return reinterpret_cast<Fn>(f);
}

const OSSL_DISPATCH kCordonStore[] = {
    {OSSL_FUNC_STORE_OPEN, F_(Open)},
    {OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, F_(SettableCtxParams)},
    {OSSL_FUNC_STORE_SET_CTX_PARAMS, F_(SetCtxParams)},
    {OSSL_FUNC_STORE_LOAD, F_(Load)},
    {OSSL_FUNC_STORE_EOF, F_(Eof)},
    {OSSL_FUNC_STORE_CLOSE, F_(Close)},
    {0, nullptr},
};

}  // namespace

const OSSL_ALGORITHM kStore[] = {
    {"cordon", "provider=cordon", kCordonStore, "cordon: key files read inside the keys' domain"},
    {nullptr, nullptr, nullptr, nullptr},
};

}  // namespace cordon_provider
