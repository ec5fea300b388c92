// One Heartbleed-style attack on `openssl s_server` or nginx (see
// tls_attack.h).
#include "tests/openssl/tls_attack.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>

#include "tests/openssl/key_encodings.h"

extern char** environ;

namespace cordon::tls {
namespace {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

std::string OpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += out.empty() ? "" : "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error queued" : out;
}

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

bool ReadFile(const std::string& path, std::string* out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return n == 0;
    }
    out->append(buf, static_cast<size_t>(n));
  }
}

bool WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  return close(fd) == 0 && done == data.size();
}

PkeyPtr GenerateKey(KeyKind kind) {
  EVP_PKEY* k = nullptr;
  switch (kind) {
    case KeyKind::kRsa2048:
      k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
      break;
    case KeyKind::kEcP256:
      k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyKind::kEd25519:
      k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
  }
  return PkeyPtr(k, EVP_PKEY_free);
}

std::string PrivateKeyPem(EVP_PKEY* pkey, const std::string& passphrase = "") {
  BIO* bio = BIO_new(BIO_s_mem());
  std::string out;
  const bool written =
      passphrase.empty()
          ? PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr) == 1
          : PEM_write_bio_PKCS8PrivateKey(bio, pkey, EVP_aes_256_cbc(), passphrase.data(),
                                          static_cast<int>(passphrase.size()), nullptr, nullptr) == 1;
  if (bio != nullptr && written) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  return out;
}

