// The signer core (openssl-provider/signer/core/core.h) against libcrypto:
// keys generated at test time in every format the core reads, their public
// halves compared with libcrypto's, every signature verified by libcrypto's
// default provider, and bad input of every kind answered with its own
// status, without a crash or a leaked block (host_memory.c counts them).
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "openssl-provider/signer/core/core.h"
#include "openssl-provider/signer/core/tests/host_memory.h"

namespace {

using Bytes = std::vector<uint8_t>;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

struct KeyFree {
  void operator()(cordon_signer_key* k) const { cordon_signer_key_destroy(k); }
};
using Key = std::unique_ptr<cordon_signer_key, KeyFree>;

Bytes FromBio(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  Bytes out(data, data + n);
  BIO_free(bio);
  return out;
}

// format: "PEM" or "DER"; structure: "PrivateKeyInfo" or "type-specific"
// (PKCS#1 RSAPrivateKey, SEC1 ECPrivateKey).
Bytes Encode(EVP_PKEY* pkey, const char* format, const char* structure) {
  OSSL_ENCODER_CTX* ctx =
      OSSL_ENCODER_CTX_new_for_pkey(pkey, OSSL_KEYMGMT_SELECT_KEYPAIR, format, structure, nullptr);
  EXPECT_NE(ctx, nullptr);
  EXPECT_GT(OSSL_ENCODER_CTX_get_num_encoders(ctx), 0) << format << " " << structure;
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(OSSL_ENCODER_to_bio(ctx, bio), 1) << format << " " << structure;
  OSSL_ENCODER_CTX_free(ctx);
  return FromBio(bio);
}

// PKCS#8 EncryptedPrivateKeyInfo, PBES2 with PBKDF2 over prf_nid.
Bytes EncodeEncrypted(EVP_PKEY* pkey, bool pem, const EVP_CIPHER* cipher, int prf_nid,
                      const std::string& pass) {
  PKCS8_PRIV_KEY_INFO* p8 = EVP_PKEY2PKCS8(pkey);
  EXPECT_NE(p8, nullptr);
  X509_ALGOR* alg = PKCS5_pbe2_set_iv(cipher, 2048, nullptr, 0, nullptr, prf_nid);
  EXPECT_NE(alg, nullptr);
  X509_SIG* enc = PKCS8_set0_pbe(pass.data(), static_cast<int>(pass.size()), p8, alg);
  EXPECT_NE(enc, nullptr);
  PKCS8_PRIV_KEY_INFO_free(p8);
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(pem ? PEM_write_bio_PKCS8(bio, enc) : i2d_PKCS8_bio(bio, enc), 1);
  X509_SIG_free(enc);
  return FromBio(bio);
}

Bytes Bn(EVP_PKEY* pkey, const char* name) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(pkey, name, &bn), 1);
  Bytes out(BN_num_bytes(bn));
  BN_bn2bin(bn, out.data());
  BN_free(bn);
  return out;
}

// The public key in signer_abi.h's format, from libcrypto.
Bytes PublicOf(EVP_PKEY* pkey) {
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA: {
      Bytes n = Bn(pkey, OSSL_PKEY_PARAM_RSA_N), e = Bn(pkey, OSSL_PKEY_PARAM_RSA_E);
      n.insert(n.end(), e.begin(), e.end());
      return n;
    }
    case EVP_PKEY_EC: {
      Bytes pt(200);
      size_t len = 0;
      EXPECT_EQ(EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt.data(),
                                                pt.size(), &len),
                1);
      pt.resize(len);
      return pt;
    }
    default: {
      Bytes raw(32);
      size_t len = raw.size();
      EXPECT_EQ(EVP_PKEY_get_raw_public_key(pkey, raw.data(), &len), 1);
      raw.resize(len);
      return raw;
    }
  }
}

Pkey Gen(const char* type, const char* param = nullptr, size_t bits = 0) {
  EVP_PKEY* p = nullptr;
  if (bits) {
    p = EVP_PKEY_Q_keygen(nullptr, nullptr, type, bits);
  } else if (param) {
    p = EVP_PKEY_Q_keygen(nullptr, nullptr, type, param);
  } else {
    p = EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  }
  EXPECT_NE(p, nullptr) << type;
  return Pkey(p);
}

int Parse(const Bytes& b, const char* pass, Key* out) {
  cordon_signer_key* k = nullptr;
  int rc = cordon_signer_key_parse(b.data(), b.size(), pass, pass ? strlen(pass) : 0, &k);
  out->reset(k);
  if (rc != CORDON_SIGNER_OK) EXPECT_EQ(k, nullptr);
  return rc;
}

int ParseStatus(const Bytes& b, const char* pass = nullptr) {
  Key k;
  return Parse(b, pass, &k);
}

const EVP_MD* MdOf(uint32_t digest) {
  switch (digest) {
    case CORDON_SIGNER_DIGEST_SHA1:
      return EVP_sha1();
    case CORDON_SIGNER_DIGEST_SHA224:
      return EVP_sha224();
    case CORDON_SIGNER_DIGEST_SHA256:
      return EVP_sha256();
    case CORDON_SIGNER_DIGEST_SHA384:
      return EVP_sha384();
    case CORDON_SIGNER_DIGEST_SHA512:
      return EVP_sha512();
    default:
      return nullptr;
  }
}

Bytes RandomBytes(size_t n) {
  Bytes b(n);
  RAND_bytes(b.data(), static_cast<int>(n));
  return b;
}

