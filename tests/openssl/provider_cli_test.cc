// The cordon provider under the unmodified `openssl` command line, with
// only OPENSSL_CONF, LD_PRELOAD and LD_BIND_NOW (docs/openssl.md): pkeyutl
// signatures and a self-signed `req -x509` certificate, each verified by the
// default provider in this process (the judge, outside the signing
// process); the private half refused by `pkey`, the public half exported;
// and every kind of bad input refused with the provider's own sentence and
// no crash. Keys are drawn at random for each run. The handshakes and the
// over-read are tls_judge_test.cc's.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct CliRun {
  int status = -1;  // wait status
  std::string out, err;
  bool Exited(int code) const { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
};

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

class ProviderCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/cordon-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }

  // `openssl args...` with the provider (or without it), stdout and stderr
  // captured.
  static CliRun Openssl(const std::vector<std::string>& args, bool with_provider = true,
                        const char* program = CORDON_TLS_OPENSSL) {
    const std::string out = dir_ + "/run.out", err = dir_ + "/run.err";
    std::vector<std::string> env = {"PATH=/usr/bin:/bin", "HOME=/tmp"};
    if (with_provider) {
      env.push_back("OPENSSL_CONF=" CORDON_TLS_CNF);
      env.push_back("LD_PRELOAD=" CORDON_TLS_LIBCORDON);
      env.push_back("LD_BIND_NOW=1");
    }
    const pid_t pid = fork();
    if (pid == 0) {
      const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      const int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (o < 0 || e < 0 || in < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
      std::vector<char*> argv = {const_cast<char*>(program)};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      std::vector<char*> envp;
      for (const std::string& v : env) envp.push_back(const_cast<char*>(v.c_str()));
      envp.push_back(nullptr);
      execve(program, argv.data(), envp.data());
      _exit(127);
    }
    CliRun r;
    if (pid < 0 || waitpid(pid, &r.status, 0) != pid) return r;
    r.out = ReadFile(out);
    r.err = ReadFile(err);
    return r;
  }

  // A random key of `kind` in PEM, drawn here; its path.
  static std::string NewKey(const std::string& name, EVP_PKEY* pkey, const char* pass = nullptr) {
    const std::string path = dir_ + "/" + name + ".pem";
    BIO* b = BIO_new_file(path.c_str(), "w");
    EXPECT_NE(b, nullptr);
    const EVP_CIPHER* cipher = pass != nullptr ? EVP_aes_256_cbc() : nullptr;
    EXPECT_EQ(
        PEM_write_bio_PKCS8PrivateKey(b, pkey, cipher, pass,
                                      pass != nullptr ? static_cast<int>(strlen(pass)) : 0, nullptr, nullptr),
        1);
    BIO_free(b);
    return path;
  }

  static std::string dir_;
};
std::string ProviderCli::dir_;

struct Kind {
  const char* name;
  EVP_PKEY* (*make)();
  bool raw;  // Ed25519: pkeyutl -rawin signs the message itself
};

EVP_PKEY* Rsa() {
  return EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
}
EVP_PKEY* P256() {
  return EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
}
EVP_PKEY* P384() {
  return EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
}
EVP_PKEY* Ed25519() {
  return EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
}
const Kind kKinds[] = {
    {"rsa", Rsa, false}, {"p256", P256, false}, {"p384", P384, false}, {"ed25519", Ed25519, true}};

TEST_F(ProviderCli, PkeyutlSignaturesVerifyWithTheDefaultProvider) {
  for (const Kind& k : kKinds) {
    SCOPED_TRACE(k.name);
    EVP_PKEY* key = k.make();
    ASSERT_NE(key, nullptr);
    const std::string path = NewKey(k.name, key);
    std::string tbs(32, '\0');
    for (char& c : tbs) c = static_cast<char>(rand());
    WriteFile(dir_ + "/tbs", tbs);
    std::vector<std::vector<std::string>> modes;
    if (k.raw) {
      modes.push_back({"-rawin"});
    } else if (std::string(k.name) == "rsa") {
      modes.push_back({"-pkeyopt", "digest:sha256", "-pkeyopt", "rsa_padding_mode:pkcs1"});
      modes.push_back({"-pkeyopt", "digest:sha256", "-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt",
                       "rsa_pss_saltlen:digest"});
    } else {
      modes.push_back({"-pkeyopt", "digest:sha256"});
    }
    for (const auto& mode : modes) {
      std::vector<std::string> args = {"pkeyutl", "-sign",       "-inkey", "cordon:" + path,
                                       "-in",     dir_ + "/tbs", "-out",   dir_ + "/sig"};
      args.insert(args.end(), mode.begin(), mode.end());
      const CliRun r = Openssl(args);
      ASSERT_TRUE(r.Exited(0)) << r.err;
      const std::string sig = ReadFile(dir_ + "/sig");
      ASSERT_FALSE(sig.empty());
      // The judge: the default provider, with the key drawn here.
      EVP_PKEY_CTX* v = EVP_PKEY_CTX_new_from_pkey(nullptr, key, "provider=default");
      ASSERT_NE(v, nullptr);
      int ok = 0;
      if (k.raw) {
        EVP_MD_CTX* m = EVP_MD_CTX_new();
        ok = EVP_DigestVerifyInit_ex(m, nullptr, nullptr, nullptr, "provider=default", key, nullptr) == 1 &&
             EVP_DigestVerify(m, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                              reinterpret_cast<const unsigned char*>(tbs.data()), tbs.size()) == 1;
        EVP_MD_CTX_free(m);
      } else {
        ASSERT_EQ(EVP_PKEY_verify_init(v), 1);
        ASSERT_EQ(EVP_PKEY_CTX_set_signature_md(v, EVP_sha256()), 1);
        if (std::string(k.name) == "rsa") {
          const bool pss = mode.size() > 4;
          ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(v, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING), 1);
          if (pss) ASSERT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(v, RSA_PSS_SALTLEN_DIGEST), 1);
        }
        ok = EVP_PKEY_verify(v, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(tbs.data()), tbs.size()) == 1;
      }
      EVP_PKEY_CTX_free(v);
      EXPECT_TRUE(ok) << "the signature does not verify";
    }
    EVP_PKEY_free(key);
  }
}