bool AddExtension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  const bool ok = ext != nullptr && X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A self-signed certificate for "localhost" and 127.0.0.1, signed here by
// the default provider.
std::string SelfSignedCertPem(EVP_PKEY* pkey) {
  X509* cert = X509_new();
  std::string out;
  unsigned char serial[16];
  bool ok = cert != nullptr && RAND_bytes(serial, sizeof serial) == 1;
  serial[0] &= 0x7f;
  BIGNUM* sn = ok ? BN_bin2bn(serial, sizeof serial, nullptr) : nullptr;
  ok = ok && sn != nullptr && BN_to_ASN1_INTEGER(sn, X509_get_serialNumber(cert)) != nullptr;
  BN_free(sn);
  ok = ok && X509_set_version(cert, 2) == 1 && X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != nullptr &&
       X509_gmtime_adj(X509_getm_notAfter(cert), 86400) != nullptr && X509_set_pubkey(cert, pkey) == 1;
  X509_NAME* name = ok ? X509_get_subject_name(cert) : nullptr;
  ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0) == 1;
  ok = ok && X509_set_issuer_name(cert, name) == 1 &&
       AddExtension(cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") &&
       AddExtension(cert, NID_basic_constraints, "critical,CA:TRUE") &&
       AddExtension(cert, NID_subject_key_identifier, "hash");
  const EVP_MD* md = EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  ok = ok && X509_sign(cert, pkey, md) > 0;
  BIO* bio = ok ? BIO_new(BIO_s_mem()) : nullptr;
  if (bio != nullptr && PEM_write_bio_X509(bio, cert) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  X509_free(cert);
  return out;
}

// Runs argv to its end (for cordon-key); its stderr in *err.
int RunTool(const std::vector<std::string>& argv, const std::string& err_path, std::string* err) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    const int fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) dup2(fd, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ReadFile(err_path, err);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class Server {
 public:
  ~Server() { Stop(); }

  bool Start(const std::vector<std::string>& argv, const std::vector<std::string>& env,
             const std::string& dir, std::string* error) {
    out_path_ = dir + "/server.out";
    err_path_ = dir + "/server.err";
    int in[2];
    if (pipe2(in, O_CLOEXEC) != 0) {
      *error = std::string("pipe: ") + strerror(errno);
      return false;
    }
    std::vector<char*> args, envp;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) {
      *error = std::string("fork: ") + strerror(errno);
      return false;
    }
    if (pid_ == 0) {
      // Its stdin: a pipe this side holds open (s_server stops at the end
      // of its stdin); its output: files.
      const int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      // Its own process group: Stop() ends nginx's worker with its master.
      if (setpgid(0, 0) != 0 || out < 0 || err < 0 || dup2(in[0], 0) < 0 || dup2(out, 1) < 0 ||
          dup2(err, 2) < 0 || chdir(dir.c_str()) != 0) {
        _exit(126);
      }
      close(out);
      close(err);
      execve(args[0], args.data(), envp.data());
      _exit(127);
    }
    close(in[0]);
    stdin_ = in[1];
    return true;
  }

  // The port from s_server's "ACCEPT 127.0.0.1:PORT" line; 0 if it ended or
  // timed out first (*error says which).
  int WaitForPort(int timeout_s, std::string* error) {
    const double deadline = Now() + timeout_s;
    while (Now() < deadline) {
      std::string out;
      ReadFile(out_path_, &out);
      const size_t at = out.find("ACCEPT 127.0.0.1:");
      if (at != std::string::npos && out.find('\n', at) != std::string::npos) {
        return atoi(out.c_str() + at + strlen("ACCEPT 127.0.0.1:"));
      }
      if (Reap(false)) {
        *error = "the server ended before it listened (" + StatusText() + ")";
        return 0;
      }
      usleep(20000);
    }
    *error = "the server did not listen within " + std::to_string(timeout_s) + " s";
    return 0;
  }

  // Waits for the server's end (it serves one connection); stops it after
  // the time-out.
  bool WaitForEnd(int timeout_s) {
    const double deadline = Now() + timeout_s;
    while (Now() < deadline) {
      if (Reap(false)) return true;
      usleep(20000);
    }
    Stop();
    return false;
  }

  // Waits until `path` exists (nginx's pid file: written once it
  // listens); false if the server ended or timed out first (*error says).
  bool WaitForFile(const std::string& path, int timeout_s, std::string* error) {
    const double deadline = Now() + timeout_s;
    while (Now() < deadline) {
      struct stat st;
      if (stat(path.c_str(), &st) == 0 && st.st_size > 0) return true;
      if (Reap(false)) {
        *error = "the server ended before it listened (" + StatusText() + ")";
        return false;
      }
      usleep(20000);
    }
    *error = "the server did not listen within " + std::to_string(timeout_s) + " s";
    return false;
  }

  // Sends `sig` and waits for the end (nginx: SIGQUIT, a graceful stop of
  // the master and its worker); true if it ended in time.
  bool SignalAndWait(int sig, int timeout_s) {
    if (pid_ <= 0 || reaped_) return reaped_;
    kill(pid_, sig);
    return WaitForEnd(timeout_s);
  }

  void Stop() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGTERM);
      for (int i = 0; i < 100 && !Reap(false); ++i) usleep(20000);
      if (!reaped_) {
        kill(-pid_, SIGKILL);
        Reap(true);
      }
    }
    // Whatever is left of its group (an nginx worker whose master died).
    if (pid_ > 0) kill(-pid_, SIGKILL);
  }

  int status() const { return status_; }
  std::string StatusText() const {
    if (!reaped_) return "still running";
    if (WIFEXITED(status_)) return "exit status " + std::to_string(WEXITSTATUS(status_));
    return std::string("killed by signal ") + strsignal(WTERMSIG(status_));
  }
  std::string Out() const {
    std::string s;
    ReadFile(out_path_, &s);
    return s;
  }
  std::string Err() const {
    std::string s;
    ReadFile(err_path_, &s);
    return s;
  }

 private:
  bool Reap(bool block) {
    if (reaped_) return true;
    const pid_t r = waitpid(pid_, &status_, block ? 0 : WNOHANG);
    if (r == pid_) reaped_ = true;
    return reaped_;
  }

  pid_t pid_ = -1;
  int stdin_ = -1;
  bool reaped_ = false;
  int status_ = -1;
  std::string out_path_, err_path_;
};

