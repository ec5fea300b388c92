// PKU isolation tests: they run for real, natively on a PKU host or inside
// tools/cordon-vm. Each isolation claim is checked by the fault it causes
// (SIGSEGV, si_code SEGV_PKUERR, the domain's si_pkey, the address) or by
// the exit status and message of a stopped process.
#include <errno.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "cordon/cordon.hpp"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/pkey.h"
#include "runtime/hardware/smaps.h"
#include "tests/support/child.h"

using cordon::testing::ChildOutcome;
using cordon::testing::kSegvPkuErr;
using cordon::testing::RunInChild;

extern "C" {
uint64_t probe_dirty_entry(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
void probe_call_and_capture(cordon::gates::GateFn gate, uint64_t id, uint64_t* out);
uint64_t probe_jump_to_site(uintptr_t site, uint32_t eax, uint64_t id);
[[noreturn]] void probe_jump_with_stack(uintptr_t site, uint32_t eax, uint64_t id, void* rsp);
uint64_t probe_df_entry(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t probe_call_with_df_set(cordon::gates::GateFn gate, uint64_t id);
uint64_t probe_callout_entry(uint64_t cb, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t probe_clobber_callback(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
extern uint64_t probe_seen[6];
}

namespace {

constexpr uint32_t kMaxThreads = 8;

// Entries used by the tests. They run inside the trusted domain.
uint64_t Sum5(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  return a + 10 * b + 100 * c + 1000 * d + 10000 * e;
}
uint64_t WhereAmI(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return static_cast<uint64_t>(cordon_current_domain());
}
uint64_t StackPointer(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return reinterpret_cast<uint64_t>(__builtin_frame_address(0));
}
// Writes a pattern into a trusted block and returns its byte sum.
uint64_t FillAndSum(uint64_t block, uint64_t len, uint64_t, uint64_t, uint64_t) {
  auto* p = reinterpret_cast<unsigned char*>(block);
  uint64_t sum = 0;
  for (uint64_t i = 0; i < len; ++i) p[i] = static_cast<unsigned char>(i);
  for (uint64_t i = 0; i < len; ++i) sum += p[i];
  return sum;
}
uint64_t ReadByte(uint64_t addr, uint64_t, uint64_t, uint64_t, uint64_t) {
  return *reinterpret_cast<volatile unsigned char*>(addr);
}
cordon_entry g_nested_target;
uint64_t CallsAnotherGate(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return cordon_call(g_nested_target, 0, 0, 0, 0, 0);
}
// Sums a trusted block (set by the test before the child runs).
unsigned char* g_sum_block = nullptr;
constexpr size_t kSumBlockBytes = 256;
uint64_t SumBlock(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  uint64_t sum = 0;
  for (size_t i = 0; i < kSumBlockBytes; ++i) sum += g_sum_block[i];
  return sum;
}
cordon_entry g_sum_entry;
uint64_t SumBlockThroughGate() {
  return cordon_call(g_sum_entry, 0, 0, 0, 0, 0) + 1;
}

// Allocates and frees inside the domain (allowed from trusted code).
uint64_t AllocInside(uint64_t size, uint64_t, uint64_t, uint64_t, uint64_t) {
  void* p = nullptr;
  if (cordon_malloc(size, &p) != CORDON_OK) return 0;
  memset(p, 0xab, size);
  return reinterpret_cast<uint64_t>(p);
}

struct Entries {
  cordon_entry sum5, where, sp, fill, read_byte, nested, dirty, alloc_inside, calls_back, callout_probe;
};
Entries g;

// ---- Callbacks ----

// Untrusted: reports where it runs and what it got.
uint64_t UntrustedSum(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  return a + b + c + d + e + 100 * static_cast<uint64_t>(cordon_current_domain());
}
// Trusted: calls the untrusted function cb and checks it is back inside.
uint64_t CallsBack(uint64_t cb, uint64_t x, uint64_t, uint64_t, uint64_t) {
  const uint64_t r = cordon_call_untrusted(reinterpret_cast<cordon_untrusted_fn>(cb), x, 2, 3, 4, 5);
  return r + 1000 * static_cast<uint64_t>(cordon_current_domain());
}
// Untrusted callbacks that misbehave.
uint64_t ReadsTrustedBlock(uint64_t addr, uint64_t, uint64_t, uint64_t, uint64_t) {
  return *reinterpret_cast<volatile unsigned char*>(addr);
}
cordon_entry g_reenter_target;
uint64_t ReentersTheDomain(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return cordon_call(g_reenter_target, 0, 0, 0, 0, 0);
}
// C++: a typed callback; its result comes back as Untrusted<int>.
int Doubler(int v) {
  return 2 * v;
}
int CallsDoubler(int v) {
  return cordon::CallUntrusted(&Doubler, v).verify([](int x) { return x >= 0 && x < 1000; }).value_or(-1);
}

class Isolation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cordon_options o;
    cordon_options_init(&o);
    o.max_threads = kMaxThreads;
    ASSERT_EQ(cordon_init(&o), CORDON_OK) << cordon_strerror(cordon_init(&o));
    const cordon_domain_t t = cordon_trusted_domain();
    ASSERT_EQ(cordon_register(t, Sum5, "sum5", &g.sum5), CORDON_OK);
    ASSERT_EQ(cordon_register(t, WhereAmI, "where", &g.where), CORDON_OK);
    ASSERT_EQ(cordon_register(t, StackPointer, "sp", &g.sp), CORDON_OK);
    ASSERT_EQ(cordon_register(t, FillAndSum, "fill", &g.fill), CORDON_OK);
    ASSERT_EQ(cordon_register(t, ReadByte, "read_byte", &g.read_byte), CORDON_OK);
    ASSERT_EQ(cordon_register(t, CallsAnotherGate, "nested", &g.nested), CORDON_OK);
    ASSERT_EQ(cordon_register(t, probe_dirty_entry, "dirty", &g.dirty), CORDON_OK);
    ASSERT_EQ(cordon_register(t, AllocInside, "alloc_inside", &g.alloc_inside), CORDON_OK);
    g_nested_target = g.where;
    ASSERT_EQ(cordon_register(t, SumBlock, "sum_block", &g_sum_entry), CORDON_OK);
    ASSERT_EQ(cordon_register(t, CallsBack, "calls_back", &g.calls_back), CORDON_OK);
    ASSERT_EQ(cordon_register(t, probe_callout_entry, "callout_probe", &g.callout_probe), CORDON_OK);
    g_reenter_target = g.where;
  }
  static int TrustedKey() { return cordon_domain_pkey(cordon_trusted_domain()); }
  static void* TrustedBlock(size_t n) {
    void* p = nullptr;
    EXPECT_EQ(cordon_malloc(n, &p), CORDON_OK);
    return p;
  }
};

TEST_F(Isolation, InitLeavesTheCallerUntrustedWithTheKeyDenied) {
  EXPECT_EQ(cordon_current_domain(), CORDON_DOMAIN_UNTRUSTED);
  const int key = TrustedKey();
  ASSERT_GE(key, 1);
  ASSERT_LE(key, 15);
  EXPECT_EQ(cordon::hw::PermissionOf(cordon::hw::ReadPkru(), key), cordon::hw::Permission::kNoAccess);
}

TEST_F(Isolation, UntrustedReadOfTrustedMemoryFaultsWithTheDomainKey) {
  auto* p = static_cast<volatile unsigned char*>(TrustedBlock(64));
  const ChildOutcome o = RunInChild([&] { (void)p[5]; });
  EXPECT_EQ(o.signal, SIGSEGV);
  EXPECT_EQ(o.fault_code, kSegvPkuErr);
  EXPECT_EQ(o.fault_pkey, static_cast<uint32_t>(TrustedKey()));
  EXPECT_EQ(o.fault_addr, reinterpret_cast<uintptr_t>(p + 5));
  EXPECT_EQ(cordon_free(const_cast<unsigned char*>(p)), CORDON_OK);
}

TEST_F(Isolation, UntrustedWriteOfTrustedMemoryFaultsWithTheDomainKey) {
  auto* p = static_cast<volatile unsigned char*>(TrustedBlock(64));
  const ChildOutcome o = RunInChild([&] { p[63] = 1; });
  EXPECT_EQ(o.signal, SIGSEGV);
  EXPECT_EQ(o.fault_code, kSegvPkuErr);
  EXPECT_EQ(o.fault_pkey, static_cast<uint32_t>(TrustedKey()));
  EXPECT_EQ(o.fault_addr, reinterpret_cast<uintptr_t>(p + 63));
  // The write did not land: the trusted view of the byte is still zero.
  EXPECT_EQ(cordon_call(g.read_byte, reinterpret_cast<uint64_t>(p + 63), 0, 0, 0, 0), 0u);
  EXPECT_EQ(cordon_free(const_cast<unsigned char*>(p)), CORDON_OK);
}

TEST_F(Isolation, KernelCopiesHonourTheKeyToo) {
  void* p = TrustedBlock(64);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  errno = 0;
  EXPECT_EQ(write(fds[1], p, 16), -1);  // the kernel reads it as the caller
  EXPECT_EQ(errno, EFAULT);
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(cordon_free(p), CORDON_OK);
}

TEST_F(Isolation, TrustedCodeWorksOnTrustedMemory) {
  void* p = TrustedBlock(200);
  const uint64_t expected = 199 * 200 / 2;
  EXPECT_EQ(cordon_call(g.fill, reinterpret_cast<uint64_t>(p), 200, 0, 0, 0), expected);
  EXPECT_EQ(cordon_call(g.read_byte, reinterpret_cast<uint64_t>(p) + 7, 0, 0, 0, 0), 7u);
  EXPECT_EQ(cordon_free(p), CORDON_OK);
}

TEST_F(Isolation, GateCarriesFiveArgumentsAndTheResult) {
  EXPECT_EQ(cordon_call(g.sum5, 1, 2, 3, 4, 5), 54321u);
  EXPECT_EQ(cordon_call(g.where, 0, 0, 0, 0, 0), static_cast<uint64_t>(cordon_trusted_domain()));
  EXPECT_EQ(cordon_current_domain(), CORDON_DOMAIN_UNTRUSTED);
}

TEST_F(Isolation, SmapsShowsTheTrustedKeyOnTrustedMemory) {
  void* p = TrustedBlock(4096 * 3);
  const auto m = cordon::hw::FindMapping(p);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->pkey, TrustedKey());
  EXPECT_EQ(m->perms.substr(0, 2), "rw");
  int local = 0;
  const auto s = cordon::hw::FindMapping(&local);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->pkey, 0);
  EXPECT_EQ(cordon_free(p), CORDON_OK);
}

TEST_F(Isolation, TrustedCodeRunsOnATrustedStack) {
  const uint64_t sp = cordon_call(g.sp, 0, 0, 0, 0, 0);
  EXPECT_EQ(cordon_domain_of(reinterpret_cast<void*>(sp)), cordon_trusted_domain());
  int local = 0;
  EXPECT_NE(cordon_domain_of(&local), cordon_trusted_domain());
  const auto m = cordon::hw::FindMapping(reinterpret_cast<void*>(sp));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->pkey, TrustedKey());
}

