// cordon-key: writes and reads the key reference files of the cordon
// OpenSSL provider (docs/openssl.md, "Reference files").
//
//   cordon-key ref KEY.pem -o KEY.ref [--passin SRC] [--public CERT-OR-PUBKEY.pem]
//   cordon-key show KEY.ref
//   cordon-key --help | --version
//
// It runs in its own process and reads the key with libcrypto (only to
// learn its type and public key); the reference holds no secret.
// Exit status: 0 done, 1 refused (a key the signer does not take, not a
// key, an encrypted key without or with a wrong passphrase, a --public that
// does not match, an invalid reference), 2 usage error, 3 a file cannot be
// opened, read or written.
#include <errno.h>
#include <fcntl.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "cordon/version.h"
#include "tools/cordon-key/reference.h"

namespace {

constexpr int kOk = 0, kRefused = 1, kUsage = 2, kIoError = 3;

constexpr char kUsageText[] =
    "usage: cordon-key ref KEY.pem -o KEY.ref [--passin SRC] [--public CERT-OR-PUBKEY.pem]\n"
    "       cordon-key show KEY.ref\n"
    "       cordon-key --help | --version\n"
    "Key reference files let a program that only takes a key file use the cordon OpenSSL\n"
    "provider (docs/openssl.md): the provider's signer reads KEY.pem itself, into its\n"
    "protection-key domain, and refuses it if its public key changed since the reference\n"
    "was written.\n"
    "  ref    write a reference to KEY.pem (PEM or DER; PKCS#8, encrypted or not, PKCS#1 RSA,\n"
    "         SEC1 EC): its absolute path, its type (rsa, ec-p256, ec-p384, ed25519) and the\n"
    "         SHA-256 of its public key. KEY.pem is read here only to learn those.\n"
    "    -o FILE        where to write it (- for standard output); FILE is replaced whole\n"
    "    --passin SRC   KEY.pem's passphrase: pass:TEXT, env:VAR or file:PATH (its first line)\n"
    "    --public FILE  take the public key from FILE (a certificate or a public key, PEM or\n"
    "                   DER) instead; KEY.pem is still read and must match it, unless it is\n"
    "                   encrypted and no --passin is given\n"
    "  show   check KEY.ref's format and print its fields, one per line\n"
    "Exit status: 0 done, 1 refused (a key type the signer does not take, not a key, an\n"
    "encrypted key without or with a wrong passphrase, a --public that does not match,\n"
    "an invalid reference file), 2 usage error, 3 a file cannot be opened, read or written.\n";

int UsageError(const std::string& why) {
  fprintf(stderr, "cordon-key: %s\n%s", why.c_str(), kUsageText);
  return kUsage;
}

int Fail(int code, const std::string& why) {
  fprintf(stderr, "cordon-key: %s\n", why.c_str());
  return code;
}

std::string OpenSslReason() {
  const unsigned long e = ERR_peek_last_error();
  const char* r = e != 0 ? ERR_reason_error_string(e) : nullptr;
  ERR_clear_error();
  return r != nullptr ? r : "unknown reason";
}

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

// The whole of a (small) file; false with errno set.
bool ReadSmallFile(const std::string& path, size_t limit, std::string* out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (errno == 0 || S_ISDIR(st.st_mode)) errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    close(fd);
    return false;
  }
  out->clear();
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      close(fd);
      errno = e;
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > limit) {
      close(fd);
      errno = EFBIG;
      return false;
    }
  }
  close(fd);
  return true;
}

struct Passphrase {
  std::string text;
  bool given = false;
  bool asked = false;
};

int PassphraseCallback(char* buf, int size, int, void* arg) {
  auto* p = static_cast<Passphrase*>(arg);
  p->asked = true;
  if (!p->given || p->text.size() > static_cast<size_t>(size)) return -1;
  memcpy(buf, p->text.data(), p->text.size());
  return static_cast<int>(p->text.size());
}

