// Secret vault: Cordon's demo.
//
// A signing key (HMAC-SHA256) lives in the trusted domain and is used only
// through gates. The untrusted "server" around it has a Heartbleed-style bug:
// its heartbeat handler echoes as many bytes as the request *claims* to
// carry. The demo runs that over-read three ways and says in plain words
// what happened:
//   1. against a key kept in ordinary memory (for comparison): it leaks;
//   2. against the vault, with the request buffer right below the trusted
//      domain's memory: a protection-key fault stops it at the boundary;
//   3. straight at the key's address (an arbitrary-read primitive): the
//      same fault, on the key's first byte.
// Exit status 0 means the key never reached untrusted code.
#define OPENSSL_API_COMPAT 10101  // the low-level SHA-256 API, without deprecation warnings
#include <openssl/sha.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "cordon/cordon.hpp"

namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kMacBytes = 32;
constexpr uint64_t kVaultMagic = 0x7661756c745f6f6bULL;

// ---------------------------------------------------------------- trusted --
// Everything in this section runs inside the trusted domain, entered only
// through the gates registered in main().

struct Vault {
  uint64_t magic;
  unsigned char key[kKeyBytes];
};

// The vault's address is kept in ordinary memory, which untrusted code can
// overwrite, so trusted code checks it before every use: it must point into
// the trusted domain and carry the magic that only trusted code can write.
Vault* g_vault = nullptr;

Vault* CheckedVault() {
  Vault* v = g_vault;
  const cordon_domain_t trusted = cordon_trusted_domain();
  if (v == nullptr || cordon_domain_of(v) != trusted ||
      cordon_domain_of(reinterpret_cast<char*>(v) + sizeof(Vault) - 1) != trusted ||
      v->magic != kVaultMagic) {
    return nullptr;
  }
  return v;
}

void HmacSha256(const unsigned char* key, const unsigned char* msg, size_t len,
                unsigned char out[kMacBytes]) {
  unsigned char pad[64];
  unsigned char inner[kMacBytes];
  SHA256_CTX ctx;  // on the trusted stack
  memset(pad, 0x36, sizeof pad);
  for (size_t i = 0; i < kKeyBytes; ++i) pad[i] ^= key[i];
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, pad, sizeof pad);
  SHA256_Update(&ctx, msg, len);
  SHA256_Final(inner, &ctx);
  memset(pad, 0x5c, sizeof pad);
  for (size_t i = 0; i < kKeyBytes; ++i) pad[i] ^= key[i];
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, pad, sizeof pad);
  SHA256_Update(&ctx, inner, sizeof inner);
  SHA256_Final(out, &ctx);
  explicit_bzero(pad, sizeof pad);
  explicit_bzero(inner, sizeof inner);
  explicit_bzero(&ctx, sizeof ctx);
}

// Creates the key from the kernel's random generator, written straight into
// trusted memory (getrandom writes as the calling thread, which is trusted).
int VaultCreate() {
  if (g_vault != nullptr) return -1;
  void* p = nullptr;
  if (cordon_malloc(sizeof(Vault), &p) != CORDON_OK) return -1;
  auto* v = static_cast<Vault*>(p);
  if (getrandom(v->key, kKeyBytes, 0) != static_cast<ssize_t>(kKeyBytes)) return -1;
  v->magic = kVaultMagic;
  g_vault = v;
  return 0;
}

// The MAC of a message an untrusted caller passed: at most 1 MiB, and wholly
// in untrusted memory, or the vault could be made to sign its own key.
bool MacOfUntrusted(cordon::Untrusted<const unsigned char*> msg, cordon::Untrusted<size_t> len,
                    unsigned char out[kMacBytes]) {
  const Vault* v = CheckedVault();
  const auto n = len.verify([](size_t x) { return x <= (size_t{1} << 20); });
  if (v == nullptr || !n) return false;
  const unsigned char* m = reinterpret_cast<const unsigned char*>("");
  if (*n != 0) {
    const auto checked = msg.verify_range(*n);
    if (!checked) return false;
    m = *checked;
  }
  HmacSha256(v->key, m, *n, out);
  return true;
}

// Signs msg[0..len) into mac[0..32), which must be untrusted memory too
// (otherwise a caller could overwrite the key with a MAC).
int VaultSign(cordon::Untrusted<const unsigned char*> msg, cordon::Untrusted<size_t> len,
              cordon::Untrusted<unsigned char*> mac) {
  const auto out = mac.verify_range(kMacBytes);
  unsigned char result[kMacBytes];
  if (!out || !MacOfUntrusted(msg, len, result)) return -1;
  memcpy(*out, result, kMacBytes);
  return 0;
}