TEST_F(Isolation, GateLeavesNoTrustedValueInRegisters) {
  uint64_t out[9 + 16 * 4] = {};
  probe_call_and_capture(cordon::gates::GateFor(cordon_trusted_domain()), g.dirty.id, out);
  EXPECT_EQ(out[0], 0x5ec7e7u) << "rax carries the result";
  const char* names[] = {"rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"};
  for (int i = 1; i < 8; ++i) EXPECT_EQ(out[i], 0u) << names[i] << " was not cleared";
  EXPECT_EQ(out[8], out[0]) << "r11 may hold only a copy of the result";
  for (int v = 0; v < 16; ++v) {
    for (int q = 0; q < 4; ++q) EXPECT_EQ(out[9 + v * 4 + q], 0u) << "ymm" << v << " was not cleared";
  }
}

// A caller may enter with the direction flag set; trusted code (rep movsb in
// memcpy) must still see DF = 0, or its copies would run backwards.
TEST_F(Isolation, EntriesAlwaysSeeTheDirectionFlagClear) {
  cordon_entry df;
  ASSERT_EQ(cordon_register(cordon_trusted_domain(), probe_df_entry, "df", &df), CORDON_OK);
  EXPECT_EQ(probe_call_with_df_set(cordon::gates::GateFor(df.domain), df.id), 0u);
  // Without the gate the probe does see the flag: the check can fail.
  auto direct = [](uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) -> uint64_t {
    return probe_df_entry(0, 0, 0, 0, 0);
  };
  EXPECT_EQ(probe_call_with_df_set(+direct, 0), 0x400u);
}