Bytes Sign(const cordon_signer_key* k, uint32_t scheme, uint32_t digest, const Bytes& tbs,
           int32_t salt = -1) {
  Bytes sig(CORDON_SIGNER_MAX_SIGNATURE);
  size_t len = 0;
  EXPECT_EQ(cordon_signer_key_sign(k, scheme, digest, digest, salt, tbs.data(), tbs.size(), sig.data(),
                                   sig.size(), &len),
            CORDON_SIGNER_OK);
  sig.resize(len);
  return sig;
}

// libcrypto's verdict on a signature over a digest. salt: the PSS salt
// length to demand (an RSA_PSS_SALTLEN_* or a byte count).
bool Verify(EVP_PKEY* pkey, uint32_t scheme, uint32_t digest, const Bytes& tbs, const Bytes& sig,
            int salt = 0) {
  if (scheme == CORDON_SIGNER_ED25519) {
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    bool ok = EVP_DigestVerifyInit(md, nullptr, nullptr, nullptr, pkey) == 1 &&
              EVP_DigestVerify(md, sig.data(), sig.size(), tbs.data(), tbs.size()) == 1;
    EVP_MD_CTX_free(md);
    return ok;
  }
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
  bool ok = EVP_PKEY_verify_init(ctx) == 1;
  if (MdOf(digest)) ok = ok && EVP_PKEY_CTX_set_signature_md(ctx, MdOf(digest)) == 1;
  if (scheme == CORDON_SIGNER_RSA_PKCS1) ok = ok && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
  if (scheme == CORDON_SIGNER_RSA_PSS) {
    ok = ok && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, MdOf(digest)) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt) == 1;
  }
  ok = ok && EVP_PKEY_verify(ctx, sig.data(), sig.size(), tbs.data(), tbs.size()) == 1;
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

Bytes PublicOfKey(const cordon_signer_key* k, uint32_t* type = nullptr, uint32_t* bits = nullptr,
                  size_t* n_len = nullptr) {
  Bytes pub(CORDON_SIGNER_MAX_PUBLIC);
  uint32_t t = 0, b = 0;
  size_t len = 0, nl = 0;
  EXPECT_EQ(cordon_signer_key_public(k, &t, &b, pub.data(), pub.size(), &len, &nl), CORDON_SIGNER_OK);
  pub.resize(len);
  if (type) *type = t;
  if (bits) *bits = b;
  if (n_len) *n_len = nl;
  return pub;
}

// Every test ends with every signer block freed.
class SignerCore : public ::testing::Test {
 protected:
  void SetUp() override { live_ = signer_test_live_blocks(); }
  void TearDown() override {
    signer_test_fail_random(0);
    EXPECT_EQ(signer_test_live_blocks(), live_) << "signer memory leaked";
  }
  size_t live_ = 0;
};

// One key in each format the core reads, for one libcrypto key.
struct Form {
  std::string name;
  Bytes bytes;
  const char* pass;
};

std::vector<Form> FormsOf(EVP_PKEY* pkey, bool type_specific) {
  std::vector<Form> forms = {
      {"pkcs8-pem", Encode(pkey, "PEM", "PrivateKeyInfo"), nullptr},
      {"pkcs8-der", Encode(pkey, "DER", "PrivateKeyInfo"), nullptr},
  };
  struct Enc {
    const char* name;
    const EVP_CIPHER* cipher;
    int prf;
  } encs[] = {{"aes128-sha1", EVP_aes_128_cbc(), NID_hmacWithSHA1},
              {"aes128-sha256", EVP_aes_128_cbc(), NID_hmacWithSHA256},
              {"aes256-sha1", EVP_aes_256_cbc(), NID_hmacWithSHA1},
              {"aes256-sha256", EVP_aes_256_cbc(), NID_hmacWithSHA256}};
  for (const Enc& e : encs) {
    forms.push_back({std::string("enc-pem-") + e.name,
                     EncodeEncrypted(pkey, true, e.cipher, e.prf, "pass phrase"), "pass phrase"});
    forms.push_back({std::string("enc-der-") + e.name,
                     EncodeEncrypted(pkey, false, e.cipher, e.prf, "pass phrase"), "pass phrase"});
  }
  if (type_specific) {
    forms.push_back({"legacy-pem", Encode(pkey, "PEM", "type-specific"), nullptr});
    forms.push_back({"legacy-der", Encode(pkey, "DER", "type-specific"), nullptr});
  }
  return forms;
}

void CheckAllForms(EVP_PKEY* pkey, uint32_t want_type, uint32_t want_bits, bool type_specific) {
  Bytes want = PublicOf(pkey);
  for (const Form& f : FormsOf(pkey, type_specific)) {
    SCOPED_TRACE(f.name);
    Key k;
    ASSERT_EQ(Parse(f.bytes, f.pass, &k), CORDON_SIGNER_OK);
    uint32_t type = 0, bits = 0;
    size_t n_len = 0;
    EXPECT_EQ(PublicOfKey(k.get(), &type, &bits, &n_len), want);
    EXPECT_EQ(type, want_type);
    EXPECT_EQ(bits, want_bits);
    if (want_type == CORDON_SIGNER_KEY_RSA) {
      EXPECT_EQ(n_len, Bn(pkey, OSSL_PKEY_PARAM_RSA_N).size());
    } else {
      EXPECT_EQ(n_len, 0u);
    }
  }
}

TEST_F(SignerCore, RsaEveryFormat) {
  Pkey pkey = Gen("RSA", nullptr, 2048);
  CheckAllForms(pkey.get(), CORDON_SIGNER_KEY_RSA, 2048, true);
}

TEST_F(SignerCore, P256EveryFormat) {
  Pkey pkey = Gen("EC", "P-256");
  CheckAllForms(pkey.get(), CORDON_SIGNER_KEY_EC_P256, 256, true);
}

