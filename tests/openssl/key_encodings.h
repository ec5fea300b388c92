// Every encoding of a private key an attacker could find in memory, and a
// scanner that finds any of them in a buffer. Shared by the TLS judge
// (tls_judge_test.cc) and the demo (tls_demo.cc), so both search the same
// way.
//
// A needle is a byte string of at least 16 bytes that only the private key
// produces: 16-byte windows of each private value (big- and little-endian,
// and lower/upper-case hex), of the DER encodings (PKCS#8 and the
// traditional one), and of the PEM file's base64 (with and without its line
// breaks), and each whole base64 line. Windows of the DER and of the base64
// count only if most of them (at least 8 bytes, or 11 base64 digits) come
// from private values: the DER also holds the public key (RSA n and e, the
// EC point) and the algorithm's OID, which the certificate holds too.
#ifndef CORDON_TESTS_OPENSSL_KEY_ENCODINGS_H_
#define CORDON_TESTS_OPENSSL_KEY_ENCODINGS_H_

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace cordon::tls {

inline constexpr size_t kWindow = 16;

struct Needle {
  std::string what;   // "RSA d, little-endian, bytes 16..31"
  std::string bytes;  // at least kWindow bytes
};

// The needles of pkey's private key; pem_text is the key file as written
// (its base64 is searched as it is, line breaks included). An empty vector
// with *error set when a part cannot be encoded.
std::vector<Needle> PrivateKeyNeedles(EVP_PKEY* pkey, const std::string& pem_text, std::string* error);

// A short description of the needle families ("RSA d, p, q, dP, dQ, qInv
// (BE, LE, hex), PKCS#8 DER, ..."), for messages.
std::string DescribeNeedles(const std::vector<Needle>& needles);

struct Hit {
  size_t offset = 0;  // in the scanned buffer
  const Needle* needle = nullptr;
};

// Finds every needle at every byte offset in one pass: a bitmap of the
// needles' first 8 bytes filters the offsets, a table of them gives the
// candidates, which are compared whole.
class NeedleScanner {
 public:
  explicit NeedleScanner(const std::vector<Needle>& needles);
  // Hits in [p, p+n), in order, at most max_hits.
  std::vector<Hit> Find(const uint8_t* p, size_t n, size_t max_hits) const;

 private:
  static uint64_t Hash(uint64_t prefix) { return (prefix * 0x9e3779b97f4a7c15ull) >> (64 - kFilterBits); }
  static constexpr int kFilterBits = 24;
  const std::vector<Needle>& needles_;
  std::vector<uint64_t> filter_;                         // 2^kFilterBits bits
  std::unordered_multimap<uint64_t, size_t> by_prefix_;  // first 8 bytes -> needle index
};

}  // namespace cordon::tls

#endif
