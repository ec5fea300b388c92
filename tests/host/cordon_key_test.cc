// cordon-key and the key reference format (tools/cordon-key/): the format
// round trip and every way a file can be refused; the tool end to end on
// random keys of each type and encoding, checked against the public key
// computed here another way; refused key types, passphrases, --public,
// corrupt input, exit codes and output written whole or not at all.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tools/cordon-key/reference.h"

namespace {

using cordon::keyref::KeyReference;
using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

struct Result {
  int code = -1;
  std::string out, err;
};

class CordonKey : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cordon-key-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    const std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(system(cmd.c_str()), 0);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  Result Tool(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), CORDON_KEY_TOOL);
    const std::string out = Path(".out"), err = Path(".err");
    const pid_t pid = fork();
    if (pid == 0) {
      const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(o, 1);
      dup2(e, 2);
      for (const std::string& kv : env) putenv(const_cast<char*>(kv.c_str()));
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = Read(out);
    r.err = Read(err);
    unlink(out.c_str());
    unlink(err.c_str());
    return r;
  }

  static std::string Read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  void Write(const std::string& name, const std::string& data) {
    std::ofstream f(Path(name), std::ios::binary);
    f << data;
  }
  // Files in the directory (to see that nothing was left behind).
  std::vector<std::string> Files() const {
    std::vector<std::string> names;
    DIR* d = opendir(dir_.c_str());
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    }
    closedir(d);
    return names;
  }

  std::string dir_;
};

PkeyPtr Generate(const char* type, const char* param = nullptr, size_t bits = 0) {
  EVP_PKEY* k = nullptr;
  if (bits != 0) {
    // EVP_PKEY_Q_keygen takes a size only for "RSA", not "RSA-PSS".
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    if (ctx != nullptr && EVP_PKEY_keygen_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, static_cast<int>(bits)) == 1) {
      EVP_PKEY_generate(ctx, &k);
    }
    EVP_PKEY_CTX_free(ctx);
  } else if (param != nullptr) {
    k = EVP_PKEY_Q_keygen(nullptr, nullptr, type, param);
  } else {
    k = EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  }
  return PkeyPtr(k, EVP_PKEY_free);
}

std::string Encode(EVP_PKEY* k, int selection, const char* format, const char* structure,
                   const char* pass = nullptr) {
  OSSL_ENCODER_CTX* ctx = OSSL_ENCODER_CTX_new_for_pkey(k, selection, format, structure, nullptr);
  std::string out;
  if (pass != nullptr) {
    OSSL_ENCODER_CTX_set_cipher(ctx, "AES-256-CBC", nullptr);
    OSSL_ENCODER_CTX_set_passphrase(ctx, reinterpret_cast<const unsigned char*>(pass), strlen(pass));
  }
  unsigned char* data = nullptr;
  size_t len = 0;
  if (OSSL_ENCODER_to_data(ctx, &data, &len) == 1) out.assign(reinterpret_cast<char*>(data), len);
  OPENSSL_free(data);
  OSSL_ENCODER_CTX_free(ctx);
  return out;
}

std::string Bn(EVP_PKEY* k, const char* name) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(k, name, &bn), 1);
  std::string s(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(s.data()));
  BN_free(bn);
  return s;
}

// The public key in signer_abi.h's format, computed another way than the
// tool does: RSA n || e from the key's numbers; EC and Ed25519 from the
// tail of the SubjectPublicKeyInfo DER (its BIT STRING: the uncompressed
// point, the 32-byte key).
std::string ExpectedPublic(EVP_PKEY* k) {
  const int id = EVP_PKEY_get_base_id(k);
  if (id == EVP_PKEY_RSA) return Bn(k, OSSL_PKEY_PARAM_RSA_N) + Bn(k, OSSL_PKEY_PARAM_RSA_E);
  const std::string spki = Encode(k, EVP_PKEY_PUBLIC_KEY, "DER", "SubjectPublicKeyInfo");
  const size_t len =
      id == EVP_PKEY_ED25519 ? 32 : 1 + 2 * static_cast<size_t>((EVP_PKEY_get_bits(k) + 7) / 8);
  return spki.substr(spki.size() - len);
}