TEST_F(SignerCore, P384EveryFormat) {
  Pkey pkey = Gen("EC", "P-384");
  CheckAllForms(pkey.get(), CORDON_SIGNER_KEY_EC_P384, 384, true);
}

TEST_F(SignerCore, Ed25519EveryFormat) {
  Pkey pkey = Gen("ED25519");
  CheckAllForms(pkey.get(), CORDON_SIGNER_KEY_ED25519, 253, false);
}

// SEC1 without the public key: the core derives it.
TEST_F(SignerCore, Sec1WithoutPublicKeyDerivesIt) {
  for (const char* curve : {"P-256", "P-384"}) {
    SCOPED_TRACE(curve);
    Pkey pkey = Gen("EC", curve);
    Bytes full = Encode(pkey.get(), "DER", "type-specific");
    ASSERT_EQ(EVP_PKEY_set_int_param(pkey.get(), OSSL_PKEY_PARAM_EC_INCLUDE_PUBLIC, 0), 1);
    Bytes bare = Encode(pkey.get(), "DER", "type-specific");
    ASSERT_LT(bare.size(), full.size());
    Key k;
    ASSERT_EQ(Parse(bare, nullptr, &k), CORDON_SIGNER_OK);
    EXPECT_EQ(PublicOfKey(k.get()), PublicOf(pkey.get()));
    Bytes pk8 = Encode(pkey.get(), "PEM", "PrivateKeyInfo");
    ASSERT_EQ(Parse(pk8, nullptr, &k), CORDON_SIGNER_OK);
    EXPECT_EQ(PublicOfKey(k.get()), PublicOf(pkey.get()));
  }
}

// The smallest RSA key the core takes, and an odd size.
TEST_F(SignerCore, RsaSizes) {
  for (size_t bits : {1024, 1536 + 8}) {
    SCOPED_TRACE(bits);
    Pkey pkey = Gen("RSA", nullptr, bits);
    Key k;
    ASSERT_EQ(Parse(Encode(pkey.get(), "DER", "type-specific"), nullptr, &k), CORDON_SIGNER_OK);
    EXPECT_EQ(PublicOfKey(k.get()), PublicOf(pkey.get()));
    Bytes d = RandomBytes(64);
    EXPECT_TRUE(Verify(pkey.get(), CORDON_SIGNER_RSA_PKCS1, CORDON_SIGNER_DIGEST_SHA512, d,
                       Sign(k.get(), CORDON_SIGNER_RSA_PKCS1, CORDON_SIGNER_DIGEST_SHA512, d)));
    EXPECT_TRUE(Verify(pkey.get(), CORDON_SIGNER_RSA_PSS, CORDON_SIGNER_DIGEST_SHA512, d,
                       Sign(k.get(), CORDON_SIGNER_RSA_PSS, CORDON_SIGNER_DIGEST_SHA512, d, -2),
                       RSA_PSS_SALTLEN_MAX));
  }
}

const uint32_t kAllDigests[] = {CORDON_SIGNER_DIGEST_SHA1, CORDON_SIGNER_DIGEST_SHA224,
                                CORDON_SIGNER_DIGEST_SHA256, CORDON_SIGNER_DIGEST_SHA384,
                                CORDON_SIGNER_DIGEST_SHA512};

TEST_F(SignerCore, RsaPkcs1VerifiesWithLibcrypto) {
  Pkey pkey = Gen("RSA", nullptr, 2048);
  Key k;
  ASSERT_EQ(Parse(Encode(pkey.get(), "PEM", "PrivateKeyInfo"), nullptr, &k), CORDON_SIGNER_OK);
  for (uint32_t digest : kAllDigests) {
    SCOPED_TRACE(digest);
    Bytes d = RandomBytes(EVP_MD_get_size(MdOf(digest)));
    Bytes sig = Sign(k.get(), CORDON_SIGNER_RSA_PKCS1, digest, d);
    EXPECT_EQ(sig.size(), 256u);
    EXPECT_TRUE(Verify(pkey.get(), CORDON_SIGNER_RSA_PKCS1, digest, d, sig));
    // The verdict can fail: another digest, a changed signature.
    Bytes other = d;
    other[0] ^= 1;
    EXPECT_FALSE(Verify(pkey.get(), CORDON_SIGNER_RSA_PKCS1, digest, other, sig));
    // PKCS#1 v1.5 is deterministic: the blinding does not show.
    EXPECT_EQ(Sign(k.get(), CORDON_SIGNER_RSA_PKCS1, digest, d), sig);
  }
}

