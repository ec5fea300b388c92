// The cordon key reference file (docs/openssl.md, "Reference files"): names
// a private key file by absolute path, with the key's type and the SHA-256
// of its public key, for programs that only take a key file. The cordon
// provider's decoder turns one into a key held in the domain.
//
//   -----BEGIN CORDON KEY REFERENCE-----
//   <base64 of the text below, 64 columns>
//   -----END CORDON KEY REFERENCE-----
//
// text (LF line ends, this order, nothing else):
//   cordon-key-reference 1
//   path /absolute/path/to/key.pem
//   type rsa|ec-p256|ec-p384|ed25519
//   public-sha256 <64 lowercase hex digits>
//
// public-sha256 is over the public key in signer_abi.h's format: RSA n then
// e, big-endian without leading zeros; EC the uncompressed point
// 04 || X || Y; Ed25519 the 32-byte key.
#ifndef CORDON_TOOLS_CORDON_KEY_REFERENCE_H_
#define CORDON_TOOLS_CORDON_KEY_REFERENCE_H_

#include <openssl/evp.h>

#include <string>

namespace cordon::keyref {

inline constexpr char kBegin[] = "-----BEGIN CORDON KEY REFERENCE-----";
inline constexpr char kEnd[] = "-----END CORDON KEY REFERENCE-----";
inline constexpr size_t kMaxPath = 4095;   // the signer's limit (signer_abi.h)
inline constexpr size_t kMaxFile = 16384;  // no valid reference is longer

struct KeyReference {
  std::string path;           // absolute
  std::string type;           // rsa, ec-p256, ec-p384, ed25519
  std::string public_sha256;  // 64 lowercase hex digits
};

// The whole file, PEM-style, ending in a newline. The fields must be valid
// (CheckFields).
std::string Format(const KeyReference& ref);

// Parses a whole file strictly: the armour lines, 64-column base64 with
// correct padding, LF only, the four lines in order, no unknown key and no
// other version. False with the reason in *error.
bool Parse(const std::string& file, KeyReference* out, std::string* error);

// Whether the fields are what the format allows (absolute path without
// newlines or NUL of at most kMaxPath bytes, a known type, 64 lowercase hex).
bool CheckFields(const KeyReference& ref, std::string* error);

// The key's type name and its public key in signer_abi.h's format. False,
// with a sentence in *error, for a key the signer does not take (another
// algorithm or curve, RSA-PSS-only keys, RSA outside 1024..8192 bits or
// with a public exponent over 128 bits).
bool PublicKey(EVP_PKEY* pkey, std::string* type, std::string* bytes, std::string* error);

// 64 lowercase hex digits of SHA-256(bytes).
std::string Sha256Hex(const std::string& bytes);

}  // namespace cordon::keyref

#endif
