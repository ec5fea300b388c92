// End-to-end test of the pass plugin from C++, run in the PKU VM: trusted
// state reachable only through CORDON_TRUSTED functions (free functions and
// a member function), with Untrusted<> arguments, calls through pointers, and
// the gate's behaviour at the edges (a forged jump to a generated WRPKRU,
// many threads).
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cordon/cordon.hpp"
#include "tests/support/child.h"

namespace {

using cordon::testing::ChildOutcome;
using cordon::testing::kSegvPkuErr;
using cordon::testing::RunInChild;

constexpr char kSecret[] = "correct horse battery staple";

// ---- trusted ----

class Keyring {
 public:
  CORDON_TRUSTED int Store(cordon::Untrusted<const char*> text, cordon::Untrusted<size_t> len) noexcept;
  CORDON_TRUSTED size_t Matches(cordon::Untrusted<const char*> guess) noexcept;
  char* secret_ = nullptr;  // in trusted memory
  size_t len_ = 0;
};

Keyring g_keyring;

int Keyring::Store(cordon::Untrusted<const char*> text, cordon::Untrusted<size_t> len) noexcept {
  const auto n = len.verify([](size_t v) { return v > 0 && v < 4096; });
  if (!n) return -1;
  const auto src = text.verify_range(*n);
  void* p = nullptr;
  if (!src || secret_ != nullptr || cordon_malloc(*n, &p) != CORDON_OK) return -1;
  memcpy(p, *src, *n);
  secret_ = static_cast<char*>(p);
  len_ = *n;
  return 0;
}

size_t Keyring::Matches(cordon::Untrusted<const char*> guess) noexcept {
  const auto g = guess.verify_range(len_);
  if (!g || secret_ == nullptr) return 0;
  size_t same = 0;
  for (size_t i = 0; i < len_; ++i) same += secret_[i] == (*g)[i];
  return same;
}

CORDON_TRUSTED const char* SecretAddress() noexcept {
  return g_keyring.secret_;
}

// Trusted code calling another trusted function: a direct call of the body.
CORDON_TRUSTED size_t MatchesTwice(cordon::Untrusted<const char*> guess) noexcept {
  return g_keyring.Matches(guess) + g_keyring.Matches(guess);
}

CORDON_TRUSTED uint64_t SpinInside(uint64_t rounds) noexcept {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < rounds; ++i)
    sum += static_cast<unsigned char>(g_keyring.secret_[i % g_keyring.len_]);
  return sum;
}

// ---- untrusted ----

cordon_generated_entry EntryNamed(const std::string& name) {
  for (size_t i = 0; i < cordon_generated_entry_count(); ++i) {
    cordon_generated_entry e;
    if (cordon_generated_entry_get(i, &e) == CORDON_OK && name == e.name) return e;
  }
  ADD_FAILURE() << "no generated entry " << name;
  return {};
}

class PassGates : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(cordon_init(nullptr), CORDON_OK);
    ASSERT_EQ(g_keyring.Store(cordon::Untrusted<const char*>(kSecret), cordon::Untrusted(sizeof kSecret)), 0);
  }
  static int Pkey() { return cordon_domain_pkey(cordon_trusted_domain()); }
};

TEST_F(PassGates, EveryAnnotatedFunctionIsRegisteredWithItsReadableName) {
  EXPECT_EQ(cordon_generated_entry_count(), 5u);
  const cordon_generated_entry store = EntryNamed(
      "(anonymous namespace)::Keyring::Store(cordon::Untrusted<char const*>, "
      "cordon::Untrusted<unsigned long>)");
  EXPECT_EQ(store.entry.domain, cordon_trusted_domain());
  EXPECT_STREQ(cordon_entry_name(store.entry), store.name);
}

TEST_F(PassGates, TrustedStateIsReachableThroughTheAnnotatedFunctions) {
  EXPECT_EQ(cordon_domain_of(SecretAddress()), cordon_trusted_domain());
  EXPECT_EQ(g_keyring.Matches(cordon::Untrusted<const char*>(kSecret)), sizeof kSecret);
  EXPECT_EQ(MatchesTwice(cordon::Untrusted<const char*>(kSecret)), 2 * sizeof kSecret);
  // The trusted function refuses a pointer into trusted memory (confused deputy).
  EXPECT_EQ(g_keyring.Matches(cordon::Untrusted(SecretAddress())), 0u);
}