TEST_F(SignerCore, RsaPssVerifiesWithLibcryptoEverySaltMode) {
  Pkey pkey = Gen("RSA", nullptr, 2048);
  Key k;
  ASSERT_EQ(Parse(Encode(pkey.get(), "DER", "type-specific"), nullptr, &k), CORDON_SIGNER_OK);
  for (uint32_t digest :
       {CORDON_SIGNER_DIGEST_SHA256, CORDON_SIGNER_DIGEST_SHA384, CORDON_SIGNER_DIGEST_SHA512}) {
    SCOPED_TRACE(digest);
    int h = EVP_MD_get_size(MdOf(digest));
    int max = 256 - h - 2;
    Bytes d = RandomBytes(h);
    struct {
      int32_t ask;
      int demand;
    } modes[] = {{-1, h}, {-2, max}, {0, 0}, {20, 20}, {max, max}};
    for (auto m : modes) {
      SCOPED_TRACE(m.ask);
      Bytes sig = Sign(k.get(), CORDON_SIGNER_RSA_PSS, digest, d, m.ask);
      EXPECT_TRUE(Verify(pkey.get(), CORDON_SIGNER_RSA_PSS, digest, d, sig, m.demand));
      // Demanding another salt length fails: the length asked for is the one used.
      EXPECT_FALSE(
          Verify(pkey.get(), CORDON_SIGNER_RSA_PSS, digest, d, sig, m.demand == 0 ? 1 : m.demand - 1));
    }
    size_t len = 0;
    Bytes sig(512);
    EXPECT_EQ(cordon_signer_key_sign(k.get(), CORDON_SIGNER_RSA_PSS, digest, digest, max + 1, d.data(),
                                     d.size(), sig.data(), sig.size(), &len),
              CORDON_SIGNER_E_MISMATCH);
    EXPECT_EQ(cordon_signer_key_sign(k.get(), CORDON_SIGNER_RSA_PSS, digest, digest, -3, d.data(), d.size(),
                                     sig.data(), sig.size(), &len),
              CORDON_SIGNER_E_ARGUMENT);
    uint32_t other_mgf1 =
        digest == CORDON_SIGNER_DIGEST_SHA256 ? CORDON_SIGNER_DIGEST_SHA384 : CORDON_SIGNER_DIGEST_SHA256;
    EXPECT_EQ(cordon_signer_key_sign(k.get(), CORDON_SIGNER_RSA_PSS, digest, other_mgf1, -1, d.data(),
                                     d.size(), sig.data(), sig.size(), &len),
              CORDON_SIGNER_E_UNSUPPORTED);
  }
  // PSS over SHA-1 or SHA-224: nettle has neither.
  Bytes d = RandomBytes(20);
  size_t len = 0;
  Bytes sig(512);
  EXPECT_EQ(
      cordon_signer_key_sign(k.get(), CORDON_SIGNER_RSA_PSS, CORDON_SIGNER_DIGEST_SHA1,
                             CORDON_SIGNER_DIGEST_SHA1, -1, d.data(), d.size(), sig.data(), sig.size(), &len),
      CORDON_SIGNER_E_UNSUPPORTED);
}

TEST_F(SignerCore, EcdsaVerifiesWithLibcrypto) {
  for (const char* curve : {"P-256", "P-384"}) {
    SCOPED_TRACE(curve);
    Pkey pkey = Gen("EC", curve);
    Key k;
    ASSERT_EQ(Parse(Encode(pkey.get(), "PEM", "type-specific"), nullptr, &k), CORDON_SIGNER_OK);
    for (uint32_t digest : kAllDigests) {
      SCOPED_TRACE(digest);
      Bytes d = RandomBytes(EVP_MD_get_size(MdOf(digest)));
      Bytes sig = Sign(k.get(), CORDON_SIGNER_ECDSA, digest, d);
      EXPECT_TRUE(Verify(pkey.get(), CORDON_SIGNER_ECDSA, digest, d, sig));
      Bytes other = d;
      other[0] ^= 1;
      EXPECT_FALSE(Verify(pkey.get(), CORDON_SIGNER_ECDSA, digest, other, sig));
      // Hedged: the same digest twice gives two nonces.
      EXPECT_NE(Sign(k.get(), CORDON_SIGNER_ECDSA, digest, d), sig);
    }
    // No digest named: any length, truncated as SEC1 says.
    for (size_t n : {1, 17, 32, 48, 64}) {
      Bytes d = RandomBytes(n);
      EXPECT_TRUE(Verify(pkey.get(), CORDON_SIGNER_ECDSA, CORDON_SIGNER_DIGEST_NONE, d,
                         Sign(k.get(), CORDON_SIGNER_ECDSA, CORDON_SIGNER_DIGEST_NONE, d)))
          << n;
    }
  }
}

TEST_F(SignerCore, Ed25519VerifiesWithLibcrypto) {
  Pkey pkey = Gen("ED25519");
  Key k;
  ASSERT_EQ(Parse(Encode(pkey.get(), "DER", "PrivateKeyInfo"), nullptr, &k), CORDON_SIGNER_OK);
  for (size_t n : {0, 1, 64, 1000}) {
    SCOPED_TRACE(n);
    Bytes msg = RandomBytes(n);
    Bytes sig = Sign(k.get(), CORDON_SIGNER_ED25519, CORDON_SIGNER_DIGEST_NONE, msg);
    EXPECT_EQ(sig.size(), 64u);
    EXPECT_TRUE(Verify(pkey.get(), CORDON_SIGNER_ED25519, 0, msg, sig));
    Bytes bad = sig;
    bad[10] ^= 4;
    EXPECT_FALSE(Verify(pkey.get(), CORDON_SIGNER_ED25519, 0, msg, bad));
  }
}

