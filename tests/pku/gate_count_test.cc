// Gate-call counts per entry point (runtime/gates/call_counts.h,
// docs/gates.md "Call counts"): exact after N calls from one thread and
// from several at once, kept when exited threads' records are reused,
// separate per domain, 0 for what does not exist, exact under a flood of
// signals (the count is outside every rewind window), one bucket for the
// pass-generated gates; and the counters are the domain's memory, which
// untrusted code can neither read nor write (SEGV_PKUERR on its key).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/time.h>
#include <ucontext.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <thread>
#include <vector>

#include "cordon/cordon.h"
#include "runtime/gates/call_counts.h"
#include "runtime/gates/gate_config.h"
#include "tests/support/child.h"
#include "tests/support/signal_policy.h"

using cordon::gates::EntryCallCount;
using cordon::testing::ChildOutcome;
using cordon::testing::kSegvPkuErr;
using cordon::testing::RunInChild;

extern "C" {
// A CORDON_TRUSTED function, gated by the pass plugin (this file is built
// with cordon_enable_gates()), and one that calls it through a pointer
// from inside the domain (no gate: a plain jump).
CORDON_TRUSTED uint64_t count_generated(uint64_t x) noexcept {
  return x + 1;
}
using GeneratedFn = uint64_t (*)(uint64_t);
CORDON_TRUSTED uint64_t count_generated_from_inside(GeneratedFn fn, uint64_t n) noexcept {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < n; ++i) sum += fn(i);
  return sum;
}
}

namespace {

constexpr uint32_t kMaxThreads = 4;

uint64_t Nop(uint64_t a, uint64_t, uint64_t, uint64_t, uint64_t) {
  return a;
}
// Runs inside its domain: the count of (domain, id).
uint64_t CountOf(uint64_t domain, uint64_t id, uint64_t, uint64_t, uint64_t) {
  return EntryCallCount(static_cast<int>(domain), static_cast<uint32_t>(id));
}

// What ForEachEntryCallCount gave, collected inside domain "other"
// (trusted code may write untrusted memory).
struct Seen {
  uint32_t id;
  uint64_t count;
};
Seen g_seen[cordon::gates::kCountedIds];
size_t g_seen_count = 0;
uint64_t CollectCounts(uint64_t domain, uint64_t, uint64_t, uint64_t, uint64_t) {
  g_seen_count = 0;
  cordon::gates::ForEachEntryCallCount(static_cast<int>(domain), [](uint32_t id, uint64_t count) {
    if (g_seen_count < cordon::gates::kCountedIds) g_seen[g_seen_count++] = Seen{id, count};
  });
  return g_seen_count;
}

// The timer's handler: counts, and notes the signals whose frame says
// they interrupted the gate (its untrusted part, or a window rewound to
// its PKRU load).
std::atomic<uint64_t> g_flood_handled{0}, g_flood_in_gate{0};
uint64_t g_flood_gate = 0;
void OnFlood(int, siginfo_t*, void* ucv) {
  g_flood_handled.fetch_add(1, std::memory_order_relaxed);
  const auto rip = static_cast<uint64_t>(static_cast<const ucontext_t*>(ucv)->uc_mcontext.gregs[REG_RIP]);
  if (rip >= g_flood_gate && rip < g_flood_gate + 512)
    g_flood_in_gate.fetch_add(1, std::memory_order_relaxed);
}

struct Entries {
  cordon_domain_t trusted = 0, other = 0;
  cordon_entry nop, count, other_nop, other_count;
};
Entries g;

// The count of e, read inside e's domain (through that domain's counting
// entry, which counts itself under its own id, not e's).
uint64_t Count(cordon_entry e) {
  const cordon_entry reader = e.domain == g.trusted ? g.count : g.other_count;
  return cordon_call(reader, static_cast<uint64_t>(e.domain), e.id, 0, 0, 0);
}
uint64_t CountId(cordon_domain_t d, uint32_t id) {
  return Count(cordon_entry{d, id});
}

class GateCount : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cordon_options o;
    cordon_options_init(&o);
    o.max_threads = kMaxThreads;
    ASSERT_EQ(cordon_init(&o), CORDON_OK);
    g.trusted = cordon_trusted_domain();
    ASSERT_EQ(cordon_domain_create("other", &g.other), CORDON_OK);
    ASSERT_EQ(cordon_register(g.trusted, Nop, "nop", &g.nop), CORDON_OK);
    ASSERT_EQ(cordon_register(g.trusted, CountOf, "count", &g.count), CORDON_OK);
    // The same id for nop in both domains (the trusted one's table also
    // holds the generated entries), so that only the domain tells their
    // counts apart.
    cordon_entry pad{};
    while (pad.id + 1 < g.nop.id) ASSERT_EQ(cordon_register(g.other, Nop, "pad", &pad), CORDON_OK);
    ASSERT_EQ(cordon_register(g.other, Nop, "other_nop", &g.other_nop), CORDON_OK);
    ASSERT_EQ(cordon_register(g.other, CountOf, "other_count", &g.other_count), CORDON_OK);
  }
};

