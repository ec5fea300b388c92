/* Run by provider_cli_tests with the provider loaded (OPENSSL_CONF,
 * LD_PRELOAD=libcordon.so): loads the key named by argv[1] (a cordon: URI)
 * and asks libcrypto for its parameters. Prints one line per question:
 * "todata keypair N", "todata public N", "get_bn priv N" (N: the call's
 * result); the test expects the private questions refused (0) and the
 * public one answered (1). First, "direct sign before the lockdown N": the
 * signer's own refusal (CORDON_SIGNER_E_LOCKED, -12). Exit status 0, or 2 when the key does not load. */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/store.h>
#include <stdio.h>
#include <string.h>

#include "cordon/cordon.h"
#include "openssl-provider/signer/signer_abi.h"

/* The signer's sign entry called directly, as code that took over the
 * process before its lockdown would (the glue's lockdown policy is
 * untrusted memory): the signer itself must refuse. Its status. */
static long DirectSign(void) {
  for (cordon_domain_t d = 1; d < 16; ++d) {
    for (uint32_t id = 0; id < 64; ++id) {
      const cordon_entry e = {d, id};
      const char* name = cordon_entry_name(e);
      if (name == NULL || strcmp(name, "openssl:sign") != 0) continue;
      static uint8_t tbs[32], sig[512];
      static cordon_signer_sign_req r;
      memset(&r, 0, sizeof r);
      r.struct_size = sizeof r;
      r.handle = 1; /* slot 0, generation 1: the key this probe loaded */
      r.scheme = CORDON_SIGNER_ECDSA;
      r.digest = CORDON_SIGNER_DIGEST_SHA256;
      r.tbs = tbs;
      r.tbs_len = sizeof tbs;
      r.sig = sig;
      r.sig_cap = sizeof sig;
      return (long)(int64_t)cordon_call(e, (uint64_t)(uintptr_t)&r, 0, 0, 0, 0);
    }
  }
  return 1; /* not found */
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  OSSL_STORE_CTX* s = OSSL_STORE_open(argv[1], NULL, NULL, NULL, NULL);
  EVP_PKEY* k = NULL;
  while (s != NULL && k == NULL && !OSSL_STORE_eof(s)) {
    OSSL_STORE_INFO* i = OSSL_STORE_load(s);
    if (i != NULL && OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_PKEY) k = OSSL_STORE_INFO_get1_PKEY(i);
    OSSL_STORE_INFO_free(i);
  }
  if (s != NULL) OSSL_STORE_close(s);
  if (k == NULL) {
    ERR_print_errors_fp(stderr);
    return 2;
  }
  printf("direct sign before the lockdown %ld\n", DirectSign());
  OSSL_PARAM* p = NULL;
  printf("todata keypair %d\n", EVP_PKEY_todata(k, EVP_PKEY_KEYPAIR, &p));
  OSSL_PARAM_free(p);
  p = NULL;
  printf("todata public %d\n", EVP_PKEY_todata(k, EVP_PKEY_PUBLIC_KEY, &p));
  OSSL_PARAM_free(p);
  BIGNUM* bn = NULL;
  printf("get_bn priv %d\n", EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &bn));
  BN_free(bn);
  ERR_print_errors_fp(stderr);
  EVP_PKEY_free(k);
  return 0;
}
