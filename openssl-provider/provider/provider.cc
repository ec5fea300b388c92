// The cordon OpenSSL provider: OSSL_provider_init, the runtime and domain
// set-up, the lockdown policy, and the glue's calls of the signer's entries.
// Untrusted code: it holds handles and public keys, never private bytes.
#include "openssl-provider/provider/provider.h"

#include <dlfcn.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "cordon/cordon.h"

namespace cordon_provider {
namespace {

enum class Lockdown { kFirstUse, kLoad, kNone };

// The glue's whole writable state, in one object (the module's
// writable-state check allowlists it: untrusted by design, the signer
// never reads it).
struct Glue {
  pthread_mutex_t mu;
  int err_lib;  // the provider's OpenSSL error library
  int ready;    // domain created and set up
  cordon_domain_t domain;
  cordon_entry setup, load, sign, free;
  Lockdown lockdown;
  OSSL_FUNC_BIO_read_ex_fn* bio_read_ex;  // the core's
};
Glue cordon_provider_glue = {PTHREAD_MUTEX_INITIALIZER, 0,      0, 0, {}, {}, {}, {},
                             Lockdown::kFirstUse,       nullptr};
Glue& G() {
  return cordon_provider_glue;
}

ERR_STRING_DATA kReasons[] = {
    {ERR_PACK(0, 0, kReasonInit), "cordon runtime not available"},
    {ERR_PACK(0, 0, kReasonLoad), "key could not be loaded"},
    {ERR_PACK(0, 0, kReasonSign), "signing failed"},
    {ERR_PACK(0, 0, kReasonLockdown), "lockdown failed"},
    {ERR_PACK(0, 0, kReasonUnsupported), "unsupported"},
    {ERR_PACK(0, 0, kReasonReference), "bad key reference"},
    {ERR_PACK(0, 0, kReasonUri), "bad cordon URI"},
    {ERR_PACK(0, 0, kReasonRefused), "refused"},
    {ERR_PACK(0, 0, kReasonPassphrase), "passphrase"},
    {0, nullptr},
};
ERR_STRING_DATA kLibName[] = {{0, "cordon provider"}, {0, nullptr}};

void SetUpErrors() {
  if (G().err_lib != 0) return;
  G().err_lib = ERR_get_next_error_library();
  kLibName[0].error = ERR_PACK(G().err_lib, 0, 0);
  (void)ERR_load_strings(G().err_lib, kLibName);
  (void)ERR_load_strings(G().err_lib, kReasons);
}

uint64_t Call(cordon_entry e, void* req) {
  return cordon_call(e, reinterpret_cast<uint64_t>(req), 0, 0, 0, 0);
}

int StatusOf(uint64_t r) {
  return static_cast<int>(static_cast<int64_t>(r));
}

// Whether libcordon.so was preloaded: then its dlopen comes first in the
// global scope (docs/using.md, "The shared library").
bool Preloaded() {
  void* dl = dlsym(RTLD_DEFAULT, "dlopen");
  Dl_info a, b;
  if (dl == nullptr || dladdr(dl, &a) == 0 || dladdr(reinterpret_cast<void*>(&cordon_init), &b) == 0)
    return false;
  return a.dli_fbase == b.dli_fbase;
}

bool InitRuntime() {
  if (cordon_is_initialized()) return true;
  if (!Preloaded()) {
    RaiseError(kReasonInit,
               "cordon: libcordon.so is not preloaded; start the program with "
               "LD_PRELOAD=/path/to/libcordon.so LD_BIND_NOW=1 (docs/openssl.md)");
    return false;
  }
  const int s = cordon_init(nullptr);
  if (s == CORDON_OK) return true;
  const char* fix = "";
  if (s == CORDON_E_LAZY_BINDING) fix = "; start the program with LD_BIND_NOW=1";
  if (s == CORDON_E_NO_PKU) {
    fix = "; the provider never keeps keys in ordinary memory";
  }
  RaiseError(kReasonInit, "cordon: cordon_init failed: %s%s", cordon_strerror(s), fix);
  return false;
}

bool SetUpDomain() {
  Glue& g = G();
  if (g.ready) return true;
  int s = cordon_domain_create("openssl-keys", &g.domain);
  if (s == CORDON_OK) s = cordon_register(g.domain, cordon_signer_setup, "openssl:setup", &g.setup);
  if (s == CORDON_OK) s = cordon_register(g.domain, cordon_signer_load, "openssl:load", &g.load);
  if (s == CORDON_OK) s = cordon_register(g.domain, cordon_signer_sign, "openssl:sign", &g.sign);
  if (s == CORDON_OK) s = cordon_register(g.domain, cordon_signer_free, "openssl:free", &g.free);
  if (s != CORDON_OK) {
    RaiseError(kReasonInit, "cordon: cannot create the openssl-keys domain: %s%s", cordon_strerror(s),
               s == CORDON_E_LOCKED ? " (the process was locked down before the provider was loaded)" : "");
    return false;
  }
  // The policy goes into the signer's own table: the glue's copy is
  // untrusted memory, and one write to it must not keep the process from
  // its lockdown while the signer goes on signing.
  const int st = StatusOf(cordon_call(g.setup, g.lockdown == Lockdown::kNone ? 0 : 1, 0, 0, 0, 0));
  if (st != CORDON_SIGNER_OK) {
    RaiseError(kReasonInit, "cordon: the signer's set-up failed: %s", cordon_signer_strerror(st));
    return false;
  }
  g.ready = 1;
  return true;
}

bool ParseLockdown(const char* v, Lockdown* out) {
  if (strcmp(v, "first-use") == 0)
    *out = Lockdown::kFirstUse;
  else if (strcmp(v, "load") == 0)
    *out = Lockdown::kLoad;
  else if (strcmp(v, "none") == 0)
    *out = Lockdown::kNone;
  else
    return false;
  return true;
}

// The policy: `lockdown` in the provider's config section, overridden by
// CORDON_PROVIDER_LOCKDOWN.
bool ReadPolicy(const OSSL_CORE_HANDLE* handle, OSSL_FUNC_core_get_params_fn* get_params) {
  Lockdown policy = Lockdown::kFirstUse;
  const char* conf = nullptr;
  if (get_params != nullptr) {
    OSSL_PARAM p[] = {OSSL_PARAM_utf8_ptr("lockdown", &conf, 0), OSSL_PARAM_END};
    if (!get_params(handle, p)) conf = nullptr;
  }
  const char* env = getenv("CORDON_PROVIDER_LOCKDOWN");
  const char* v = env != nullptr && *env != '\0' ? env : conf;
  if (v != nullptr && !ParseLockdown(v, &policy)) {
    RaiseError(kReasonInit, "cordon: lockdown = %s (%s) is not first-use, load or none", v,
               v == env ? "CORDON_PROVIDER_LOCKDOWN" : "the provider's config section");
    return false;
  }
  if (policy == Lockdown::kNone) {
    static const char kWarning[] =
        "cordon: WARNING: lockdown = none: the process is never locked down, so code that takes it "
        "over (arbitrary code execution) can still reach the keys' domain through its gates' "
        "callers and the kernel (docs/openssl.md)\n";
    // write() to descriptor 2: the warning needs no stdio state.
    (void)!write(2, kWarning, sizeof kWarning - 1);
  }
  G().lockdown = policy;
  return true;
}

// Locks the process down, once; fail closed.
bool LockDown(const char* when) {
  if (cordon_is_locked_down()) return true;
  const int s = cordon_lockdown();
  if (s == CORDON_OK || s == CORDON_E_LOCKED) return true;
  const char* fix = "";
  if (s == CORDON_E_THREADS) {
    fix =
        "; the lockdown needs a single-threaded process: set lockdown = load in the provider's config "
        "(or CORDON_PROVIDER_LOCKDOWN=load) to lock down when the key is loaded, before threads start";
  }
  RaiseError(kReasonLockdown, "cordon: cannot lock the process down at %s: %s%s (stderr may say more)", when,
             cordon_strerror(s), fix);
  return false;
}

// ---------------------------------------------------------------- provider --
const OSSL_PARAM* GettableParams(void*) {
  static const OSSL_PARAM kParams[] = {
      OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, nullptr, 0),
      OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, nullptr, 0),
      OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, nullptr, 0),
      OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, nullptr),
      OSSL_PARAM_END,
  };
  return kParams;
}