struct Client {
  bool handshake = false, verified = false;
  std::string protocol, cipher, reply, error;
};

// Connects to 127.0.0.1:port with only `version`, verifying the server's
// certificate against cert_path (as a trust anchor) for "localhost", sends
// the trigger and reads the reply line.
Client ConnectAndTrigger(int port, int version, const std::string& cert_path, int timeout_s) {
  Client c;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = nullptr;
  int fd = -1;
  auto fail = [&](const std::string& what) {
    c.error = what;
    return c;
  };
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_owner(ctx, SSL_CTX_free);
  if (ctx == nullptr) return fail("SSL_CTX_new: " + OpenSslErrors());
  SSL_CTX_set_min_proto_version(ctx, version);
  SSL_CTX_set_max_proto_version(ctx, version);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx, cert_path.c_str(), nullptr) != 1) {
    return fail("cannot load the certificate as a trust anchor: " + OpenSslErrors());
  }
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{timeout_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string why = strerror(errno);
    if (fd >= 0) close(fd);
    return fail("cannot connect to 127.0.0.1:" + std::to_string(port) + ": " + why);
  }
  ssl = SSL_new(ctx);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl_owner(ssl, SSL_free);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_set1_host(ssl, "localhost");
  if (SSL_connect(ssl) != 1) {
    const long v = SSL_get_verify_result(ssl);
    close(fd);
    return fail(
        "the TLS handshake failed: " + OpenSslErrors() +
        (v != X509_V_OK ? std::string(" (certificate: ") + X509_verify_cert_error_string(v) + ")" : ""));
  }
  c.handshake = true;
  c.protocol = SSL_get_version(ssl);
  c.cipher = SSL_get_cipher_name(ssl);
  X509* peer = SSL_get1_peer_certificate(ssl);
  c.verified = peer != nullptr && SSL_get_verify_result(ssl) == X509_V_OK;
  X509_free(peer);
  static const char kTrigger[] = "HEARTBLEED: let me read your memory\n";
  if (SSL_write(ssl, kTrigger, sizeof kTrigger - 1) <= 0) {
    close(fd);
    return fail("cannot send the trigger: " + OpenSslErrors());
  }
  char buf[512];
  while (c.reply.find('\n') == std::string::npos) {
    const int n = SSL_read(ssl, buf, sizeof buf);
    if (n <= 0) break;
    c.reply.append(buf, static_cast<size_t>(n));
  }
  SSL_shutdown(ssl);
  close(fd);
  if (c.reply.empty()) c.error = "no reply to the trigger: " + OpenSslErrors();
  return c;
}

struct Run {
  uint64_t offset, start, end;
  std::string what;  // "PERMS NAME"
};

std::vector<Run> ReadIndex(const std::string& path) {
  std::vector<Run> runs;
  std::string text;
  if (!ReadFile(path, &text)) return runs;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(at, nl - at);
    at = nl + 1;
    unsigned long long offset;
    unsigned long start, end;
    int rest = 0;
    if (sscanf(line.c_str(), "%llu %lx-%lx %n", &offset, &start, &end, &rest) >= 3 && rest > 0) {
      runs.push_back({offset, start, end, line.substr(static_cast<size_t>(rest))});
    }
  }
  return runs;
}

std::string Locate(const std::vector<Run>& runs, size_t offset) {
  char buf[96];
  for (const Run& r : runs) {
    if (offset >= r.offset && offset < r.offset + (r.end - r.start)) {
      snprintf(buf, sizeof buf, "dump offset %zu, address 0x%llx: ", offset,
               static_cast<unsigned long long>(r.start + (offset - r.offset)));
      return buf + r.what;
    }
  }
  return "dump offset " + std::to_string(offset) + " (in no indexed run)";
}