TEST_F(GateCount, NCallsFromOneThreadCountExactlyN) {
  const uint64_t before = Count(g.nop);
  constexpr uint64_t kN = 1000;
  for (uint64_t i = 0; i < kN; ++i) ASSERT_EQ(cordon_call(g.nop, i, 0, 0, 0, 0), i);
  EXPECT_EQ(Count(g.nop), before + kN);
  // The gate called directly counts under the same id.
  const auto gate = cordon::gates::GateFor(g.trusted);
  for (uint64_t i = 0; i < kN; ++i) ASSERT_EQ(gate(i, 0, 0, 0, 0, g.nop.id), i);
  EXPECT_EQ(Count(g.nop), before + 2 * kN);
}

TEST_F(GateCount, TheReaderCountsItselfUnderItsOwnId) {
  const uint64_t before = CountId(g.trusted, g.count.id);
  EXPECT_EQ(CountId(g.trusted, g.count.id), before + 1);
}

TEST_F(GateCount, ThreadsAtOnceSumExactly) {
  const uint64_t before = Count(g.nop);
  constexpr int kThreads = kMaxThreads - 1;  // this thread keeps its record
  constexpr uint64_t kN = 20000;
  std::atomic<int> ready{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) {
      }
      for (uint64_t i = 0; i < kN; ++i) {
        if (cordon_call(g.nop, i, 0, 0, 0, 0) != i) failed = true;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(failed.load());
  EXPECT_EQ(Count(g.nop), before + kThreads * kN);
}

TEST_F(GateCount, ReusedRecordsOfExitedThreadsKeepTheirCounts) {
  // Four times as many threads as records, one after another: each new
  // thread takes over the record of one that exited. Nothing is lost.
  const uint64_t before = Count(g.nop);
  constexpr uint32_t kThreads = 4 * kMaxThreads;
  constexpr uint64_t kN = 100;
  for (uint32_t t = 0; t < kThreads; ++t) {
    std::thread th([&] {
      for (uint64_t i = 0; i < kN; ++i) (void)cordon_call(g.nop, i, 0, 0, 0, 0);
    });
    th.join();
  }
  EXPECT_EQ(Count(g.nop), before + kThreads * kN);
}

TEST_F(GateCount, EachDomainCountsItsOwnEntries) {
  // Both entries have the same id in their own tables (SetUpTestSuite).
  ASSERT_EQ(g.nop.id, g.other_nop.id);
  const uint64_t mine = Count(g.nop), other = Count(g.other_nop);
  for (int i = 0; i < 300; ++i) (void)cordon_call(g.other_nop, 0, 0, 0, 0, 0);
  for (int i = 0; i < 100; ++i) (void)cordon_call(g.nop, 0, 0, 0, 0, 0);
  EXPECT_EQ(Count(g.other_nop), other + 300);
  EXPECT_EQ(Count(g.nop), mine + 100);
}

TEST_F(GateCount, UnknownDomainsAndIdsCountZero) {
  // Unused ids of a domain: never called (any call would stop the process).
  EXPECT_EQ(CountId(g.trusted, CORDON_TABLE_SIZE - 1), 0u);
  EXPECT_EQ(CountId(g.other, 900), 0u);
  // Past the counted ids; domains that do not exist (read from untrusted
  // code too: nothing of a domain is read for them).
  EXPECT_EQ(CountId(g.trusted, cordon::gates::kCountedIds), 0u);
  EXPECT_EQ(CountId(g.trusted, 0xffffffffu), 0u);
  for (int d : {0, -1, g.other + 1, CORDON_MAX_DOMAINS, 1000}) {
    EXPECT_EQ(cordon_call(g.count, static_cast<uint64_t>(d), g.nop.id, 0, 0, 0), 0u) << d;
    EXPECT_EQ(EntryCallCount(d, g.nop.id), 0u) << d;
  }
}

TEST_F(GateCount, ASignalFloodNeitherLosesNorRepeatsACount) {
  // A fast timer's signals land anywhere in the gate, the rewound windows
  // included (a signal there restarts the entry from its load): each call
  // still counts once. After lockdown from 6.12 on; before 6.12 no signal
  // but the faults may have a handler after lockdown (docs/signals.md), so
  // there the flood runs before it, through the same gates and rewinds.
  const ChildOutcome o = RunInChild([] {
    cordon::testing::ReportFaultsOnTheCurrentStack();
    g_flood_gate = reinterpret_cast<uint64_t>(cordon::gates::GateFor(g.trusted));
    struct sigaction sa {};
    sa.sa_sigaction = OnFlood;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    CHILD_CHECK(cordon_sigaction(SIGALRM, &sa, nullptr) == CORDON_OK);
    cordon_lockdown_options lo;
    cordon_lockdown_options_init(&lo);
    lo.violation = CORDON_VIOLATION_ERRNO_FOR_TESTS;
    if (!cordon::testing::KernelBefore612()) CHILD_CHECK(cordon_lockdown_ex(&lo) == CORDON_OK);
    const uint64_t before = Count(g.nop);
    const itimerval every{{0, 200}, {0, 200}};
    CHILD_CHECK(setitimer(ITIMER_REAL, &every, nullptr) == 0);
    // At least 20000 calls, and on until 20 signals have landed in the
    // gate itself (where its untrusted part is interrupted, or a window
    // rewound), or a minute has passed.
    uint64_t calls = 0, wrong = 0;
    const time_t deadline = time(nullptr) + 60;
    while (calls < 20000 || (g_flood_in_gate.load() < 20 && time(nullptr) < deadline)) {
      wrong += cordon_call(g.nop, calls, 0, 0, 0, 0) != calls;
      ++calls;
    }
    const itimerval off{};
    CHILD_CHECK(setitimer(ITIMER_REAL, &off, nullptr) == 0);
    const uint64_t after = Count(g.nop);
    printf("calls %llu, counted %llu, signals %llu, in the gate %llu\n",
           static_cast<unsigned long long>(calls), static_cast<unsigned long long>(after - before),
           static_cast<unsigned long long>(g_flood_handled.load()),
           static_cast<unsigned long long>(g_flood_in_gate.load()));
    fflush(stdout);
    CHILD_CHECK(wrong == 0);
    CHILD_CHECK(g_flood_in_gate.load() >= 20);
    CHILD_CHECK(after == before + calls);
  });
  EXPECT_TRUE(o.exited) << o.signal << "\n" << o.err;
  EXPECT_EQ(o.exit_code, 0) << o.err;
}

TEST_F(GateCount, GeneratedGatesCountInTheirBucket) {
  const uint32_t bucket = cordon::gates::kGeneratedGateCalls;
  cordon_entry registered{};
  for (size_t i = 0; i < cordon_generated_entry_count(); ++i) {
    cordon_generated_entry e;
    ASSERT_EQ(cordon_generated_entry_get(i, &e), CORDON_OK);
    if (e.gate == reinterpret_cast<uintptr_t>(&count_generated)) registered = e.entry;
  }
  ASSERT_EQ(registered.domain, g.trusted);
  const uint64_t direct = CountId(g.trusted, bucket), through_table = Count(registered);
  for (uint64_t i = 0; i < 500; ++i) ASSERT_EQ(count_generated(i), i + 1);
  EXPECT_EQ(CountId(g.trusted, bucket), direct + 500);
  EXPECT_EQ(Count(registered), through_table);
  // Through cordon_call(): the runtime gate, under the entry's own id.
  for (uint64_t i = 0; i < 70; ++i) ASSERT_EQ(cordon_call(registered, i, 0, 0, 0, 0), i + 1);
  EXPECT_EQ(Count(registered), through_table + 70);
  EXPECT_EQ(CountId(g.trusted, bucket), direct + 500);
  // From inside the domain, count_generated's gate is a plain jump: only
  // the outer gate is a gate call.
  EXPECT_EQ(count_generated_from_inside(&count_generated, 40), 40u * 41u / 2);
  EXPECT_EQ(CountId(g.trusted, bucket), direct + 501);
  // The other domain has no generated gates.
  EXPECT_EQ(CountId(g.other, bucket), 0u);
}

TEST_F(GateCount, ForEachGivesEveryNonZeroCountInIdOrder) {
  cordon_entry collect;
  ASSERT_EQ(cordon_register(g.other, CollectCounts, "collect", &collect), CORDON_OK);
  for (int i = 0; i < 5; ++i) (void)cordon_call(g.other_nop, 0, 0, 0, 0, 0);
  const uint64_t n = cordon_call(collect, static_cast<uint64_t>(g.other), 0, 0, 0, 0);
  ASSERT_EQ(n, g_seen_count);
  ASSERT_GE(n, 3u);  // builtins, other_nop, collect itself
  bool saw_nop = false, saw_collect = false;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) EXPECT_LT(g_seen[i - 1].id, g_seen[i].id);
    EXPECT_NE(g_seen[i].count, 0u);
    saw_nop = saw_nop || g_seen[i].id == g.other_nop.id;
    saw_collect = saw_collect || (g_seen[i].id == collect.id && g_seen[i].count == 1);
  }
  EXPECT_TRUE(saw_nop);
  EXPECT_TRUE(saw_collect);
  // Every id left out has no count; every one listed has the count the
  // reader sees now (but the reader's own id, which went on counting).
  size_t next = 0;
  for (uint32_t id = 0; id < cordon::gates::kCountedIds; ++id) {
    const uint64_t now = CountId(g.other, id);
    if (next < n && g_seen[next].id == id) {
      if (id != g.other_count.id) EXPECT_EQ(now, g_seen[next].count) << id;
      ++next;
    } else if (id != g.other_count.id) {
      EXPECT_EQ(now, 0u) << id;
    }
  }
}