TEST_F(SignerCore, SignRefusesWhatDoesNotFit) {
  Pkey rsa = Gen("RSA", nullptr, 1024), ec = Gen("EC", "P-256"), ed = Gen("ED25519");
  Key kr, ke, kd;
  ASSERT_EQ(Parse(Encode(rsa.get(), "DER", "PrivateKeyInfo"), nullptr, &kr), CORDON_SIGNER_OK);
  ASSERT_EQ(Parse(Encode(ec.get(), "DER", "PrivateKeyInfo"), nullptr, &ke), CORDON_SIGNER_OK);
  ASSERT_EQ(Parse(Encode(ed.get(), "DER", "PrivateKeyInfo"), nullptr, &kd), CORDON_SIGNER_OK);
  Bytes d = RandomBytes(32), sig(1024);
  size_t len = 0;
  auto sign = [&](const Key& k, uint32_t scheme, uint32_t digest, size_t tbs_len, size_t cap) {
    return cordon_signer_key_sign(k.get(), scheme, digest, digest, -1, d.data(), tbs_len, sig.data(), cap,
                                  &len);
  };
  const uint32_t sha256 = CORDON_SIGNER_DIGEST_SHA256;
  EXPECT_EQ(sign(ke, CORDON_SIGNER_RSA_PKCS1, sha256, 32, 1024), CORDON_SIGNER_E_MISMATCH);
  EXPECT_EQ(sign(kd, CORDON_SIGNER_RSA_PSS, sha256, 32, 1024), CORDON_SIGNER_E_MISMATCH);
  EXPECT_EQ(sign(kr, CORDON_SIGNER_ECDSA, sha256, 32, 1024), CORDON_SIGNER_E_MISMATCH);
  EXPECT_EQ(sign(ke, CORDON_SIGNER_ED25519, 0, 32, 1024), CORDON_SIGNER_E_MISMATCH);
  EXPECT_EQ(sign(kr, 99, sha256, 32, 1024), CORDON_SIGNER_E_ARGUMENT);
  EXPECT_EQ(sign(kr, CORDON_SIGNER_RSA_PKCS1, 99, 32, 1024), CORDON_SIGNER_E_ARGUMENT);
  EXPECT_EQ(sign(kr, CORDON_SIGNER_RSA_PKCS1, CORDON_SIGNER_DIGEST_NONE, 32, 1024), CORDON_SIGNER_E_ARGUMENT);
  EXPECT_EQ(sign(kd, CORDON_SIGNER_ED25519, sha256, 32, 1024), CORDON_SIGNER_E_ARGUMENT);
  // A digest of the wrong length.
  EXPECT_EQ(sign(kr, CORDON_SIGNER_RSA_PKCS1, sha256, 31, 1024), CORDON_SIGNER_E_MISMATCH);
  EXPECT_EQ(sign(ke, CORDON_SIGNER_ECDSA, sha256, 20, 1024), CORDON_SIGNER_E_MISMATCH);
  EXPECT_EQ(sign(ke, CORDON_SIGNER_ECDSA, CORDON_SIGNER_DIGEST_NONE, 0, 1024), CORDON_SIGNER_E_MISMATCH);
  // Too small a buffer: the size needed comes back.
  EXPECT_EQ(sign(kr, CORDON_SIGNER_RSA_PKCS1, sha256, 32, 127), CORDON_SIGNER_E_BUFFER);
  EXPECT_EQ(len, 128u);
  EXPECT_EQ(sign(ke, CORDON_SIGNER_ECDSA, sha256, 32, 71), CORDON_SIGNER_E_BUFFER);
  EXPECT_EQ(len, 72u);
  EXPECT_EQ(sign(kd, CORDON_SIGNER_ED25519, 0, 32, 63), CORDON_SIGNER_E_BUFFER);
  EXPECT_EQ(len, 64u);
  uint32_t type, bits;
  size_t pub_len, n_len;
  uint8_t pub[64];
  EXPECT_EQ(cordon_signer_key_public(ke.get(), &type, &bits, pub, 64, &pub_len, &n_len),
            CORDON_SIGNER_E_BUFFER);
  EXPECT_EQ(pub_len, 65u);
  EXPECT_EQ(cordon_signer_key_public(kr.get(), &type, &bits, pub, 64, &pub_len, &n_len),
            CORDON_SIGNER_E_BUFFER);
  EXPECT_EQ(pub_len, 131u);
  // No randomness, no signature (RSA's blinding and PSS salt, ECDSA's nonce).
  signer_test_fail_random(1);
  EXPECT_EQ(sign(kr, CORDON_SIGNER_RSA_PKCS1, sha256, 32, 1024), CORDON_SIGNER_E_CRYPTO);
  EXPECT_EQ(sign(ke, CORDON_SIGNER_ECDSA, sha256, 32, 1024), CORDON_SIGNER_E_CRYPTO);
  EXPECT_EQ(len, 0u);
  signer_test_fail_random(0);
  // Null arguments.
  EXPECT_EQ(cordon_signer_key_sign(nullptr, CORDON_SIGNER_ECDSA, sha256, 0, 0, d.data(), 32, sig.data(), 1024,
                                   &len),
            CORDON_SIGNER_E_ARGUMENT);
  EXPECT_EQ(cordon_signer_key_sign(ke.get(), CORDON_SIGNER_ECDSA, sha256, 0, 0, nullptr, 32, sig.data(), 1024,
                                   &len),
            CORDON_SIGNER_E_ARGUMENT);
  EXPECT_EQ(cordon_signer_key_parse(d.data(), 32, nullptr, 0, nullptr), CORDON_SIGNER_E_ARGUMENT);
  cordon_signer_key_destroy(nullptr);
}

TEST_F(SignerCore, Passphrases) {
  Pkey pkey = Gen("EC", "P-256");
  for (bool pem : {true, false}) {
    Bytes enc = EncodeEncrypted(pkey.get(), pem, EVP_aes_256_cbc(), NID_hmacWithSHA256, "right");
    EXPECT_EQ(ParseStatus(enc, "right"), CORDON_SIGNER_OK);
    EXPECT_EQ(ParseStatus(enc, "wrong"), CORDON_SIGNER_E_PASSPHRASE);
    EXPECT_EQ(ParseStatus(enc, "righ"), CORDON_SIGNER_E_PASSPHRASE);
    EXPECT_EQ(ParseStatus(enc, ""), CORDON_SIGNER_E_PASSPHRASE);
    EXPECT_EQ(ParseStatus(enc, nullptr), CORDON_SIGNER_E_PASSPHRASE);
  }
  // Many wrong passphrases: each is told apart from a corrupt file, even
  // when the padding happens to look right.
  Bytes enc = EncodeEncrypted(pkey.get(), false, EVP_aes_128_cbc(), NID_hmacWithSHA1, "right");
  for (int i = 0; i < 300; i++) {
    std::string wrong = "wrong" + std::to_string(i);
    ASSERT_EQ(ParseStatus(enc, wrong.c_str()), CORDON_SIGNER_E_PASSPHRASE) << wrong;
  }
  // A plain key ignores a passphrase.
  EXPECT_EQ(ParseStatus(Encode(pkey.get(), "PEM", "PrivateKeyInfo"), "unused"), CORDON_SIGNER_OK);
}