// The same probe without a gate shows that the check can fail: a direct
// call leaves the pattern behind.
TEST_F(Isolation, RegisterProbeSeesDirtyRegistersWithoutAGate) {
  uint64_t out[9 + 16 * 4] = {};
  auto direct = [](uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) -> uint64_t {
    return probe_dirty_entry(0, 0, 0, 0, 0);
  };
  probe_call_and_capture(+direct, 0, out);
  EXPECT_NE(out[1] | out[2] | out[3] | out[4] | out[9], 0u);
}

TEST_F(Isolation, NestedEntryStopsTheProcessWithAMessage) {
  const ChildOutcome o = RunInChild([] { (void)cordon_call(g.nested, 0, 0, 0, 0, 0); });
  EXPECT_TRUE(o.exited);
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT);
  EXPECT_NE(o.err.find("already in use (nested gate entry"), std::string::npos) << o.err;
}

TEST_F(Isolation, UnregisteredIdStopsTheProcessWithAMessage) {
  const ChildOutcome o = RunInChild([] {
    (void)cordon_call(cordon_entry{cordon_trusted_domain(), 500}, 0, 0, 0, 0, 0);
  });
  EXPECT_TRUE(o.exited);
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT);
  EXPECT_NE(o.err.find("unregistered entry id 500 of domain 1"), std::string::npos) << o.err;
}