// --passin SRC: pass:TEXT, env:VAR, file:PATH.
int ReadPassphrase(const std::string& src, Passphrase* out) {
  out->given = true;
  if (src.rfind("pass:", 0) == 0) {
    out->text = src.substr(5);
  } else if (src.rfind("env:", 0) == 0) {
    const char* v = getenv(src.substr(4).c_str());
    if (v == nullptr) return Fail(kUsage, "--passin " + src + ": the environment has no " + src.substr(4));
    out->text = v;
  } else if (src.rfind("file:", 0) == 0) {
    std::string text;
    if (!ReadSmallFile(src.substr(5), 4096, &text)) {
      return Fail(kIoError, "cannot read the passphrase file " + src.substr(5) + ": " + strerror(errno));
    }
    out->text = text.substr(0, text.find('\n'));
    if (!out->text.empty() && out->text.back() == '\r') out->text.pop_back();
    OPENSSL_cleanse(text.data(), text.size());
  } else {
    return UsageError("--passin wants pass:TEXT, env:VAR or file:PATH, not '" + src + "'");
  }
  return kOk;
}

// Decodes `data` (PEM or DER) as what `selection` says.
PkeyPtr Decode(const std::string& data, int selection, Passphrase* pass) {
  EVP_PKEY* pkey = nullptr;
  OSSL_DECODER_CTX* ctx =
      OSSL_DECODER_CTX_new_for_pkey(&pkey, nullptr, nullptr, nullptr, selection, nullptr, nullptr);
  if (ctx != nullptr) {
    if (pass != nullptr) OSSL_DECODER_CTX_set_pem_password_cb(ctx, PassphraseCallback, pass);
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    size_t len = data.size();
    if (OSSL_DECODER_from_data(ctx, &p, &len) != 1) {
      EVP_PKEY_free(pkey);
      pkey = nullptr;
    }
    OSSL_DECODER_CTX_free(ctx);
  }
  return PkeyPtr(pkey, EVP_PKEY_free);
}

// A certificate's public key, or a public key (PEM or DER).
PkeyPtr DecodePublic(const std::string& data) {
  BIO* bio = BIO_new_mem_buf(data.data(), static_cast<int>(data.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    cert = d2i_X509(nullptr, &p, static_cast<long>(data.size()));
  }
  ERR_clear_error();
  if (cert != nullptr) {
    PkeyPtr pkey(X509_get_pubkey(cert), EVP_PKEY_free);
    X509_free(cert);
    return pkey;
  }
  return Decode(data, EVP_PKEY_PUBLIC_KEY, nullptr);
}

std::string Absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd) == nullptr) return "";
  std::string rel = path;
  while (rel.rfind("./", 0) == 0) rel.erase(0, 2);
  return std::string(cwd) + (cwd[1] == '\0' ? "" : "/") + rel;
}

// Writes `text` to `path` whole or not at all (a temporary file beside it,
// renamed over it).
int WriteWhole(const std::string& path, const std::string& text) {
  if (path == "-") {
    if (fwrite(text.data(), 1, text.size(), stdout) != text.size() || fflush(stdout) != 0) {
      return Fail(kIoError, std::string("cannot write to standard output: ") + strerror(errno));
    }
    return kOk;
  }
  std::string tmp = path + ".XXXXXX";
  const int fd = mkstemp(tmp.data());
  if (fd < 0) return Fail(kIoError, "cannot create " + tmp + ": " + strerror(errno));
  bool ok = fchmod(fd, 0644) == 0;
  size_t done = 0;
  while (ok && done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && fsync(fd) == 0;
  const int e = errno;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = strerror(ok ? errno : e);
    unlink(tmp.c_str());
    return Fail(kIoError, "cannot write " + path + ": " + why);
  }
  return kOk;
}

