// The key reference file's format (see reference.h).
#include "tools/cordon-key/reference.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/sha.h>

#include <cstring>
#include <vector>

namespace cordon::keyref {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr size_t kColumns = 64;

std::string Base64Encode(const std::string& in) {
  std::string out;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<uint8_t>(in[i])} << 16) |
                       (uint32_t{static_cast<uint8_t>(in[i + 1])} << 8) | static_cast<uint8_t>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i < in.size()) {
    const bool two = i + 1 < in.size();
    const uint32_t v = (uint32_t{static_cast<uint8_t>(in[i])} << 16) |
                       (two ? uint32_t{static_cast<uint8_t>(in[i + 1])} << 8 : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += two ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Strict: only the alphabet, length a multiple of 4, '=' only as the last
// one or two digits, and unused bits zero (one encoding per text).
bool Base64Decode(const std::string& in, std::string* out) {
  if (in.empty() || in.size() % 4 != 0) return false;
  out->clear();
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = in[i + j];
      uint32_t d = 0;
      if (c == '=') {
        if (i + 4 != in.size() || j < 2) return false;
        ++pad;
      } else {
        if (pad > 0) return false;
        const char* at = c != '\0' ? strchr(kAlphabet, c) : nullptr;
        if (at == nullptr) return false;
        d = static_cast<uint32_t>(at - kAlphabet);
      }
      v = (v << 6) | d;
    }
    if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)) return false;
    out->push_back(static_cast<char>(v >> 16));
    if (pad < 2) out->push_back(static_cast<char>((v >> 8) & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(v & 0xff));
  }
  return true;
}

bool IsLowerHex(const std::string& s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A value from the file, for a message: printable ASCII as it is, every
// other byte as \xNN, at most 64 bytes of it. The provider's decoder puts
// these messages into OpenSSL's error queue, and so into a server's log: a
// NUL would cut the sentence short, an escape sequence would reach a terminal.
std::string Quoted(const std::string& s) {
  static const char kHex[] = "0123456789abcdef";
  constexpr size_t kMaxShown = 64;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out;
}

std::string Unsigned(const BIGNUM* bn) {
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

bool PaddedParam(EVP_PKEY* pkey, const char* name, size_t len, std::string* out) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) return false;
  const bool ok = static_cast<size_t>(BN_num_bytes(bn)) <= len;
  out->assign(len, '\0');
  if (ok) BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out->data()), static_cast<int>(len));
  BN_free(bn);
  return ok;
}

}  // namespace

bool CheckFields(const KeyReference& ref, std::string* error) {
  if (ref.path.empty() || ref.path[0] != '/') {
    *error = "the key's path is not absolute";
    return false;
  }
  if (ref.path.size() > kMaxPath) {
    *error = "the key's path is longer than " + std::to_string(kMaxPath) + " bytes";
    return false;
  }
  if (ref.path.find('\n') != std::string::npos || ref.path.find('\r') != std::string::npos ||
      ref.path.find('\0') != std::string::npos) {
    *error = "the key's path holds a line break or a NUL";
    return false;
  }
  if (ref.type != "rsa" && ref.type != "ec-p256" && ref.type != "ec-p384" && ref.type != "ed25519") {
    *error = "unknown key type '" + Quoted(ref.type) + "' (rsa, ec-p256, ec-p384 or ed25519)";
    return false;
  }
  if (ref.public_sha256.size() != 64 || !IsLowerHex(ref.public_sha256)) {
    *error = "public-sha256 is not 64 lowercase hex digits";
    return false;
  }
  return true;
}

std::string Format(const KeyReference& ref) {
  const std::string text = "cordon-key-reference 1\npath " + ref.path + "\ntype " + ref.type +
                           "\npublic-sha256 " + ref.public_sha256 + "\n";
  const std::string b64 = Base64Encode(text);
  std::string out = std::string(kBegin) + "\n";
  for (size_t i = 0; i < b64.size(); i += kColumns) out += b64.substr(i, kColumns) + "\n";
  return out + kEnd + "\n";
}