TEST_F(PassGates, DirectReadFromUntrustedCodeFaultsWithThePkeyError) {
  const char* secret = SecretAddress();
  const ChildOutcome o = RunInChild([&] {
    volatile char c = secret[0];
    (void)c;
  });
  EXPECT_EQ(o.signal, SIGSEGV);
  EXPECT_EQ(o.fault_code, kSegvPkuErr);
  EXPECT_EQ(static_cast<int>(o.fault_pkey), Pkey());
  EXPECT_EQ(o.fault_addr, reinterpret_cast<uintptr_t>(secret));
}

TEST_F(PassGates, MemberFunctionPointerStillGoesThroughTheGate) {
  size_t (Keyring::*member)(cordon::Untrusted<const char*>) = &Keyring::Matches;
  EXPECT_EQ((g_keyring.*member)(cordon::Untrusted<const char*>(kSecret)), sizeof kSecret);
  const cordon_generated_entry e =
      EntryNamed("(anonymous namespace)::Keyring::Matches(cordon::Untrusted<char const*>)");
  using Fn = size_t (*)(Keyring*, cordon::Untrusted<const char*>);
  // The body alone, called from untrusted code, has no rights.
  const ChildOutcome o = RunInChild(
      [&] { (void)reinterpret_cast<Fn>(e.body)(&g_keyring, cordon::Untrusted<const char*>(kSecret)); });
  EXPECT_EQ(o.signal, SIGSEGV);
  EXPECT_EQ(o.fault_code, kSegvPkuErr);
  EXPECT_EQ(static_cast<int>(o.fault_pkey), Pkey());
}

// A jump straight to a generated gate's entry WRPKRU with a PKRU of the
// attacker's choice (all keys open) is caught by the check after it.
TEST_F(PassGates, JumpToAGeneratedWrpkruWithAForgedValueStopsTheProcess) {
  uintptr_t site = 0;
  const cordon_generated_entry e = EntryNamed("(anonymous namespace)::SecretAddress()");
  for (size_t i = 0; i < cordon_gate_site_count(); ++i) {
    cordon_gate_site s;
    ASSERT_EQ(cordon_gate_site_get(i, &s), CORDON_OK);
    if (s.kind == 1 && s.address > e.gate && s.address < e.gate + 256) site = s.address;
  }
  ASSERT_NE(site, 0u);
  const ChildOutcome o = RunInChild([&] {
    __asm__ volatile("xor %%eax, %%eax\n\txor %%ecx, %%ecx\n\txor %%edx, %%edx\n\tjmp *%0" ::"r"(site)
                     : "rax", "rcx", "rdx", "memory");
  });
  EXPECT_TRUE(o.exited);
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT);
  EXPECT_NE(o.err.find("gate violation: a WRPKRU in a call gate loaded a PKRU value"), std::string::npos)
      << o.err;
}

TEST_F(PassGates, ManyThreadsEachAttachOnTheirFirstCall) {
  std::vector<std::thread> threads;
  std::atomic<int> right{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (g_keyring.Matches(cordon::Untrusted<const char*>(kSecret)) == sizeof kSecret) ++right;
      }
      uint64_t expected = 0;
      for (uint64_t i = 0; i < 1000; ++i) expected += static_cast<unsigned char>(kSecret[i % sizeof kSecret]);
      if (SpinInside(1000) == expected) ++right;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(right.load(), 8 * 201);
}

TEST_F(PassGates, EveryGateSiteInTheBinaryIsListedAndSafe) {
  EXPECT_EQ(cordon_gate_site_count(), 335u + 2 * cordon_generated_entry_count());
  size_t safe = 0, other = 0;
  for (size_t i = 0; i < cordon_inspection_count(); ++i) {
    cordon_inspection_entry ie;
    ASSERT_EQ(cordon_inspection_get(i, &ie), CORDON_OK);
    if (ie.verdict == 0 && ie.action == 0) {
      ++safe;
    } else if (strstr(ie.object, "/libc.so") == nullptr && strstr(ie.object, "/ld-linux") == nullptr) {
      ++other;  // only libc's pkey_set and ld.so's XRSTOR may be neutralized
    }
  }
  EXPECT_EQ(safe, cordon_gate_site_count());
  EXPECT_EQ(other, 0u);
}

}  // namespace
