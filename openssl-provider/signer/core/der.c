/* A strict DER reader over bounded views (internal.h): definite minimal
 * lengths, single-byte tags, nothing read past the view. Key files come from
 * disk and may be anything; this is the one place that walks their bytes. */
#include <string.h>

#include "openssl-provider/signer/core/internal.h"

int signer_der_peek(const signer_der* in) {
  return in->n == 0 ? -1 : in->p[0];
}

bool signer_der_get(signer_der* in, uint8_t tag, signer_der* out) {
  if (in->n < 2 || in->p[0] != tag || (tag & 0x1f) == 0x1f) return false;
  size_t len = in->p[1];
  size_t head = 2;
  if (len & 0x80) {
    size_t count = len & 0x7f;
    /* 0x80 is BER's indefinite length; more than 4 bytes of length would
     * describe more than any key file holds. */
    if (count == 0 || count > 4 || in->n - 2 < count) return false;
    len = 0;
    for (size_t i = 0; i < count; i++) len = (len << 8) | in->p[2 + i];
    /* Minimal: the long form only past 127, and no leading zero byte. */
    if (len < 0x80 || in->p[2] == 0) return false;
    head += count;
  }
  if (in->n - head < len) return false;
  out->p = in->p + head;
  out->n = len;
  in->p += head + len;
  in->n -= head + len;
  return true;
}

bool signer_der_get_uint(signer_der* in, signer_der* out) {
  signer_der v;
  if (!signer_der_get(in, SIGNER_DER_INTEGER, &v) || v.n == 0) return false;
  if (v.p[0] & 0x80) return false; /* negative */
  if (v.p[0] == 0 && v.n > 1) {
    if (!(v.p[1] & 0x80)) return false; /* a needless leading zero */
    v.p++;
    v.n--;
  }
  *out = v;
  return true;
}

bool signer_der_get_small(signer_der* in, uint64_t max, uint64_t* v) {
  signer_der m;
  if (!signer_der_get_uint(in, &m) || m.n > 8) return false;
  uint64_t x = 0;
  for (size_t i = 0; i < m.n; i++) x = (x << 8) | m.p[i];
  if (x > max) return false;
  *v = x;
  return true;
}

bool signer_der_oid_is(signer_der oid, const uint8_t* enc, size_t n) {
  return oid.n == n && memcmp(oid.p, enc, n) == 0;
}