int Ref(int argc, char** argv) {
  std::string key_path, out_path, passin, public_path;
  bool have_out = false, have_passin = false, have_public = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](bool* have, std::string* v) {
      if (i + 1 >= argc) return false;
      *have = true;
      *v = argv[++i];
      return true;
    };
    if (a == "-o" || a == "--out") {
      if (!value(&have_out, &out_path)) return UsageError(a + " needs a file");
    } else if (a == "--passin") {
      if (!value(&have_passin, &passin)) return UsageError("--passin needs pass:TEXT, env:VAR or file:PATH");
    } else if (a == "--public") {
      if (!value(&have_public, &public_path)) return UsageError("--public needs a file");
    } else if (a.size() > 1 && a[0] == '-') {
      return UsageError("unknown option " + a);
    } else if (key_path.empty()) {
      key_path = a;
    } else {
      return UsageError("one key file only (got " + key_path + " and " + a + ")");
    }
  }
  if (key_path.empty()) return UsageError("ref needs a key file");
  if (!have_out) return UsageError("ref needs -o KEY.ref (or -o - for standard output)");
  Passphrase pass;
  if (have_passin) {
    const int rc = ReadPassphrase(passin, &pass);
    if (rc != kOk) return rc;
  }

  cordon::keyref::KeyReference ref;
  ref.path = Absolute(key_path);
  if (ref.path.empty())
    return Fail(kIoError, std::string("cannot read the working directory: ") + strerror(errno));
  std::string error;
  if (!cordon::keyref::CheckFields({ref.path, "rsa", std::string(64, '0')}, &error)) {
    return Fail(kRefused, key_path + ": " + error);
  }
  std::string data;
  // The signer reads at most 1 MiB (signer_abi.h).
  if (!ReadSmallFile(key_path, 1 << 20, &data)) {
    return Fail(kIoError,
                "cannot read " + key_path + ": " + (errno == EFBIG ? "larger than 1 MiB" : strerror(errno)));
  }
  PkeyPtr key = Decode(data, EVP_PKEY_KEYPAIR, &pass);
  OPENSSL_cleanse(data.data(), data.size());
  OPENSSL_cleanse(pass.text.data(), pass.text.size());
  const bool encrypted_unread = key == nullptr && pass.asked && !pass.given;
  if (key == nullptr && !(encrypted_unread && have_public)) {
    if (encrypted_unread)
      return Fail(kRefused, key_path + " is encrypted: give its passphrase with --passin");
    if (pass.asked) return Fail(kRefused, key_path + ": wrong passphrase, or a corrupt encrypted key");
    return Fail(kRefused, key_path + " is not a private key (PEM or DER): " + OpenSslReason());
  }
  std::string type, pub;
  if (key != nullptr && !cordon::keyref::PublicKey(key.get(), &type, &pub, &error)) {
    return Fail(kRefused, key_path + " is " + error);
  }
  if (have_public) {
    std::string pub_data;
    if (!ReadSmallFile(public_path, 1 << 20, &pub_data)) {
      return Fail(kIoError, "cannot read " + public_path + ": " + strerror(errno));
    }
    PkeyPtr given = DecodePublic(pub_data);
    if (given == nullptr) return Fail(kRefused, public_path + " is neither a certificate nor a public key");
    std::string given_type, given_pub;
    if (!cordon::keyref::PublicKey(given.get(), &given_type, &given_pub, &error)) {
      return Fail(kRefused, public_path + " holds " + error);
    }
    if (key != nullptr && (given_type != type || given_pub != pub)) {
      return Fail(kRefused, public_path + "'s public key is not " + key_path + "'s");
    }
    type = given_type;
    pub = given_pub;
  }
  ref.type = type;
  ref.public_sha256 = cordon::keyref::Sha256Hex(pub);
  return WriteWhole(out_path, cordon::keyref::Format(ref));
}

int Show(int argc, char** argv) {
  if (argc != 3) return UsageError("show takes one reference file");
  std::string data;
  if (!ReadSmallFile(argv[2], cordon::keyref::kMaxFile, &data)) {
    if (errno == EFBIG) return Fail(kRefused, std::string(argv[2]) + " is not a key reference: too long");
    return Fail(kIoError, std::string("cannot read ") + argv[2] + ": " + strerror(errno));
  }
  cordon::keyref::KeyReference ref;
  std::string error;
  if (!cordon::keyref::Parse(data, &ref, &error)) {
    return Fail(kRefused, std::string(argv[2]) + " is not a valid key reference: " + error);
  }
  printf("path %s\ntype %s\npublic-sha256 %s\n", ref.path.c_str(), ref.type.c_str(),
         ref.public_sha256.c_str());
  return fflush(stdout) == 0 ? kOk : kIoError;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return UsageError("no command given");
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help") {
    fputs(kUsageText, stdout);
    return kOk;
  }
  if (cmd == "--version") {
    printf("cordon-key %s\n", CORDON_VERSION_STRING);
    return kOk;
  }
  if (cmd == "ref") return Ref(argc, argv);
  if (cmd == "show") return Show(argc, argv);
  return UsageError("unknown command '" + cmd + "'");
}