bool Parse(const std::string& file, KeyReference* out, std::string* error) {
  if (file.size() > kMaxFile) {
    *error = "longer than any key reference (" + std::to_string(kMaxFile) + " bytes)";
    return false;
  }
  if (file.find('\r') != std::string::npos) {
    *error = "carriage returns (a key reference has LF line ends only)";
    return false;
  }
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < file.size()) {
    size_t nl = file.find('\n', at);
    if (nl == std::string::npos) nl = file.size();
    lines.push_back(file.substr(at, nl - at));
    at = nl + 1;
  }
  if (lines.size() < 3 || lines.front() != kBegin) {
    *error = std::string("not a key reference (the first line is not ") + kBegin + ")";
    return false;
  }
  if (lines.back() != kEnd) {
    *error = std::string("truncated or followed by other text (the last line is not ") + kEnd + ")";
    return false;
  }
  std::string b64;
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    const bool last = i + 2 == lines.size();
    if (lines[i].empty() || lines[i].size() > kColumns || (!last && lines[i].size() != kColumns)) {
      *error = "base64 line " + std::to_string(i + 1) + " is not " + std::to_string(kColumns) + " columns";
      return false;
    }
    b64 += lines[i];
  }
  std::string text;
  if (!Base64Decode(b64, &text)) {
    *error = "its base64 is corrupt";
    return false;
  }
  static const char* const kKeys[] = {"cordon-key-reference", "path", "type", "public-sha256"};
  std::string values[4];
  at = 0;
  for (size_t i = 0; i < 4; ++i) {
    const size_t nl = text.find('\n', at);
    if (nl == std::string::npos) {
      *error = std::string("the text ends before its '") + kKeys[i] + "' line";
      return false;
    }
    const std::string line = text.substr(at, nl - at);
    at = nl + 1;
    const size_t sp = line.find(' ');
    const std::string key = line.substr(0, sp);
    if (key != kKeys[i]) {
      *error = "line " + std::to_string(i + 1) + " of the text is '" + Quoted(key) + "', expected '" +
               kKeys[i] + "'";
      return false;
    }
    if (sp == std::string::npos) {
      *error = std::string("the '") + kKeys[i] + "' line has no value";
      return false;
    }
    values[i] = line.substr(sp + 1);
  }
  if (at != text.size()) {
    *error = "the text has more than the four lines of version 1 (unknown key)";
    return false;
  }
  if (values[0] != "1") {
    *error = "version '" + Quoted(values[0]) + "' (this tool reads version 1)";
    return false;
  }
  KeyReference ref{values[1], values[2], values[3]};
  if (!CheckFields(ref, error)) return false;
  *out = ref;
  return true;
}

bool PublicKey(EVP_PKEY* pkey, std::string* type, std::string* bytes, std::string* error) {
  const int id = EVP_PKEY_get_base_id(pkey);
  if (id == EVP_PKEY_RSA) {
    const int bits = EVP_PKEY_get_bits(pkey);
    if (bits < 1024 || bits > 8192) {
      *error = "an RSA key of " + std::to_string(bits) + " bits (the signer takes 1024 to 8192)";
      return false;
    }
    BIGNUM *n = nullptr, *e = nullptr;
    const bool ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
                    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) == 1;
    // The signer's limit (key.c): e travels in 16 bytes beside n.
    const int e_bits = ok ? BN_num_bits(e) : 0;
    if (ok) *bytes = Unsigned(n) + Unsigned(e);
    BN_free(n);
    BN_free(e);
    if (!ok) {
      *error = "cannot read the RSA public key";
      return false;
    }
    if (e_bits > 128) {
      *error = "an RSA key with a " + std::to_string(e_bits) +
               "-bit public exponent (the signer takes exponents up to 128 bits)";
      return false;
    }
    *type = "rsa";
    return true;
  }
  if (id == EVP_PKEY_EC) {
    char curve[64] = "";
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof curve, &len) != 1) {
      *error = "an EC key with explicit curve parameters (the signer takes the named curves P-256 and P-384)";
      return false;
    }
    size_t field = 0;
    if (strcmp(curve, "prime256v1") == 0) {
      *type = "ec-p256";
      field = 32;
    } else if (strcmp(curve, "secp384r1") == 0) {
      *type = "ec-p384";
      field = 48;
    } else {
      *error = std::string("an EC key on curve ") + curve + " (the signer takes P-256 and P-384)";
      return false;
    }
    std::string x, y;
    if (!PaddedParam(pkey, OSSL_PKEY_PARAM_EC_PUB_X, field, &x) ||
        !PaddedParam(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, field, &y)) {
      *error = "cannot read the EC public point";
      return false;
    }
    *bytes = std::string(1, '\x04') + x + y;
    return true;
  }
  if (id == EVP_PKEY_ED25519) {
    unsigned char pub[32];
    size_t len = sizeof pub;
    if (EVP_PKEY_get_raw_public_key(pkey, pub, &len) != 1 || len != sizeof pub) {
      *error = "cannot read the Ed25519 public key";
      return false;
    }
    *type = "ed25519";
    bytes->assign(reinterpret_cast<char*>(pub), len);
    return true;
  }
  const char* name = EVP_PKEY_get0_type_name(pkey);
  *error = std::string("a key of type ") + (name != nullptr ? name : "unknown") +
           (id == EVP_PKEY_RSA_PSS
                ? " (an RSA key restricted to PSS; the signer takes rsaEncryption keys, which sign "
                  "PSS too)"
                : "") +
           " (the signer takes RSA, EC P-256, EC P-384 and Ed25519 keys)";
  return false;
}

std::string Sha256Hex(const std::string& bytes) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), md);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : md) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace cordon::keyref