TEST_F(GateCount, UntrustedCodeCanNeitherReadNorWriteTheCounters) {
  (void)cordon_call(g.nop, 0, 0, 0, 0, 0);
  const auto& c = cordon::gates::Config().domains[g.trusted];
  auto* rec = reinterpret_cast<cordon::gates::ThreadRecord*>(c.records);
  volatile uint64_t* counter = &rec->calls[g.nop.id];
  const uint32_t key = static_cast<uint32_t>(cordon_domain_pkey(g.trusted));
  ChildOutcome o = RunInChild([&] { (void)*counter; });
  EXPECT_EQ(o.signal, SIGSEGV);
  EXPECT_EQ(o.fault_code, kSegvPkuErr);
  EXPECT_EQ(o.fault_pkey, key);
  EXPECT_EQ(o.fault_addr, reinterpret_cast<uintptr_t>(counter));
  o = RunInChild([&] { *counter = 0; });
  EXPECT_EQ(o.signal, SIGSEGV);
  EXPECT_EQ(o.fault_code, kSegvPkuErr);
  EXPECT_EQ(o.fault_pkey, key);
  EXPECT_EQ(o.fault_addr, reinterpret_cast<uintptr_t>(counter));
  // The other domain's counters are under its own key.
  const auto& oc = cordon::gates::Config().domains[g.other];
  volatile uint64_t* other_counter =
      &reinterpret_cast<cordon::gates::ThreadRecord*>(oc.records)->calls[g.other_nop.id];
  o = RunInChild([&] { (void)*other_counter; });
  EXPECT_EQ(o.signal, SIGSEGV);
  EXPECT_EQ(o.fault_code, kSegvPkuErr);
  EXPECT_EQ(o.fault_pkey, static_cast<uint32_t>(cordon_domain_pkey(g.other)));
}

TEST_F(GateCount, ReadingCountsWithoutTheDomainsRightsStops) {
  // From untrusted code, and from the trusted domain for the other
  // domain's counts: a clear stop, not a fault and not a made-up 0.
  ChildOutcome o = RunInChild([] { (void)EntryCallCount(g.trusted, g.nop.id); });
  EXPECT_TRUE(o.exited);
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT);
  EXPECT_NE(o.err.find("read without that domain's rights"), std::string::npos) << o.err;
  o = RunInChild([] { (void)cordon_call(g.count, static_cast<uint64_t>(g.other), g.other_nop.id, 0, 0, 0); });
  EXPECT_TRUE(o.exited);
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT);
  EXPECT_NE(o.err.find("read without that domain's rights"), std::string::npos) << o.err;
}

}  // namespace