// Adds the hits in [p, p+n) to the outcome: every hit counted, one Found
// per encoding family (up to 8).
void Search(const NeedleScanner& scanner, const uint8_t* p, size_t n, const std::string& source,
            const std::vector<Run>* runs, Outcome* o) {
  const std::vector<Hit> hits = scanner.Find(p, n, 1000);
  o->hits += hits.size();
  std::set<std::string> families;
  for (const Found& f : o->found) families.insert(f.what.substr(0, f.what.find(", bytes ")));
  for (const Hit& h : hits) {
    const std::string family = h.needle->what.substr(0, h.needle->what.find(", bytes "));
    if (o->found.size() >= 8 || !families.insert(family).second) continue;
    o->found.push_back({h.needle->what, runs != nullptr ? Locate(*runs, h.offset) : source});
  }
}

std::vector<std::string> ServerEnv(const Attack& a, const Tools& t, const std::string& dir,
                                   const std::string& dump_path) {
  std::vector<std::string> env;
  static const char* const kDropped[] = {"LD_PRELOAD=",      "LD_BIND_NOW=",     "OPENSSL_CONF=",
                                         "OPENSSL_MODULES=", "HEARTBLEED_DUMP=", "CORDON_PROVIDER_LOCKDOWN="};
  for (char** e = environ; *e != nullptr; ++e) {
    bool drop = false;
    for (const char* d : kDropped) drop = drop || strncmp(*e, d, strlen(d)) == 0;
    if (!drop) env.emplace_back(*e);
  }
  env.push_back("HEARTBLEED_DUMP=" + dump_path);
  env.push_back("LD_BIND_NOW=1");
  if (a.via == KeyVia::kControl) {
    env.push_back("LD_PRELOAD=" + t.heartbleed);
    env.push_back("OPENSSL_CONF=" + dir + "/control.cnf");
  } else {
    env.push_back("LD_PRELOAD=" + t.libcordon + " " + t.heartbleed);
    env.push_back("OPENSSL_CONF=" + t.cnf);
    if (!a.lockdown.empty()) env.push_back("CORDON_PROVIDER_LOCKDOWN=" + a.lockdown);
  }
  return env;
}

// Runs argv with exactly `env` to its end, stdout and stderr to files,
// and returns its exit status (128+N if killed by signal N, -1 if it could
// not be started).
int RunCapture(const std::vector<std::string>& argv, const std::vector<std::string>& env,
               const std::string& out_path, const std::string& err_path, std::string* out, std::string* err) {
  std::vector<char*> args, envp;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    const int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int in = open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || in < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ReadFile(out_path, out);
  ReadFile(err_path, err);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A TCP port on 127.0.0.1 that was free a moment ago (nginx cannot listen
// on port 0 and say which port it got); 0 if none could be had.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> b(bytes);
  if (RAND_bytes(b.data(), static_cast<int>(bytes)) != 1) return "";
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s += kHex[c >> 4];
    s += kHex[c & 15];
  }
  return s;
}

// The line of curl -v's stderr that starts with `prefix`, without it.
std::string CurlLine(const std::string& err, const std::string& prefix) {
  const size_t at = err.find(prefix);
  if (at == std::string::npos) return "";
  const size_t from = at + prefix.size();
  return err.substr(from, err.find('\n', from) - from);
}

