// Debian's nginx serving HTTPS to curl with the cordon provider (issue 16):
// no change to nginx, only OPENSSL_CONF, LD_PRELOAD=libcordon.so and
// LD_BIND_NOW=1, and `ssl_certificate_key` naming a reference file written
// by `cordon-key ref` (nginx 1.22 decodes it with PEM_read_bio_PrivateKey,
// which reaches the provider's decoder).
//
// Each case draws a random key (RSA-2048, ECDSA P-256, Ed25519) and a
// self-signed certificate, writes an nginx.conf (master process, one
// worker, 127.0.0.1 on a free port, logs and pid in the case's directory),
// and fetches a page holding a random token with curl --cacert over TLS 1.2
// or 1.3. Then the planted over-read (libheartbleed.so, preloaded into nginx
// too) is triggered in the worker by a request whose method is HEARTBLEED,
// and this process searches the worker's dump for every encoding of the key
// (tls_attack.h, key_encodings.h): with the provider none may be found;
// without it (the control, the default provider reading key.pem) the key
// must be found.
//
// The kernel decides what happens with the default `lockdown = first-use`:
// the worker locks down at its first signature, and nginx has installed
// handlers for SIGHUP, SIGTERM, SIGCHLD and more by then. Before Linux 6.12
// the lockdown refuses while such handlers exist (docs/signals.md,
// "Limits"), so the provider fails closed: the handshake fails, nginx's
// error log names the lockdown, and nothing is signed. From 6.12 the
// lockdown succeeds and nginx serves. Each case asserts what its kernel
// (uname) must do.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <pwd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/openssl/tls_attack.h"
#include "tests/openssl/tls_case.h"