std::string SelfSigned(EVP_PKEY* k) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, k);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("test"), -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_sign(x, k, EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256());
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(b);
  X509_free(x);
  return s;
}

KeyReference Valid() {
  return {"/etc/ssl/private/key.pem", "ec-p256", cordon::keyref::Sha256Hex("public")};
}

// ---- The format ----

TEST(KeyReferenceFormat, RoundTrip) {
  for (const char* type : {"rsa", "ec-p256", "ec-p384", "ed25519"}) {
    KeyReference ref = Valid();
    ref.type = type;
    ref.path = "/a path/with spaces/and-üñíçødé/" + std::string(200, 'x') + ".pem";
    const std::string file = cordon::keyref::Format(ref);
    KeyReference back;
    std::string error;
    ASSERT_TRUE(cordon::keyref::Parse(file, &back, &error)) << error << "\n" << file;
    EXPECT_EQ(back.path, ref.path);
    EXPECT_EQ(back.type, ref.type);
    EXPECT_EQ(back.public_sha256, ref.public_sha256);
    // 64 columns, armour lines, a final newline.
    EXPECT_EQ(file.rfind(std::string(cordon::keyref::kBegin) + "\n", 0), 0u);
    EXPECT_EQ(file.substr(file.size() - strlen(cordon::keyref::kEnd) - 1),
              std::string(cordon::keyref::kEnd) + "\n");
    std::istringstream lines(file);
    std::string line;
    std::getline(lines, line);
    std::vector<std::string> body;
    while (std::getline(lines, line) && line != cordon::keyref::kEnd) body.push_back(line);
    for (size_t i = 0; i + 1 < body.size(); ++i) EXPECT_EQ(body[i].size(), 64u);
  }
}

TEST(KeyReferenceFormat, TheTextIsTheBriefs) {
  const std::string file = cordon::keyref::Format(Valid());
  const std::string b64 =
      file.substr(strlen(cordon::keyref::kBegin) + 1,
                  file.size() - strlen(cordon::keyref::kBegin) - strlen(cordon::keyref::kEnd) - 2);
  std::string joined;
  for (char c : b64) {
    if (c != '\n') joined += c;
  }
  std::string text(joined.size(), '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(text.data()),
                      reinterpret_cast<const unsigned char*>(joined.data()), static_cast<int>(joined.size()));
  ASSERT_GT(n, 0);
  text.resize(static_cast<size_t>(n));
  while (!text.empty() && text.back() == '\0') text.pop_back();  // EVP_DecodeBlock keeps the padding's zeros
  EXPECT_EQ(text, "cordon-key-reference 1\npath /etc/ssl/private/key.pem\ntype ec-p256\npublic-sha256 " +
                      cordon::keyref::Sha256Hex("public") + "\n");
}

// A file around `text` (base64, 64 columns), to forge refused contents.
std::string Armour(const std::string& text) {
  std::string b64(4 * ((text.size() + 2) / 3) + 1, '\0');
  b64.resize(static_cast<size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                                 reinterpret_cast<const unsigned char*>(text.data()),
                                                 static_cast<int>(text.size()))));
  std::string out = std::string(cordon::keyref::kBegin) + "\n";
  for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  return out + cordon::keyref::kEnd + "\n";
}