TEST_F(Isolation, ForgedEntryHandleStopsTheProcessWithAMessage) {
  for (cordon_entry bad :
       {cordon_entry{cordon_trusted_domain(), 1}, cordon_entry{cordon_trusted_domain(), 99999},
        cordon_entry{9, 8}, cordon_entry{-3, 8}}) {
    const ChildOutcome o = RunInChild([&] { (void)cordon_call(bad, 0, 0, 0, 0, 0); });
    EXPECT_TRUE(o.exited);
    EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT);
    EXPECT_NE(o.err.find("did not make"), std::string::npos) << o.err;
  }
}

std::vector<cordon::gates::Site> SitesInUse(int kind) {
  std::vector<cordon::gates::Site> out;
  const bool wide = cordon::gates::Config().wide_scrub != 0;
  for (size_t i = 0; i < cordon::gates::SiteCount(); ++i) {
    const auto s = cordon::gates::SiteAt(i);
    if (s.kind == kind && s.wide == wide && s.domain == cordon_trusted_domain()) out.push_back(s);
  }
  return out;
}

// Jumping straight to a gate's WRPKRU with a forged EAX never leaves the
// thread in the domain: the check after the WRPKRU stops the process.
TEST_F(Isolation, JumpToEntryWrpkruWithForgedEaxStops) {
  const auto sites = SitesInUse(SITE_ENTRY);
  ASSERT_EQ(sites.size(), 1u);
  for (uint32_t forged : {0u, 0xfffffffcu, cordon::hw::kDefaultPkru & ~3u}) {
    void* secret = TrustedBlock(16);
    const ChildOutcome o = RunInChild([&] {
      (void)probe_jump_to_site(sites[0].address, forged, g.sum5.id);
      // Not reached: if it were, try to read the secret and report success.
      fprintf(stderr, "LEAK %d\n", *static_cast<volatile unsigned char*>(secret));
    });
    EXPECT_TRUE(o.exited) << "forged " << std::hex << forged;
    EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT);
    EXPECT_NE(o.err.find("WRPKRU in a call gate loaded a PKRU value"), std::string::npos) << o.err;
    EXPECT_EQ(o.err.find("LEAK"), std::string::npos);
    EXPECT_EQ(cordon_free(secret), CORDON_OK);
  }
}