namespace {

using cordon::tls::Attack;
using cordon::tls::KeyKind;
using cordon::tls::KeyVia;
using cordon::tls::Outcome;
using cordon::tls::ServerKind;

cordon::tls::Tools TheTools() {
  cordon::tls::Tools t;
  t.heartbleed = CORDON_TLS_HEARTBLEED;
  t.libcordon = CORDON_TLS_LIBCORDON;
  t.provider = CORDON_TLS_PROVIDER;
  t.cnf = CORDON_TLS_CNF;
  t.cordon_key = CORDON_KEY_TOOL;
  t.nginx = CORDON_TLS_NGINX;
  t.curl = CORDON_TLS_CURL;
  return t;
}

std::string TempBase() {
  const char* d = getenv("TMPDIR");
  return d != nullptr && d[0] != '\0' ? d : "/tmp";
}

// Whether this kernel is older than 6.12: there signal frames are written
// with the interrupted PKRU, and the lockdown refuses non-fault handlers.
bool KernelBefore612(std::string* release) {
  utsname u{};
  uname(&u);
  *release = u.release;
  int major = 0, minor = 0;
  sscanf(u.release, "%d.%d", &major, &minor);
  return major < 6 || (major == 6 && minor < 12);
}

// nginx and curl are Debian packages the bootstrap installs; a missing one
// fails the test (no PKU test is skipped).
void AssertToolsInstalled(const cordon::tls::Tools& t) {
  ASSERT_EQ(access(t.nginx.c_str(), X_OK), 0)
      << t.nginx << " is missing: install Debian's nginx-light and curl with tools/bootstrap";
  ASSERT_EQ(access(t.curl.c_str(), X_OK), 0)
      << t.curl << " is missing: install Debian's nginx-light and curl with tools/bootstrap";
}

std::string FoundList(const Outcome& o) {
  std::string s;
  for (const auto& f : o.found) s += "\n    " + f.what + " at " + f.where;
  return s;
}

std::string Context(const Outcome& o) {
  return "\n  attack: " + o.description + "\n  directory: " + o.dir + "\n  curl (status " +
         std::to_string(o.client_status) + ") stderr:\n" + o.client_err +
         "\n  reply to the trigger: " + o.reply + "\n  nginx (wait status " +
         std::to_string(o.server_status) + ") stderr:\n" + o.server_err + "\n  nginx's error log:\n" +
         o.server_log;
}

// nginx served the page over a verified handshake of the asked version,
// and the over-read dumped the worker's memory.
void ExpectServedAndDumped(const Outcome& o, int version) {
  ASSERT_EQ(o.error, "") << "the attack could not be carried out" << Context(o);
  EXPECT_EQ(o.client_status, 0) << Context(o);
  EXPECT_TRUE(o.handshake) << Context(o);
  EXPECT_TRUE(o.verified) << "curl did not verify the certificate (the key's signature)" << Context(o);
  EXPECT_EQ(o.protocol, version == TLS1_2_VERSION ? "TLSv1.2" : "TLSv1.3") << Context(o);
  // TLS 1.2: an ECDHE suite, whose ServerKeyExchange the key signs (RSA key
  // exchange would need a decryption, which the provider refuses).
  if (version == TLS1_2_VERSION) EXPECT_EQ(o.cipher.compare(0, 6, "ECDHE-"), 0) << Context(o);
  EXPECT_EQ(o.body, o.page) << "nginx did not serve the page" << Context(o);
  EXPECT_EQ(o.trigger_status, 0) << Context(o);
  EXPECT_NE(o.reply.find("heartbleed: dumped "), std::string::npos) << Context(o);
  EXPECT_NE(o.reply.find("405 Not Allowed"), std::string::npos)
      << "nginx's own answer to the trigger" << Context(o);
  EXPECT_GT(o.pages_dumped, 100u) << "the over-read dumped too little to mean anything" << Context(o);
  EXPECT_EQ(o.dump_bytes, o.pages_dumped * 4096) << Context(o);
  EXPECT_EQ(o.server_status, 0) << "nginx did not stop cleanly on SIGQUIT" << Context(o);
  printf("  %s: %s %s; page served; worker dumped %llu pages (%.1f MB), %llu refused; searched %s\n",
         o.description.c_str(), o.protocol.c_str(), o.cipher.c_str(),
         static_cast<unsigned long long>(o.pages_dumped), static_cast<double>(o.dump_bytes) / 1e6,
         static_cast<unsigned long long>(o.pages_refused), o.needle_families.c_str());
}

using cordon::tls::Case;
using cordon::tls::CaseName;

// Before 6.12: the provider's OpenSSL error, in nginx's log of the failed
// handshake, and the lockdown's own line on stderr (nginx sends its
// stderr to the error log), which names the first handler it met.
constexpr char kProviderRefusal[] =
    "SSL_do_handshake() failed (SSL: error:41000004:cordon provider::lockdown failed:cordon: cannot lock "
    "the process down at the first signature (lockdown = first-use): the process cannot be locked down; "
    "the line on stderr says why (";
constexpr char kProviderRefusalNamesHandlers[] =
    "before Linux 6.12 a handler for a signal other than SIGSEGV, SIGBUS, SIGILL and SIGFPE";
constexpr char kLockdownRefusal[] =
    "cordon: cordon_lockdown() refused: signal 1 (SIGHUP) has a handler, and on this kernel (signal "
    "frames written with the interrupted code's protection-key rights, Linux before 6.12) only SIGSEGV, "
    "SIGBUS, SIGILL and SIGFPE may have handlers after lockdown";

class Nginx : public ::testing::TestWithParam<Case> {
 protected:
  Outcome Run(const std::string& lockdown = "", int fetches = 1) {
    Attack a;
    a.server = ServerKind::kNginx;
    a.kind = GetParam().kind;
    a.via = GetParam().via;
    a.tls_version = GetParam().version;
    a.lockdown = lockdown;
    a.fetches = fetches;
    return cordon::tls::RunAttack(a, TheTools(), TempBase());
  }
};

TEST(NginxTools, Installed) {
  AssertToolsInstalled(TheTools());
}

// Without the provider the same search finds the key in the worker: the
// judge can fail. The same on every kernel (no lockdown).
using NginxControl = Nginx;
TEST_P(NginxControl, OverReadFindsTheKey) {
  AssertToolsInstalled(TheTools());
  const Outcome o = Run();
  ExpectServedAndDumped(o, GetParam().version);
  EXPECT_FALSE(o.found.empty()) << "the control leaked nothing: the search (or the over-read) is broken"
                                << Context(o);
  printf("  found (%zu hits):%s\n", o.hits, FoundList(o).c_str());
}
INSTANTIATE_TEST_SUITE_P(DefaultProvider, NginxControl,
                         ::testing::Values(Case{KeyKind::kRsa2048, KeyVia::kControl, TLS1_3_VERSION},
                                           Case{KeyKind::kEcP256, KeyVia::kControl, TLS1_2_VERSION}),
                         CaseName);

// With the provider and the default lockdown (first-use).
using NginxProvider = Nginx;
TEST_P(NginxProvider, ServesAndTheOverReadFindsNothing) {
  AssertToolsInstalled(TheTools());
  std::string release;
  if (KernelBefore612(&release)) {
    // Fail closed: the worker's first signature asks for the lockdown,
    // which refuses; the provider does not sign, libssl aborts the
    // handshake, curl reports it (35: CURLE_SSL_CONNECT_ERROR). The next
    // handshake asks again and is refused again.
    const Outcome o = Run("", 2);
    EXPECT_NE(o.error, "") << Context(o);
    EXPECT_EQ(o.client_statuses, (std::vector<int>{35, 35})) << "kernel " << release << Context(o);
    EXPECT_FALSE(o.handshake) << "kernel " << release << ": a handshake completed without the lockdown"
                              << Context(o);
    EXPECT_EQ(o.body, "") << Context(o);
    size_t refusals = 0;
    for (size_t at = o.server_log.find(kProviderRefusal); at != std::string::npos;
         at = o.server_log.find(kProviderRefusal, at + 1)) {
      ++refusals;
    }
    EXPECT_EQ(refusals, 2u) << "nginx's error log does not say, for each handshake, that it failed for the "
                               "lockdown"
                            << Context(o);
    EXPECT_NE(o.server_log.find(kProviderRefusalNamesHandlers), std::string::npos) << Context(o);
    EXPECT_NE(o.server_log.find(kLockdownRefusal), std::string::npos)
        << "the lockdown's refusal does not name nginx's SIGHUP handler" << Context(o);
    // The worker lives on (it refused one handshake) until nginx stops.
    EXPECT_EQ(o.server_log.find("exited on signal"), std::string::npos) << Context(o);
    EXPECT_EQ(o.server_status, 0) << "nginx did not stop cleanly on SIGQUIT" << Context(o);
    printf("  kernel %s: %s: handshake refused, nginx's error log says:\n%s\n", release.c_str(),
           o.description.c_str(), o.server_log.c_str());
    return;
  }
  const Outcome o = Run();
  ExpectServedAndDumped(o, GetParam().version);
  EXPECT_GT(o.pages_refused, 0u) << "no page was refused: where is the domain?" << Context(o);
  EXPECT_TRUE(o.found.empty()) << "the over-read found the private key (" << o.hits
                               << " hits):" << FoundList(o) << Context(o);
  EXPECT_EQ(o.server_log.find("cordon:"), std::string::npos) << "the provider complained" << Context(o);
}
INSTANTIATE_TEST_SUITE_P(CordonProvider, NginxProvider,
                         ::testing::Values(Case{KeyKind::kRsa2048, KeyVia::kReferenceFile, TLS1_3_VERSION},
                                           Case{KeyKind::kRsa2048, KeyVia::kReferenceFile, TLS1_2_VERSION},
                                           Case{KeyKind::kEcP256, KeyVia::kReferenceFile, TLS1_3_VERSION},
                                           Case{KeyKind::kEcP256, KeyVia::kReferenceFile, TLS1_2_VERSION},
                                           Case{KeyKind::kEd25519, KeyVia::kReferenceFile, TLS1_3_VERSION}),
                         CaseName);

// lockdown = none (the only policy with which nginx serves with the
// provider before 6.12): the key stays in the domain, so the over-read
// finds nothing on every kernel, but the worker is never locked down, and
// the provider says so on stderr at start-up (in the master, before nginx
// sends its stderr to the error log).
using NginxLockdownNone = Nginx;
TEST_P(NginxLockdownNone, ServesUnlockedAndTheOverReadFindsNothing) {
  AssertToolsInstalled(TheTools());
  const Outcome o = Run("none");
  ExpectServedAndDumped(o, GetParam().version);
  EXPECT_GT(o.pages_refused, 0u) << "no page was refused: where is the domain?" << Context(o);
  EXPECT_TRUE(o.found.empty()) << "the over-read found the private key (" << o.hits
                               << " hits):" << FoundList(o) << Context(o);
  EXPECT_NE(o.server_err.find("cordon: WARNING: lockdown = none: the process is never locked down"),
            std::string::npos)
      << Context(o);
}
INSTANTIATE_TEST_SUITE_P(CordonProvider, NginxLockdownNone,
                         ::testing::Values(Case{KeyKind::kEcP256, KeyVia::kReferenceFile, TLS1_3_VERSION}),
                         CaseName);

// lockdown = load is not for nginx started as root: the master locks down
// while it reads its configuration (the key's load), which drops every
// capability, and then it cannot set up what it does as root (chown its
// temporary directories for the worker's user; later it would bind
// privileged ports and setuid its workers). nginx exits 1 with the reason.
using NginxLockdownLoad = Nginx;
TEST_P(NginxLockdownLoad, RootMasterCannotStart) {
  AssertToolsInstalled(TheTools());
  ASSERT_EQ(geteuid(), 0u) << "this case is nginx started as root, as Debian's service starts it: run it as "
                              "root (the VM does)";
  const Outcome o = Run("load");
  EXPECT_NE(o.error.find("nginx: the server ended before it listened (exit status 1)"), std::string::npos)
      << Context(o);
  EXPECT_EQ(o.client_status, -1) << "curl ran: nginx listened" << Context(o);
  const passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr) << "no user nobody (/etc/passwd)";
  EXPECT_NE(o.server_log.find("chown(\"" + o.dir + "/temp/client_body\", " + std::to_string(nobody->pw_uid) +
                              ") failed (1: Operation not permitted)"),
            std::string::npos)
      << Context(o);
}
INSTANTIATE_TEST_SUITE_P(CordonProvider, NginxLockdownLoad,
                         ::testing::Values(Case{KeyKind::kEcP256, KeyVia::kReferenceFile, TLS1_3_VERSION}),
                         CaseName);

}  // namespace
