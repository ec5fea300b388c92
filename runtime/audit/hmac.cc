// HMAC-SHA256 (hmac.h), written from RFC 2104, section 2: H(K ^ opad,
// H(K ^ ipad, text)) with B = 64 and K padded with zeros to B bytes.
#include "runtime/audit/hmac.h"

namespace cordon::audit {

HmacSha256::HmacSha256(const void* key, size_t key_size) {
  uint8_t k[64] = {};
  if (key_size > sizeof k) {
    Sha256 h;
    h.Update(key, key_size);
    h.Final(k);
  } else {
    const auto* p = static_cast<const uint8_t*>(key);
    for (size_t i = 0; i < key_size; ++i) k[i] = p[i];
  }
  uint8_t inner_pad[64];
  for (size_t i = 0; i < 64; ++i) {
    inner_pad[i] = static_cast<uint8_t>(k[i] ^ 0x36);
    outer_pad_[i] = static_cast<uint8_t>(k[i] ^ 0x5c);
  }
  inner_.Update(inner_pad, sizeof inner_pad);
  Wipe(inner_pad, sizeof inner_pad);
  Wipe(k, sizeof k);
}

HmacSha256::~HmacSha256() {
  Wipe(outer_pad_, sizeof outer_pad_);
  inner_.Wipe();
}

void HmacSha256::Final(uint8_t out[Sha256::kDigestSize]) {
  uint8_t inner_digest[Sha256::kDigestSize];
  inner_.Final(inner_digest);
  Sha256 outer;
  outer.Update(outer_pad_, sizeof outer_pad_);
  outer.Update(inner_digest, sizeof inner_digest);
  outer.Final(out);
  outer.Wipe();
  Wipe(inner_digest, sizeof inner_digest);
}

void HmacSha256Hex(const void* key, size_t key_size, const void* data, size_t len,
                   char out[2 * Sha256::kDigestSize + 1]) {
  uint8_t mac[Sha256::kDigestSize];
  {
    HmacSha256 h(key, key_size);
    h.Update(data, len);
    h.Final(mac);
  }
  DigestHex(mac, out);
}

}  // namespace cordon::audit
