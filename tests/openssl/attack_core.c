/* attack_core: a crash before the lockdown, with core dumps on (attacker
 * review of issue 16). Before the lockdown the attacker controls only the
 * network input, which can still crash the process (any memory-safety bug);
 * the kernel then writes a core file of every dumpable mapping. This is the
 * attacked program: it loads the key argv[1] ("cordon:/path") through the
 * provider, with core dumps allowed as an administrator might
 * (RLIMIT_CORE unlimited), optionally signs argv[2] times (with
 * CORDON_PROVIDER_LOCKDOWN=none, so that the signer's scratch has been used
 * and no lockdown has made the process undumpable), then dies of SIGABRT in
 * its cwd. The judge (attack_core_test.cc) searches the core file. */
#define _GNU_SOURCE
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/store.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: attack_core cordon:/path/key.pem SIGNATURES\n");
    return 2;
  }
  struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_CORE, &rl);
  OSSL_STORE_CTX* st = OSSL_STORE_open(argv[1], NULL, NULL, NULL, NULL);
  EVP_PKEY* key = NULL;
  for (OSSL_STORE_INFO* info; st != NULL && key == NULL && (info = OSSL_STORE_load(st)) != NULL;) {
    if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY) key = OSSL_STORE_INFO_get1_PKEY(info);
    OSSL_STORE_INFO_free(info);
  }
  OSSL_STORE_close(st);
  if (key == NULL) {
    fprintf(stderr, "attack_core: cannot load %s\n", argv[1]);
    ERR_print_errors_fp(stderr);
    return 3;
  }
  const int n = atoi(argv[2]);
  const int ed = EVP_PKEY_is_a(key, "ED25519");
  for (int i = 0; i < n; ++i) {
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t sig_len = sizeof sig;
    const unsigned char msg[] = "crash me";
    if (EVP_DigestSignInit_ex(md, NULL, ed ? NULL : "SHA256", NULL, NULL, key, NULL) != 1 ||
        EVP_DigestSign(md, sig, &sig_len, msg, sizeof msg - 1) != 1) {
      fprintf(stderr, "attack_core: signature %d failed\n", i);
      ERR_print_errors_fp(stderr);
      return 4;
    }
  }
  printf("attack_core: loaded, %d signatures; dumpable %d; abort()\n", n, prctl(PR_GET_DUMPABLE));
  fflush(stdout);
  abort();
}
