// The judge of attack_signal.c (attacker review, issue 16): a key drawn
// at random here, outside the attacked process; attack_signal loads it
// through the cordon provider, signs with a SIGALRM timer firing every
// 1.5 ms into a handler that dumps what it sees of the interrupted state;
// this process searches the dump for every encoding of the key
// (key_encodings.h) and checks that no two ECDSA signatures share an r.
//
// Before Linux 6.12 the lockdown refuses a SIGALRM handler
// (docs/signals.md), so there the attack must fail closed: the first
// signature fails with the lockdown's error and nothing is signed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "tests/openssl/key_encodings.h"

namespace {

bool KernelWritesFramesAnywhere() {  // 6.12 and later
  utsname u;
  uname(&u);
  int major = 0, minor = 0;
  sscanf(u.release, "%d.%d", &major, &minor);
  return major > 6 || (major == 6 && minor >= 12);
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Run {
  int status = -1;
  std::string out, dump, sigs;
  std::vector<cordon::tls::Hit> hits;
  std::vector<cordon::tls::Needle> needles;
};

Run Attack(const char* alg, const char* param, int count) {
  Run r;
  char tmpl[] = "/tmp/attack-signal-XXXXXX";
  EXPECT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  // (RSA's keygen takes a size_t variadic argument, the others none or a curve.)
  EVP_PKEY* key = std::string(alg) == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                  : param != nullptr        ? EVP_PKEY_Q_keygen(nullptr, nullptr, alg, param)
                                            : EVP_PKEY_Q_keygen(nullptr, nullptr, alg);
  EXPECT_NE(key, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  const std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  {
    std::ofstream f(dir + "/key.pem", std::ios::binary);
    f << pem;
  }
  std::string err;
  r.needles = cordon::tls::PrivateKeyNeedles(key, pem, &err);
  EVP_PKEY_free(key);
  EXPECT_FALSE(r.needles.empty()) << err;

  // The attacked process (no shell in the VM): its output to DIR/out.
  const std::string uri = "cordon:" + dir + "/key.pem", dump = dir + "/dump", n_arg = std::to_string(count);
  const std::string cnf = std::string("OPENSSL_CONF=") + CORDON_TLS_CNF,
                    pre = std::string("LD_PRELOAD=") + CORDON_TLS_LIBCORDON;
  const pid_t pid = fork();
  if (pid == 0) {
    const int out = open((dir + "/out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(out, 1);
    dup2(out, 2);
    char* const args[] = {const_cast<char*>(CORDON_ATTACK_SIGNAL), const_cast<char*>(uri.c_str()),
                          const_cast<char*>(dump.c_str()), const_cast<char*>(n_arg.c_str()), nullptr};
    char* const envp[] = {const_cast<char*>(cnf.c_str()), const_cast<char*>(pre.c_str()),
                          const_cast<char*>("LD_BIND_NOW=1"), nullptr};
    execve(args[0], args, envp);
    fprintf(stderr, "execve %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  waitpid(pid, &r.status, 0);
  r.out = Slurp(dir + "/out");
  r.dump = Slurp(dir + "/dump");
  r.sigs = Slurp(dir + "/dump.sigs");
  cordon::tls::NeedleScanner scanner(r.needles);
  r.hits = scanner.Find(reinterpret_cast<const uint8_t*>(r.dump.data()), r.dump.size(), 100);
  // The output too (the handler's process printed it).
  auto out_hits = scanner.Find(reinterpret_cast<const uint8_t*>(r.out.data()), r.out.size(), 100);
  r.hits.insert(r.hits.end(), out_hits.begin(), out_hits.end());
  printf("  %s: exit %d, dump %zu bytes, %zu hits\n%s", alg, WEXITSTATUS(r.status), r.dump.size(),
         r.hits.size(), r.out.c_str());
  return r;
}

std::string Hits(const Run& r) {
  std::string s;
  for (const auto& h : r.hits)
    s += "\n  FOUND " + h.needle->what + " at dump offset " + std::to_string(h.offset);
  return s;
}

// r of each DER ECDSA-Sig-Value (hex lines "SIG message").
std::set<std::string> Rs(const std::string& sigs, size_t* lines) {
  std::set<std::string> rs;
  std::istringstream in(sigs);
  std::string hex, rest;
  *lines = 0;
  while (in >> hex && std::getline(in, rest)) {
    ++*lines;
    // 30 LL 02 RL r...
    const size_t rl = std::stoul(hex.substr(6, 2), nullptr, 16);
    rs.insert(hex.substr(8, 2 * rl));
  }
  return rs;
}

void Check(const char* alg, const char* param, int count) {
  const Run r = Attack(alg, param, count);
  if (!KernelWritesFramesAnywhere()) {
    EXPECT_EQ(WEXITSTATUS(r.status), 4) << r.out;
    EXPECT_NE(r.out.find("signature 0 failed"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("signal 14"), std::string::npos) << "the lockdown's refusal should name SIGALRM\n"
                                                          << r.out;
  } else {
    EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.out;
    EXPECT_NE(r.out.find("locked down 1"), std::string::npos) << r.out;
    int signals = 0, empty = 0;
    const size_t at = r.out.find("signals ");
    ASSERT_NE(at, std::string::npos) << r.out;
    sscanf(r.out.c_str() + at, "signals %d, with an empty context %d", &signals, &empty);
    EXPECT_GT(empty, 0) << "no signal interrupted trusted code: the attack did not hit the window";
  }
  EXPECT_TRUE(r.hits.empty()) << "LEAK: the signal handler saw the private key" << Hits(r);
  if (std::string(alg) == "EC") {
    size_t lines = 0;
    const std::set<std::string> rs = Rs(r.sigs, &lines);
    EXPECT_EQ(rs.size(), lines) << "an ECDSA nonce repeated";
  }
}

TEST(AttackSignal, HandlerDuringEcdsaP256) {
  Check("EC", "P-256", 10);
}
TEST(AttackSignal, HandlerDuringRsa2048) {
  Check("RSA", nullptr, 2);
}
TEST(AttackSignal, HandlerDuringEd25519) {
  Check("ED25519", nullptr, 10);
}

}  // namespace
