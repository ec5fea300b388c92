/* Run by provider_cli_tests with the provider loaded (OPENSSL_CONF,
 * LD_PRELOAD=libcordon.so): loads the key named by argv[1] (a cordon: URI)
 * and asks libcrypto for its parameters. Prints one line per question:
 * "todata keypair N", "todata public N", "get_bn priv N" (N: the call's
 * result); the test expects the private questions refused (0) and the
 * public one answered (1). Exit status 0, or 2 when the key does not load. */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/store.h>
#include <stdio.h>

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
