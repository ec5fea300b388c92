// What Cordon costs a real user of libcrypto, natively, in one process:
// cordon_init() (timed cold, the first thing main does in a program that
// links libc, libstdc++ and libcrypto), then Ed25519 and ECDSA P-256
// signatures and a 64-byte HMAC-SHA256, each with the key in ordinary
// memory (plain calls, glibc's heap) against the key in the trusted domain
// (the same code entered through a gate, libcrypto's allocations on the
// trusted heap). Scenarios interleave at random in each round; each
// "in the domain" figure is a ratio to its plain twin of the same round.
//
//   crypto_bench [--even-under-tcg] [ROUNDS [ITERATIONS]]     defaults 15 and 2000
//
// libcrypto's allocator is set before anything allocates
// (CRYPTO_set_mem_functions): inside the domain it takes blocks from the
// trusted heap, outside from glibc, and frees by where the block is. Keys
// are made where they are used: the domain's inside the domain, so that the
// key, its EVP_PKEY and everything libcrypto hangs off it are trusted
// memory. Under QEMU's TCG times mean nothing: it says so and exits 0
// (--even-under-tcg measures anyway, to check the harness). Exit status 0,
// or 2 when it cannot run (no PKU, cordon_init refused, libcrypto failed).
#define OPENSSL_API_COMPAT 10101  // the low-level SHA-256 API the vault uses, without deprecation warnings
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cordon/cordon.h"
#include "runtime/hardware/platform.h"

namespace {

double NowNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// ---- libcrypto's allocator: the trusted heap inside the domain, glibc outside.
bool InDomain() {
  return cordon_is_initialized() && cordon_current_domain() == cordon_trusted_domain();
}
bool Trusted(const void* p) {
  return p != nullptr && cordon_is_initialized() && cordon_domain_of(p) == cordon_trusted_domain();
}

void* BenchMalloc(size_t n, const char*, int) {
  if (!InDomain()) return malloc(n);
  void* p = nullptr;
  return cordon_malloc(n == 0 ? 1 : n, &p) == CORDON_OK ? p : nullptr;
}
void BenchFree(void* p, const char*, int) {
  if (Trusted(p))
    (void)cordon_free(p);
  else
    free(p);
}
void* BenchRealloc(void* p, size_t n, const char* file, int line) {
  if (p == nullptr) return BenchMalloc(n, file, line);
  if (!Trusted(p)) return realloc(p, n);
  void* q = nullptr;
  return cordon_realloc(p, n == 0 ? 1 : n, &q) == CORDON_OK ? q : nullptr;
}

// ---- The work, the same code plain and inside the domain.
constexpr size_t kHmacKeyBytes = 32;
unsigned char g_message[64];

uint64_t MakeKey(uint64_t type, uint64_t, uint64_t, uint64_t, uint64_t) {
  EVP_PKEY* k = type == 0 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                          : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  return reinterpret_cast<uint64_t>(k);
}

// One signature of g_message; returns its length (0 on failure).
uint64_t SignOnce(uint64_t key, uint64_t ed25519, uint64_t, uint64_t, uint64_t) {
  auto* k = reinterpret_cast<EVP_PKEY*>(key);
  unsigned char sig[128];
  size_t len = sizeof sig;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = ctx != nullptr &&
                  EVP_DigestSignInit(ctx, nullptr, ed25519 ? nullptr : EVP_sha256(), nullptr, k) == 1 &&
                  EVP_DigestSign(ctx, sig, &len, g_message, sizeof g_message) == 1;
  EVP_MD_CTX_free(ctx);
  return ok ? len : 0;
}

// HMAC-SHA256 as the secret vault computes it (samples/secret-vault), on
// the stack, with the low-level SHA-256 calls (no allocation).
// SHA-256 of (key XOR pad byte, zero-padded to 64 bytes) || msg.
void PaddedHash(const unsigned char* key, unsigned char pad_byte, const unsigned char* msg, size_t len,
                unsigned char out[32]) {
  unsigned char pad[64];
  memset(pad, pad_byte, sizeof pad);
  for (size_t i = 0; i < kHmacKeyBytes; ++i) pad[i] ^= key[i];
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, pad, sizeof pad);
  SHA256_Update(&ctx, msg, len);
  SHA256_Final(out, &ctx);
}