TEST(KeyReferenceFormat, RefusesEverythingElse) {
  const std::string hash = cordon::keyref::Sha256Hex("public");
  const std::string good_text = "cordon-key-reference 1\npath /k.pem\ntype rsa\npublic-sha256 " + hash + "\n";
  const std::string good = Armour(good_text);
  KeyReference ref;
  std::string error;
  ASSERT_TRUE(cordon::keyref::Parse(good, &ref, &error)) << error;

  std::string flipped = good;
  flipped[strlen(cordon::keyref::kBegin) + 5] = '*';
  std::string no_final_newline = good.substr(0, good.size() - 1);
  const struct {
    const char* name;
    std::string file;
    const char* why;
  } kBad[] = {
      {"empty", "", "not a key reference"},
      {"a PEM private key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
       "not a key reference"},
      {"truncated", good.substr(0, good.size() / 2), "truncated"},
      {"text after the end", good + "more\n", "truncated or followed"},
      {"CRLF line ends", std::string(cordon::keyref::kBegin) + "\r\n", "carriage returns"},
      {"a character outside base64", flipped, "base64 is corrupt"},
      {"a short middle line", Armour(good_text).replace(strlen(cordon::keyref::kBegin) + 1 + 10, 1, "\n"),
       "columns"},
      {"version 2", Armour("cordon-key-reference 2\npath /k.pem\ntype rsa\npublic-sha256 " + hash + "\n"),
       "version '2'"},
      {"an unknown key", Armour(good_text + "comment hello\n"), "unknown key"},
      {"another order", Armour("cordon-key-reference 1\ntype rsa\npath /k.pem\npublic-sha256 " + hash + "\n"),
       "expected 'path'"},
      {"a relative path",
       Armour("cordon-key-reference 1\npath k.pem\ntype rsa\npublic-sha256 " + hash + "\n"), "not absolute"},
      {"an unknown type",
       Armour("cordon-key-reference 1\npath /k.pem\ntype dsa\npublic-sha256 " + hash + "\n"),
       "unknown key type"},
      {"control bytes in the type",
       Armour("cordon-key-reference 1\npath /k.pem\ntype r\x1b[2J" + std::string(1, '\0') +
              "\\sa\npublic-sha256 " + hash + "\n"),
       "unknown key type 'r\\x1b[2J\\x00\\x5csa' (rsa,"},
      {"a long first key",
       Armour(std::string(100, 'k') + " 1\npath /k.pem\ntype rsa\npublic-sha256 " + hash + "\n"),
       "of the text is 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...', expected"},
      {"uppercase hex",
       Armour("cordon-key-reference 1\npath /k.pem\ntype rsa\npublic-sha256 " + std::string(64, 'A') + "\n"),
       "64 lowercase hex"},
      {"a short hash", Armour("cordon-key-reference 1\npath /k.pem\ntype rsa\npublic-sha256 abcd\n"),
       "64 lowercase hex"},
      {"no final newline in the text", Armour(good_text.substr(0, good_text.size() - 1)), "ends before"},
      {"a missing value", Armour("cordon-key-reference 1\npath\ntype rsa\npublic-sha256 " + hash + "\n"),
       "has no value"},
      {"too long", good + std::string(cordon::keyref::kMaxFile, 'A'), "longer than"},
  };
  for (const auto& b : kBad) {
    error.clear();
    EXPECT_FALSE(cordon::keyref::Parse(b.file, &ref, &error)) << b.name;
    EXPECT_NE(error.find(b.why), std::string::npos) << b.name << ": " << error;
  }
  // The armour's last line may lack its newline (an editor's choice).
  EXPECT_TRUE(cordon::keyref::Parse(no_final_newline, &ref, &error)) << error;
}

// ---- The tool ----

struct KeyCase {
  const char* name;
  const char* alg;
  const char* param;
  size_t bits;
  const char* type;
};
const KeyCase kKeys[] = {{"RSA-2048", "RSA", nullptr, 2048, "rsa"},
                         {"RSA-1024", "RSA", nullptr, 1024, "rsa"},
                         {"P-256", "EC", "P-256", 0, "ec-p256"},
                         {"P-384", "EC", "P-384", 0, "ec-p384"},
                         {"Ed25519", "ED25519", nullptr, 0, "ed25519"}};