// nginx as Debian ships it, with a configuration of its own in `dir`:
// master process and one worker (as `nobody` when run as root), the
// certificate and `key` (a reference file, or the control's key.pem),
// 127.0.0.1:port, logs, pid and temporary files in `dir`.
std::string NginxConf(const std::string& dir, int port, const std::string& key, bool as_root) {
  std::string c =
      "# written by tests/openssl/tls_attack.cc\n"
      "daemon off;\n"
      "master_process on;\n"
      "worker_processes 1;\n";
  if (as_root) c += "user nobody nogroup;\n";
  // nginx clears its workers' environment but for TZ and what `env`
  // names: the planted bug reads its dump's path there. (The provider
  // needs nothing of it: it starts in the master, which reads the
  // configuration, and the worker inherits it by fork.)
  c += "env HEARTBLEED_DUMP;\n";
  c += "pid " + dir + "/nginx.pid;\n";
  c += "error_log " + dir + "/error.log info;\n";
  c += "events { worker_connections 64; }\n";
  c += "http {\n";
  c += "  access_log " + dir + "/access.log;\n";
  for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
    c += std::string("  ") + t + "_temp_path " + dir + "/temp/" + t + ";\n";
  }
  c += "  default_type text/plain;\n";
  c += "  keepalive_timeout 0;\n";  // HTTP/0.9 (the trigger's reply) ends at the close
  c += "  server {\n";
  c += "    listen 127.0.0.1:" + std::to_string(port) + " ssl;\n";
  c += "    ssl_protocols TLSv1.2 TLSv1.3;\n";
  c += "    ssl_certificate " + dir + "/cert.pem;\n";
  c += "    ssl_certificate_key " + key + ";\n";
  c += "    root " + dir + "/www;\n";
  c += "  }\n";
  c += "}\n";
  return c;
}

