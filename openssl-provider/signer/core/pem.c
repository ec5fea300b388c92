/* PEM (RFC 7468) private-key blocks: the label, no RFC 1421 headers (the
 * legacy "Proc-Type: 4,ENCRYPTED" form is refused: its MD5-based key
 * derivation is not worth keeping keys under), and the base64 body decoded
 * by nettle straight into signer memory. */
#include <nettle/base64.h>
#include <string.h>

#include "openssl-provider/signer/core/internal.h"

static const char kBegin[] = "-----BEGIN ";
static const char kEnd[] = "-----END ";
static const char kDashes[] = "-----";

/* The first occurrence of needle (n bytes) in [p, p + len), or NULL. */
static const uint8_t* find(const uint8_t* p, size_t len, const char* needle, size_t n) {
  if (n == 0 || len < n) return NULL;
  for (size_t i = 0; i + n <= len; i++) {
    if (p[i] == (uint8_t)needle[0] && memcmp(p + i, needle, n) == 0) return p + i;
  }
  return NULL;
}

static bool label_is(const uint8_t* label, size_t n, const char* want) {
  return n == strlen(want) && memcmp(label, want, n) == 0;
}

/* Which private key a label names: a kind, 0 for a block that is no key
 * (skipped), or -1 for a private key the signer does not read. */
static int label_kind(const uint8_t* label, size_t n) {
  if (label_is(label, n, "PRIVATE KEY")) return SIGNER_PEM_PKCS8;
  if (label_is(label, n, "ENCRYPTED PRIVATE KEY")) return SIGNER_PEM_ENCRYPTED;
  if (label_is(label, n, "RSA PRIVATE KEY")) return SIGNER_PEM_RSA;
  if (label_is(label, n, "EC PRIVATE KEY")) return SIGNER_PEM_EC;
  /* DSA PRIVATE KEY, OPENSSH PRIVATE KEY, ANY PRIVATE KEY, ... */
  if (find(label, n, "PRIVATE KEY", 11) != NULL) return -1;
  return 0;
}

int signer_pem_decode(const uint8_t* text, size_t len, int* kind_out, uint8_t** der_out, size_t* der_len_out,
                      size_t* der_cap_out) {
  const uint8_t* end = text + len;
  const uint8_t* at = text;
  for (;;) {
    const uint8_t* begin = find(at, (size_t)(end - at), kBegin, sizeof kBegin - 1);
    if (begin == NULL) {
      /* PEM blocks but none a key (a certificate, a public key): wrong input. */
      return CORDON_SIGNER_E_FORMAT;
    }
    const uint8_t* label = begin + sizeof kBegin - 1;
    const uint8_t* label_end = find(label, (size_t)(end - label), kDashes, sizeof kDashes - 1);
    if (label_end == NULL || label_end - label > 64 || memchr(label, '\n', (size_t)(label_end - label)))
      return CORDON_SIGNER_E_FORMAT;
    size_t label_len = (size_t)(label_end - label);
    const uint8_t* body = label_end + sizeof kDashes - 1;
    /* The matching END line. */
    const uint8_t* stop = find(body, (size_t)(end - body), kEnd, sizeof kEnd - 1);
    if (stop == NULL) return CORDON_SIGNER_E_FORMAT;
    const uint8_t* end_label = stop + sizeof kEnd - 1;
    if ((size_t)(end - end_label) < label_len + sizeof kDashes - 1 ||
        memcmp(end_label, label, label_len) != 0 ||
        memcmp(end_label + label_len, kDashes, sizeof kDashes - 1) != 0)
      return CORDON_SIGNER_E_FORMAT;
    int kind = label_kind(label, label_len);
    if (kind < 0) return CORDON_SIGNER_E_UNSUPPORTED;
    if (kind == 0) {
      at = end_label + label_len + sizeof kDashes - 1;
      continue;
    }
    size_t body_len = (size_t)(stop - body);
    /* RFC 1421 headers are "Name: value" lines; base64 has no colon. */
    if (memchr(body, ':', body_len) != NULL) {
      if (find(body, body_len, "Proc-Type:", 10) != NULL) return CORDON_SIGNER_E_UNSUPPORTED;
      return CORDON_SIGNER_E_FORMAT;
    }
    size_t cap = BASE64_DECODE_LENGTH(body_len);
    if (cap == 0) return CORDON_SIGNER_E_FORMAT;
    uint8_t* der = cordon_signer_mem_alloc(cap);
    if (der == NULL) return CORDON_SIGNER_E_NO_MEMORY;
    struct base64_decode_ctx ctx;
    base64_decode_init(&ctx);
    size_t der_len = cap;
    /* nettle skips the line breaks and other white space between groups. */
    if (!base64_decode_update(&ctx, &der_len, der, body_len, (const char*)body) ||
        !base64_decode_final(&ctx) || der_len == 0) {
      signer_wipe(&ctx, sizeof ctx);
      signer_free(der, cap);
      return CORDON_SIGNER_E_FORMAT;
    }
    signer_wipe(&ctx, sizeof ctx);
    *kind_out = kind;
    *der_out = der;
    *der_len_out = der_len;
    *der_cap_out = cap;
    return CORDON_SIGNER_OK;
  }
}