uint64_t Hmac(uint64_t key_addr, uint64_t, uint64_t, uint64_t, uint64_t) {
  const auto* key = reinterpret_cast<const unsigned char*>(key_addr);
  unsigned char inner[32], out[32];
  PaddedHash(key, 0x36, g_message, sizeof g_message, inner);
  PaddedHash(key, 0x5c, inner, sizeof inner, out);
  return out[0] | 1u;  // nonzero: done
}

// Sixteen of them in one call: the same work with one crossing for 16, which
// tells a cost per crossing from a cost per operation inside the domain.
uint64_t Hmac16(uint64_t key_addr, uint64_t, uint64_t, uint64_t, uint64_t) {
  uint64_t all = 1;
  for (int i = 0; i < 16; ++i) all &= Hmac(key_addr, 0, 0, 0, 0) != 0;
  return all;
}

// Makes the trusted HMAC key inside the domain: random, never outside.
uint64_t MakeHmacKey(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  void* p = nullptr;
  if (cordon_malloc(kHmacKeyBytes, &p) != CORDON_OK) return 0;
  if (cordon_random_bytes(p, kHmacKeyBytes) != CORDON_OK) return 0;
  return reinterpret_cast<uint64_t>(p);
}

[[noreturn]] void Fail(const char* what) {
  fprintf(stderr, "crypto_bench: %s failed\n", what);
  fflush(stdout);
  _exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  // Before libcrypto allocates anything, and before Cordon starts.
  if (CRYPTO_set_mem_functions(BenchMalloc, BenchRealloc, BenchFree) != 1)
    Fail("CRYPTO_set_mem_functions refused");
  printf("platform: %s\n", cordon::hw::DescribePlatform().c_str());
  printf("linked: %s, libstdc++, libc\n", OpenSSL_version(OPENSSL_VERSION));
  fflush(stdout);
  const double init0 = NowNs();
  const int init_status = cordon_init(nullptr);
  const double init_ms = (NowNs() - init0) / 1e6;
  if (init_status != CORDON_OK) {
    fprintf(stderr, "crypto_bench: cordon_init: %s\n", cordon_strerror(init_status));
    return 2;
  }
  const bool tcg = cordon::hw::UnderTcg();
  printf("cordon_init(): %.2f ms (cold: the first call in this process)%s\n", init_ms,
         tcg ? ", emulated: says nothing about hardware" : "");

  const bool even_under_tcg = argc > 1 && strcmp(argv[1], "--even-under-tcg") == 0;
  if (even_under_tcg) {
    --argc;
    ++argv;
  }
  if (tcg && !even_under_tcg) {
    printf(
        "under QEMU's TCG each WRPKRU flushes the emulated TLB: the times here say nothing about "
        "hardware.\n");
    fflush(stdout);
    _exit(0);
  }
  const int rounds = argc > 1 ? atoi(argv[1]) : 15;
  const long iterations = argc > 2 ? atol(argv[2]) : 2000;
  if (rounds < 1 || iterations < 100) {
    fprintf(stderr, "usage: crypto_bench [--even-under-tcg] [ROUNDS >= 1 [ITERATIONS >= 100]]\n");
    return 2;
  }
  // One CPU, so that both twins of a pair see the same core.
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(std::max(sched_getcpu(), 0), &set);
  sched_setaffinity(0, sizeof set, &set);

  // libcrypto's global state (providers, method caches, the DRBGs) is made
  // outside first, on glibc's heap, as in a program that uses libcrypto
  // itself: one of each operation, plain.
  for (unsigned char& b : g_message) b = static_cast<unsigned char>(rand());
  const auto plain_ed = MakeKey(0, 0, 0, 0, 0), plain_ec = MakeKey(1, 0, 0, 0, 0);
  unsigned char plain_hmac_key[kHmacKeyBytes];
  if (cordon_random_bytes(plain_hmac_key, sizeof plain_hmac_key) != CORDON_OK) Fail("no random bytes");
  if (plain_ed == 0 || plain_ec == 0 || SignOnce(plain_ed, 1, 0, 0, 0) == 0 ||
      SignOnce(plain_ec, 0, 0, 0, 0) == 0) {
    Fail("libcrypto could not sign");
  }

  cordon_entry make_key, sign, hmac, hmac16, make_hmac_key;
  const cordon_domain_t t = cordon_trusted_domain();
  if (cordon_register(t, MakeKey, "make_key", &make_key) != CORDON_OK ||
      cordon_register(t, SignOnce, "sign", &sign) != CORDON_OK ||
      cordon_register(t, Hmac, "hmac", &hmac) != CORDON_OK ||
      cordon_register(t, Hmac16, "hmac16", &hmac16) != CORDON_OK ||
      cordon_register(t, MakeHmacKey, "make_hmac_key", &make_hmac_key) != CORDON_OK) {
    Fail("cordon_register refused");
  }
  const uint64_t dom_ed = cordon_call(make_key, 0, 0, 0, 0, 0);
  const uint64_t dom_ec = cordon_call(make_key, 1, 0, 0, 0, 0);
  const uint64_t dom_hmac_key = cordon_call(make_hmac_key, 0, 0, 0, 0, 0);
  if (!Trusted(reinterpret_cast<void*>(dom_ed)) || !Trusted(reinterpret_cast<void*>(dom_ec)) ||
      !Trusted(reinterpret_cast<void*>(dom_hmac_key))) {
    Fail("the domain's keys are not in trusted memory");
  }
  const auto plain_key = reinterpret_cast<uint64_t>(plain_hmac_key);

  struct Pair {
    const char* name;
    std::function<uint64_t()> plain, domain;
    long scale;  // iterations are multiplied by this (fast operations)
    std::vector<double> plain_ns, domain_ns, ratios;
  };
  std::vector<Pair> pairs = {
      {"Ed25519 sign (64 B)",
       [&] { return SignOnce(plain_ed, 1, 0, 0, 0); },
       [&] { return cordon_call(sign, dom_ed, 1, 0, 0, 0); },
       1,
       {},
       {},
       {}},
      {"ECDSA P-256 sign (SHA-256, 64 B)",
       [&] { return SignOnce(plain_ec, 0, 0, 0, 0); },
       [&] { return cordon_call(sign, dom_ec, 0, 0, 0, 0); },
       1,
       {},
       {},
       {}},
      {"HMAC-SHA256 (64 B, as the vault)",
       [&] { return Hmac(plain_key, 0, 0, 0, 0); },
       [&] { return cordon_call(hmac, dom_hmac_key, 0, 0, 0, 0); },
       50,
       {},
       {},
       {}},
      {"16 x HMAC-SHA256 in one call",
       [&] { return Hmac16(plain_key, 0, 0, 0, 0); },
       [&] { return cordon_call(hmac16, dom_hmac_key, 0, 0, 0, 0); },
       4,
       {},
       {},
       {}},
  };
  for (auto& p : pairs) {
    for (int i = 0; i < 50; ++i) {  // warm, and check both twins work
      if (p.plain() == 0 || p.domain() == 0) Fail(p.name);
    }
  }
  std::mt19937 rng(12345);
  for (int r = 0; r < rounds; ++r) {
    // Each twin of each pair once, in a random order.
    std::vector<std::pair<size_t, bool>> order;
    for (size_t i = 0; i < pairs.size(); ++i) order.insert(order.end(), {{i, false}, {i, true}});
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<double> plain(pairs.size()), domain(pairs.size());
    for (const auto& [i, in_domain] : order) {
      const long k = iterations * pairs[i].scale;
      const auto& fn = in_domain ? pairs[i].domain : pairs[i].plain;
      const double t0 = NowNs();
      uint64_t all = 1;
      for (long j = 0; j < k; ++j) all &= fn() != 0;
      const double ns = (NowNs() - t0) / static_cast<double>(k);
      if (all == 0) Fail(pairs[i].name);
      (in_domain ? domain : plain)[i] = ns;
    }
    for (size_t i = 0; i < pairs.size(); ++i) {
      pairs[i].plain_ns.push_back(plain[i]);
      pairs[i].domain_ns.push_back(domain[i]);
      pairs[i].ratios.push_back(domain[i] / plain[i]);
    }
  }
  printf("%d rounds; in each, both twins of every pair in a random order, pinned to CPU %d\n", rounds,
         sched_getcpu());
  printf("%-36s %12s %12s %10s %10s\n", "operation", "plain ns", "domain ns", "min", "median");
  for (const auto& p : pairs) {
    printf("%-36s %12.0f %12.0f %+9.1f%% %+9.1f%%\n", p.name, Median(p.plain_ns), Median(p.domain_ns),
           (*std::min_element(p.ratios.begin(), p.ratios.end()) - 1) * 100, (Median(p.ratios) - 1) * 100);
  }
  fflush(stdout);
  _exit(0);  // libcrypto's exit handlers would free trusted blocks from outside
}