TEST_F(CordonKey, RoundTripEveryTypeAndEncoding) {
  for (const KeyCase& kc : kKeys) {
    PkeyPtr k = Generate(kc.alg, kc.param, kc.bits);
    ASSERT_NE(k, nullptr) << kc.name;
    const std::string expected = cordon::keyref::Sha256Hex(ExpectedPublic(k.get()));
    const struct {
      const char* name;
      std::string data;
    } kEncodings[] = {
        {"pkcs8.pem", Encode(k.get(), EVP_PKEY_KEYPAIR, "PEM", "PrivateKeyInfo")},
        {"pkcs8.der", Encode(k.get(), EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo")},
        {"traditional.pem", Encode(k.get(), EVP_PKEY_KEYPAIR, "PEM", "type-specific")},
    };
    for (const auto& e : kEncodings) {
      if (e.data.empty()) continue;  // Ed25519 has no traditional form
      Write(e.name, e.data);
      const Result r = Tool({"ref", Path(e.name), "-o", Path("key.ref")});
      ASSERT_EQ(r.code, 0) << kc.name << " " << e.name << ": " << r.err;
      EXPECT_EQ(r.out, "");
      const Result show = Tool({"show", Path("key.ref")});
      ASSERT_EQ(show.code, 0) << show.err;
      EXPECT_EQ(show.out, "path " + Path(e.name) + "\ntype " + kc.type + "\npublic-sha256 " + expected + "\n")
          << kc.name << " " << e.name;
    }
  }
}

TEST_F(CordonKey, RelativePathBecomesAbsolute) {
  PkeyPtr k = Generate("ED25519");
  Write("key.pem", Encode(k.get(), EVP_PKEY_KEYPAIR, "PEM", "PrivateKeyInfo"));
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(chdir(dir_.c_str()), 0);
  const Result r = Tool({"ref", "./key.pem", "-o", "-"});
  ASSERT_EQ(chdir(cwd), 0);
  ASSERT_EQ(r.code, 0) << r.err;
  KeyReference ref;
  std::string error;
  ASSERT_TRUE(cordon::keyref::Parse(r.out, &ref, &error)) << error;
  char real[PATH_MAX];
  ASSERT_NE(realpath(dir_.c_str(), real), nullptr);
  EXPECT_TRUE(ref.path == Path("key.pem") || ref.path == std::string(real) + "/key.pem") << ref.path;
}

TEST_F(CordonKey, RefusesKeysTheSignerDoesNotTake) {
  // RSA-1024 with e = 2^128 + 2^16 + 1: one bit past the signer's 16 bytes.
  const auto big_exponent = [] {
    EVP_PKEY* k = nullptr;
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
    BIGNUM* e = BN_new();
    if (ctx != nullptr && e != nullptr && BN_set_bit(e, 128) == 1 && BN_set_bit(e, 16) == 1 &&
        BN_set_bit(e, 0) == 1 && EVP_PKEY_keygen_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 1024) == 1 &&
        EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e) == 1) {
      EVP_PKEY_generate(ctx, &k);
    }
    BN_free(e);
    EVP_PKEY_CTX_free(ctx);
    return PkeyPtr(k, EVP_PKEY_free);
  };
  const struct {
    const char* name;
    PkeyPtr key;
    const char* says;
  } kRefused[] = {
      {"Ed448", Generate("ED448"), "ED448"},
      {"X25519", Generate("X25519"), "X25519"},
      {"P-521", Generate("EC", "P-521"), "secp521r1"},
      {"secp256k1", Generate("EC", "secp256k1"), "secp256k1"},
      {"RSA-PSS", Generate("RSA-PSS", nullptr, 2048), "PSS"},
      {"RSA-768", Generate("RSA", nullptr, 768), "768 bits"},
      {"RSA with a 129-bit e", big_exponent(), "129-bit public exponent"},
  };
  for (const auto& c : kRefused) {
    ASSERT_NE(c.key, nullptr) << c.name;
    Write("key.pem", Encode(c.key.get(), EVP_PKEY_KEYPAIR, "PEM", "PrivateKeyInfo"));
    const Result r = Tool({"ref", Path("key.pem"), "-o", Path("key.ref")});
    EXPECT_EQ(r.code, 1) << c.name;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.name << ": " << r.err;
    EXPECT_NE(r.err.find("the signer takes"), std::string::npos) << c.name << ": " << r.err;
    EXPECT_NE(access(Path("key.ref").c_str(), F_OK), 0) << c.name << ": a reference was written";
  }
}

