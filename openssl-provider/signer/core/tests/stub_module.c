/* A module built the way cordon.so is (static core, nettle, hogweed, GMP;
 * --exclude-libs, -z now, -z relro, -Bsymbolic, one exported symbol), with
 * a stub entry that reaches every core function, so that
 * check-writable-state and cordon-scan judge the code the signer links. Its
 * memory functions use calloc: only the layout is under test here, never
 * run. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "openssl-provider/signer/core/core.h"

void* cordon_signer_mem_alloc(size_t n) {
  return calloc(1, n);
}

void* cordon_signer_mem_realloc(void* p, size_t old_n, size_t new_n) {
  (void)old_n;
  return realloc(p, new_n);
}

void cordon_signer_mem_free(void* p, size_t n) {
  (void)n;
  free(p);
}

int cordon_signer_random(void* buf, size_t n) {
  return getrandom(buf, n, 0) == (ssize_t)n ? 0 : -1;
}

__attribute__((visibility("default"))) int cordon_signer_stub_entry(const uint8_t* data, size_t len,
                                                                    uint8_t* out, size_t cap) {
  cordon_signer_key* k = NULL;
  int rc = cordon_signer_key_parse(data, len, NULL, 0, &k);
  if (rc != CORDON_SIGNER_OK) return rc;
  uint32_t type, bits;
  size_t pub_len, n_len, sig_len;
  rc = cordon_signer_key_public(k, &type, &bits, out, cap, &pub_len, &n_len);
  if (rc == CORDON_SIGNER_OK)
    rc = cordon_signer_key_sign(k, CORDON_SIGNER_ECDSA, CORDON_SIGNER_DIGEST_SHA256, 0, 0, data, 32, out, cap,
                                &sig_len);
  cordon_signer_key_destroy(k);
  return rc;
}
