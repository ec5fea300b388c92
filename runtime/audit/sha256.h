// SHA-256 (FIPS 180-4) for the audit stream's code_publish records: no
// allocation, no library, no TLS, so that trusted code may run it anywhere.
#ifndef CORDON_RUNTIME_AUDIT_SHA256_H_
#define CORDON_RUNTIME_AUDIT_SHA256_H_

#include <cstddef>
#include <cstdint>

namespace cordon::audit {

class Sha256 {
 public:
  static constexpr size_t kDigestSize = 32;
  Sha256();
  void Update(const void* data, size_t len);
  void Final(uint8_t out[kDigestSize]);
  // Zeros the state (for a keyed use: hmac.h).
  void Wipe();

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t used_ = 0;
  uint64_t total_ = 0;
};

// Overwrites n bytes at p with zeros in a way the compiler keeps.
void Wipe(void* p, size_t n);

// A digest as 64 lowercase hex digits and a NUL.
void DigestHex(const uint8_t digest[Sha256::kDigestSize], char out[2 * Sha256::kDigestSize + 1]);

// The digest of data as 64 lowercase hex digits and a NUL.
void Sha256Hex(const void* data, size_t len, char out[2 * Sha256::kDigestSize + 1]);

}  // namespace cordon::audit

#endif
