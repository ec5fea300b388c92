// Every encoding of a private key, and the one-pass scanner (see
// key_encodings.h).
#include "tests/openssl/key_encodings.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <unordered_set>

namespace cordon::tls {
namespace {

struct Value {
  std::string name;  // "RSA d"
  std::string be;    // big-endian bytes
};

std::string Reversed(std::string s) {
  std::reverse(s.begin(), s.end());
  return s;
}

std::string Hex(const std::string& bytes, bool upper) {
  static const char kLower[] = "0123456789abcdef", kUpper[] = "0123456789ABCDEF";
  const char* digits = upper ? kUpper : kLower;
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

bool BigNumber(EVP_PKEY* pkey, const char* param, size_t pad_to, std::string* out) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1 || bn == nullptr) return false;
  const int n = BN_num_bytes(bn);
  const size_t len = std::max(static_cast<size_t>(n), pad_to);
  out->assign(len, '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out->data()), static_cast<int>(len));
  BN_clear_free(bn);
  return true;
}

// The private values, each as a big-endian number.
bool PrivateValues(EVP_PKEY* pkey, std::vector<Value>* values, std::string* error) {
  const int id = EVP_PKEY_get_base_id(pkey);
  if (id == EVP_PKEY_RSA) {
    static const struct {
      const char* name;
      const char* param;
    } kParts[] = {{"RSA d", OSSL_PKEY_PARAM_RSA_D},          {"RSA p", OSSL_PKEY_PARAM_RSA_FACTOR1},
                  {"RSA q", OSSL_PKEY_PARAM_RSA_FACTOR2},    {"RSA dP", OSSL_PKEY_PARAM_RSA_EXPONENT1},
                  {"RSA dQ", OSSL_PKEY_PARAM_RSA_EXPONENT2}, {"RSA qInv", OSSL_PKEY_PARAM_RSA_COEFFICIENT1}};
    for (const auto& part : kParts) {
      Value v{part.name, {}};
      if (!BigNumber(pkey, part.param, 0, &v.be)) {
        *error = std::string("cannot read ") + part.name + " of the key";
        return false;
      }
      values->push_back(std::move(v));
    }
    return true;
  }
  if (id == EVP_PKEY_EC) {
    Value v{"EC private scalar", {}};
    const size_t bytes = static_cast<size_t>((EVP_PKEY_get_bits(pkey) + 7) / 8);
    if (!BigNumber(pkey, OSSL_PKEY_PARAM_PRIV_KEY, bytes, &v.be)) {
      *error = "cannot read the EC private scalar of the key";
      return false;
    }
    values->push_back(std::move(v));
    return true;
  }
  if (id == EVP_PKEY_ED25519) {
    unsigned char seed[32];
    size_t len = sizeof seed;
    if (EVP_PKEY_get_raw_private_key(pkey, seed, &len) != 1 || len != sizeof seed) {
      *error = "cannot read the Ed25519 seed of the key";
      return false;
    }
    // The seed as stored, and SHA-512(seed): its first half, clamped, is the
    // secret scalar (a little-endian number, RFC 8032 5.1.5), the second the
    // nonce prefix. Each is searched in both byte orders; the seed "big-endian"
    // is the seed as it is.
    unsigned char h[SHA512_DIGEST_LENGTH];
    SHA512(seed, sizeof seed, h);
    values->push_back({"Ed25519 seed", std::string(reinterpret_cast<char*>(seed), 32)});
    values->push_back(
        {"Ed25519 SHA-512(seed) first half", Reversed(std::string(reinterpret_cast<char*>(h), 32))});
    h[0] &= 248;
    h[31] &= 127;
    h[31] |= 64;
    values->push_back({"Ed25519 expanded scalar", Reversed(std::string(reinterpret_cast<char*>(h), 32))});
    values->push_back({"Ed25519 nonce prefix", std::string(reinterpret_cast<char*>(h) + 32, 32)});
    OPENSSL_cleanse(seed, sizeof seed);
    OPENSSL_cleanse(h, sizeof h);
    return true;
  }
  *error = "unsupported key type";
  return false;
}

// The key's DER in `structure` ("PrivateKeyInfo", "type-specific"); empty
// if the key type has none.
std::string Der(EVP_PKEY* pkey, const char* structure) {
  OSSL_ENCODER_CTX* ctx = OSSL_ENCODER_CTX_new_for_pkey(pkey, EVP_PKEY_KEYPAIR, "DER", structure, nullptr);
  std::string out;
  if (ctx == nullptr) return out;
  unsigned char* data = nullptr;
  size_t len = 0;
  if (OSSL_ENCODER_CTX_get_num_encoders(ctx) > 0 && OSSL_ENCODER_to_data(ctx, &data, &len) == 1) {
    out.assign(reinterpret_cast<char*>(data), len);
    OPENSSL_clear_free(data, len);
  }
  OSSL_ENCODER_CTX_free(ctx);
  return out;
}

// Which bytes of `der` belong to a private value (found where its
// big-endian bytes occur).
std::vector<bool> SecretBytes(const std::string& der, const std::vector<Value>& values) {
  std::vector<bool> secret(der.size(), false);
  for (const Value& v : values) {
    for (size_t at = der.find(v.be); at != std::string::npos; at = der.find(v.be, at + 1)) {
      std::fill(secret.begin() + static_cast<long>(at), secret.begin() + static_cast<long>(at + v.be.size()),
                true);
    }
  }
  return secret;
}

std::string Base64(const std::string& der) {
  std::string out(4 * ((der.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(der.data()), static_cast<int>(der.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// For each base64 digit of an encoding of `der`: whether all its 6 bits
// come from secret bytes.
std::vector<bool> SecretDigits(const std::vector<bool>& secret_bytes, size_t digits) {
  std::vector<bool> out(digits, false);
  for (size_t k = 0; k < digits; ++k) {
    const size_t first = 6 * k / 8, last = (6 * k + 5) / 8;
    out[k] = last < secret_bytes.size() && secret_bytes[first] && secret_bytes[last];
  }
  return out;
}

class Collector {
 public:
  explicit Collector(std::vector<Needle>* out) : out_(out) {}
  void Add(std::string what, std::string bytes) {
    if (bytes.size() < kWindow || !seen_.insert(bytes).second) return;
    out_->push_back({std::move(what), std::move(bytes)});
  }
  // Every kWindow-byte window of s.
  void Windows(const std::string& what, const std::string& s) {
    for (size_t i = 0; i + kWindow <= s.size(); ++i) {
      Add(what + ", bytes " + std::to_string(i) + ".." + std::to_string(i + kWindow - 1),
          s.substr(i, kWindow));
    }
  }
  // Windows of s (kWindow long) with at least `min_secret` positions marked.
  void SecretWindows(const std::string& what, const std::string& s, const std::vector<bool>& marked,
                     size_t min_secret) {
    for (size_t i = 0; i + kWindow <= s.size(); ++i) {
      const size_t n = static_cast<size_t>(std::count(marked.begin() + static_cast<long>(i),
                                                      marked.begin() + static_cast<long>(i + kWindow), true));
      if (n >= min_secret) {
        Add(what + ", bytes " + std::to_string(i) + ".." + std::to_string(i + kWindow - 1),
            s.substr(i, kWindow));
      }
    }
  }

 private:
  std::vector<Needle>* out_;
  std::unordered_set<std::string> seen_;
};

// 8 secret bytes (64 bits) in a 16-byte window; 11 secret base64 digits
// (66 bits) in a 16-digit one.
constexpr size_t kMinSecretBytes = 8;
constexpr size_t kMinSecretDigits = 11;

}  // namespace

std::vector<Needle> PrivateKeyNeedles(EVP_PKEY* pkey, const std::string& pem_text, std::string* error) {
  std::vector<Needle> needles;
  std::vector<Value> values;
  if (!PrivateValues(pkey, &values, error)) return {};
  Collector c(&needles);
  for (const Value& v : values) {
    c.Windows(v.name + ", big-endian", v.be);
    c.Windows(v.name + ", little-endian", Reversed(v.be));
    c.Windows(v.name + ", hex", Hex(v.be, false));
    c.Windows(v.name + ", HEX", Hex(v.be, true));
  }
  static const struct {
    const char* name;
    const char* structure;
  } kDers[] = {{"PKCS#8 DER", "PrivateKeyInfo"}, {"traditional DER", "type-specific"}};
  for (const auto& d : kDers) {
    const std::string der = Der(pkey, d.structure);
    if (der.empty()) continue;  // Ed25519 has no traditional encoding
    const std::vector<bool> secret = SecretBytes(der, values);
    c.SecretWindows(d.name, der, secret, kMinSecretBytes);
    const std::string b64 = Base64(der);
    c.SecretWindows(std::string("base64 of the ") + d.name, b64, SecretDigits(secret, b64.size()),
                    kMinSecretDigits);
  }
  // The key file's PEM body as written: lines, windows across its line
  // breaks, and the body joined without them.
  std::string body, text;
  std::vector<size_t> text_digit;  // for each byte of `text`: its digit's index in body, or SIZE_MAX
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < pem_text.size()) {
    size_t end = pem_text.find('\n', start);
    if (end == std::string::npos) end = pem_text.size();
    const std::string line = pem_text.substr(start, end - start);
    start = end + 1;
    if (line.rfind("-----", 0) == 0 || line.find(':') != std::string::npos || line.empty()) continue;
    lines.push_back(line);
    for (char ch : line) {
      text_digit.push_back(body.size());
      text += ch;
      body += ch;
    }
    text_digit.push_back(SIZE_MAX);
    text += '\n';
  }
  if (body.empty()) {
    *error = "the key file holds no PEM body";
    return {};
  }
  std::string der(body.size() * 3 / 4 + 3, '\0');
  const int der_len =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(der.data()),
                      reinterpret_cast<const unsigned char*>(body.data()), static_cast<int>(body.size()));
  if (der_len <= 0) {
    *error = "the key file's PEM body is not base64";
    return {};
  }
  der.resize(static_cast<size_t>(der_len));
  const std::vector<bool> digits = SecretDigits(SecretBytes(der, values), body.size());
  size_t secret_total = static_cast<size_t>(std::count(digits.begin(), digits.end(), true));
  if (secret_total == 0) {
    *error = "the key file's PEM body holds none of the key's private values (an encrypted key file?)";
    return {};
  }
  c.SecretWindows("the key file's base64", body, digits, kMinSecretDigits);
  std::vector<bool> text_marked(text.size(), false);
  for (size_t i = 0; i < text.size(); ++i)
    text_marked[i] = text_digit[i] != SIZE_MAX && digits[text_digit[i]];
  c.SecretWindows("the key file's text", text, text_marked, kMinSecretDigits);
  size_t digit = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const size_t n =
        static_cast<size_t>(std::count(digits.begin() + static_cast<long>(digit),
                                       digits.begin() + static_cast<long>(digit + lines[i].size()), true));
    if (n >= kMinSecretDigits) c.Add("the key file's base64 line " + std::to_string(i + 2), lines[i]);
    digit += lines[i].size();
  }
  OPENSSL_cleanse(der.data(), der.size());
  for (Value& v : values) OPENSSL_cleanse(v.be.data(), v.be.size());
  return needles;
}

std::string DescribeNeedles(const std::vector<Needle>& needles) {
  std::map<std::string, size_t> families;
  std::vector<std::string> order;
  for (const Needle& n : needles) {
    std::string family = n.what.substr(0, n.what.find(", bytes "));
    family = family.substr(0, family.find(" line "));
    if (families[family]++ == 0) order.push_back(family);
  }
  std::string out = std::to_string(needles.size()) + " byte strings:";
  for (size_t i = 0; i < order.size(); ++i) {
    out += (i == 0 ? " " : "; ") + order[i] + " (" + std::to_string(families[order[i]]) + ")";
  }
  return out;
}

NeedleScanner::NeedleScanner(const std::vector<Needle>& needles)
    : needles_(needles), filter_((size_t{1} << kFilterBits) / 64, 0) {
  for (size_t i = 0; i < needles.size(); ++i) {
    uint64_t prefix;
    memcpy(&prefix, needles[i].bytes.data(), sizeof prefix);
    const uint64_t h = Hash(prefix);
    filter_[h / 64] |= uint64_t{1} << (h % 64);
    by_prefix_.emplace(prefix, i);
  }
}

std::vector<Hit> NeedleScanner::Find(const uint8_t* p, size_t n, size_t max_hits) const {
  std::vector<Hit> hits;
  if (n < kWindow) return hits;
  for (size_t i = 0; i + kWindow <= n && hits.size() < max_hits; ++i) {
    uint64_t prefix;
    memcpy(&prefix, p + i, sizeof prefix);
    const uint64_t h = Hash(prefix);
    if ((filter_[h / 64] & (uint64_t{1} << (h % 64))) == 0) continue;
    const auto range = by_prefix_.equal_range(prefix);
    for (auto it = range.first; it != range.second; ++it) {
      const std::string& b = needles_[it->second].bytes;
      if (i + b.size() <= n && memcmp(p + i, b.data(), b.size()) == 0) {
        hits.push_back({i, &needles_[it->second]});
        break;
      }
    }
  }
  return hits;
}

}  // namespace cordon::tls
