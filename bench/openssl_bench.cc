// Signatures per second through OpenSSL 3's EVP_DigestSign, with the key
// held by the cordon provider (openssl-provider/: the signer in its
// protection-key domain, one gate round trip per signature) against the
// same key in the default provider, for Ed25519, ECDSA P-256 (SHA-256) and
// RSA-2048 PSS (SHA-256, salt the digest's length). Each iteration
// initializes the context and signs a 64-byte message, as a TLS handshake
// does once.
//
//   openssl_bench [benchmark flags]
//
// The process loads the providers as an application's OPENSSL_CONF would:
// cordon_init(), then OSSL_PROVIDER_load() of "default" and of cordon.so
// (its path built in). Keys are drawn by the default provider, written to a
// temporary directory, and loaded into the cordon provider through its
// store (cordon:/path) before the first signature, which locks the process
// down (lockdown = first-use). Exit status 0, or 2 when it cannot run (no
// PKU, cordon_init or a provider refused, a key not loaded).
#include <benchmark/benchmark.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cordon/cordon.h"

namespace {

struct Kind {
  const char* name;
  const char* md;  // nullptr: Ed25519 signs the message itself
  bool pss;
};
const Kind kKinds[] = {
    {"Ed25519", nullptr, false}, {"ECDSA_P256", "SHA256", false}, {"RSA2048_PSS", "SHA256", true}};

EVP_PKEY* Generate(const Kind& k) {
  if (k.md == nullptr) return EVP_PKEY_Q_keygen(nullptr, "provider=default", "ED25519");
  if (!k.pss) return EVP_PKEY_Q_keygen(nullptr, "provider=default", "EC", "P-256");
  return EVP_PKEY_Q_keygen(nullptr, "provider=default", "RSA", size_t{2048});
}

std::string Errors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += std::string(out.empty() ? "" : "; ") + buf;
  }
  return out;
}

// The key at `path` through the cordon provider's store.
EVP_PKEY* LoadThroughCordon(const std::string& path) {
  OSSL_STORE_CTX* store = OSSL_STORE_open_ex(("cordon:" + path).c_str(), nullptr, nullptr, nullptr, nullptr,
                                             nullptr, nullptr, nullptr);
  EVP_PKEY* key = nullptr;
  while (store != nullptr && key == nullptr && !OSSL_STORE_eof(store)) {
    OSSL_STORE_INFO* info = OSSL_STORE_load(store);
    if (info == nullptr) break;
    if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY) key = OSSL_STORE_INFO_get1_PKEY(info);
    OSSL_STORE_INFO_free(info);
  }
  OSSL_STORE_close(store);
  return key;
}

void Sign(benchmark::State& state, EVP_PKEY* key, const Kind* kind) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char msg[64];
  for (size_t i = 0; i < sizeof msg; ++i) msg[i] = static_cast<unsigned char>(i * 7 + 1);
  unsigned char sig[512];
  for (auto _ : state) {
    EVP_PKEY_CTX* pctx = nullptr;
    bool ok = EVP_DigestSignInit_ex(ctx, &pctx, kind->md, nullptr, nullptr, key, nullptr) == 1;
    if (ok && kind->pss) {
      ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    }
    size_t len = sizeof sig;
    ok = ok && EVP_DigestSign(ctx, sig, &len, msg, sizeof msg) == 1;
    if (!ok) {
      state.SkipWithError(("signing failed: " + Errors()).c_str());
      break;
    }
    benchmark::DoNotOptimize(sig);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  EVP_MD_CTX_free(ctx);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  const int st = cordon_init(nullptr);
  if (st != CORDON_OK) {
    fprintf(stderr, "openssl_bench: cordon_init: %s\n", cordon_strerror(st));
    return 2;
  }
  char platform[256];
  cordon_describe_platform(platform, sizeof platform);
  benchmark::AddCustomContext("cordon_platform", platform);
  if (OSSL_PROVIDER_load(nullptr, "default") == nullptr ||
      OSSL_PROVIDER_load(nullptr, CORDON_PROVIDER_MODULE) == nullptr) {
    fprintf(stderr, "openssl_bench: cannot load the providers: %s\n", Errors().c_str());
    return 2;
  }
  char dir[] = "/tmp/openssl-bench-XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    perror("openssl_bench: mkdtemp");
    return 2;
  }
  // Every key is loaded before the first signature, which locks down.
  std::vector<EVP_PKEY*> keys;
  std::vector<std::string> files;
  for (const Kind& k : kKinds) {
    EVP_PKEY* plain = Generate(k);
    const std::string path = std::string(dir) + "/" + k.name + ".pem";
    FILE* f = fopen(path.c_str(), "w");
    const bool written =
        f != nullptr && PEM_write_PrivateKey(f, plain, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    if (f != nullptr) fclose(f);
    EVP_PKEY* held = written ? LoadThroughCordon(path) : nullptr;
    if (plain == nullptr || held == nullptr) {
      fprintf(stderr, "openssl_bench: cannot make the %s key: %s\n", k.name, Errors().c_str());
      return 2;
    }
    keys.push_back(plain);
    keys.push_back(held);
    files.push_back(path);
    benchmark::RegisterBenchmark((std::string("Sign/") + k.name + "/default_provider").c_str(), Sign, plain,
                                 &k);
    benchmark::RegisterBenchmark((std::string("Sign/") + k.name + "/cordon_provider").c_str(), Sign, held,
                                 &k);
  }
  for (const std::string& p : files) unlink(p.c_str());
  rmdir(dir);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (EVP_PKEY* k : keys) EVP_PKEY_free(k);
  return 0;
}