TEST_F(CordonKey, Passphrases) {
  PkeyPtr k = Generate("EC", "P-256");
  Write("enc.pem", Encode(k.get(), EVP_PKEY_KEYPAIR, "PEM", "PrivateKeyInfo", "s3cret pass"));
  const std::string expected = cordon::keyref::Sha256Hex(ExpectedPublic(k.get()));

  Result r = Tool({"ref", Path("enc.pem"), "-o", Path("k.ref")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is encrypted: give its passphrase with --passin"), std::string::npos) << r.err;
  r = Tool({"ref", Path("enc.pem"), "-o", Path("k.ref"), "--passin", "pass:wrong"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("wrong passphrase"), std::string::npos) << r.err;
  EXPECT_NE(access(Path("k.ref").c_str(), F_OK), 0);

  Write("pass.txt", "s3cret pass\nsecond line\n");
  const std::vector<std::vector<std::string>> good = {{"--passin", "pass:s3cret pass"},
                                                      {"--passin", "env:CORDON_KEY_TEST_PASS"},
                                                      {"--passin", "file:" + Path("pass.txt")}};
  for (const auto& extra : good) {
    std::vector<std::string> args = {"ref", Path("enc.pem"), "-o", "-"};
    args.insert(args.end(), extra.begin(), extra.end());
    r = Tool(args, {"CORDON_KEY_TEST_PASS=s3cret pass"});
    ASSERT_EQ(r.code, 0) << extra[1] << ": " << r.err;
    KeyReference ref;
    std::string error;
    ASSERT_TRUE(cordon::keyref::Parse(r.out, &ref, &error)) << error;
    EXPECT_EQ(ref.public_sha256, expected);
  }
  r = Tool({"ref", Path("enc.pem"), "-o", "-", "--passin", "env:CORDON_KEY_NO_SUCH_VARIABLE"});
  EXPECT_EQ(r.code, 2) << r.err;
  r = Tool({"ref", Path("enc.pem"), "-o", "-", "--passin", "s3cret"});
  EXPECT_EQ(r.code, 2) << r.err;
  r = Tool({"ref", Path("enc.pem"), "-o", "-", "--passin", "file:" + Path("none.txt")});
  EXPECT_EQ(r.code, 3) << r.err;
}

TEST_F(CordonKey, PublicFromACertificate) {
  PkeyPtr k = Generate("ED25519"), other = Generate("ED25519");
  Write("key.pem", Encode(k.get(), EVP_PKEY_KEYPAIR, "PEM", "PrivateKeyInfo"));
  Write("enc.pem", Encode(k.get(), EVP_PKEY_KEYPAIR, "PEM", "PrivateKeyInfo", "pw"));
  Write("cert.pem", SelfSigned(k.get()));
  Write("pub.pem", Encode(k.get(), EVP_PKEY_PUBLIC_KEY, "PEM", "SubjectPublicKeyInfo"));
  Write("other.pem", SelfSigned(other.get()));
  const std::string expected = cordon::keyref::Sha256Hex(ExpectedPublic(k.get()));
  // Matching certificate or public key: the same reference as from the key.
  for (const char* pub : {"cert.pem", "pub.pem"}) {
    const Result r = Tool({"ref", Path("key.pem"), "-o", "-", "--public", Path(pub)});
    ASSERT_EQ(r.code, 0) << pub << ": " << r.err;
    EXPECT_NE(r.out.find("BEGIN CORDON KEY REFERENCE"), std::string::npos);
    KeyReference ref;
    std::string error;
    ASSERT_TRUE(cordon::keyref::Parse(r.out, &ref, &error)) << error;
    EXPECT_EQ(ref.public_sha256, expected);
  }
  // Another key's certificate is refused.
  Result r = Tool({"ref", Path("key.pem"), "-o", Path("k.ref"), "--public", Path("other.pem")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is not"), std::string::npos) << r.err;
  EXPECT_NE(access(Path("k.ref").c_str(), F_OK), 0);
  // An encrypted key without its passphrase: the certificate's public key.
  r = Tool({"ref", Path("enc.pem"), "-o", "-", "--public", Path("cert.pem")});
  ASSERT_EQ(r.code, 0) << r.err;
  KeyReference ref;
  std::string error;
  ASSERT_TRUE(cordon::keyref::Parse(r.out, &ref, &error)) << error;
  EXPECT_EQ(ref.public_sha256, expected);
  // ...but with a wrong passphrase it is still refused.
  r = Tool({"ref", Path("enc.pem"), "-o", "-", "--public", Path("cert.pem"), "--passin", "pass:bad"});
  EXPECT_EQ(r.code, 1) << r.err;
  // Not a certificate or public key.
  Write("junk.pem", "hello\n");
  r = Tool({"ref", Path("key.pem"), "-o", "-", "--public", Path("junk.pem")});
  EXPECT_EQ(r.code, 1) << r.err;
}

TEST_F(CordonKey, CorruptInput) {
  Write("junk.pem", "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n");
  Result r = Tool({"ref", Path("junk.pem"), "-o", Path("k.ref")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is not a private key"), std::string::npos) << r.err;

  PkeyPtr k = Generate("EC", "P-256");
  Write("key.pem", Encode(k.get(), EVP_PKEY_KEYPAIR, "PEM", "PrivateKeyInfo"));
  ASSERT_EQ(Tool({"ref", Path("key.pem"), "-o", Path("k.ref")}).code, 0);
  const std::string good = Read(Path("k.ref"));
  // Every single-byte change inside the base64 is refused or changes a
  // field (never silently accepted as the same reference).
  KeyReference orig;
  std::string error;
  ASSERT_TRUE(cordon::keyref::Parse(good, &orig, &error));
  const size_t first = strlen(cordon::keyref::kBegin) + 1;
  const size_t last = good.size() - strlen(cordon::keyref::kEnd) - 1;
  for (size_t i = first; i < last; ++i) {
    std::string bad = good;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    KeyReference ref;
    if (cordon::keyref::Parse(bad, &ref, &error)) {
      EXPECT_TRUE(ref.path != orig.path || ref.type != orig.type || ref.public_sha256 != orig.public_sha256)
          << i;
    }
  }
  Write("bad.ref", good.substr(0, good.size() - 20));
  r = Tool({"show", Path("bad.ref")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is not a valid key reference"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  Write("key-as-ref.pem", Read(Path("key.pem")));
  EXPECT_EQ(Tool({"show", Path("key-as-ref.pem")}).code, 1);
  EXPECT_EQ(Tool({"show", Path("missing.ref")}).code, 3);
  EXPECT_EQ(Tool({"show", dir_}).code, 3);
  EXPECT_EQ(Tool({"ref", Path("missing.pem"), "-o", Path("k2.ref")}).code, 3);
}

TEST_F(CordonKey, OutputIsWholeOrNothing) {
  PkeyPtr k = Generate("EC", "P-256");
  Write("key.pem", Encode(k.get(), EVP_PKEY_KEYPAIR, "PEM", "PrivateKeyInfo"));
  Write("k.ref", "old contents\n");
  ASSERT_EQ(Tool({"ref", Path("key.pem"), "-o", Path("k.ref")}).code, 0);
  EXPECT_NE(Read(Path("k.ref")).find("BEGIN CORDON KEY REFERENCE"), std::string::npos);
  // A directory that does not exist: status 3, nothing left anywhere.
  const Result r = Tool({"ref", Path("key.pem"), "-o", Path("no/such/dir/k.ref")});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("cannot create"), std::string::npos) << r.err;
  // A refused key leaves the old reference alone.
  PkeyPtr x = Generate("X25519");
  Write("x.pem", Encode(x.get(), EVP_PKEY_KEYPAIR, "PEM", "PrivateKeyInfo"));
  const std::string before = Read(Path("k.ref"));
  EXPECT_EQ(Tool({"ref", Path("x.pem"), "-o", Path("k.ref")}).code, 1);
  EXPECT_EQ(Read(Path("k.ref")), before);
  std::vector<std::string> files = Files();
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"k.ref", "key.pem", "x.pem"}));
}

TEST_F(CordonKey, UsageHelpAndVersion) {
  Result r = Tool({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("usage: cordon-key ref KEY.pem -o KEY.ref"), std::string::npos);
  EXPECT_NE(r.out.find("Exit status: 0 done, 1 refused"), std::string::npos);
  EXPECT_EQ(r.err, "");
  r = Tool({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("cordon-key ", 0), 0u) << r.out;
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{},
                                             {"frobnicate"},
                                             {"ref"},
                                             {"ref", "k.pem"},
                                             {"ref", "a", "b", "-o", "x"},
                                             {"ref", "k.pem", "-o"},
                                             {"ref", "k.pem", "-o", "x", "--bogus"},
                                             {"show"},
                                             {"show", "a", "b"}}) {
    r = Tool(bad);
    EXPECT_EQ(r.code, 2) << (bad.empty() ? "(none)" : bad[0]);
    EXPECT_NE(r.err.find("usage:"), std::string::npos);
    EXPECT_EQ(r.out, "");
  }
}

}  // namespace