// Checks a MAC in constant time: 1 valid, 0 invalid, -1 bad arguments.
int VaultVerify(cordon::Untrusted<const unsigned char*> msg, cordon::Untrusted<size_t> len,
                cordon::Untrusted<const unsigned char*> mac) {
  const auto given = mac.verify_range(kMacBytes);
  unsigned char expected[kMacBytes];
  if (!given || !MacOfUntrusted(msg, len, expected)) return -1;
  unsigned diff = 0;
  for (size_t i = 0; i < kMacBytes; ++i) diff |= expected[i] ^ (*given)[i];
  return diff == 0 ? 1 : 0;
}

// For the demo's verdict only: how many 8-byte windows of an untrusted
// buffer match the key. It answers a count, never key bytes.
size_t VaultCountKeyWindows(cordon::Untrusted<const unsigned char*> buf, cordon::Untrusted<size_t> len) {
  Vault* v = CheckedVault();
  const auto b = buf.verify_range(len.UNSAFE_unverified());
  if (v == nullptr || !b) return 0;
  size_t hits = 0;
  for (size_t i = 0; i + 8 <= len.UNSAFE_unverified(); ++i) {
    for (size_t k = 0; k + 8 <= kKeyBytes; ++k) hits += memcmp(*b + i, v->key + k, 8) == 0;
  }
  return hits;
}

// -------------------------------------------------------------- untrusted --

std::string Hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

// The bug: echoes `claimed` bytes from the payload, trusting the request.
size_t HeartbeatEcho(const unsigned char* payload, size_t claimed, unsigned char* response,
                     volatile size_t* progress) {
  for (size_t i = 0; i < claimed; ++i) {
    response[i] = payload[i];
    *progress = i + 1;
  }
  return claimed;
}

// What the child reports about its fault.
struct FaultReport {
  int signal, code;
  uint32_t pkey;
  uintptr_t addr;
  size_t echoed;
};
FaultReport* g_report = nullptr;

void OnFault(int sig, siginfo_t* info, void*) {
  g_report->signal = sig;
  g_report->code = info->si_code;
  g_report->pkey = info->si_pkey;
  g_report->addr = reinterpret_cast<uintptr_t>(info->si_addr);
  _exit(90);
}

// Runs one attack in a child process; returns what the child saw.
template <typename F>
FaultReport RunAttack(F attack, unsigned char* response) {
  auto* shared = static_cast<FaultReport*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  *shared = FaultReport{};
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    g_report = shared;
    struct sigaction sa = {};
    sa.sa_sigaction = OnFault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, nullptr);
    attack(response, &shared->echoed);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  FaultReport r = *shared;
  munmap(shared, 4096);
  return r;
}

bool Explain(const FaultReport& r, const void* expected_addr, int trusted_key) {
  if (r.signal != SIGSEGV) {
    printf("  NOT STOPPED: the read completed (%zu bytes)\n", r.echoed);
    return false;
  }
  const bool pkey_fault = r.code == 4 /* SEGV_PKUERR */;
  const cordon_domain_t d = cordon_domain_of(reinterpret_cast<void*>(r.addr));
  printf("  STOPPED after %zu bytes: SIGSEGV, %s, fault address %#lx, protection key %u = domain '%s'\n",
         r.echoed, pkey_fault ? "SEGV_PKUERR (protection-key fault)" : "not a protection-key fault",
         static_cast<unsigned long>(r.addr), r.pkey, cordon_domain_name(d) ? cordon_domain_name(d) : "?");
  return pkey_fault && static_cast<int>(r.pkey) == trusted_key &&
         r.addr == reinterpret_cast<uintptr_t>(expected_addr);
}

}  // namespace