TEST_F(SignerCore, Unsupported) {
  // RSA below 1024 bits.
  Pkey rsa512 = Gen("RSA", nullptr, 512);
  EXPECT_EQ(ParseStatus(Encode(rsa512.get(), "PEM", "PrivateKeyInfo")), CORDON_SIGNER_E_UNSUPPORTED);
  EXPECT_EQ(ParseStatus(Encode(rsa512.get(), "DER", "type-specific")), CORDON_SIGNER_E_UNSUPPORTED);
  // A public exponent longer than the 16 bytes the ABI carries beside n
  // (CORDON_SIGNER_MAX_PUBLIC); 16 bytes load, with e given back whole.
  for (const int e_bits : {128, 129}) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
    ASSERT_EQ(EVP_PKEY_keygen_init(ctx), 1);
    ASSERT_EQ(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 1024), 1);
    BIGNUM* e = BN_new();
    ASSERT_EQ(BN_set_bit(e, e_bits - 1), 1);
    ASSERT_EQ(BN_set_bit(e, 16), 1);
    ASSERT_EQ(BN_set_bit(e, 0), 1);
    ASSERT_EQ(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e), 1);
    EVP_PKEY* raw = nullptr;
    ASSERT_EQ(EVP_PKEY_keygen(ctx, &raw), 1);
    EVP_PKEY_CTX_free(ctx);
    Pkey big_e(raw);
    Key k;
    const int rc = Parse(Encode(big_e.get(), "DER", "type-specific"), nullptr, &k);
    if (e_bits > 128) {
      EXPECT_EQ(rc, CORDON_SIGNER_E_UNSUPPORTED) << e_bits;
      EXPECT_EQ(ParseStatus(Encode(big_e.get(), "PEM", "PrivateKeyInfo")), CORDON_SIGNER_E_UNSUPPORTED);
    } else {
      ASSERT_EQ(rc, CORDON_SIGNER_OK) << e_bits;
      uint32_t type = 0, bits = 0;
      uint8_t pub[CORDON_SIGNER_MAX_PUBLIC];
      size_t pub_len = 0, n_len = 0;
      ASSERT_EQ(cordon_signer_key_public(k.get(), &type, &bits, pub, sizeof pub, &pub_len, &n_len),
                CORDON_SIGNER_OK);
      EXPECT_EQ(pub_len - n_len, 16u);
      Bytes want(16);
      ASSERT_EQ(BN_bn2binpad(e, want.data(), 16), 16);
      EXPECT_EQ(Bytes(pub + n_len, pub + pub_len), want);
    }
    BN_free(e);
  }
  // P-521, in PKCS#8 and SEC1.
  Pkey p521 = Gen("EC", "P-521");
  EXPECT_EQ(ParseStatus(Encode(p521.get(), "PEM", "PrivateKeyInfo")), CORDON_SIGNER_E_UNSUPPORTED);
  EXPECT_EQ(ParseStatus(Encode(p521.get(), "PEM", "type-specific")), CORDON_SIGNER_E_UNSUPPORTED);
  EXPECT_EQ(ParseStatus(Encode(p521.get(), "DER", "type-specific")), CORDON_SIGNER_E_UNSUPPORTED);
  // X25519, Ed448.
  Pkey x25519 = Gen("X25519"), ed448 = Gen("ED448");
  EXPECT_EQ(ParseStatus(Encode(x25519.get(), "DER", "PrivateKeyInfo")), CORDON_SIGNER_E_UNSUPPORTED);
  EXPECT_EQ(ParseStatus(Encode(ed448.get(), "PEM", "PrivateKeyInfo")), CORDON_SIGNER_E_UNSUPPORTED);
  // DSA, as PKCS#8 and as "DSA PRIVATE KEY".
  EVP_PKEY_CTX* pctx = EVP_PKEY_CTX_new_from_name(nullptr, "DSA", nullptr);
  EVP_PKEY* params = nullptr;
  ASSERT_EQ(EVP_PKEY_paramgen_init(pctx), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_dsa_paramgen_bits(pctx, 1024), 1);
  ASSERT_EQ(EVP_PKEY_paramgen(pctx, &params), 1);
  EVP_PKEY_CTX_free(pctx);
  pctx = EVP_PKEY_CTX_new_from_pkey(nullptr, params, nullptr);
  EVP_PKEY* dsa_raw = nullptr;
  ASSERT_EQ(EVP_PKEY_keygen_init(pctx), 1);
  ASSERT_EQ(EVP_PKEY_keygen(pctx, &dsa_raw), 1);
  EVP_PKEY_CTX_free(pctx);
  EVP_PKEY_free(params);
  Pkey dsa(dsa_raw);
  EXPECT_EQ(ParseStatus(Encode(dsa.get(), "DER", "PrivateKeyInfo")), CORDON_SIGNER_E_UNSUPPORTED);
  EXPECT_EQ(ParseStatus(Encode(dsa.get(), "PEM", "type-specific")), CORDON_SIGNER_E_UNSUPPORTED);
  // Legacy PEM encryption ("Proc-Type: 4,ENCRYPTED", MD5 key derivation).
  Pkey ec = Gen("EC", "P-256");
  BIO* bio = BIO_new(BIO_s_mem());
  ASSERT_EQ(
      PEM_write_bio_PrivateKey_traditional(bio, ec.get(), EVP_aes_128_cbc(),
                                           reinterpret_cast<const unsigned char*>("pw"), 2, nullptr, nullptr),
      1);
  Bytes legacy = FromBio(bio);
  ASSERT_NE(std::string(legacy.begin(), legacy.end()).find("Proc-Type: 4,ENCRYPTED"), std::string::npos);
  EXPECT_EQ(ParseStatus(legacy, "pw"), CORDON_SIGNER_E_UNSUPPORTED);
  // PBKDF2 rounds past the limit (10^7): refused before any round is run,
  // with or without a passphrase; zero rounds are corrupt. (DER by hand:
  // libcrypto would run the rounds to write it.)
  const auto tlv = [](uint8_t tag, const Bytes& body) {
    Bytes out{tag};
    if (body.size() < 0x80) {
      out.push_back(static_cast<uint8_t>(body.size()));
    } else {
      out.push_back(0x81);
      out.push_back(static_cast<uint8_t>(body.size()));
    }
    out.insert(out.end(), body.begin(), body.end());
    return out;
  };
  const auto cat = [](std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  const auto pbes2 = [&](uint32_t rounds) {
    Bytes count;
    for (int shift = 24; shift >= 0; shift -= 8) count.push_back(static_cast<uint8_t>(rounds >> shift));
    while (count.size() > 1 && count[0] == 0 && !(count[1] & 0x80)) count.erase(count.begin());
    const Bytes oid_pbes2{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d};
    const Bytes oid_pbkdf2{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c};
    const Bytes oid_aes128{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02};
    const Bytes kdf =
        tlv(0x30, cat({tlv(0x06, oid_pbkdf2), tlv(0x30, cat({tlv(0x04, Bytes(8, 1)), tlv(0x02, count)}))}));
    const Bytes enc = tlv(0x30, cat({tlv(0x06, oid_aes128), tlv(0x04, Bytes(16, 2))}));
    const Bytes alg = tlv(0x30, cat({tlv(0x06, oid_pbes2), tlv(0x30, cat({kdf, enc}))}));
    return tlv(0x30, cat({alg, tlv(0x04, Bytes(16, 3))}));
  };
  EXPECT_EQ(ParseStatus(pbes2(10 * 1000 * 1000 + 1), "pw"), CORDON_SIGNER_E_UNSUPPORTED);
  EXPECT_EQ(ParseStatus(pbes2(10 * 1000 * 1000 + 1)), CORDON_SIGNER_E_UNSUPPORTED);
  EXPECT_EQ(ParseStatus(pbes2(0), "pw"), CORDON_SIGNER_E_FORMAT);
  EXPECT_EQ(ParseStatus(pbes2(1), "pw"), CORDON_SIGNER_E_PASSPHRASE);  // the DER is right: the rounds run
  // PBES2 with a cipher the core does not do (AES-192, 3DES).
  EXPECT_EQ(ParseStatus(EncodeEncrypted(ec.get(), true, EVP_aes_192_cbc(), NID_hmacWithSHA256, "pw"), "pw"),
            CORDON_SIGNER_E_UNSUPPORTED);
  EXPECT_EQ(ParseStatus(EncodeEncrypted(ec.get(), false, EVP_des_ede3_cbc(), NID_hmacWithSHA256, "pw"), "pw"),
            CORDON_SIGNER_E_UNSUPPORTED);
  // PBKDF2 over HMAC-SHA512.
  EXPECT_EQ(ParseStatus(EncodeEncrypted(ec.get(), false, EVP_aes_256_cbc(), NID_hmacWithSHA512, "pw"), "pw"),
            CORDON_SIGNER_E_UNSUPPORTED);
}