// Runs nginx with the attack's key and fetches the page, then (if asked)
// triggers the over-read; fills the outcome's client and server fields and
// returns what went wrong ("" if all did).
std::string RunNginx(const Attack& a, const Tools& t, const std::string& key_arg,
                     const std::string& dump_path, Outcome* o) {
  const bool root = geteuid() == 0;
  // The worker runs as nobody when nginx starts as root: it reads the page
  // and writes the dump; the key stays readable by root only.
  uid_t worker_uid = geteuid();
  gid_t worker_gid = getegid();
  if (root) {
    const passwd* pw = getpwnam("nobody");
    if (pw == nullptr) return "no user nobody for nginx's worker (/etc/passwd)";
    worker_uid = pw->pw_uid;
    worker_gid = pw->pw_gid;
  }
  o->page = "cordon nginx test page " + RandomHex(16) + "\n";
  const std::string www = o->dir + "/www", run = o->dir + "/worker";
  if (chmod(o->dir.c_str(), 0711) != 0 || mkdir(www.c_str(), 0755) != 0 || mkdir(run.c_str(), 0700) != 0 ||
      chown(run.c_str(), worker_uid, worker_gid) != 0 || mkdir((o->dir + "/temp").c_str(), 0700) != 0 ||
      !WriteFile(www + "/index.html", o->page, 0644)) {
    return "cannot prepare nginx's directories in " + o->dir + ": " + strerror(errno);
  }
  std::string error;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int port = FreePort();
    if (port == 0) return std::string("no free port on 127.0.0.1: ") + strerror(errno);
    if (!WriteFile(o->dir + "/nginx.conf", NginxConf(o->dir, port, key_arg, root), 0644)) {
      return "cannot write " + o->dir + "/nginx.conf";
    }
    unlink((o->dir + "/nginx.pid").c_str());
    Server server;
    const std::vector<std::string> argv = {
        t.nginx, "-p", o->dir + "/", "-c", o->dir + "/nginx.conf", "-e", o->dir + "/error.log"};
    if (!server.Start(argv, ServerEnv(a, t, o->dir, dump_path), o->dir, &error)) {
      return "cannot start nginx: " + error;
    }
    const bool up = server.WaitForFile(o->dir + "/nginx.pid", a.timeout_s, &error);
    std::string log;
    ReadFile(o->dir + "/error.log", &log);
    if (!up) {
      server.Stop();
      o->server_status = server.status();
      o->server_log = log;
      o->server_err = server.Err();
      // Another process took the port between FreePort and nginx's bind.
      if (log.find("Address already in use") != std::string::npos) continue;
      return "nginx: " + error;
    }
    // The client: Debian's curl in an environment of its own (no provider,
    // no ~/.curlrc), trusting only the test's certificate.
    const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/";
    const std::vector<std::string> env = {"PATH=/usr/bin:/bin", "HOME=" + o->dir};
    std::vector<std::string> tls = {"--cacert", o->dir + "/cert.pem", "--max-time",
                                    std::to_string(a.timeout_s)};
    if (a.tls_version == TLS1_2_VERSION) {
      tls.insert(tls.end(), {"--tlsv1.2", "--tls-max", "1.2"});
    } else {
      tls.insert(tls.end(), {"--tlsv1.3"});
    }
    std::vector<std::string> get = {
        t.curl, "-q", "-sS", "-v", "-o", o->dir + "/body", "-w", "%{http_code} %{ssl_verify_result}"};
    get.insert(get.end(), tls.begin(), tls.end());
    get.push_back(url);
    std::string out;
    // Each fetch is a new connection and handshake; the outcome tells the
    // last one's story.
    for (int i = 0; i < std::max(a.fetches, 1); ++i) {
      o->client_status =
          RunCapture(get, env, o->dir + "/curl.out", o->dir + "/curl.err", &out, &o->client_err);
      o->client_statuses.push_back(o->client_status);
    }
    ReadFile(o->dir + "/body", &o->body);
    // "* SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384"
    const std::string using_line = CurlLine(o->client_err, "SSL connection using ");
    o->handshake = !using_line.empty();
    if (o->handshake) {
      o->protocol = using_line.substr(0, using_line.find(" / "));
      o->cipher =
          using_line.find(" / ") == std::string::npos ? "" : using_line.substr(using_line.find(" / ") + 3);
    }
    o->verified = o->handshake && out == "200 0" &&
                  o->client_err.find("SSL certificate verify ok.") != std::string::npos;
    if (o->client_status != 0) {
      error = "curl " + url + " failed with exit status " + std::to_string(o->client_status) + ": " +
              CurlLine(o->client_err, "curl: ");
    } else if (out.compare(0, 4, "200 ") != 0) {
      error = "curl " + url + " got HTTP status and verify result '" + out + "'";
    } else if (a.trigger) {
      // The trigger: a request whose method is HEARTBLEED, so the record
      // nginx's SSL_read returns starts with it. The bug's summary comes
      // first, before nginx's answer (405), so curl must take HTTP/0.9.
      std::vector<std::string> bleed = {t.curl, "-q", "-sS", "--http0.9", "-X", "HEARTBLEED"};
      bleed.insert(bleed.end(), tls.begin(), tls.end());
      bleed.push_back(url);
      std::string err;
      o->trigger_status =
          RunCapture(bleed, env, o->dir + "/trigger.out", o->dir + "/trigger.err", &o->reply, &err);
      if (o->trigger_status != 0) {
        error =
            "curl -X HEARTBLEED failed with exit status " + std::to_string(o->trigger_status) + ": " + err;
      }
    }
    // A graceful stop (SIGQUIT): the master waits for its worker.
    if (!server.SignalAndWait(SIGQUIT, a.timeout_s)) {
      if (error.empty()) error = "nginx did not stop within " + std::to_string(a.timeout_s) + " s of SIGQUIT";
    }
    server.Stop();
    o->server_status = server.status();
    o->server_out = server.Out();
    o->server_err = server.Err();
    ReadFile(o->dir + "/error.log", &o->server_log);
    return error;
  }
  return "no port could be had for nginx (three tries): " + o->server_log;
}

}  // namespace

const char* KeyKindName(KeyKind kind) {
  switch (kind) {
    case KeyKind::kRsa2048:
      return "RSA-2048";
    case KeyKind::kEcP256:
      return "ECDSA P-256";
    case KeyKind::kEd25519:
      return "Ed25519";
  }
  return "?";
}

