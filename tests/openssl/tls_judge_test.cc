// The TLS judge (issue 16): a Heartbleed-style over-read of EVERY byte an
// unmodified `openssl s_server` can read must find none of the private
// key's bytes when the cordon provider holds the key, and must find them
// without it (the control: the default provider reading the key file),
// which proves the search can fail.
//
// For each key type (RSA-2048, ECDSA P-256, Ed25519) this process draws a
// random key with libcrypto, writes it as a PEM file with a self-signed
// certificate, starts s_server with libheartbleed.so preloaded (the bug),
// connects with libssl verifying the certificate, sends "HEARTBLEED" and
// searches the dump the bug wrote, the reply and the server's output for
// every encoding of the key (key_encodings.h). With the provider: the key
// as cordon:/path over TLS 1.3 and TLS 1.2, and as a reference file written
// by cordon-key. See tls_attack.h for the pieces.
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <string>

#include "tests/openssl/tls_attack.h"
#include "tests/openssl/tls_case.h"

namespace {

using cordon::tls::Attack;
using cordon::tls::KeyKind;
using cordon::tls::KeyVia;
using cordon::tls::Outcome;

cordon::tls::Tools TheTools() {
  cordon::tls::Tools t;
  t.heartbleed = CORDON_TLS_HEARTBLEED;
#ifdef CORDON_TLS_CNF
  t.libcordon = CORDON_TLS_LIBCORDON;
  t.provider = CORDON_TLS_PROVIDER;
  t.cnf = CORDON_TLS_CNF;
#endif
  t.cordon_key = CORDON_KEY_TOOL;
  return t;
}

std::string TempBase() {
  const char* d = getenv("TMPDIR");
  return d != nullptr && d[0] != '\0' ? d : "/tmp";
}

std::string FoundList(const Outcome& o) {
  std::string s;
  for (const auto& f : o.found) s += "\n    " + f.what + " at " + f.where;
  return s;
}

std::string Context(const Outcome& o) {
  return "\n  attack: " + o.description + "\n  directory: " + o.dir + "\n  reply: " + o.reply +
         "  server (wait status " + std::to_string(o.server_status) + ") stderr:\n" + o.server_err;
}

// The attack ran to its end: the handshake completed with the certificate
// verified, and the over-read dumped a real process's memory.
void ExpectRealAttack(const Outcome& o) {
  ASSERT_EQ(o.error, "") << "the attack could not be carried out" << Context(o);
  EXPECT_TRUE(o.handshake) << Context(o);
  EXPECT_TRUE(o.verified) << "the client did not verify the server's certificate" << Context(o);
  EXPECT_GT(o.pages_dumped, 100u) << "the over-read dumped too little to mean anything" << Context(o);
  EXPECT_EQ(o.dump_bytes, o.pages_dumped * 4096) << Context(o);
  printf("  %s: %s %s; dumped %llu pages (%.1f MB), %llu refused; searched %s\n", o.description.c_str(),
         o.protocol.c_str(), o.cipher.c_str(), static_cast<unsigned long long>(o.pages_dumped),
         static_cast<double>(o.dump_bytes) / 1e6, static_cast<unsigned long long>(o.pages_refused),
         o.needle_families.c_str());
}

using cordon::tls::Case;
using cordon::tls::CaseName;

// 127.0.0.1: natively the host's; in the VM its init brings lo up.
class TlsJudge : public ::testing::TestWithParam<Case> {
 protected:
  Outcome Run() {
    Attack a;
    a.kind = GetParam().kind;
    a.via = GetParam().via;
    a.tls_version = GetParam().version;
    return cordon::tls::RunAttack(a, TheTools(), TempBase());
  }
};

// Without the provider the same search finds the key: the judge can fail.
using TlsJudgeControl = TlsJudge;
TEST_P(TlsJudgeControl, OverReadFindsTheKey) {
  const Outcome o = Run();
  ExpectRealAttack(o);
  EXPECT_FALSE(o.found.empty()) << "the control leaked nothing: the search (or the over-read) is broken"
                                << Context(o);
  printf("  found (%zu hits):%s\n", o.hits, FoundList(o).c_str());
}
INSTANTIATE_TEST_SUITE_P(DefaultProvider, TlsJudgeControl,
                         ::testing::Values(Case{KeyKind::kRsa2048, KeyVia::kControl, TLS1_3_VERSION},
                                           Case{KeyKind::kEcP256, KeyVia::kControl, TLS1_3_VERSION},
                                           Case{KeyKind::kEd25519, KeyVia::kControl, TLS1_2_VERSION}),
                         CaseName);

#ifdef CORDON_TLS_CNF
// With the provider: the key is nowhere the server's own code can read,
// and the domain's pages are there and refused.
using TlsJudgeProvider = TlsJudge;
TEST_P(TlsJudgeProvider, OverReadFindsNothing) {
  const Outcome o = Run();
  ExpectRealAttack(o);
  EXPECT_GT(o.pages_refused, 0u) << "no page was refused: where is the domain?" << Context(o);
  EXPECT_TRUE(o.found.empty()) << "the over-read found the private key (" << o.hits
                               << " hits):" << FoundList(o) << Context(o);
}
INSTANTIATE_TEST_SUITE_P(CordonProvider, TlsJudgeProvider,
                         ::testing::Values(Case{KeyKind::kRsa2048, KeyVia::kCordonUri, TLS1_3_VERSION},
                                           Case{KeyKind::kRsa2048, KeyVia::kCordonUri, TLS1_2_VERSION},
                                           Case{KeyKind::kRsa2048, KeyVia::kReferenceFile, TLS1_3_VERSION},
                                           Case{KeyKind::kEcP256, KeyVia::kCordonUri, TLS1_3_VERSION},
                                           Case{KeyKind::kEcP256, KeyVia::kCordonUri, TLS1_2_VERSION},
                                           Case{KeyKind::kEcP256, KeyVia::kReferenceFile, TLS1_2_VERSION},
                                           Case{KeyKind::kEd25519, KeyVia::kCordonUri, TLS1_3_VERSION},
                                           Case{KeyKind::kEd25519, KeyVia::kCordonUri, TLS1_2_VERSION},
                                           Case{KeyKind::kEd25519, KeyVia::kReferenceFile, TLS1_3_VERSION}),
                         CaseName);
#endif

}  // namespace