// With the exact domain PKRU the jump is just a gate call: it reaches only a
// registered entry and comes back untrusted.
TEST_F(Isolation, JumpToEntryWrpkruWithTheRightValueGainsNothing) {
  const auto sites = SitesInUse(SITE_ENTRY);
  ASSERT_EQ(sites.size(), 1u);
  const uint32_t domain_pkru = cordon::gates::Config().domains[cordon_trusted_domain()].pkru;
  void* secret = TrustedBlock(16);
  const ChildOutcome o = RunInChild([&] {
    const uint64_t r = probe_jump_to_site(sites[0].address, domain_pkru, g.where.id);
    if (r != static_cast<uint64_t>(cordon_trusted_domain())) _exit(3);
    if (cordon_current_domain() != CORDON_DOMAIN_UNTRUSTED) _exit(4);
    (void)*static_cast<volatile unsigned char*>(secret);  // must fault
    _exit(5);
  });
  EXPECT_EQ(o.signal, SIGSEGV);
  EXPECT_EQ(o.fault_code, kSegvPkuErr);
  EXPECT_EQ(o.fault_pkey, static_cast<uint32_t>(TrustedKey()));
  // And an unregistered id through the same jump stops the process.
  const ChildOutcome u = RunInChild([&] { (void)probe_jump_to_site(sites[0].address, domain_pkru, 777); });
  EXPECT_EQ(u.exit_code, CORDON_VIOLATION_EXIT);
  EXPECT_NE(u.err.find("unregistered entry id 777"), std::string::npos) << u.err;
  EXPECT_EQ(cordon_free(secret), CORDON_OK);
}

// The attack on the attach path: a thread without a record (TLS reset) jumps
// to the entry WRPKRU with the right value and a stack pointer aimed into
// trusted memory. The gate must not write through that pointer while it
// holds the domain's rights: it leaves the domain first, and its first push
// for the attach then faults in untrusted mode.
TEST_F(Isolation, ForgedStackPointerGetsNoTrustedWrite) {
  const auto sites = SitesInUse(SITE_ENTRY);
  ASSERT_EQ(sites.size(), 1u);
  const uint32_t domain_pkru = cordon::gates::Config().domains[cordon_trusted_domain()].pkru;
  g_sum_block = static_cast<unsigned char*>(TrustedBlock(kSumBlockBytes));
  unsigned char* forged_rsp = g_sum_block + kSumBlockBytes / 2;
  const ChildOutcome o = RunInChild(
      [&] {
        cordon_tls_records[cordon_trusted_domain()] = ~0u;  // take the attach path (and xmm15, see the probe)
        probe_jump_with_stack(sites[0].address, domain_pkru, g.sum5.id, forged_rsp);
      },
      SumBlockThroughGate);
  EXPECT_EQ(o.signal, SIGSEGV);
  EXPECT_EQ(o.fault_code, kSegvPkuErr);
  EXPECT_EQ(o.fault_pkey, static_cast<uint32_t>(TrustedKey()));
  EXPECT_EQ(o.fault_addr, reinterpret_cast<uintptr_t>(forged_rsp) - 8) << "the first push, untrusted";
  EXPECT_EQ(o.on_fault, 1u) << "the trusted block must still be all zero (sum + 1)";
  EXPECT_EQ(cordon_free(g_sum_block), CORDON_OK);
}

TEST_F(Isolation, JumpToExitWrpkruWithTheDomainPkruStops) {
  const auto sites = SitesInUse(SITE_EXIT);
  ASSERT_EQ(sites.size(), 1u);
  const uint32_t domain_pkru = cordon::gates::Config().domains[cordon_trusted_domain()].pkru;
  const ChildOutcome o = RunInChild([&] { (void)probe_jump_to_site(sites[0].address, domain_pkru, 0); });
  EXPECT_TRUE(o.exited);
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT);
  EXPECT_NE(o.err.find("WRPKRU in a call gate loaded a PKRU value"), std::string::npos) << o.err;
}