const char* ServerKindName(ServerKind kind) {
  switch (kind) {
    case ServerKind::kSServer:
      return "openssl s_server";
    case ServerKind::kNginx:
      return "nginx";
  }
  return "?";
}

const char* KeyViaName(KeyVia via) {
  switch (via) {
    case KeyVia::kCordonUri:
      return "cordon provider, key cordon:/path";
    case KeyVia::kReferenceFile:
      return "cordon provider, key reference file";
    case KeyVia::kControl:
      return "CONTROL: default provider, key file";
  }
  return "?";
}

Outcome RunAttack(const Attack& a, const Tools& t, const std::string& base_dir) {
  Outcome o;
  o.description = std::string(ServerKindName(a.server)) + ", " + KeyKindName(a.kind) + ", " +
                  KeyViaName(a.via) + ", " + (a.tls_version == TLS1_2_VERSION ? "TLS 1.2" : "TLS 1.3");
  if (!a.lockdown.empty()) o.description += ", lockdown = " + a.lockdown;
  if (a.server == ServerKind::kNginx && a.via == KeyVia::kCordonUri) {
    o.error = "nginx takes a key file, not a cordon: URI (use a reference file)";
    return o;
  }
  std::string tmpl = base_dir + "/tls-attack-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    o.error = "mkdtemp in " + base_dir + ": " + strerror(errno);
    return o;
  }
  o.dir = tmpl;
  const std::string key_path = o.dir + "/key.pem", cert_path = o.dir + "/cert.pem";

  // The key: random, drawn here, outside the attacked process.
  PkeyPtr key = GenerateKey(a.kind);
  if (key == nullptr) {
    o.error = std::string("cannot generate a ") + KeyKindName(a.kind) + " key: " + OpenSslErrors();
    return o;
  }
  const std::string pem = PrivateKeyPem(key.get()), cert = SelfSignedCertPem(key.get());
  if (pem.empty() || cert.empty()) {
    o.error = "cannot encode the key or make its certificate: " + OpenSslErrors();
    return o;
  }
  const std::string file_text = a.passphrase.empty() ? pem : PrivateKeyPem(key.get(), a.passphrase);
  if (file_text.empty()) {
    o.error = "cannot encrypt the key: " + OpenSslErrors();
    return o;
  }
  // The dump and its index exist before the server starts: the key's
  // directory is on the path the lockdown closes, and a file made there
  // after it cannot be read back (cordon_lockdown_close_file).
  if (!WriteFile(key_path, file_text, 0600) || !WriteFile(cert_path, cert, 0644) ||
      !WriteFile(o.dir + "/control.cnf", "# the control: the default provider only\n", 0644) ||
      !WriteFile(o.dir + "/dump", "", 0600) || !WriteFile(o.dir + "/dump.index", "", 0600)) {
    o.error = "cannot write the key files in " + o.dir + ": " + strerror(errno);
    return o;
  }
  std::string error;
  const std::vector<Needle> needles = PrivateKeyNeedles(key.get(), pem, &error);
  if (needles.empty()) {
    o.error = "cannot list the key's encodings: " + error;
    return o;
  }
  o.needles = needles.size();
  o.needle_families = DescribeNeedles(needles);
  const NeedleScanner scanner(needles);

  std::string key_arg = key_path;
  if (a.via == KeyVia::kCordonUri) key_arg = "cordon:" + key_path;
  if (a.via == KeyVia::kReferenceFile) {
    key_arg = o.dir + "/key.ref";
    std::string err;
    const int rc = RunTool({t.cordon_key, "ref", key_path, "-o", key_arg}, o.dir + "/cordon-key.err", &err);
    if (rc != 0) {
      o.error = "cordon-key ref failed (status " + std::to_string(rc) + "): " + err;
      return o;
    }
  }
  if (a.via != KeyVia::kControl) {
    // The judge's process keeps its copy of the key; the server never
    // sees it but through the file.
    struct stat st;
    if (stat(t.libcordon.c_str(), &st) != 0 || stat(t.cnf.c_str(), &st) != 0) {
      o.error = "the provider's files are missing (" + t.libcordon + ", " + t.cnf + ")";
      return o;
    }
  }

  const std::string dump_path = o.dir + (a.server == ServerKind::kNginx ? "/worker/dump" : "/dump");
  if (a.server == ServerKind::kNginx) {
    error = RunNginx(a, t, key_arg, dump_path, &o);
    if (!error.empty()) {
      o.error = error + " (nginx's wait status " + std::to_string(o.server_status) +
                "; its stderr: " + o.server_err + "; its error log:\n" + o.server_log + ")";
      return o;
    }
    if (!a.trigger) return o;
  } else {
    Server server;
    std::vector<std::string> argv = {t.openssl, "s_server", "-accept", "127.0.0.1:0", "-cert",
                                     cert_path, "-key",     key_arg,   "-naccept",    "1"};
    if (!a.passphrase.empty()) {
      argv.push_back("-pass");
      argv.push_back("pass:" + a.passphrase);
    }
    if (!server.Start(argv, ServerEnv(a, t, o.dir, dump_path), o.dir, &error)) {
      o.error = "cannot start the server: " + error;
      return o;
    }
    const int port = server.WaitForPort(a.timeout_s, &error);
    if (port > 0) {
      const Client c = ConnectAndTrigger(port, a.tls_version, cert_path, a.timeout_s);
      o.handshake = c.handshake;
      o.verified = c.verified;
      o.protocol = c.protocol;
      o.cipher = c.cipher;
      o.reply = c.reply;
      if (!c.error.empty()) error = c.error;
    }
    server.WaitForEnd(a.timeout_s);
    server.Stop();
    o.server_status = server.status();
    o.server_out = server.Out();
    o.server_err = server.Err();
    if (!error.empty()) {
      o.error = error + " (the server: " + server.StatusText() + "; its stderr: " + o.server_err + ")";
      return o;
    }
  }

  unsigned long dumped = 0, refused = 0;
  unsigned long long bytes = 0;
  const size_t at = o.reply.find("dumped ");
  if (at == std::string::npos || sscanf(o.reply.c_str() + at, "dumped %lu pages (%llu bytes), %lu refused",
                                        &dumped, &bytes, &refused) != 3) {
    o.error = "the server's reply is not the over-read's summary: '" + o.reply + "'";
    return o;
  }
  o.pages_dumped = dumped;
  o.pages_refused = refused;
  std::string dump;
  if (!ReadFile(dump_path, &dump)) {
    o.error = "cannot read the dump " + dump_path + ": " + strerror(errno);
    return o;
  }
  o.dump_bytes = dump.size();
  if (o.dump_bytes != bytes) {
    o.error =
        "the dump holds " + std::to_string(o.dump_bytes) + " bytes, the server said " + std::to_string(bytes);
    return o;
  }
  const std::vector<Run> runs = ReadIndex(dump_path + ".index");
  Search(scanner, reinterpret_cast<const uint8_t*>(dump.data()), dump.size(), "dump", &runs, &o);
  Search(scanner, reinterpret_cast<const uint8_t*>(o.reply.data()), o.reply.size(), "the reply to the client",
         nullptr, &o);
  Search(scanner, reinterpret_cast<const uint8_t*>(o.server_out.data()), o.server_out.size(),
         "the server's stdout", nullptr, &o);
  Search(scanner, reinterpret_cast<const uint8_t*>(o.server_err.data()), o.server_err.size(),
         "the server's stderr", nullptr, &o);
  Search(scanner, reinterpret_cast<const uint8_t*>(o.server_log.data()), o.server_log.size(),
         "the server's error log", nullptr, &o);
  if (!a.keep_dump) unlink(dump_path.c_str());
  return o;
}

}  // namespace cordon::tls
