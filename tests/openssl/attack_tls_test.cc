// Attacker review (issue 16): code execution in an unmodified
// `openssl s_server` after the cordon provider's lockdown.
//
// The harness is the TLS judge's (tls_attack.h): a key drawn at random for
// the run in this process, a self-signed certificate, s_server with the
// provider, a libssl client that completes a handshake (so lockdown =
// first-use has locked the server down) and sends the trigger. The
// preloaded "bug" is libattack_postlockdown.so instead of libheartbleed.so:
// it stands for the attacker's code (attack_postlockdown.c) and writes what
// it got to the dump, which this process, outside the attacked one,
// searches for every encoding of the key (key_encodings.h).
//
// Each test asserts the product's claim (docs/openssl.md: the private key
// "cannot leave" the domain after the lockdown); a failure is a leak, with
// the encodings found and the attacker's own account (the server's stderr).
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <string>

#include "tests/openssl/tls_attack.h"

namespace {

using cordon::tls::Attack;
using cordon::tls::KeyKind;
using cordon::tls::KeyVia;
using cordon::tls::Outcome;

cordon::tls::Tools TheTools() {
  cordon::tls::Tools t;
  t.heartbleed = CORDON_ATTACK_LIB;  // the attacker's code, in the heartbleed slot
  t.libcordon = CORDON_TLS_LIBCORDON;
  t.provider = CORDON_TLS_PROVIDER;
  t.cnf = CORDON_TLS_CNF;
  t.cordon_key = CORDON_KEY_TOOL;
  return t;
}

std::string TempBase() {
  const char* d = getenv("TMPDIR");
  return d != nullptr && d[0] != '\0' ? d : "/tmp";
}

std::string Context(const Outcome& o) {
  std::string s = "\n  attack: " + o.description + "\n  directory: " + o.dir + "\n  server (wait status " +
                  std::to_string(o.server_status) + ") stderr:\n" + o.server_err;
  for (const auto& f : o.found) s += "\n  FOUND " + f.what + " at " + f.where;
  return s;
}

Outcome RunMode(const char* mode, KeyKind kind, KeyVia via, const std::string& passphrase = "") {
  setenv("ATTACK_MODE", mode, 1);  // the server's environment is a copy of ours
  Attack a;
  a.kind = kind;
  a.via = via;
  a.tls_version = TLS1_3_VERSION;
  a.passphrase = passphrase;
  Outcome o = cordon::tls::RunAttack(a, TheTools(), TempBase());
  printf("  %s (%s): %zu hits; attacker's account:\n%s", o.description.c_str(), mode, o.hits,
         o.server_err.c_str());
  return o;
}

// The attack ran after the lockdown: the handshake signed with the cordon
// key, and the attacker's code saw the process locked down (seccomp filter
// mode 2).
void ExpectLockedDownAttack(const Outcome& o) {
  ASSERT_EQ(o.error, "") << "the attack could not be carried out" << Context(o);
  EXPECT_TRUE(o.handshake && o.verified) << Context(o);
  EXPECT_NE(o.server_err.find("attack: cordon_is_locked_down() = 1, Seccomp: 2"), std::string::npos)
      << "the attacker's code did not run in a locked-down process" << Context(o);
}

// A random passphrase per run (the judge's), for the encrypted-key case.
std::string RandomPassphrase() {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char raw[20];
  FILE* f = fopen("/dev/urandom", "rb");
  const bool ok = f != nullptr && fread(raw, 1, sizeof raw, f) == sizeof raw;
  if (f != nullptr) fclose(f);
  std::string s;
  for (unsigned char c : raw) s += kAlphabet[(ok ? c : 7) % (sizeof kAlphabet - 1)];
  return s;
}

// open(2) + read(2) of the key file the server was told about: a file is
// not behind a protection key, and Landlock leaves "/" readable.
TEST(AttackAfterLockdown, ReadsTheKeyFileByCordonUri) {
  const Outcome o = RunMode("keyfile", KeyKind::kEcP256, KeyVia::kCordonUri);
  ExpectLockedDownAttack(o);
  EXPECT_TRUE(o.found.empty()) << "LEAK: the attacker's code read the private key (" << o.hits << " hits)"
                               << Context(o);
}

TEST(AttackAfterLockdown, ReadsTheKeyFileNamedByAReference) {
  const Outcome o = RunMode("keyfile", KeyKind::kRsa2048, KeyVia::kReferenceFile);
  ExpectLockedDownAttack(o);
  EXPECT_TRUE(o.found.empty()) << "LEAK: the attacker's code read the private key (" << o.hits << " hits)"
                               << Context(o);
}

TEST(AttackAfterLockdown, ReadsTheKeyFileEd25519) {
  const Outcome o = RunMode("keyfile", KeyKind::kEd25519, KeyVia::kCordonUri);
  ExpectLockedDownAttack(o);
  EXPECT_TRUE(o.found.empty()) << "LEAK: the attacker's code read the private key (" << o.hits << " hits)"
                               << Context(o);
}

// An encrypted key: the passphrase passes through untrusted memory (here
// the command line, as `-pass pass:`), so the file plus the passphrase
// give the key; libcrypto in the process decrypts it.
TEST(AttackAfterLockdown, DecryptsAnEncryptedKeyFileWithThePassphraseInMemory) {
  const Outcome o = RunMode("keyfile", KeyKind::kEcP256, KeyVia::kCordonUri, RandomPassphrase());
  ExpectLockedDownAttack(o);
  EXPECT_TRUE(o.found.empty()) << "LEAK: the attacker's code decrypted the private key (" << o.hits
                               << " hits)" << Context(o);
}

// fork() after the lockdown: the child holds a copy of the domain's pages;
// /proc/<parent>/mem, /proc/self/mem, process_vm_readv and ptrace.
TEST(AttackAfterLockdown, ForkedChildCannotReadTheDomain) {
  const Outcome o = RunMode("fork", KeyKind::kEcP256, KeyVia::kCordonUri);
  ExpectLockedDownAttack(o);
  ASSERT_EQ(o.server_err.find("attack: 0 pages of this process are unreadable"), std::string::npos)
      << Context(o);
  EXPECT_NE(o.server_err.find("process_vm_readv(parent): "), std::string::npos)
      << "the child did not report" << Context(o);
  EXPECT_EQ(o.server_err.find("attack: 0 pages"), std::string::npos)
      << "no unreadable page found: the probes tried nothing" << Context(o);
  EXPECT_TRUE(o.found.empty()) << "LEAK: the forked child read the private key (" << o.hits << " hits)"
                               << Context(o);
}

// The signer's sign entry called directly with requests that name the
// domain's memory: each refused with CORDON_SIGNER_E_ARGUMENT (-1), after a
// control call that signs (status 0).
TEST(AttackAfterLockdown, SignEntryRefusesTrustedPointers) {
  const Outcome o = RunMode("gate", KeyKind::kRsa2048, KeyVia::kCordonUri);
  ExpectLockedDownAttack(o);
  // The attack found the domain's pages to aim at (a probe that found none
  // would aim at untrusted memory, and "status 0" would mean nothing).
  ASSERT_EQ(o.server_err.find("; 0 unreadable pages"), std::string::npos) << Context(o);
  EXPECT_NE(o.server_err.find("control: untrusted digest and buffer (scheme 1): status 0"), std::string::npos)
      << Context(o);
  for (const char* what :
       {"tbs in the domain (", "tbs straddling the domain's edge (", "sig in the domain ("}) {
    const size_t at = o.server_err.find(std::string("attack: gate: ") + what);
    ASSERT_NE(at, std::string::npos) << what << Context(o);
    const std::string line = o.server_err.substr(at, o.server_err.find('\n', at) - at);
    EXPECT_NE(line.find("status -1"), std::string::npos) << "LEAK primitive: " << line << Context(o);
  }
  EXPECT_NE(o.server_err.find("the request in the domain: status -1"), std::string::npos) << Context(o);
}

}  // namespace