int main() {
  printf("Cordon secret-vault demo\n\n");
  const cordon::Status init = cordon::Init();
  if (!init.ok()) {
    fprintf(stderr, "cordon: %s\n", init.message());
    return 2;
  }
  const cordon::Domain trusted = cordon::Domain::Trusted();
  printf("Protection keys are available; the trusted domain uses key %d.\n", trusted.pkey());
  size_t gate_sites = 0;
  std::string neutralized;
  for (size_t i = 0; i < cordon_inspection_count(); ++i) {
    cordon_inspection_entry e;
    if (cordon_inspection_get(i, &e) != CORDON_OK) continue;
    if (e.action == 0) {
      ++gate_sites;
    } else {
      const char* base = strrchr(e.object, '/');
      neutralized += std::string(neutralized.empty() ? "" : ", ") + (e.kind == 0 ? "WRPKRU" : "XRSTOR") +
                     " in " + (base != nullptr ? base + 1 : e.object) +
                     (e.symbol[0] != '\0' ? std::string(" (") + e.symbol + ")" : "");
    }
  }
  printf(
      "Before starting, Cordon inspected all executable memory: %zu WRPKRU sites are its own gates;\n"
      "overwritten with UD2 so they can never run: %s.\n",
      gate_sites, neutralized.empty() ? "nothing" : neutralized.c_str());

  auto create = cordon::Register<&VaultCreate>(trusted, "vault_create");
  auto sign = cordon::Register<&VaultSign>(trusted, "vault_sign");
  auto verify = cordon::Register<&VaultVerify>(trusted, "vault_verify");
  auto count = cordon::Register<&VaultCountKeyWindows>(trusted, "vault_count_key_windows");
  if (!create.ok() || !sign.ok() || !verify.ok() || !count.ok() || (*create)() != 0) {
    fprintf(stderr, "cordon: could not set up the vault\n");
    return 2;
  }
  if (const cordon::Status s = cordon::Lockdown(); !s.ok()) {
    fprintf(stderr, "cordon: %s\n", s.message());
    return 2;
  }
  printf("The vault made a %zu-byte HMAC-SHA256 key inside the trusted domain, at %p.\n", kKeyBytes,
         static_cast<void*>(g_vault->key));

  const char* msg = "transfer 100 to alice";
  unsigned char mac[kMacBytes];
  if ((*sign)(reinterpret_cast<const unsigned char*>(msg), strlen(msg), mac) != 0) return 1;
  printf("sign(\"%s\") through a gate: %s\n", msg, Hex(mac, kMacBytes).c_str());
  printf("verify(that MAC) through a gate: %s\n",
         (*verify)(reinterpret_cast<const unsigned char*>(msg), strlen(msg), mac) == 1 ? "valid" : "INVALID");
  printf("sign() asked to write its MAC over the key itself: %s\n\n",
         (*sign)(reinterpret_cast<const unsigned char*>(msg), strlen(msg), g_vault->key) == -1
             ? "refused (the output pointer is trusted memory)"
             : "ACCEPTED");

  bool protected_ok = true;
  static unsigned char response[1 << 16];

  // Attack 2 needs the page right below the trusted domain: take it first.
  const void* region = nullptr;
  size_t region_size = 0;
  (void)cordon_domain_region(trusted.handle(), &region, &region_size);
  auto* below = static_cast<unsigned char*>(mmap(static_cast<char*>(const_cast<void*>(region)) - 4096, 4096,
                                                 PROT_READ | PROT_WRITE,
                                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));

  // 1. For comparison: the same bug against a key in ordinary memory.
  printf(
      "Attack 1 (for comparison, no Cordon): the heartbeat handler echoes 1024 bytes from a 64-byte "
      "request,\n"
      "and an ordinary-memory key sits 512 bytes after the request.\n");
  auto* plain = static_cast<unsigned char*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  for (size_t i = 0; i < kKeyBytes; ++i) plain[512 + i] = static_cast<unsigned char>(0xa0 + i);
  const FaultReport r1 = RunAttack(
      [&](unsigned char* out, volatile size_t* n) { HeartbeatEcho(plain, 1024, out, n); }, response);
  const bool leaked_plain = r1.signal == 0;
  printf("  the read completed: %zu bytes echoed, all %zu key bytes among them.\n\n", r1.echoed, kKeyBytes);

  printf(
      "Attack 2: the same bug in the vault's server; the attacker claims 65535 bytes from a 64-byte request\n"
      "placed right below the trusted domain's memory.\n");
  const void* boundary = region;
  if (below == MAP_FAILED) {
    printf(
        "  (the page below the trusted domain is taken on this run; using the nearest free page instead)\n");
    below = static_cast<unsigned char*>(
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    boundary = nullptr;  // the over-read may stop elsewhere first
  }
  unsigned char* request = below + 4096 - 64;
  memcpy(request, "heartbeat payload: hello", 24);
  const FaultReport r2 = RunAttack(
      [&](unsigned char* out, volatile size_t* n) { HeartbeatEcho(request, 65535, out, n); }, response);
  if (boundary != nullptr) {
    protected_ok &= Explain(r2, boundary, trusted.pkey());
  } else {
    (void)Explain(r2, nullptr, trusted.pkey());  // may stop at an unmapped page first
    protected_ok &= r2.signal == SIGSEGV;
  }
  size_t hits = (*count)(response, r2.echoed);
  printf("  key material in what was echoed: %zu bytes\n\n", hits * 8);
  protected_ok &= hits == 0;

  // 3. A direct read of the key (an arbitrary-read primitive).
  printf("Attack 3: an arbitrary-read bug pointed straight at the key's address.\n");
  const FaultReport r3 = RunAttack(
      [&](unsigned char* out, volatile size_t* n) { HeartbeatEcho(g_vault->key, kKeyBytes, out, n); },
      response);
  protected_ok &= Explain(r3, g_vault->key, trusted.pkey());
  hits = (*count)(response, r3.echoed);
  printf("  key material read: %zu bytes\n\n", hits * 8);
  protected_ok &= hits == 0;

  if (protected_ok && leaked_plain) {
    printf("Result: the signing key never left the trusted domain; without Cordon the same bug leaked it.\n");
    return 0;
  }
  printf("Result: PROTECTION FAILED (see above).\n");
  return 1;
}