int GetParams(void*, OSSL_PARAM params[]) {
  OSSL_PARAM* p;
  if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != nullptr &&
      !OSSL_PARAM_set_utf8_ptr(p, "Cordon provider: keys in a protection-key domain")) {
    return 0;
  }
  if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != nullptr &&
      !OSSL_PARAM_set_utf8_ptr(p, cordon_version())) {
    return 0;
  }
  if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != nullptr &&
      !OSSL_PARAM_set_utf8_ptr(p, CORDON_VERSION_STRING)) {
    return 0;
  }
  if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != nullptr && !OSSL_PARAM_set_int(p, 1))
    return 0;
  return 1;
}

const OSSL_ALGORITHM* QueryOperation(void*, int operation_id, int* no_cache) {
  *no_cache = 0;
  switch (operation_id) {
    case OSSL_OP_KEYMGMT:
      return kKeymgmt;
    case OSSL_OP_SIGNATURE:
      return kSignature;
    case OSSL_OP_ASYM_CIPHER:
      return kAsymCipher;
    case OSSL_OP_STORE:
      return kStore;
    case OSSL_OP_DECODER:
      return kDecoder;
    default:
      return nullptr;
  }
}

void Teardown(void* vctx) {
  delete static_cast<ProvCtx*>(vctx);
}

