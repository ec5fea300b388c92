// tls_demo: the TLS demo of issue 16 in plain words (tools/dev demo-tls).
// An unmodified `openssl s_server` with a planted Heartbleed-style bug
// (libheartbleed.so) serves a fresh random key twice: with the cordon
// provider holding the key in its protection-key domain, and without it.
// Each time a client connects, triggers the bug, and the bug copies every
// byte of memory the server's code can read; this program (outside the
// server) searches the copy for every encoding of the private key, with the
// TLS judge's search (key_encodings.h, tls_attack.h).
//
//   tls_demo [--key rsa|ec|ed25519] [--keep]
//   tls_demo --files      the files the demo needs (for tools/cordon-vm --file)
//   tls_demo --help | --version
//
// Exit status: 0 the demo showed what it claims (with the provider nothing
// found, without it the key found), 1 it did not, or the attack could not
// be carried out, 2 usage error.
#include <openssl/ssl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cordon/version.h"
#include "tests/openssl/tls_attack.h"

namespace {

constexpr char kUsage[] =
    "usage: tls_demo [--key rsa|ec|ed25519] [--keep]\n"
    "       tls_demo --files | --help | --version\n"
    "Runs an unmodified openssl s_server with a planted Heartbleed-style over-read twice,\n"
    "with the cordon provider holding its key and without it, and searches what the\n"
    "over-read copied for every encoding of the private key.\n"
    "  --key KIND  the key type (default ec: ECDSA P-256)\n"
    "  --keep      keep the memory dumps (their directories are printed)\n"
    "  --files     print the files the demo needs, one per line, and exit\n"
    "Exit status: 0 nothing found with the provider and the key found without it,\n"
    "1 otherwise (or the attack could not be carried out), 2 usage error.\n";

cordon::tls::Tools TheTools() {
  cordon::tls::Tools t;
  t.openssl = CORDON_TLS_OPENSSL;
  t.heartbleed = CORDON_TLS_HEARTBLEED;
  t.libcordon = CORDON_TLS_LIBCORDON;
  t.provider = CORDON_TLS_PROVIDER;
  t.cnf = CORDON_TLS_CNF;
  t.cordon_key = CORDON_KEY_TOOL;
  return t;
}

std::string Mb(uint64_t bytes) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

// Prints one attack's story; true if it ran to its end.
bool Tell(const cordon::tls::Outcome& o, bool provider) {
  printf("   key: a fresh random key, drawn by this program, in %s/key.pem\n", o.dir.c_str());
  if (!o.error.empty()) {
    printf("   the attack could not be carried out: %s\n", o.error.c_str());
    return false;
  }
  printf("   a client connected: %s, %s; it verified the server's certificate: %s\n", o.protocol.c_str(),
         o.cipher.c_str(), o.verified ? "yes" : "NO");
  printf(
      "   the client sent \"HEARTBLEED\": the planted bug copied every page the server's code\n"
      "   can read to a file: %llu pages, %s",
      static_cast<unsigned long long>(o.pages_dumped), Mb(o.dump_bytes).c_str());
  if (o.pages_refused > 0) {
    printf("; %llu pages (%s) were refused with EFAULT: the key's domain",
           static_cast<unsigned long long>(o.pages_refused), Mb(o.pages_refused * 4096).c_str());
    if (!provider) printf(" (?)");
  }
  printf(
      "\n   this program searched those %s, the reply and the server's output for %zu byte\n"
      "   strings that only the private key makes (its private numbers in both byte orders and\n"
      "   in hex, its DER and PEM encodings)\n",
      Mb(o.dump_bytes).c_str(), o.needles);
  if (o.found.empty()) {
    printf("   found: NONE of the key's bytes\n");
  } else {
    printf("   found the key (%zu places), for example:\n", o.hits);
    for (const auto& f : o.found) printf("     %s, at %s\n", f.what.c_str(), f.where.c_str());
  }
  return o.handshake && o.verified && o.pages_dumped > 100;
}

}  // namespace

int main(int argc, char** argv) {
  cordon::tls::Attack a;
  a.tls_version = TLS1_3_VERSION;
  std::string kind = "ec";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--version") {
      printf("tls_demo %s\n", CORDON_VERSION_STRING);
      return 0;
    }
    if (arg == "--files") {
      const cordon::tls::Tools t = TheTools();
      printf("%s\n%s\n%s\n%s\n%s\n%s\n", t.openssl.c_str(), t.heartbleed.c_str(), t.libcordon.c_str(),
             t.provider.c_str(), t.cnf.c_str(), t.cordon_key.c_str());
      return 0;
    }
    if (arg == "--keep") {
      a.keep_dump = true;
    } else if (arg == "--key" && i + 1 < argc) {
      kind = argv[++i];
    } else {
      fprintf(stderr, "tls_demo: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (kind == "rsa") {
    a.kind = cordon::tls::KeyKind::kRsa2048;
  } else if (kind == "ec") {
    a.kind = cordon::tls::KeyKind::kEcP256;
  } else if (kind == "ed25519") {
    a.kind = cordon::tls::KeyKind::kEd25519;
  } else {
    fprintf(stderr, "tls_demo: --key takes rsa, ec or ed25519, not '%s'\n", kind.c_str());
    return 2;
  }
  const char* tmp = getenv("TMPDIR");
  const std::string base = tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp";
  const cordon::tls::Tools tools = TheTools();
  setvbuf(stdout, nullptr, _IOLBF, 0);

  printf(
      "The cordon TLS demo: an %s key, an unmodified openssl s_server, and a planted\n"
      "Heartbleed-style bug that reads all of the server's memory it can.\n\n",
      cordon::tls::KeyKindName(a.kind));
  printf(
      "1. The server WITH the cordon provider\n"
      "   started: %s s_server -key cordon:/path/key.pem, with\n"
      "   LD_PRELOAD=\"libcordon.so libheartbleed.so\" OPENSSL_CONF=%s\n",
      tools.openssl.c_str(), tools.cnf.c_str());
  a.via = cordon::tls::KeyVia::kCordonUri;
  const cordon::tls::Outcome with = cordon::tls::RunAttack(a, tools, base);
  const bool with_ran = Tell(with, true);

  printf(
      "\n2. The same server WITHOUT the provider (the default provider reads the key file)\n"
      "   started: %s s_server -key /path/key.pem, with LD_PRELOAD=libheartbleed.so\n",
      tools.openssl.c_str());
  a.via = cordon::tls::KeyVia::kControl;
  const cordon::tls::Outcome without = cordon::tls::RunAttack(a, tools, base);
  const bool without_ran = Tell(without, false);

  printf("\n");
  if (!with_ran || !without_ran) {
    printf("Result: the demo could not run to its end (see above).\n");
    return 1;
  }
  if (!with.found.empty()) {
    printf("Result: FAILED: the over-read found the private key although the cordon provider held it.\n");
    return 1;
  }
  if (without.found.empty()) {
    printf("Result: FAILED: without the provider the search found nothing, so the demo proves nothing.\n");
    return 1;
  }
  printf(
      "Result: with the cordon provider the over-read read %s of the server's memory and found\n"
      "none of the key's bytes; without it, it found the key (%s).\n",
      Mb(with.dump_bytes).c_str(), without.found.front().what.c_str());
  return 0;
}