TEST_F(Isolation, NewThreadsStartUntrustedAndGetTheirOwnTrustedStacks) {
  constexpr int kThreads = 4;
  std::atomic<int> ready{0};
  std::atomic<int> done{0};
  std::vector<uint64_t> stacks(kThreads);
  std::vector<int> domains_at_start(kThreads, -2);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      domains_at_start[i] = cordon_current_domain();
      ready.fetch_add(1);
      while (ready.load() < kThreads) {
      }
      uint64_t sp = 0;
      for (int round = 0; round < 200; ++round) {
        const uint64_t now = cordon_call(g.sp, 0, 0, 0, 0, 0);
        if (round > 0 && now != sp) sp = ~0ull;  // same thread, same stack
        if (round == 0) sp = now;
        if (cordon_call(g.sum5, i, 1, 0, 0, 0) != static_cast<uint64_t>(i + 10)) sp = ~0ull;
      }
      stacks[i] = sp;
      // Stay alive until all have measured: an exited thread's record (and
      // stack) is rightly handed to the next thread that attaches.
      done.fetch_add(1);
      while (done.load() < kThreads) {
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<uint64_t> distinct;
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(domains_at_start[i], CORDON_DOMAIN_UNTRUSTED);
    EXPECT_NE(stacks[i], ~0ull);
    EXPECT_EQ(cordon_domain_of(reinterpret_cast<void*>(stacks[i])), cordon_trusted_domain());
    distinct.insert(stacks[i]);
  }
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kThreads));
}

TEST_F(Isolation, ThreadRecordsAreRecycledWhenThreadsExit) {
  // Four times as many threads as records, one after another.
  for (uint32_t i = 0; i < 4 * kMaxThreads; ++i) {
    uint64_t r = 0;
    std::thread t([&] { r = cordon_call(g.sum5, 1, 1, 1, 1, 1); });
    t.join();
    ASSERT_EQ(r, 11111u) << "thread " << i;
  }
}

TEST_F(Isolation, MoreLiveThreadsThanRecordsStopsWithAClearMessage) {
  const ChildOutcome o = RunInChild([] {
    std::atomic<int> inside{0};
    std::vector<std::thread> threads;
    for (uint32_t i = 0; i < kMaxThreads + 2; ++i) {
      threads.emplace_back([&] {
        (void)cordon_call(g.sum5, 0, 0, 0, 0, 0);
        inside.fetch_add(1);
        while (true) pause();  // keep the record
      });
    }
    for (auto& t : threads) t.join();
  });
  EXPECT_TRUE(o.exited);
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT);
  EXPECT_NE(o.err.find("no free trusted thread slot"), std::string::npos) << o.err;
}

TEST_F(Isolation, TrustedCodeAllocatesFromItsOwnHeap) {
  const uint64_t p = cordon_call(g.alloc_inside, 100, 0, 0, 0, 0);
  ASSERT_NE(p, 0u);
  EXPECT_EQ(cordon_domain_of(reinterpret_cast<void*>(p)), cordon_trusted_domain());
  EXPECT_EQ(cordon_call(g.read_byte, p + 99, 0, 0, 0, 0), 0xabu);
  EXPECT_EQ(cordon_free(reinterpret_cast<void*>(p)), CORDON_OK);
}

TEST_F(Isolation, CallbacksRunUntrustedAndReturnTheirResult) {
  // The callback ran in domain 0 (adds 0), trusted code got 10+14 back and is
  // inside domain 1 again afterwards (adds 1000).
  EXPECT_EQ(cordon_call(g.calls_back, reinterpret_cast<uint64_t>(&UntrustedSum), 10, 0, 0, 0), 1024u);
  EXPECT_EQ(cordon_current_domain(), CORDON_DOMAIN_UNTRUSTED);
  // From untrusted code it is a plain call.
  EXPECT_EQ(cordon_call_untrusted(UntrustedSum, 1, 1, 1, 1, 1), 5u);
  auto typed = cordon::Register<&CallsDoubler>(cordon::Domain::Trusted(), "calls_doubler");
  ASSERT_TRUE(typed.ok());
  EXPECT_EQ((*typed)(21), 42);
  EXPECT_EQ((*typed)(600), -1) << "the untrusted result failed verification";
}

TEST_F(Isolation, CallbacksCannotReadTrustedMemory) {
  void* p = TrustedBlock(16);
  const ChildOutcome o = RunInChild([&] {
    (void)cordon_call(g.calls_back, reinterpret_cast<uint64_t>(&ReadsTrustedBlock),
                      reinterpret_cast<uint64_t>(p), 0, 0, 0);
  });
  EXPECT_EQ(o.signal, SIGSEGV);
  EXPECT_EQ(o.fault_code, kSegvPkuErr);
  EXPECT_EQ(o.fault_pkey, static_cast<uint32_t>(TrustedKey()));
  EXPECT_EQ(o.fault_addr, reinterpret_cast<uintptr_t>(p));
  EXPECT_EQ(cordon_free(p), CORDON_OK);
}