const OSSL_DISPATCH kProviderFunctions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, reinterpret_cast<void (*)(void)>(Teardown)},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, reinterpret_cast<void (*)(void)>(GettableParams)},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, reinterpret_cast<void (*)(void)>(GetParams)},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, reinterpret_cast<void (*)(void)>(QueryOperation)},
    {0, nullptr},
};

}  // namespace

void RaiseError(int reason, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (reason == kReasonInit) {
    // Also on stderr: a program that loads providers from its configuration
    // (nginx) reports only its own decoder's "unsupported" when the
    // provider did not start, and drops this reason.
    va_list copy;
    va_copy(copy, ap);
    vfprintf(stderr, fmt, copy);
    fputs(" (the cordon provider did not start)\n", stderr);
    va_end(copy);
  }
  ERR_new();
  ERR_set_debug(OPENSSL_FILE, OPENSSL_LINE, "cordon");
  ERR_vset_error(G().err_lib != 0 ? G().err_lib : ERR_LIB_PROV, reason, fmt, ap);
  va_end(ap);
}

const char* TypeName(uint32_t type) {
  switch (type) {
    case CORDON_SIGNER_KEY_RSA:
      return "RSA";
    case CORDON_SIGNER_KEY_EC_P256:
    case CORDON_SIGNER_KEY_EC_P384:
      return "EC";
    case CORDON_SIGNER_KEY_ED25519:
      return "ED25519";
    default:
      return nullptr;
  }
}

size_t MaxSignature(const Key* k) {
  switch (k->type) {
    case CORDON_SIGNER_KEY_RSA:
      return (k->bits + 7) / 8;
    case CORDON_SIGNER_KEY_EC_P256:
      return 72;  // SEQUENCE of two 33-byte INTEGERs
    case CORDON_SIGNER_KEY_EC_P384:
      return 104;
    case CORDON_SIGNER_KEY_ED25519:
      return 64;
    default:
      return 0;
  }
}

Key* NewKey(ProvCtx* prov, uint32_t type) {
  auto* k = static_cast<Key*>(OPENSSL_zalloc(sizeof(Key)));
  if (k == nullptr) return nullptr;
  k->prov = prov;
  k->type = type;
  return k;
}

void FreeKey(Key* k) {
  if (k == nullptr) return;
  if (k->handle != 0 && G().ready) {
    cordon_signer_free_req r = {};
    r.struct_size = sizeof r;
    r.handle = k->handle;
    (void)Call(G().free, &r);
  }
  OPENSSL_free(k);
}