TEST_F(SignerCore, GarbageAndEmpty) {
  EXPECT_EQ(cordon_signer_key_parse(nullptr, 0, nullptr, 0, nullptr), CORDON_SIGNER_E_ARGUMENT);
  cordon_signer_key* k = nullptr;
  EXPECT_EQ(cordon_signer_key_parse(nullptr, 0, nullptr, 0, &k), CORDON_SIGNER_E_FORMAT);
  EXPECT_EQ(cordon_signer_key_parse(nullptr, 5, nullptr, 0, &k), CORDON_SIGNER_E_ARGUMENT);
  const uint8_t one = 0x30;
  EXPECT_EQ(cordon_signer_key_parse(&one, 1, nullptr, 0, &k), CORDON_SIGNER_E_FORMAT);
  EXPECT_EQ(cordon_signer_key_parse(&one, 1, nullptr, 3, &k), CORDON_SIGNER_E_ARGUMENT);
  EXPECT_EQ(k, nullptr);
  for (int i = 0; i < 200; i++) {
    Bytes g = RandomBytes(1 + i * 7);
    if (i % 2) g[0] = 0x30;  // looks like DER
    int rc = ParseStatus(g);
    EXPECT_EQ(rc, CORDON_SIGNER_E_FORMAT) << i;
  }
  auto text = [](const std::string& s) { return Bytes(s.begin(), s.end()); };
  EXPECT_EQ(ParseStatus(text("hello")), CORDON_SIGNER_E_FORMAT);
  EXPECT_EQ(ParseStatus(text("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n")),
            CORDON_SIGNER_E_FORMAT);
  EXPECT_EQ(ParseStatus(text("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PUBLIC KEY-----\n")),
            CORDON_SIGNER_E_FORMAT);
  EXPECT_EQ(ParseStatus(text("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n")),
            CORDON_SIGNER_E_FORMAT);
  EXPECT_EQ(
      ParseStatus(text("-----BEGIN OPENSSH PRIVATE KEY-----\nMAA=\n-----END OPENSSH PRIVATE KEY-----\n")),
      CORDON_SIGNER_E_UNSUPPORTED);
  // A public key, or a label that promises another structure.
  Pkey ec = Gen("EC", "P-256");
  OSSL_ENCODER_CTX* ctx = OSSL_ENCODER_CTX_new_for_pkey(ec.get(), OSSL_KEYMGMT_SELECT_PUBLIC_KEY, "PEM",
                                                        "SubjectPublicKeyInfo", nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  ASSERT_EQ(OSSL_ENCODER_to_bio(ctx, bio), 1);
  OSSL_ENCODER_CTX_free(ctx);
  EXPECT_EQ(ParseStatus(FromBio(bio)), CORDON_SIGNER_E_FORMAT);
  std::string sec1 = [&] {
    Bytes b = Encode(ec.get(), "PEM", "type-specific");
    return std::string(b.begin(), b.end());
  }();
  std::string relabeled = sec1;
  for (size_t at; (at = relabeled.find("EC PRIVATE KEY")) != std::string::npos;)
    relabeled.replace(at, 2, "RSA");
  EXPECT_EQ(ParseStatus(text(relabeled)), CORDON_SIGNER_E_FORMAT);
  // Other blocks before the key are skipped (openssl ecparam -genkey writes EC PARAMETERS first).
  EXPECT_EQ(ParseStatus(text(
                "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" + sec1)),
            CORDON_SIGNER_OK);
}

// One key of each type, cut at every length, as DER and PEM, plain and
// encrypted: E_FORMAT each time (never a crash, never a leak).
TEST_F(SignerCore, TruncatedAtEveryLength) {
  Pkey keys[] = {Gen("RSA", nullptr, 2048), Gen("EC", "P-256"), Gen("EC", "P-384"), Gen("ED25519")};
  for (const Pkey& pkey : keys) {
    std::vector<Form> forms = {
        {"pkcs8-der", Encode(pkey.get(), "DER", "PrivateKeyInfo"), nullptr},
        {"pkcs8-pem", Encode(pkey.get(), "PEM", "PrivateKeyInfo"), nullptr},
        {"enc-der", EncodeEncrypted(pkey.get(), false, EVP_aes_128_cbc(), NID_hmacWithSHA256, "p"), "p"},
    };
    if (EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_ED25519)
      forms.push_back({"legacy-der", Encode(pkey.get(), "DER", "type-specific"), nullptr});
    for (const Form& f : forms) {
      SCOPED_TRACE(f.name);
      ASSERT_EQ(ParseStatus(f.bytes, f.pass), CORDON_SIGNER_OK);
      // A PEM file cut only in its final line break is still whole.
      size_t whole = f.bytes.back() == '\n' ? f.bytes.size() - 1 : f.bytes.size();
      for (size_t n = 0; n < whole; n++) {
        Bytes cut(f.bytes.begin(), f.bytes.begin() + n);
        ASSERT_EQ(ParseStatus(cut, f.pass), CORDON_SIGNER_E_FORMAT) << "cut at " << n;
      }
    }
  }
}

// Every single byte of a key flipped: a failure status, or a key that is
// still the same key (the RSA private exponent d, which signing never uses,
// and the bytes of a stated public point that a curve check catches), and
// signs what libcrypto verifies.
TEST_F(SignerCore, FlippedBytes) {
  Pkey keys[] = {Gen("RSA", nullptr, 1024), Gen("EC", "P-256"), Gen("ED25519")};
  for (const Pkey& pkey : keys) {
    Bytes der = Encode(pkey.get(), "DER", "PrivateKeyInfo");
    Bytes want = PublicOf(pkey.get());
    int type = EVP_PKEY_get_base_id(pkey.get());
    for (size_t i = 0; i < der.size(); i++) {
      for (uint8_t mask : {0x01, 0x80}) {
        Bytes bad = der;
        bad[i] ^= mask;
        Key k;
        int rc = Parse(bad, nullptr, &k);
        if (rc == CORDON_SIGNER_OK) {
          if (type == EVP_PKEY_ED25519) continue;  // a seed byte: another valid key
          ASSERT_EQ(PublicOfKey(k.get()), want) << "byte " << i;
          Bytes d = RandomBytes(32);
          uint32_t scheme = type == EVP_PKEY_RSA ? CORDON_SIGNER_RSA_PKCS1 : CORDON_SIGNER_ECDSA;
          ASSERT_TRUE(Verify(pkey.get(), scheme, CORDON_SIGNER_DIGEST_SHA256, d,
                             Sign(k.get(), scheme, CORDON_SIGNER_DIGEST_SHA256, d)))
              << "byte " << i;
        } else {
          ASSERT_TRUE(rc == CORDON_SIGNER_E_FORMAT || rc == CORDON_SIGNER_E_UNSUPPORTED)
              << rc << " byte " << i;
        }
      }
    }
  }
  // The encrypted form: a flipped byte is a wrong passphrase, a corrupt or
  // an unsupported file.
  Pkey ec = Gen("EC", "P-256");
  Bytes enc = EncodeEncrypted(ec.get(), false, EVP_aes_128_cbc(), NID_hmacWithSHA1, "p");
  for (size_t i = 0; i < enc.size(); i++) {
    Bytes bad = enc;
    bad[i] ^= 0x01;
    int rc = ParseStatus(bad, "p");
    ASSERT_TRUE(rc == CORDON_SIGNER_E_FORMAT || rc == CORDON_SIGNER_E_UNSUPPORTED ||
                rc == CORDON_SIGNER_E_PASSPHRASE || rc == CORDON_SIGNER_OK)
        << rc << " byte " << i;
  }
}

}  // namespace