TEST_F(Isolation, CallbacksSeeNoTrustedRegistersAndCannotCorruptThem) {
  for (auto& v : probe_seen) v = 0xdeadbeef;
  EXPECT_EQ(cordon_call(g.callout_probe, reinterpret_cast<uint64_t>(&probe_clobber_callback), 0, 0, 0, 0), 1u)
      << "trusted callee-saved registers must survive a clobbering callback";
  for (int i = 0; i < 6; ++i) EXPECT_EQ(probe_seen[i], 0u) << "callee-saved register " << i << " leaked";
}

TEST_F(Isolation, CallbacksMayNotReenterTheDomain) {
  const ChildOutcome o = RunInChild(
      [] { (void)cordon_call(g.calls_back, reinterpret_cast<uint64_t>(&ReentersTheDomain), 0, 0, 0, 0); });
  EXPECT_TRUE(o.exited);
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT);
  EXPECT_NE(o.err.find("from one of its callbacks"), std::string::npos) << o.err;
}

TEST_F(Isolation, JumpsToTheCalloutSitesStop) {
  const uint32_t domain_pkru = cordon::gates::Config().domains[cordon_trusted_domain()].pkru;
  const auto ret_sites = SitesInUse(SITE_CALLBACK_RETURN);
  const auto out_sites = SitesInUse(SITE_CALLOUT);
  ASSERT_EQ(ret_sites.size(), 1u);
  ASSERT_EQ(out_sites.size(), 1u);
  // Coming back in with the domain's PKRU, but with no callback in progress.
  const ChildOutcome back = RunInChild([&] {
    (void)cordon_call(g.where, 0, 0, 0, 0, 0);  // attach a record first
    (void)probe_jump_to_site(ret_sites[0].address, domain_pkru, 0);
  });
  EXPECT_EQ(back.exit_code, CORDON_VIOLATION_EXIT);
  EXPECT_NE(back.err.find("from a callback that this thread's record does not have in progress"),
            std::string::npos)
      << back.err;
  // The callout WRPKRU loaded with the domain's PKRU.
  const ChildOutcome out =
      RunInChild([&] { (void)probe_jump_to_site(out_sites[0].address, domain_pkru, 0); });
  EXPECT_EQ(out.exit_code, CORDON_VIOLATION_EXIT);
  EXPECT_NE(out.err.find("loaded a PKRU value"), std::string::npos) << out.err;
}

// ---- Bad input ----

TEST_F(Isolation, InitTwiceIsRefused) {
  EXPECT_EQ(cordon_init(nullptr), CORDON_E_ALREADY_INITIALIZED);
  EXPECT_EQ(cordon_current_domain(), CORDON_DOMAIN_UNTRUSTED);
}

TEST_F(Isolation, HeapRejectsBadSizesAndPointers) {
  void* p = reinterpret_cast<void*>(0x1234);
  EXPECT_EQ(cordon_malloc(0, &p), CORDON_E_INVALID_ARGUMENT);
  EXPECT_EQ(cordon_malloc(SIZE_MAX, &p), CORDON_E_NO_MEMORY);
  EXPECT_EQ(cordon_malloc(size_t{65} << 20, &p), CORDON_E_NO_MEMORY);
  EXPECT_EQ(cordon_calloc(SIZE_MAX / 2, 4, &p), CORDON_E_NO_MEMORY);
  EXPECT_EQ(cordon_aligned_alloc(24, 64, &p), CORDON_E_INVALID_ARGUMENT);
  EXPECT_EQ(cordon_malloc(16, nullptr), CORDON_E_INVALID_ARGUMENT);
  EXPECT_EQ(p, reinterpret_cast<void*>(0x1234)) << "a failed call must not touch *out";
  int local = 0;
  EXPECT_EQ(cordon_free(&local), CORDON_E_INVALID_POINTER);
  EXPECT_EQ(cordon_free(nullptr), CORDON_OK);
}