Key* LoadKey(ProvCtx* prov, const char* path, OSSL_PASSPHRASE_CALLBACK* pw_cb, void* pw_arg,
             const char* what) {
  if (!G().ready) {
    RaiseError(kReasonInit, "cordon: the provider is not set up");
    return nullptr;
  }
  if (cordon_is_locked_down()) {
    RaiseError(kReasonLockdown,
               "cordon: cannot load %s: keys are loaded only before the lockdown, which came at the first "
               "signature (lockdown = first-use); load every key before the first handshake",
               what);
    return nullptr;
  }
  auto* r = static_cast<cordon_signer_load_req*>(OPENSSL_zalloc(sizeof(cordon_signer_load_req)));
  if (r == nullptr) return nullptr;
  r->struct_size = sizeof *r;
  r->path = path;
  r->path_len = strlen(path);
  int s = StatusOf(Call(G().load, r));
  char pass[1024];
  size_t pass_len = 0;
  bool asked = false;
  if (s == CORDON_SIGNER_E_PASSPHRASE) {
    OSSL_PARAM info[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PASSPHRASE_PARAM_INFO, const_cast<char*>(what), 0),
        OSSL_PARAM_END};
    if (pw_cb != nullptr && pw_cb(pass, sizeof pass - 1, &pass_len, info, pw_arg) && pass_len < sizeof pass) {
      asked = true;
      memset(r, 0, sizeof *r);
      r->struct_size = sizeof *r;
      r->path = path;
      r->path_len = strlen(path);
      r->passphrase = pass;
      r->passphrase_len = pass_len;
      s = StatusOf(Call(G().load, r));
    }
    OPENSSL_cleanse(pass, sizeof pass);
  }
  if (s != CORDON_SIGNER_OK) {
    switch (s) {
      case CORDON_SIGNER_E_NO_FILE:
      case CORDON_SIGNER_E_READ:
        RaiseError(kReasonLoad, "cordon: cannot %s the key file %s: %s",
                   s == CORDON_SIGNER_E_NO_FILE ? "open" : "read", path,
                   r->sys_errno != 0 ? strerror(r->sys_errno) : cordon_signer_strerror(s));
        break;
      case CORDON_SIGNER_E_PASSPHRASE:
        RaiseError(
            kReasonPassphrase,
            asked ? "cordon: wrong passphrase for %s" : "cordon: %s is encrypted and no passphrase was given",
            path);
        break;
      case CORDON_SIGNER_E_UNSUPPORTED:
        RaiseError(
            kReasonUnsupported,
            "cordon: %s: unsupported key (the signer takes RSA 1024-8192, EC P-256 and P-384, Ed25519)",
            path);
        break;
      case CORDON_SIGNER_E_LOCKED:
        RaiseError(kReasonLockdown, "cordon: cannot load %s after the lockdown", what);
        break;
      default:
        RaiseError(kReasonLoad, "cordon: cannot load %s: %s", path, cordon_signer_strerror(s));
    }
    OPENSSL_free(r);
    return nullptr;
  }
  Key* k = NewKey(prov, r->key_type);
  if (k == nullptr || TypeName(r->key_type) == nullptr || r->public_len > sizeof k->public_key) {
    if (k == nullptr) {
      k = NewKey(prov, 0);  // to free the handle below
      if (k == nullptr) {
        OPENSSL_free(r);
        return nullptr;
      }
    }
    k->handle = r->handle;
    FreeKey(k);
    RaiseError(kReasonLoad, "cordon: the signer returned an unknown key type %u", r->key_type);
    OPENSSL_free(r);
    return nullptr;
  }
  k->handle = r->handle;
  k->bits = r->bits;
  k->public_len = r->public_len;
  k->rsa_n_len = r->rsa_n_len;
  memcpy(k->public_key, r->public_key, r->public_len);
  OPENSSL_free(r);
  // The key file stays on disk: after the lockdown, code in this process
  // must not read the key from it again (the attacker review's leak). The
  // runtime closes its path at the lockdown, and refuses a file that
  // another path reaches; its line on stderr says why.
  if (const int c = cordon_lockdown_close_file(path); c != CORDON_OK) {
    FreeKey(k);
    RaiseError(kReasonLoad, "cordon: cannot load %s: its key file cannot be closed at the lockdown: %s", what,
               cordon_strerror(c));
    return nullptr;
  }
  if (G().lockdown == Lockdown::kLoad && !LockDown("the key's load (lockdown = load)")) {
    FreeKey(k);
    return nullptr;
  }
  return k;
}

int Sign(const Key* k, uint32_t scheme, uint32_t digest, uint32_t mgf1_digest, int32_t salt_len,
         const uint8_t* tbs, size_t tbs_len, uint8_t* sig, size_t* sig_len, size_t sig_cap) {
  if (k->handle == 0) {
    RaiseError(kReasonSign,
               "cordon: this key has only a public half (it was imported), nothing to sign with");
    return 0;
  }
  if (G().lockdown == Lockdown::kFirstUse && !LockDown("the first signature (lockdown = first-use)"))
    return 0;
  cordon_signer_sign_req r = {};
  r.struct_size = sizeof r;
  r.handle = k->handle;
  r.scheme = scheme;
  r.digest = digest;
  r.mgf1_digest = mgf1_digest;
  r.salt_len = salt_len;
  r.tbs = tbs;
  r.tbs_len = tbs_len;
  r.sig = sig;
  r.sig_cap = sig_cap;
  const int s = StatusOf(Call(G().sign, &r));
  if (s != CORDON_SIGNER_OK) {
    RaiseError(kReasonSign, "cordon: signing failed: %s", cordon_signer_strerror(s));
    return 0;
  }
  *sig_len = r.sig_len;
  return 1;
}

