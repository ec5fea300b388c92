// HMAC-SHA256 (RFC 2104 over sha256.h) for the audit stream's record MACs
// (docs/audit.md, "Authenticated records"): no allocation, no library, no
// TLS, async-signal-safe. The pads and the hash states live in the object
// (on its owner's stack: the trusted stack for the writer) and are wiped
// when it goes.
#ifndef CORDON_RUNTIME_AUDIT_HMAC_H_
#define CORDON_RUNTIME_AUDIT_HMAC_H_

#include <cstddef>
#include <cstdint>

#include "runtime/audit/sha256.h"

namespace cordon::audit {

// The stream's keys are exactly this long (and so never hashed first).
inline constexpr size_t kMacKeySize = 32;

class HmacSha256 {
 public:
  // Any key length (RFC 2104: a key longer than a block is hashed first).
  HmacSha256(const void* key, size_t key_size);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;
  void Update(const void* data, size_t len) { inner_.Update(data, len); }
  void Final(uint8_t out[Sha256::kDigestSize]);

 private:
  Sha256 inner_;
  uint8_t outer_pad_[64];
};

// The MAC of data as 64 lowercase hex digits and a NUL.
void HmacSha256Hex(const void* key, size_t key_size, const void* data, size_t len,
                   char out[2 * Sha256::kDigestSize + 1]);

}  // namespace cordon::audit

#endif