TEST_F(Isolation, DoubleFreeIsReportedAndChangesNothing) {
  void* a = TrustedBlock(48);
  void* b = TrustedBlock(48);
  EXPECT_EQ(cordon_free(a), CORDON_OK);
  EXPECT_EQ(cordon_free(a), CORDON_E_DOUBLE_FREE);
  // b is still live and usable; a misaligned pointer into it is refused.
  EXPECT_EQ(cordon_free(static_cast<char*>(b) + 8), CORDON_E_INVALID_POINTER);
  EXPECT_EQ(cordon_call(g.fill, reinterpret_cast<uint64_t>(b), 48, 0, 0, 0), 47u * 48u / 2u);
  EXPECT_EQ(cordon_free(b), CORDON_OK);
  EXPECT_EQ(cordon_free(b), CORDON_E_DOUBLE_FREE);
}

TEST_F(Isolation, AlignedAndReallocatedBlocksKeepTheirPromises) {
  void* p = nullptr;
  ASSERT_EQ(cordon_aligned_alloc(8192, 100, &p), CORDON_OK);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 8192, 0u);
  ASSERT_EQ(cordon_call(g.fill, reinterpret_cast<uint64_t>(p), 100, 0, 0, 0), 99u * 100u / 2u);
  void* q = nullptr;
  ASSERT_EQ(cordon_realloc(p, 10000, &q), CORDON_OK);
  EXPECT_EQ(cordon_call(g.read_byte, reinterpret_cast<uint64_t>(q) + 99, 0, 0, 0, 0), 99u);
  EXPECT_EQ(cordon_call(g.read_byte, reinterpret_cast<uint64_t>(q) + 5000, 0, 0, 0, 0), 0u);
  void* unchanged = q;
  EXPECT_EQ(cordon_realloc(q, SIZE_MAX, &unchanged), CORDON_E_NO_MEMORY);
  EXPECT_EQ(unchanged, q);
  EXPECT_EQ(cordon_call(g.read_byte, reinterpret_cast<uint64_t>(q) + 42, 0, 0, 0, 0), 42u)
      << "old block intact";
  EXPECT_EQ(cordon_free(q), CORDON_OK);
}

TEST_F(Isolation, RegistrationRejectsBadInput) {
  cordon_entry e;
  EXPECT_EQ(cordon_register(cordon_trusted_domain(), nullptr, "x", &e), CORDON_E_INVALID_ARGUMENT);
  EXPECT_EQ(cordon_register(7, Sum5, "x", &e), CORDON_E_INVALID_ARGUMENT);
  EXPECT_EQ(cordon_register(CORDON_DOMAIN_UNTRUSTED, Sum5, "x", &e), CORDON_E_INVALID_ARGUMENT);
  EXPECT_EQ(cordon_register(cordon_trusted_domain(), Sum5, "x", nullptr), CORDON_E_INVALID_ARGUMENT);
  EXPECT_STREQ(cordon_entry_name(g.sum5), "sum5");
}

TEST_F(Isolation, UntrustedRangeCheckCatchesConfusedDeputies) {
  void* p = TrustedBlock(32);
  int local = 0;
  EXPECT_FALSE(cordon_is_untrusted_range(p, 1));
  EXPECT_FALSE(cordon_is_untrusted_range(static_cast<char*>(p) - 8, 16)) << "straddles the start";
  EXPECT_TRUE(cordon_is_untrusted_range(&local, sizeof local));
  EXPECT_FALSE(cordon_is_untrusted_range(&cordon::gates::Config(), 1)) << "the config page";
  EXPECT_FALSE(cordon_is_untrusted_range(reinterpret_cast<void*>(~uintptr_t{0} - 4), 16)) << "wraps";
  EXPECT_TRUE(cordon_is_untrusted_range(&local, 0));
  cordon::Untrusted<const int*> u(&local);
  EXPECT_TRUE(u.verify_range(1).has_value());
  cordon::Untrusted<const int*> t(static_cast<const int*>(p));
  EXPECT_FALSE(t.verify_range(1).has_value());
  EXPECT_FALSE(cordon::Untrusted<const int*>(&local).verify_range(SIZE_MAX / 2).has_value()) << "overflow";
  EXPECT_EQ(cordon_free(p), CORDON_OK);
}

}  // namespace