bool ReadAll(OSSL_CORE_BIO* in, std::string* out) {
  out->clear();
  if (G().bio_read_ex == nullptr) return false;
  char buf[4096];
  for (;;) {
    size_t n = 0;
    if (!G().bio_read_ex(in, buf, sizeof buf, &n) || n == 0) break;
    out->append(buf, n);
    if (out->size() > (size_t{1} << 20)) return false;
  }
  return !out->empty();
}

int PassKey(Key* key, OSSL_CALLBACK* object_cb, void* object_arg) {
  KeyReference ref = {kReferenceMagic, key, key->type};
  int object_type = OSSL_OBJECT_PKEY;
  OSSL_PARAM params[] = {
      OSSL_PARAM_int(OSSL_OBJECT_PARAM_TYPE, &object_type),
      OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, const_cast<char*>(TypeName(key->type)),
                                       0),
      OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &ref, sizeof ref),
      OSSL_PARAM_END,
  };
  const int ok = object_cb(params, object_arg);
  FreeKey(ref.key);  // NULL when keymgmt's load() took it
  return ok;
}

}  // namespace cordon_provider

extern "C" const char* cordon_signer_strerror(int status) {
  switch (status) {
    case CORDON_SIGNER_OK:
      return "success";
    case CORDON_SIGNER_E_ARGUMENT:
      return "a bad pointer, size, flag or value in the request";
    case CORDON_SIGNER_E_NO_FILE:
      return "the key file cannot be opened";
    case CORDON_SIGNER_E_READ:
      return "the key file cannot be read, or is not a regular file of at most 1 MiB";
    case CORDON_SIGNER_E_FORMAT:
      return "not a PEM or DER private key, or a corrupt one";
    case CORDON_SIGNER_E_PASSPHRASE:
      return "the key is encrypted: no passphrase, or a wrong one";
    case CORDON_SIGNER_E_UNSUPPORTED:
      return "a key type, curve, cipher or size the signer does not support";
    case CORDON_SIGNER_E_HANDLE:
      return "no key has this handle (freed, or never loaded)";
    case CORDON_SIGNER_E_NO_MEMORY:
      return "the domain's heap or the key table is full";
    case CORDON_SIGNER_E_BUFFER:
      return "the output buffer is too small";
    case CORDON_SIGNER_E_MISMATCH:
      return "the operation does not fit the key (wrong scheme, or a digest of the wrong length)";
    case CORDON_SIGNER_E_CRYPTO:
      return "the computation failed (RSA self-check or the random source)";
    case CORDON_SIGNER_E_LOCKED:
      return "keys are loaded only before the lockdown";
    case CORDON_SIGNER_E_STATE:
      return "the signer is not set up, or was set up twice";
    default:
      return "unknown signer status";
  }
}

extern "C" __attribute__((visibility("default"))) int OSSL_provider_init(const OSSL_CORE_HANDLE* handle,
                                                                         const OSSL_DISPATCH* in,
                                                                         const OSSL_DISPATCH** out,
                                                                         void** provctx) {
  using namespace cordon_provider;
  OSSL_FUNC_core_get_params_fn* get_params = nullptr;
  OSSL_FUNC_core_get_libctx_fn* get_libctx = nullptr;
  for (; in != nullptr && in->function_id != 0; ++in) {
    if (in->function_id == OSSL_FUNC_CORE_GET_PARAMS) get_params = OSSL_FUNC_core_get_params(in);
    if (in->function_id == OSSL_FUNC_CORE_GET_LIBCTX) get_libctx = OSSL_FUNC_core_get_libctx(in);
    if (in->function_id == OSSL_FUNC_BIO_READ_EX) G().bio_read_ex = OSSL_FUNC_BIO_read_ex(in);
  }
  pthread_mutex_lock(&G().mu);
  SetUpErrors();
  const bool ok = ReadPolicy(handle, get_params) && InitRuntime() && SetUpDomain();
  pthread_mutex_unlock(&G().mu);
  if (!ok) return 0;
  auto* ctx = new (std::nothrow)
      ProvCtx{handle, get_libctx != nullptr ? reinterpret_cast<OSSL_LIB_CTX*>(get_libctx(handle)) : nullptr};
  if (ctx == nullptr) return 0;
  *provctx = ctx;
  *out = kProviderFunctions;
  return 1;
}