TEST_F(ProviderCli, ReqMakesASelfSignedCertificateThatVerifies) {
  for (const Kind& k : kKinds) {
    SCOPED_TRACE(k.name);
    EVP_PKEY* key = k.make();
    ASSERT_NE(key, nullptr);
    const std::string path = NewKey(std::string("req-") + k.name, key);
    const std::string cert = dir_ + "/cert.pem";
    const CliRun r = Openssl({"req", "-new", "-x509", "-key", "cordon:" + path, "-subj", "/CN=cordon",
                              "-days", "1", "-out", cert});
    ASSERT_TRUE(r.Exited(0)) << r.err;
    BIO* b = BIO_new_file(cert.c_str(), "r");
    ASSERT_NE(b, nullptr);
    X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    ASSERT_NE(x, nullptr);
    EXPECT_EQ(X509_verify(x, key), 1)
        << "the certificate's signature does not verify with the key drawn here";
    EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(x), key), 1) << "the certificate names another public key";
    X509_free(x);
    EVP_PKEY_free(key);
  }
}

TEST_F(ProviderCli, ThePrivateHalfIsRefusedThePublicHalfExports) {
  EVP_PKEY* key = P256();
  ASSERT_NE(key, nullptr);
  const std::string path = NewKey("export", key);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"pkey", "-in", "cordon:" + path},
        std::vector<std::string>{"pkey", "-in", "cordon:" + path, "-text", "-noout"},
        std::vector<std::string>{"pkey", "-in", "cordon:" + path, "-outform", "DER"}}) {
    const CliRun r = Openssl(args);
    EXPECT_FALSE(r.Exited(0)) << r.out;
    EXPECT_NE(r.err.find("the private half of a cordon key never leaves its domain"), std::string::npos)
        << r.err;
    EXPECT_EQ(r.out.find("PRIVATE KEY"), std::string::npos);
  }
  const CliRun pub = Openssl({"pkey", "-in", "cordon:" + path, "-pubout"});
  ASSERT_TRUE(pub.Exited(0)) << pub.err;
  BIO* b = BIO_new(BIO_s_mem());
  ASSERT_EQ(PEM_write_bio_PUBKEY(b, key), 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  EXPECT_EQ(pub.out, std::string(data, static_cast<size_t>(n)));
  BIO_free(b);
  // In a program's own process: EVP_PKEY_todata and the private scalar.
  const CliRun probe = Openssl({"cordon:" + path}, true, CORDON_TODATA_PROBE);
  ASSERT_TRUE(probe.Exited(0)) << probe.err;
  EXPECT_EQ(probe.out, "direct sign before the lockdown -12\ntodata keypair 0\ntodata public 1\nget_bn priv 0\n") << probe.err;
  EXPECT_NE(probe.err.find("the private half of a cordon key never leaves its domain"), std::string::npos)
      << probe.err;
  EVP_PKEY_free(key);
}

TEST_F(ProviderCli, BadInputGetsTheProvidersSentenceAndNoCrash) {
  EVP_PKEY* key = P256();
  ASSERT_NE(key, nullptr);
  const std::string enc = NewKey("encrypted", key, "secret");
  EVP_PKEY* x = EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519");
  ASSERT_NE(x, nullptr);
  const std::string x25519 = NewKey("x25519", x);
  WriteFile(dir_ + "/tbs", std::string(32, 'a'));
  WriteFile(dir_ + "/corrupt.ref",
            "-----BEGIN CORDON KEY REFERENCE-----\nY29yZG9uLWtleS1yZWZlcmVuY2UgMQpwYXRoIHJlbGF0aXZlCg==\n"
            "-----END CORDON KEY REFERENCE-----\n");
  struct Case {
    std::string inkey;
    std::vector<std::string> extra;
    const char* says;
  };
  const Case cases[] = {
      {"cordon:" + dir_ + "/missing.pem", {}, "cannot open the key file"},
      {"cordon:" + enc, {"-passin", "pass:wrong"}, "wrong passphrase"},
      {"cordon:" + x25519, {}, "unsupported key"},
      {dir_ + "/corrupt.ref", {}, "corrupt key reference"},
      {"cordon:relative.pem", {}, "cordon"},
      {"nosuchscheme:" + enc, {}, "unregistered scheme"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.inkey);
    std::vector<std::string> args = {"pkeyutl", "-sign",       "-inkey", c.inkey,
                                     "-in",     dir_ + "/tbs", "-out",   dir_ + "/sig"};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    const CliRun r = Openssl(args);
    EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1) << "status " << r.status << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
  // The right passphrase works: the refusal above left nothing behind.
  const CliRun ok = Openssl({"pkeyutl", "-sign", "-inkey", "cordon:" + enc, "-passin", "pass:secret", "-in",
                             dir_ + "/tbs", "-out", dir_ + "/sig", "-pkeyopt", "digest:sha256"});
  EXPECT_TRUE(ok.Exited(0)) << ok.err;
  EVP_PKEY_free(x);
  EVP_PKEY_free(key);
}

}  // namespace
