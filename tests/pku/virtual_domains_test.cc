// PKU tests of virtual domains (include/cordon/cordon.h, "Virtual domains"):
// far more domains than the hardware has keys, kept on a few key slots and
// parked on one key while evicted. Each claim is checked by what it causes:
// the right domain's value from every call, PKRU after every call, the keys
// /proc/self/smaps shows on every page, a fault's si_code and si_pkey, an
// errno, or the judge's scan for a secret.
//
// One process holds the set-up (one physical user domain, then 1024 virtual
// ones, each with a random value in its heap); every test that can fault,
// runs threads or locks down does so in a forked child (tests/support/
// child.h), which inherits that state and leaves the parent's as it was.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cordon/cordon.h"
#include "runtime/domains/virtual.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/pkey.h"
#include "runtime/hardware/platform.h"
#include "runtime/hardware/smaps.h"
#include "tests/support/child.h"
#include "tests/support/judge.h"
#include "tests/support/slot_attack.h"

using cordon::testing::ChildOutcome;
using cordon::testing::Describe;
using cordon::testing::ExpectHeldToTheEnd;
using cordon::testing::GiveThisThreadAnAltStack;
using cordon::testing::JudgeAttack;
using cordon::testing::kSegvPkuErr;
using cordon::testing::LoadJudgeSecretInto;
using cordon::testing::LockDownForAttack;
using cordon::testing::RunInChild;
using cordon::testing::Shared;
using cordon::testing::Verdict;

namespace {

constexpr int kVirtualDomains = 1024;
constexpr int kFirstVirtualHandle = 16;
// Domains that also get the tool entries below (reads, writes, spins): the
// tests that need them pick among these.
constexpr int kToolDomains = 48;
constexpr int kSegvAccErr = SEGV_ACCERR;
constexpr int kErrnoMode = CORDON_VIOLATION_ERRNO_FOR_TESTS;
constexpr size_t kPage = 4096;

// The block each domain's init entry allocates in its own heap and makes
// its root.
struct DomainData {
  uint64_t value;        // the domain's random value
  int64_t owner;         // cordon_current_domain() when the block was made
  uint64_t scratch[30];  // written by the revocation tests
};
static_assert(sizeof(DomainData) == 256);

// What get() returns when the root does not belong to the caller's domain
// (a random value equals one of these with probability 2^-63).
constexpr uint64_t kNoRoot = 0xdead0000000000a1;
constexpr uint64_t kForeignRoot = 0xdead0000000000a2;

// ---- Entries, registered on each domain that uses them ----

// Allocates the domain's block, stores value, sets it as root; returns the
// block's address (0 on failure).
uint64_t InitEntry(uint64_t value, uint64_t, uint64_t, uint64_t, uint64_t) {
  const cordon_domain_t self = cordon_current_domain();
  void* p = nullptr;
  if (cordon_domain_alloc(self, 64, sizeof(DomainData), &p) != CORDON_OK) return 0;
  auto* d = static_cast<DomainData*>(p);
  d->value = value;
  d->owner = self;
  if (cordon_domain_set_root(d) != CORDON_OK) return 0;
  return reinterpret_cast<uint64_t>(d);
}

// The value of the domain the call is in, found through its root only.
uint64_t GetEntry(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  const auto* d = static_cast<const DomainData*>(cordon_domain_root());
  if (d == nullptr) return kNoRoot;
  const cordon_domain_t self = cordon_current_domain();
  if (d->owner != self || cordon_domain_of(d) != self) return kForeignRoot;
  return d->value;
}

uint64_t ReadWordEntry(uint64_t addr, uint64_t, uint64_t, uint64_t, uint64_t) {
  return *reinterpret_cast<const volatile uint64_t*>(addr);
}

uint64_t WriteWordEntry(uint64_t addr, uint64_t value, uint64_t, uint64_t, uint64_t) {
  *reinterpret_cast<volatile uint64_t*>(addr) = value;
  return 0;
}

// Writes addr until *stop, counting each write that completed in *progress
// (untrusted memory, which trusted code may write): after set_rights(READ)
// returns, at most the write in flight may still be counted.
uint64_t SpinWriteEntry(uint64_t addr, uint64_t progress, uint64_t stop, uint64_t, uint64_t) {
  auto* p = reinterpret_cast<volatile uint64_t*>(addr);
  auto* n = reinterpret_cast<std::atomic<uint64_t>*>(progress);
  auto* s = reinterpret_cast<std::atomic<int>*>(stop);
  uint64_t i = 0;
  while (s->load(std::memory_order_relaxed) == 0) {
    *p = ++i;
    n->fetch_add(1, std::memory_order_release);
  }
  return i;
}

// read(2) into the domain's memory, made by the domain's code; the raw
// result (-errno on failure): no errno, no glibc thread state.
uint64_t ReadIntoEntry(uint64_t fd, uint64_t addr, uint64_t n, uint64_t, uint64_t) {
  return static_cast<uint64_t>(cordon::hw::RawSyscall3(SYS_read, static_cast<long>(fd),
                                                       static_cast<long>(addr), static_cast<long>(n)));
}

// Leaves pattern in 8 KiB of its frame on the thread's trusted stack.
__attribute__((noinline)) uint64_t LeaveOnStackEntry(uint64_t pattern, uint64_t, uint64_t, uint64_t,
                                                     uint64_t) {
  volatile uint64_t buf[1024];
  for (auto& w : buf) w = pattern;
  return buf[5];
}

// Counts the words equal to pattern in the 16 KiB below its own frame:
// what earlier calls on this thread's trusted stack left there. The
// pattern comes masked (pattern ^ kPeekMask): the runtime's code on the way
// in may save the argument registers below this frame, and those words
// must not count as what another call left.
constexpr uint64_t kPeekMask = 0xa5a5a5a5a5a5a5a5;
__attribute__((noinline)) uint64_t PeekStackEntry(uint64_t masked, uint64_t, uint64_t, uint64_t, uint64_t) {
  const uint64_t pattern = masked ^ kPeekMask;
  const auto* frame = static_cast<const volatile uint64_t*>(__builtin_frame_address(0));
  uint64_t hits = 0;
  for (ptrdiff_t i = 1; i <= 2048; ++i) hits += frame[-i] == pattern ? 1 : 0;
  return hits;
}

struct Entries {
  cordon_entry init{}, get{}, read_word{}, write_word{}, spin_write{}, read_into{}, leave{}, peek{};
};

struct VDomain {
  cordon_domain_t d = 0;
  Entries e;
  uint64_t value = 0;
  DomainData* block = nullptr;
  uintptr_t region = 0;
  size_t region_size = 0;
};

struct SetUp {
  bool ready = false;
  std::vector<VDomain> v;  // the virtual domains, by index (handle 16 + index)
  VDomain phys;            // the physical user domain
  int parking = -1;
  std::set<int> slot_keys;  // every key a resident virtual domain showed
  int physical_count = 0;   // physical domains, the trusted one included
};
SetUp g;

bool Register(cordon_domain_t d, bool tools, const std::string& tag, Entries* e) {
  bool ok = cordon_register(d, InitEntry, ("init(" + tag + ")").c_str(), &e->init) == CORDON_OK &&
            cordon_register(d, GetEntry, ("get(" + tag + ")").c_str(), &e->get) == CORDON_OK;
  if (ok && tools) {
    ok = cordon_register(d, ReadWordEntry, ("read_word(" + tag + ")").c_str(), &e->read_word) == CORDON_OK &&
         cordon_register(d, WriteWordEntry, ("write_word(" + tag + ")").c_str(), &e->write_word) ==
             CORDON_OK &&
         cordon_register(d, SpinWriteEntry, ("spin_write(" + tag + ")").c_str(), &e->spin_write) ==
             CORDON_OK &&
         cordon_register(d, ReadIntoEntry, ("read_into(" + tag + ")").c_str(), &e->read_into) == CORDON_OK &&
         cordon_register(d, LeaveOnStackEntry, ("leave(" + tag + ")").c_str(), &e->leave) == CORDON_OK &&
         cordon_register(d, PeekStackEntry, ("peek(" + tag + ")").c_str(), &e->peek) == CORDON_OK;
  }
  return ok;
}

uint64_t Get(const VDomain& v) {
  return cordon_call(v.e.get, 0, 0, 0, 0, 0);
}

uint64_t ReadWord(const VDomain& v, const void* at) {
  return cordon_call(v.e.read_word, reinterpret_cast<uint64_t>(at), 0, 0, 0, 0);
}

// The keys a thread's PKRU must deny outside every gate.
std::vector<int> KeysToDeny() {
  std::vector<int> keys(g.slot_keys.begin(), g.slot_keys.end());
  keys.push_back(g.parking);
  return keys;
}

// "" when pkru denies access to every key, else which it does not.
std::string Undenied(uint32_t pkru, const std::vector<int>& keys) {
  std::string bad;
  for (const int k : keys) {
    if (((pkru >> (2 * k)) & 1u) == 0) bad += " " + std::to_string(k);
  }
  return bad;
}

uint32_t Rdpkru() {
  uint32_t eax, edx;
  asm volatile("rdpkru" : "=a"(eax), "=d"(edx) : "c"(0));
  return eax;
}

// The tag invariant, from /proc/self/smaps: every page of every virtual
// domain's region carries exactly cordon_domain_pkey(v), which is the
// parking key or a slot key, and no slot key is carried by two domains.
// Returns the problems found ("" when none), at most a few lines of them.
std::string TagProblems() {
  std::string out;
  int reported = 0;
  auto problem = [&](const std::string& s) {
    if (reported++ < 8) out += s + "\n";
  };
  const int parking = cordon_parking_pkey();
  if (parking != g.parking) problem("the parking key changed from " + std::to_string(g.parking));
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (const VDomain& v : g.v) {
    lo = std::min(lo, v.region);
    hi = std::max(hi, v.region + v.region_size);
  }
  const auto maps = cordon::hw::MappingsIn(lo, hi);
  if (!maps) return "cannot read /proc/self/smaps\n";
  std::map<int, int> holder;  // slot key -> the domain index carrying it
  for (size_t i = 0; i < g.v.size(); ++i) {
    const VDomain& v = g.v[i];
    const int key = cordon_domain_pkey(v.d);
    const std::string who = "domain " + std::to_string(v.d);
    if (key != parking && g.slot_keys.count(key) == 0) {
      problem(who + " has key " + std::to_string(key) + ", neither the parking key nor a slot key");
    }
    if (key != parking) {
      const auto [it, fresh] = holder.emplace(key, v.d);
      if (!fresh)
        problem("slot key " + std::to_string(key) + " on domains " + std::to_string(it->second) + " and " +
                std::to_string(v.d));
    }
    // The mappings are in address order, and so are the regions.
    const uintptr_t start = v.region, end = v.region + v.region_size;
    auto m = std::lower_bound(maps->begin(), maps->end(), start,
                              [](const cordon::hw::MappingInfo& x, uintptr_t a) { return x.end <= a; });
    uintptr_t covered = start;
    for (; m != maps->end() && m->start < end; ++m) {
      if (m->start > covered) break;  // a hole: unmapped pages in the region
      if (m->pkey != key) {
        char buf[160];
        snprintf(buf, sizeof buf, " has pages %#lx-%#lx under key %d, cordon_domain_pkey says %d",
                 static_cast<unsigned long>(std::max(m->start, start)),
                 static_cast<unsigned long>(std::min(m->end, end)), m->pkey, key);
        problem(who + buf);
      }
      covered = m->end;
    }
    if (covered < end) problem(who + "'s region is not wholly mapped");
  }
  if (reported > 8) out += "(" + std::to_string(reported - 8) + " more)\n";
  return out;
}

void ExpectCleanExit(const ChildOutcome& o) {
  EXPECT_TRUE(o.exited) << Describe(o);
  EXPECT_EQ(o.exit_code, 0) << Describe(o);
}

void ExpectFault(const ChildOutcome& o, int code, const void* addr) {
  EXPECT_EQ(o.signal, SIGSEGV) << Describe(o);
  EXPECT_EQ(o.fault_code, code) << Describe(o);
  EXPECT_EQ(o.fault_addr, reinterpret_cast<uintptr_t>(addr)) << Describe(o);
}

class VirtualDomains : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (g.ready) return;
    cordon_options o;
    cordon_options_init(&o);
    o.max_threads = 32;
    o.heap_size = size_t{4} << 20;
    o.virtual_heap_size = size_t{256} << 10;
    ASSERT_EQ(cordon_init(&o), CORDON_OK);
    ASSERT_EQ(cordon_parking_pkey(), -1) << "no parking key before the first virtual domain";

    // The physical domain first, while keys are left for it.
    ASSERT_EQ(cordon_domain_create("phys", &g.phys.d), CORDON_OK);
    ASSERT_EQ(cordon_domain_is_virtual(g.phys.d), 0);
    g.physical_count = 2;
    ASSERT_TRUE(Register(g.phys.d, true, "phys", &g.phys.e));
    ASSERT_NE(cordon_call(g.phys.e.init, 0x5eed, 0, 0, 0, 0), 0u);
    void* pb = nullptr;
    ASSERT_EQ(cordon_domain_alloc(g.phys.d, 64, sizeof(DomainData), &pb), CORDON_OK);
    g.phys.block = static_cast<DomainData*>(pb);

    std::mt19937_64 rng(std::random_device{}());
    g.v.resize(kVirtualDomains);
    for (int i = 0; i < kVirtualDomains; ++i) {
      VDomain& v = g.v[i];
      const std::string name = "v" + std::to_string(i);
      ASSERT_EQ(cordon_domain_create_virtual(name.c_str(), &v.d), CORDON_OK) << i;
      ASSERT_EQ(v.d, kFirstVirtualHandle + i);
      ASSERT_TRUE(Register(v.d, i < kToolDomains, name, &v.e)) << i;
      const void* r = nullptr;
      ASSERT_EQ(cordon_domain_region(v.d, &r, &v.region_size), CORDON_OK) << i;
      v.region = reinterpret_cast<uintptr_t>(r);
    }
    g.parking = cordon_parking_pkey();
    ASSERT_GE(g.parking, 1);
    ASSERT_LE(g.parking, 15);
    // Each domain's value goes into its heap from inside, through a call
    // that loads it (evicting the least recently used one).
    for (int i = 0; i < kVirtualDomains; ++i) {
      VDomain& v = g.v[i];
      do v.value = rng();
      while (v.value == kNoRoot || v.value == kForeignRoot);
      const uint64_t block = cordon_call(v.e.init, v.value, 0, 0, 0, 0);
      ASSERT_NE(block, 0u) << "init of domain " << v.d;
      v.block = reinterpret_cast<DomainData*>(block);
      ASSERT_EQ(cordon_domain_of(v.block), v.d);
      const int key = cordon_domain_pkey(v.d);
      ASSERT_NE(key, g.parking) << "a domain just called is resident";
      g.slot_keys.insert(key);
    }
    g.ready = true;
  }

  void SetUp() override { ASSERT_TRUE(g.ready) << "the suite's set-up failed"; }
};

// ---- Handles, keys and the tag invariant after set-up ----

TEST_F(VirtualDomains, HandlesFollowThePhysicalDomainsAndTheKeysAreSlotsAndOneParkingKey) {
  EXPECT_EQ(cordon_domain_is_virtual(CORDON_DOMAIN_UNTRUSTED), 0);
  EXPECT_EQ(cordon_domain_is_virtual(cordon_trusted_domain()), 0);
  EXPECT_EQ(cordon_domain_is_virtual(kFirstVirtualHandle + kVirtualDomains), 0) << "no such domain";
  EXPECT_EQ(cordon_domain_is_virtual(g.v.back().d), 1);
  EXPECT_STREQ(cordon_domain_name(g.v[7].d), "v7");
  EXPECT_EQ(cordon_domain_name(kFirstVirtualHandle + kVirtualDomains), nullptr);
  // Every key left after the physical domains, minus the parking key and
  // the directory's.
  const int expected_slots = 15 - g.physical_count - 2;
  EXPECT_EQ(static_cast<int>(g.slot_keys.size()), expected_slots)
      << "slot keys seen after 1024 calls in turn; physical domains: " << g.physical_count;
  const int trusted_key = cordon_domain_pkey(cordon_trusted_domain());
  const int phys_key = cordon_domain_pkey(g.phys.d);
  for (const int k : g.slot_keys) {
    EXPECT_GE(k, 1);
    EXPECT_LE(k, 15);
    EXPECT_NE(k, trusted_key);
    EXPECT_NE(k, phys_key);
  }
  EXPECT_EQ(g.slot_keys.count(g.parking), 0u);
  EXPECT_NE(g.parking, trusted_key);
  EXPECT_NE(g.parking, phys_key);
  // Regions: disjoint, and each domain's own memory.
  for (size_t i = 0; i + 1 < g.v.size(); ++i) {
    ASSERT_GT(g.v[i].region_size, 0u);
    ASSERT_LE(g.v[i].region + g.v[i].region_size, g.v[i + 1].region) << "regions in handle order, disjoint";
  }
  EXPECT_EQ(cordon_domain_of(reinterpret_cast<const void*>(g.v[3].region)), g.v[3].d);
  EXPECT_EQ(cordon_domain_of(reinterpret_cast<const void*>(g.v[3].region + g.v[3].region_size - 1)),
            g.v[3].d);
  EXPECT_EQ(cordon_domain_rights(g.v[3].d), CORDON_RIGHTS_READ_WRITE);
  // Untrusted code is outside every domain.
  EXPECT_EQ(cordon_current_domain(), CORDON_DOMAIN_UNTRUSTED);
  EXPECT_EQ(Undenied(Rdpkru(), KeysToDeny()), "");
  EXPECT_EQ(TagProblems(), "");
}

TEST_F(VirtualDomains, PhysicalDomainsAreAlwaysPinnedAndNeverEvicted) {
  EXPECT_EQ(cordon_domain_pin(g.phys.d), CORDON_OK);
  EXPECT_EQ(cordon_domain_unpin(g.phys.d), CORDON_OK);
  EXPECT_NE(cordon_domain_evict(g.phys.d), CORDON_OK);
  EXPECT_NE(cordon_domain_evict(cordon_trusted_domain()), CORDON_OK);
  EXPECT_NE(cordon_domain_evict(kFirstVirtualHandle + kVirtualDomains), CORDON_OK) << "no such domain";
  EXPECT_EQ(cordon_call(g.phys.e.get, 0, 0, 0, 0, 0), 0x5eedu);
}

// ---- 1024 domains, 8 threads ----

TEST_F(VirtualDomains, ThousandDomainsFromEightThreadsEachGetTheirOwnValue) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 4;
  // 2000 calls per thread natively; 320 in the VM, where each miss costs
  // about a millisecond from one thread and, with 8 threads on its 2
  // emulated CPUs, about 6 (kept well under two minutes per kernel).
  const int kCallsPerRound = cordon::hw::UnderTcg() ? 80 : 500;
  const ChildOutcome o = RunInChild([kCallsPerRound] {
    const std::vector<int> deny = KeysToDeny();
    pthread_barrier_t barrier;
    CHILD_CHECK(pthread_barrier_init(&barrier, nullptr, kThreads + 1) == 0);
    std::atomic<int> failures{0};
    std::atomic<uint64_t> calls{0};
    auto fail = [&](const std::string& s) {
      if (failures.fetch_add(1) < 10) fprintf(stderr, "%s\n", s.c_str());
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        GiveThisThreadAnAltStack();
        std::mt19937 rng(1000 + t);
        std::uniform_int_distribution<int> pick(0, kVirtualDomains - 1);
        for (int r = 0; r < kRounds; ++r) {
          for (int i = 0; i < kCallsPerRound; ++i) {
            const VDomain& v = g.v[pick(rng)];
            const uint64_t got = Get(v);
            calls.fetch_add(1, std::memory_order_relaxed);
            if (got != v.value) {
              char buf[128];
              snprintf(buf, sizeof buf, "thread %d: domain %d returned %#llx, not %#llx", t, v.d,
                       static_cast<unsigned long long>(got), static_cast<unsigned long long>(v.value));
              fail(buf);
            }
            const uint32_t pkru = Rdpkru();
            const std::string open = Undenied(pkru, deny);
            if (!open.empty()) fail("thread " + std::to_string(t) + ": PKRU after a call opens keys" + open);
            if (cordon_current_domain() != CORDON_DOMAIN_UNTRUSTED)
              fail("a call did not return to untrusted");
          }
          pthread_barrier_wait(&barrier);  // stopped: the checker reads smaps
          pthread_barrier_wait(&barrier);
        }
      });
    }
    for (int r = 0; r < kRounds; ++r) {
      pthread_barrier_wait(&barrier);
      const std::string p = TagProblems();
      if (!p.empty()) fail("after round " + std::to_string(r) + ":\n" + p);
      pthread_barrier_wait(&barrier);
    }
    for (auto& t : threads) t.join();
    CHILD_CHECK(calls.load() == uint64_t{kThreads} * kRounds * static_cast<uint64_t>(kCallsPerRound));
    CHILD_CHECK(failures.load() == 0);
  });
  ExpectCleanExit(o);
}

// ---- Isolation between domains and from untrusted code ----

struct KeyBeforeFault {
  int key = -1;
};

// An entry of A that reads B's block faults, with B's key: B resident.
TEST_F(VirtualDomains, AnEntryOfOneDomainCannotReadAnothersResidentMemory) {
  auto* told = Shared<KeyBeforeFault>();
  const VDomain& a = g.v[1];
  const VDomain& b = g.v[2];
  const ChildOutcome o = RunInChild([&] {
    // B, then A: both resident, and loading A (if it was parked) evicts the
    // least recently used domain, which is not B.
    CHILD_CHECK(Get(b) == b.value);
    CHILD_CHECK(Get(a) == a.value);
    told->key = cordon_domain_pkey(b.d);
    CHILD_CHECK(told->key != g.parking);
    (void)ReadWord(a, &b.block->value);
  });
  ExpectFault(o, kSegvPkuErr, &b.block->value);
  EXPECT_EQ(o.fault_pkey, static_cast<uint32_t>(told->key)) << Describe(o);
  munmap(told, sizeof *told);
}

// The same with B evicted: its pages are on the parking key, which no
// domain's PKRU opens either.
TEST_F(VirtualDomains, AnEntryOfOneDomainCannotReadAnothersParkedMemory) {
  const VDomain& a = g.v[3];
  const VDomain& b = g.v[4];
  const ChildOutcome o = RunInChild([&] {
    CHILD_CHECK(Get(b) == b.value);
    CHILD_CHECK(cordon_domain_evict(b.d) == CORDON_OK);
    CHILD_CHECK(cordon_domain_pkey(b.d) == g.parking);
    CHILD_CHECK(Get(a) == a.value);
    CHILD_CHECK(cordon_domain_pkey(b.d) == g.parking);
    (void)ReadWord(a, &b.block->value);
  });
  ExpectFault(o, kSegvPkuErr, &b.block->value);
  EXPECT_EQ(o.fault_pkey, static_cast<uint32_t>(g.parking)) << Describe(o);
}

// Nor can a physical domain's code read a virtual domain's memory, or the
// other way round.
TEST_F(VirtualDomains, PhysicalAndVirtualDomainsCannotReadEachOther) {
  const VDomain& v = g.v[5];
  const ChildOutcome into_virtual = RunInChild([&] {
    CHILD_CHECK(Get(v) == v.value);
    (void)ReadWord(g.phys, &v.block->value);
  });
  ExpectFault(into_virtual, kSegvPkuErr, &v.block->value);
  EXPECT_EQ(g.slot_keys.count(static_cast<int>(into_virtual.fault_pkey)), 1u) << Describe(into_virtual);
  const ChildOutcome into_physical = RunInChild([&] { (void)ReadWord(v, g.phys.block); });
  ExpectFault(into_physical, kSegvPkuErr, g.phys.block);
  EXPECT_EQ(into_physical.fault_pkey, static_cast<uint32_t>(cordon_domain_pkey(g.phys.d)))
      << Describe(into_physical);
}

TEST_F(VirtualDomains, UntrustedReadsFaultWithTheKeyThePagesCarryResidentOrParked) {
  const VDomain& v = g.v[6];
  ASSERT_EQ(Get(v), v.value);
  const int resident_key = cordon_domain_pkey(v.d);
  ASSERT_NE(resident_key, g.parking);
  const auto* value = reinterpret_cast<const volatile uint64_t*>(&v.block->value);
  const auto* table = reinterpret_cast<const volatile uint64_t*>(v.region);
  for (const volatile uint64_t* p : {value, table}) {
    const ChildOutcome o = RunInChild([&] { (void)*p; });
    ExpectFault(o, kSegvPkuErr, const_cast<const uint64_t*>(p));
    EXPECT_EQ(o.fault_pkey, static_cast<uint32_t>(resident_key)) << Describe(o);
  }
  const ChildOutcome store = RunInChild([&] { *const_cast<volatile uint64_t*>(value) = 0; });
  ExpectFault(store, kSegvPkuErr, const_cast<const uint64_t*>(value));
  EXPECT_EQ(store.fault_pkey, static_cast<uint32_t>(resident_key)) << Describe(store);

  ASSERT_EQ(cordon_domain_evict(v.d), CORDON_OK);
  ASSERT_EQ(cordon_domain_pkey(v.d), g.parking);
  for (const volatile uint64_t* p : {value, table}) {
    const ChildOutcome o = RunInChild([&] { (void)*p; });
    ExpectFault(o, kSegvPkuErr, const_cast<const uint64_t*>(p));
    EXPECT_EQ(o.fault_pkey, static_cast<uint32_t>(g.parking)) << Describe(o);
  }
  // Kernel copies honour the key too: write(2) from the parked block.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  errno = 0;
  EXPECT_EQ(write(fds[1], const_cast<const uint64_t*>(value), 8), -1);
  EXPECT_EQ(errno, EFAULT);
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(Get(v), v.value) << "a parked domain comes back on its next call";
  EXPECT_NE(cordon_domain_pkey(v.d), g.parking);
}

// ---- The key slots and forged calls ----

// The handles of the key slots: physical domains of the runtime's own, on
// the slot keys.
std::vector<cordon_domain_t> SlotHandles() {
  std::vector<cordon_domain_t> slots;
  for (cordon_domain_t h = 1; h < kFirstVirtualHandle; ++h) {
    if (h != cordon_trusted_domain() && h != g.phys.d && g.slot_keys.count(cordon_domain_pkey(h)) != 0)
      slots.push_back(h);
  }
  return slots;
}

// A slot's PKRU grants the directory's key and whichever domain is
// resident: no handle of one may be used as a domain of the program's.
TEST_F(VirtualDomains, KeySlotsAreNoDomainsOfTheProgram) {
  const std::vector<cordon_domain_t> slots = SlotHandles();
  EXPECT_EQ(slots.size(), g.slot_keys.size());
  for (const cordon_domain_t h : slots) {
    cordon_entry e{};
    void* p = nullptr;
    EXPECT_EQ(cordon_register(h, GetEntry, "onto a slot", &e), CORDON_E_INVALID_ARGUMENT) << h;
    EXPECT_EQ(cordon_domain_alloc(h, 16, 64, &p), CORDON_E_INVALID_ARGUMENT) << h;
    EXPECT_EQ(cordon_domain_set_rights(h, CORDON_RIGHTS_NONE), CORDON_E_INVALID_ARGUMENT) << h;
    EXPECT_EQ(cordon_domain_evict(h), CORDON_E_INVALID_ARGUMENT) << h;
    EXPECT_EQ(cordon_domain_pin(h), CORDON_E_INVALID_ARGUMENT) << h;
    EXPECT_EQ(cordon_domain_is_virtual(h), 0) << h;
  }
  ASSERT_FALSE(slots.empty());
  // An entry handle aimed at a slot, or at an id no one registered in a
  // virtual domain, stops the process.
  for (const cordon_entry forged : {cordon_entry{slots[0], cordon::domains::virt::kSlotEntryId},
                                    cordon_entry{slots[0], 40}, cordon_entry{g.v[0].d, 999}}) {
    const ChildOutcome o = RunInChild([&] { (void)cordon_call(forged, 0, 0, 0, 0, 0); });
    const std::string which =
        "entry {" + std::to_string(forged.domain) + ", " + std::to_string(forged.id) + "}: ";
    EXPECT_TRUE(o.exited) << which << Describe(o);
    EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT) << which << Describe(o);
    EXPECT_NE(o.err.find("cordon: "), std::string::npos) << which << Describe(o);
  }
}

// Untrusted code calling a slot's gate itself (the runtime's internals:
// runtime/domains/virtual.h) with a call block it forged: a block in
// trusted memory, a domain that does not exist, an id in neither range.
TEST_F(VirtualDomains, ForgedCallBlocksAtASlotsGateStopTheProcess) {
  const std::vector<cordon_domain_t> slots = SlotHandles();
  ASSERT_FALSE(slots.empty());
  const auto gate = cordon::gates::GateFor(slots[0]);
  namespace virt = cordon::domains::virt;
  struct Forgery {
    const char* what;
    uint32_t vdomain, id;
    bool in_trusted_memory;
  };
  const Forgery forgeries[] = {
      {"a block in a domain's memory", 0, virt::kSlotEntryId + 1, true},
      {"no such virtual domain", kVirtualDomains + 5, CORDON_BUILTIN_COUNT, false},
      {"an id between the table and the operations", 0, CORDON_TABLE_SIZE + 7, false},
  };
  for (const Forgery& f : forgeries) {
    const ChildOutcome o = RunInChild([&] {
      virt::CallBlock local{f.vdomain, f.id, 0, 0, 0};
      // A domain's memory the forger names (it cannot write it: the block is
      // whatever the domain's block holds).
      virt::CallBlock* block =
          f.in_trusted_memory ? reinterpret_cast<virt::CallBlock*>(g.v[0].block) : &local;
      (void)gate(0, 0, 0, 0, reinterpret_cast<uint64_t>(block), virt::kSlotEntryId);
      fprintf(stderr, "the forged call returned\n");
    });
    EXPECT_TRUE(o.exited) << f.what << ": " << Describe(o);
    EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT) << f.what << ": " << Describe(o);
    EXPECT_NE(o.err.find("gate violation"), std::string::npos) << f.what << ": " << Describe(o);
  }
}

// ---- Pinning ----

TEST_F(VirtualDomains, APinnedDomainKeepsItsKeyThroughAStormOfCallsToOthers) {
  const VDomain& v = g.v[8];
  ASSERT_EQ(Get(v), v.value);
  ASSERT_EQ(cordon_domain_pin(v.d), CORDON_OK);
  const int key = cordon_domain_pkey(v.d);
  EXPECT_NE(key, g.parking);
  EXPECT_EQ(cordon_domain_evict(v.d), CORDON_E_BUSY) << "pinned";
  std::mt19937 rng(8);
  std::uniform_int_distribution<int> pick(100, kVirtualDomains - 1);
  for (int i = 0; i < 300; ++i) {
    const VDomain& w = g.v[pick(rng)];
    ASSERT_EQ(Get(w), w.value);
    ASSERT_EQ(cordon_domain_pkey(v.d), key) << "after " << i << " calls to others";
    ASSERT_NE(cordon_domain_pkey(w.d), key) << "another domain on the pinned domain's key";
  }
  EXPECT_EQ(Get(v), v.value);
  EXPECT_EQ(TagProblems(), "");
  EXPECT_EQ(cordon_domain_unpin(v.d), CORDON_OK);
  EXPECT_EQ(cordon_domain_evict(v.d), CORDON_OK) << "unpinned";
  EXPECT_EQ(cordon_domain_pkey(v.d), g.parking);
  EXPECT_EQ(Get(v), v.value);
}

TEST_F(VirtualDomains, PinningEverySlotFailsAtTheLastOneAndCallsStillWork) {
  const int slots = static_cast<int>(g.slot_keys.size());
  ASSERT_GE(slots, 2);
  std::vector<const VDomain*> pinned;
  std::set<int> pinned_keys;
  int last = CORDON_OK;
  for (int i = 0; i < slots; ++i) {
    const VDomain& v = g.v[200 + i];
    ASSERT_EQ(Get(v), v.value);
    last = cordon_domain_pin(v.d);
    if (last != CORDON_OK) break;
    pinned.push_back(&v);
    pinned_keys.insert(cordon_domain_pkey(v.d));
  }
  EXPECT_EQ(last, CORDON_E_NO_KEYS);
  EXPECT_EQ(static_cast<int>(pinned.size()), slots - 1) << "one key stays unpinned";
  EXPECT_EQ(pinned_keys.size(), pinned.size()) << "each pinned domain has a key of its own";
  EXPECT_EQ(pinned_keys.count(g.parking), 0u);
  // Every other domain runs on the one key left.
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> pick(300, kVirtualDomains - 1);
  for (int i = 0; i < 100; ++i) {
    const VDomain& w = g.v[pick(rng)];
    ASSERT_EQ(Get(w), w.value);
    ASSERT_EQ(pinned_keys.count(cordon_domain_pkey(w.d)), 0u);
  }
  for (const VDomain* v : pinned) {
    EXPECT_EQ(Get(*v), v->value);
    EXPECT_EQ(pinned_keys.count(cordon_domain_pkey(v->d)), 1u);
  }
  EXPECT_EQ(TagProblems(), "");
  for (const VDomain* v : pinned) EXPECT_EQ(cordon_domain_unpin(v->d), CORDON_OK);
  // All keys cycle again.
  std::set<int> seen;
  for (int i = 0; i < 3 * slots; ++i) {
    const VDomain& w = g.v[400 + i];
    ASSERT_EQ(Get(w), w.value);
    seen.insert(cordon_domain_pkey(w.d));
  }
  EXPECT_EQ(seen, g.slot_keys);
}

// ---- Callbacks and signal handlers that call virtual domains ----

bool BlockedIn(pid_t tid, long nr);

// Runs fn(a0) as untrusted code from inside the domain (a callback).
uint64_t CallBackEntry(uint64_t fn, uint64_t a0, uint64_t, uint64_t, uint64_t) {
  return cordon_call_untrusted(reinterpret_cast<cordon_untrusted_fn>(fn), a0, 0, 0, 0, 0);
}
uint64_t GetOf(uint64_t index, uint64_t, uint64_t, uint64_t, uint64_t) {
  return Get(g.v[index]);
}

// Pins domains until one key is left; the pinned ones are 200, 201, ...
int PinAllButOneSlot() {
  int pinned = 0;
  for (;; ++pinned) {
    const VDomain& v = g.v[200 + pinned];
    CHILD_CHECK(Get(v) == v.value);
    const int r = cordon_domain_pin(v.d);
    if (r == CORDON_E_NO_KEYS) return pinned;
    CHILD_CHECK(r == CORDON_OK);
  }
}

// A child that has not stopped within the minute fails the test with a
// message, not at ctest's timeout.
void StopAfterAMinute(const char* what) {
  std::thread([what] {
    std::this_thread::sleep_for(std::chrono::seconds(60));
    fprintf(stderr, "still running after a minute: %s\n", what);
    _exit(3);
  }).detach();
}

bool SaysBoth(const std::string& err, const char* a, const char* b) {
  return err.find(a) != std::string::npos && err.find(b) != std::string::npos;
}

// The call the callback runs from needs the one unpinned slot; the
// callback's own call needs a load, and every other slot is pinned: it
// can never run (waiting would be forever), so the process stops and says
// why.
TEST_F(VirtualDomains, ACallbackThatNeedsALoadWhileEveryOtherSlotIsPinnedStopsTheProcess) {
  const ChildOutcome o = RunInChild([] {
    StopAfterAMinute("a callback waits for a slot");
    CHILD_CHECK(PinAllButOneSlot() >= 1);
    const VDomain& outer = g.v[300];
    cordon_entry callback{};
    CHILD_CHECK(cordon_register(outer.d, CallBackEntry, "callback(v300)", &callback) == CORDON_OK);
    // A callback that needs no load works.
    CHILD_CHECK(cordon_call(callback, reinterpret_cast<uint64_t>(GetOf), 200, 0, 0, 0) == g.v[200].value);
    (void)cordon_call(callback, reinterpret_cast<uint64_t>(GetOf), 301, 0, 0, 0);
    fprintf(stderr, "the callback's call returned\n");
  });
  EXPECT_TRUE(o.exited) << Describe(o);
  EXPECT_EQ(o.exit_code, 70) << Describe(o);
  EXPECT_TRUE(SaysBoth(o.err, "callback or signal handler", "is pinned or runs the call it interrupted"))
      << Describe(o);
}

// A thread that loads a domain holds the directory's lock while it waits
// for another thread to leave the slot (here: blocked in read(2) inside the
// slot's resident, on the one unpinned slot). Signal handlers on the loading
// thread call a virtual domain that needs a load: each either finds its own
// thread holding the lock, or its thread inside the one unpinned slot, and
// the process stops with a message instead of waiting for itself.
TEST_F(VirtualDomains, ASignalHandlerThatCallsAVirtualDomainDuringItsThreadsLoadStopsTheProcess) {
  const ChildOutcome o = RunInChild([] {
    StopAfterAMinute("a signal handler waits for its own thread");
    CHILD_CHECK(PinAllButOneSlot() >= 1);
    struct sigaction sa = {};
    sa.sa_handler = [](int) { (void)GetOf(301, 0, 0, 0, 0); };
    sa.sa_flags = SA_NODEFER;  // each signal lands, in a handler too
    CHILD_CHECK(cordon_sigaction(SIGUSR1, &sa, nullptr) == CORDON_OK);
    // The blocked thread, inside domain 40 (on the one unpinned slot).
    int fds[2];
    CHILD_CHECK(pipe(fds) == 0);
    std::atomic<pid_t> blocked{0};
    std::thread([&] {
      blocked = gettid();
      (void)cordon_call(g.v[40].e.read_into, static_cast<uint64_t>(fds[0]),
                        reinterpret_cast<uint64_t>(&g.v[40].block->scratch[0]), 8, 0, 0);
    }).detach();
    while (blocked.load() == 0 || !BlockedIn(blocked.load(), SYS_read)) sched_yield();
    // The loading thread: its call cannot load 300 while 40's reader is in.
    std::atomic<pid_t> loader{0};
    std::thread([&] {
      loader = gettid();
      (void)Get(g.v[300]);
      fprintf(stderr, "domain 300 was loaded while a thread was inside the slot\n");
      _exit(5);
    }).detach();
    while (loader.load() == 0) sched_yield();
    for (;;) {
      CHILD_CHECK(syscall(SYS_tgkill, getpid(), loader.load(), SIGUSR1) == 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  EXPECT_TRUE(o.exited) << Describe(o);
  EXPECT_EQ(o.exit_code, 70) << Describe(o);
  const bool own_lock = SaysBoth(o.err, "signal handler", "while its own thread");
  const bool every_slot = SaysBoth(o.err, "callback or signal handler", "is pinned or runs the call");
  EXPECT_TRUE(own_lock || every_slot) << Describe(o);
  if (own_lock) {
    fprintf(stderr, "the handler found its own thread holding the lock\n");
  } else {
    fprintf(stderr, "the handler found its own thread inside the unpinned slot\n");
  }
}

// ---- One slot, two residents ----

// A key slot's trusted stacks serve every domain that comes onto it: what
// one resident's code left on a thread's stack must be gone before the
// next resident's code runs there, on the same thread or on another that
// ran the first one before.
TEST_F(VirtualDomains, TheNextResidentOfASlotFindsNothingTheLastLeftOnItsStacks) {
  const ChildOutcome o = RunInChild([] {
    const int slots = static_cast<int>(g.slot_keys.size());
    for (int i = 0; i < slots - 1; ++i) {  // one slot left for a and b
      CHILD_CHECK(Get(g.v[200 + i]) == g.v[200 + i].value);
      CHILD_CHECK(cordon_domain_pin(g.v[200 + i].d) == CORDON_OK);
    }
    const VDomain& a = g.v[22];
    const VDomain& b = g.v[23];
    auto call = [](const cordon_entry& e, uint64_t pattern) { return cordon_call(e, pattern, 0, 0, 0, 0); };
    auto peek = [](const VDomain& d, uint64_t pattern) {
      return cordon_call(d.e.peek, pattern ^ kPeekMask, 0, 0, 0, 0);
    };
    // The probe can see residue: within one resident it stays.
    (void)call(a.e.leave, 0x5157aced00000001);
    const uint64_t seen_by_a = peek(a, 0x5157aced00000001);
    if (seen_by_a == 0) fprintf(stderr, "nothing to test: the stack held no residue even within a domain\n");
    CHILD_CHECK(seen_by_a > 0);
    const int key = cordon_domain_pkey(a.d);
    // The same thread, b after a on the one slot.
    (void)call(a.e.leave, 0x5157aced00000002);
    const uint64_t seen_by_b = peek(b, 0x5157aced00000002);
    CHILD_CHECK(cordon_domain_pkey(b.d) == key);
    CHILD_CHECK(cordon_domain_pkey(a.d) == g.parking);
    if (seen_by_b != 0)
      fprintf(stderr, "b found %llu words a left on the stack\n", (unsigned long long)seen_by_b);
    CHILD_CHECK(seen_by_b == 0);
    // Another thread: it runs a, this thread moves b onto the slot, then it
    // runs b on the record it ran a on.
    std::atomic<int> step{0};
    uint64_t seen_by_b_there = ~0ull;
    std::thread other([&] {
      GiveThisThreadAnAltStack();
      (void)call(a.e.leave, 0x5157aced00000003);
      step = 1;
      while (step.load() != 2) sched_yield();
      seen_by_b_there = peek(b, 0x5157aced00000003);
    });
    while (step.load() != 1) sched_yield();
    CHILD_CHECK(Get(b) == b.value);
    CHILD_CHECK(cordon_domain_pkey(b.d) == key);
    step = 2;
    other.join();
    if (seen_by_b_there != 0)
      fprintf(stderr, "b found %llu words a left on the other thread's stack\n",
              (unsigned long long)seen_by_b_there);
    CHILD_CHECK(seen_by_b_there == 0);
  });
  ExpectCleanExit(o);
}

// ---- Revocation (cordon_domain_set_rights) ----

TEST_F(VirtualDomains, RightsAreCheckedArguments) {
  EXPECT_EQ(cordon_domain_set_rights(cordon_trusted_domain(), CORDON_RIGHTS_READ), CORDON_E_WRONG_DOMAIN);
  EXPECT_EQ(cordon_domain_rights(cordon_trusted_domain()), CORDON_RIGHTS_READ_WRITE)
      << "the trusted domain's rights never change; 0 reads as CORDON_RIGHTS_NONE";
  EXPECT_EQ(cordon_domain_set_rights(g.v[9].d, 2), CORDON_E_INVALID_ARGUMENT) << "write without read";
  EXPECT_EQ(cordon_domain_set_rights(g.v[9].d, 7), CORDON_E_INVALID_ARGUMENT);
  EXPECT_EQ(cordon_domain_set_rights(kFirstVirtualHandle + kVirtualDomains, CORDON_RIGHTS_READ),
            CORDON_E_INVALID_ARGUMENT);
  EXPECT_EQ(cordon_domain_set_rights(CORDON_DOMAIN_UNTRUSTED, CORDON_RIGHTS_NONE), CORDON_E_INVALID_ARGUMENT);
  EXPECT_EQ(cordon_domain_rights(g.v[9].d), CORDON_RIGHTS_READ_WRITE) << "refused calls change nothing";
}

// What the spinning writers tell the fault reporter (child.h's on_fault,
// which runs in the handler and reads these).
constexpr int kMaxSpinners = 4;
std::atomic<uint64_t> g_spin_progress[kMaxSpinners];
uint64_t g_spin_snapshot[kMaxSpinners];
std::atomic<int> g_spin_snapshot_taken{0};
std::atomic<int> g_spin_stop{0};
int g_spinners = 0;

// 0 when the fault came before the snapshot (right at the return), else
// 1 + the most writes any thread completed after set_rights() returned.
uint64_t WritesAfterTheReturn() {
  if (g_spin_snapshot_taken.load(std::memory_order_acquire) == 0) return 0;
  uint64_t most = 0;
  for (int t = 0; t < g_spinners; ++t) most = std::max(most, g_spin_progress[t].load() - g_spin_snapshot[t]);
  return 1 + most;
}

// Threads spin writing the domain's memory from inside an entry; once
// set_rights(READ) returns, their next write faults SEGV_ACCERR.
void ExpectSpinnersStopped(const VDomain& d, DomainData* block, int threads) {
  const ChildOutcome o = RunInChild(
      [&] {
        g_spinners = threads;
        std::vector<std::thread> spinners;
        for (int t = 0; t < threads; ++t) {
          spinners.emplace_back([&, t] {
            GiveThisThreadAnAltStack();
            (void)cordon_call(d.e.spin_write, reinterpret_cast<uint64_t>(&block->scratch[t]),
                              reinterpret_cast<uint64_t>(&g_spin_progress[t]),
                              reinterpret_cast<uint64_t>(&g_spin_stop), 0, 0);
          });
        }
        // Every thread is inside, writing.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        for (int t = 0; t < threads; ++t) {
          while (g_spin_progress[t].load() < 100) {
            CHILD_CHECK(std::chrono::steady_clock::now() < deadline);
            sched_yield();
          }
        }
        CHILD_CHECK(cordon_domain_set_rights(d.d, CORDON_RIGHTS_READ) == CORDON_OK);
        for (int t = 0; t < threads; ++t) g_spin_snapshot[t] = g_spin_progress[t].load();
        g_spin_snapshot_taken.store(1, std::memory_order_release);
        // The next write of each spinner faults; the reporter ends the child.
        std::this_thread::sleep_for(std::chrono::seconds(20));
        fprintf(stderr, "no spinning writer faulted in 20 s after set_rights(READ) returned\n");
        _exit(3);
      },
      WritesAfterTheReturn);
  EXPECT_EQ(o.signal, SIGSEGV) << Describe(o);
  EXPECT_EQ(o.fault_code, kSegvAccErr) << Describe(o);
  const auto lo = reinterpret_cast<uintptr_t>(&block->scratch[0]);
  EXPECT_GE(o.fault_addr, lo) << Describe(o);
  EXPECT_LT(o.fault_addr, lo + threads * sizeof(uint64_t)) << Describe(o);
  EXPECT_LE(o.on_fault, 2u) << "a thread completed " << (o.on_fault - 1)
                            << " writes after set_rights(READ) returned";
}

TEST_F(VirtualDomains, RevokingWriteStopsThreadsSpinningInsideAVirtualDomain) {
  ExpectSpinnersStopped(g.v[10], g.v[10].block, 1);
  ExpectSpinnersStopped(g.v[11], g.v[11].block, kMaxSpinners);
}

TEST_F(VirtualDomains, RevokingWriteStopsThreadsSpinningInsideAPhysicalDomain) {
  ExpectSpinnersStopped(g.phys, g.phys.block, 3);
}

// /proc/self/task/<tid>/syscall starts with the number of the system call
// the thread is blocked in.
bool BlockedIn(pid_t tid, long nr) {
  char path[64], buf[256] = {};
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  // A thread that runs reads "running": no number (strtol's 0 would be
  // SYS_read's).
  char* end = nullptr;
  const long got = n > 0 ? strtol(buf, &end, 10) : -1;
  return end != nullptr && end != buf && *end == ' ' && got == nr;
}

// A thread blocked in read(pipe) into the domain's buffer, from inside an
// entry: after set_rights(READ), feeding the pipe makes that read fail with
// EFAULT and nothing lands; after READ_WRITE again the same read works.
void ExpectBlockedReadRefused(const VDomain& d, DomainData* block) {
  const ChildOutcome o = RunInChild([&] {
    int fds[2];
    CHILD_CHECK(pipe(fds) == 0);
    uint64_t* target = &block->scratch[8];
    CHILD_CHECK(cordon_call(d.e.write_word, reinterpret_cast<uint64_t>(target), 0x1111, 0, 0, 0) == 0);
    std::atomic<pid_t> tid{0};
    long result = 0;
    std::thread reader([&] {
      GiveThisThreadAnAltStack();
      tid = gettid();
      result = static_cast<long>(cordon_call(d.e.read_into, static_cast<uint64_t>(fds[0]),
                                             reinterpret_cast<uint64_t>(target), 8, 0, 0));
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (tid.load() == 0 || !BlockedIn(tid.load(), SYS_read)) {
      CHILD_CHECK(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHILD_CHECK(cordon_domain_set_rights(d.d, CORDON_RIGHTS_READ) == CORDON_OK);
    CHILD_CHECK(cordon_domain_rights(d.d) == CORDON_RIGHTS_READ);
    const uint64_t fed = 0x2222222222222222;
    CHILD_CHECK(write(fds[1], &fed, sizeof fed) == sizeof fed);
    reader.join();
    if (result != -EFAULT) fprintf(stderr, "the blocked read returned %ld, not -EFAULT\n", result);
    CHILD_CHECK(result == -EFAULT);
    CHILD_CHECK(ReadWord(d, target) == 0x1111);  // nothing landed; reads still work
    // Granted back: the bytes still in the pipe arrive.
    CHILD_CHECK(cordon_domain_set_rights(d.d, CORDON_RIGHTS_READ_WRITE) == CORDON_OK);
    const long again = static_cast<long>(cordon_call(d.e.read_into, static_cast<uint64_t>(fds[0]),
                                                     reinterpret_cast<uint64_t>(target), 8, 0, 0));
    CHILD_CHECK(again == 8);
    CHILD_CHECK(ReadWord(d, target) == fed);
    CHILD_CHECK(cordon_call(d.e.write_word, reinterpret_cast<uint64_t>(target), 0x3333, 0, 0, 0) == 0);
    CHILD_CHECK(ReadWord(d, target) == 0x3333);
  });
  ExpectCleanExit(o);
}

TEST_F(VirtualDomains, RevokingWriteFailsAReadBlockedInsideAVirtualDomain) {
  ExpectBlockedReadRefused(g.v[12], g.v[12].block);
}

TEST_F(VirtualDomains, RevokingWriteFailsAReadBlockedInsideAPhysicalDomain) {
  ExpectBlockedReadRefused(g.phys, g.phys.block);
}

// After NONE, the domain's own code cannot read its data either.
void ExpectReadsRevoked(const VDomain& d, const DomainData* block, uint64_t value) {
  const ChildOutcome o = RunInChild([&] {
    CHILD_CHECK(ReadWord(d, &block->value) == value);  // readable until now
    CHILD_CHECK(cordon_domain_set_rights(d.d, CORDON_RIGHTS_NONE) == CORDON_OK);
    CHILD_CHECK(cordon_domain_rights(d.d) == CORDON_RIGHTS_NONE);
    (void)ReadWord(d, &block->value);
    fprintf(stderr, "read after set_rights(NONE) went through\n");
  });
  ExpectFault(o, kSegvAccErr, &block->value);
}

TEST_F(VirtualDomains, RevokingAllRightsStopsReadsInsideTheDomain) {
  ExpectReadsRevoked(g.v[13], g.v[13].block, g.v[13].value);
  ExpectReadsRevoked(g.phys, g.phys.block, 0);  // a block of its own, zero
}

TEST_F(VirtualDomains, RightsGrantedBackWorkAgain) {
  for (const VDomain* d : {&g.v[14], &g.phys}) {
    DomainData* block = d->block;
    const ChildOutcome o = RunInChild([&] {
      CHILD_CHECK(cordon_domain_set_rights(d->d, CORDON_RIGHTS_NONE) == CORDON_OK);
      CHILD_CHECK(cordon_domain_set_rights(d->d, CORDON_RIGHTS_READ) == CORDON_OK);
      CHILD_CHECK(cordon_domain_set_rights(d->d, CORDON_RIGHTS_READ_WRITE) == CORDON_OK);
      CHILD_CHECK(cordon_domain_rights(d->d) == CORDON_RIGHTS_READ_WRITE);
      CHILD_CHECK(
          cordon_call(d->e.write_word, reinterpret_cast<uint64_t>(&block->scratch[20]), 77, 0, 0, 0) == 0);
      CHILD_CHECK(ReadWord(*d, &block->scratch[20]) == 77);
      if (d != &g.phys) CHILD_CHECK(Get(*d) == d->value);
    });
    ExpectCleanExit(o);
  }
}

// Rights belong to the domain, not to the key it has now: a read-only
// domain parked and loaded again is still read-only, and its pages stay
// read-only while parked.
TEST_F(VirtualDomains, RightsSurviveEvictionAndReload) {
  const VDomain& d = g.v[15];
  const ChildOutcome o = RunInChild([&] {
    CHILD_CHECK(Get(d) == d.value);
    CHILD_CHECK(cordon_domain_set_rights(d.d, CORDON_RIGHTS_READ) == CORDON_OK);
    CHILD_CHECK(cordon_domain_evict(d.d) == CORDON_OK);
    for (int i = 0; i < 40; ++i) CHILD_CHECK(Get(g.v[500 + i]) == g.v[500 + i].value);
    CHILD_CHECK(cordon_domain_rights(d.d) == CORDON_RIGHTS_READ);
    const auto m = cordon::hw::FindMapping(&d.block->value);
    CHILD_CHECK(m.has_value() && m->perms.substr(0, 2) == "r-");
    CHILD_CHECK(Get(d) == d.value);  // reloaded, readable
    (void)cordon_call(d.e.write_word, reinterpret_cast<uint64_t>(&d.block->scratch[0]), 1, 0, 0, 0);
    fprintf(stderr, "a write into a read-only domain went through after its reload\n");
  });
  ExpectFault(o, kSegvAccErr, &d.block->scratch[0]);
}

// ---- Races ----

// Threads call domains while another evicts them and changes their rights
// (read-only and back: the calls only read) in a loop: every call returns
// its own domain's value, and the runtime's calls return only OK or BUSY.
TEST_F(VirtualDomains, CallsStayRightWhileAnotherThreadEvictsAndRevokes) {
  constexpr int kCallers = 4;
  const int kCalls = cordon::hw::UnderTcg() ? 250 : 2000;  // as above
  constexpr int kPool = kToolDomains;                      // more domains than slots: misses too
  const ChildOutcome o = RunInChild([kCalls] {
    const std::vector<int> deny = KeysToDeny();
    std::atomic<int> failures{0}, running{kCallers};
    std::atomic<uint64_t> evicted{0}, busy{0}, revoked{0};
    auto fail = [&](const std::string& s) {
      if (failures.fetch_add(1) < 10) fprintf(stderr, "%s\n", s.c_str());
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kCallers; ++t) {
      threads.emplace_back([&, t] {
        GiveThisThreadAnAltStack();
        std::mt19937 rng(2000 + t);
        std::uniform_int_distribution<int> pick(0, kPool - 1);
        for (int i = 0; i < kCalls; ++i) {
          const VDomain& v = g.v[pick(rng)];
          const uint64_t got = Get(v);
          if (got != v.value) {
            char buf[128];
            snprintf(buf, sizeof buf, "caller %d: domain %d returned %#llx, not %#llx", t, v.d,
                     static_cast<unsigned long long>(got), static_cast<unsigned long long>(v.value));
            fail(buf);
          }
          const std::string open = Undenied(Rdpkru(), deny);
          if (!open.empty()) fail("caller " + std::to_string(t) + ": PKRU opens keys" + open);
        }
        running.fetch_sub(1);
      });
    }
    threads.emplace_back([&] {
      GiveThisThreadAnAltStack();
      std::mt19937 rng(3000);
      std::uniform_int_distribution<int> pick(0, kPool - 1);
      while (running.load() > 0) {
        const VDomain& v = g.v[pick(rng)];
        const int e = cordon_domain_evict(v.d);
        if (e == CORDON_OK)
          evicted.fetch_add(1);
        else if (e == CORDON_E_BUSY)
          busy.fetch_add(1);
        else
          fail("evict returned " + std::to_string(e));
        const VDomain& w = g.v[pick(rng)];
        const int r1 = cordon_domain_set_rights(w.d, CORDON_RIGHTS_READ);
        const int r2 = cordon_domain_set_rights(w.d, CORDON_RIGHTS_READ_WRITE);
        if (r1 != CORDON_OK || r2 != CORDON_OK)
          fail("set_rights returned " + std::to_string(r1) + ", " + std::to_string(r2));
        revoked.fetch_add(1);
      }
    });
    for (auto& t : threads) t.join();
    fprintf(stderr, "evictions %llu, busy %llu, revocations %llu\n",
            static_cast<unsigned long long>(evicted.load()), static_cast<unsigned long long>(busy.load()),
            static_cast<unsigned long long>(revoked.load()));
    CHILD_CHECK(evicted.load() > 0 && revoked.load() > 0);
    const std::string p = TagProblems();
    if (!p.empty()) fail("after the race:\n" + p);
    for (int i = 0; i < kPool; ++i) {
      CHILD_CHECK(cordon_domain_rights(g.v[i].d) == CORDON_RIGHTS_READ_WRITE);
      CHILD_CHECK(Get(g.v[i]) == g.v[i].value);
    }
    CHILD_CHECK(failures.load() == 0);
  });
  ExpectCleanExit(o);
}

// ---- After the lockdown (each in a child that locks itself down) ----

// The runtime's own key moves pass the filter: calls that miss, evictions,
// pins and rights all work after the lockdown.
TEST_F(VirtualDomains, AfterTheLockdownDomainsStillLoadEvictAndChangeRights) {
  const ChildOutcome o = RunInChild([] {
    LockDownForAttack(kErrnoMode);
    for (int round = 0; round < 2; ++round) {
      for (int i = 600; i < 664; ++i) CHILD_CHECK(Get(g.v[i]) == g.v[i].value);
    }
    const VDomain& v = g.v[16];
    CHILD_CHECK(Get(v) == v.value);
    CHILD_CHECK(cordon_domain_evict(v.d) == CORDON_OK);
    CHILD_CHECK(cordon_domain_pkey(v.d) == g.parking);
    CHILD_CHECK(Get(v) == v.value);
    CHILD_CHECK(cordon_domain_pin(v.d) == CORDON_OK);
    CHILD_CHECK(cordon_domain_unpin(v.d) == CORDON_OK);
    CHILD_CHECK(cordon_domain_set_rights(v.d, CORDON_RIGHTS_READ) == CORDON_OK);
    CHILD_CHECK(Get(v) == v.value);
    CHILD_CHECK(cordon_domain_set_rights(v.d, CORDON_RIGHTS_READ_WRITE) == CORDON_OK);
    CHILD_CHECK(cordon_call(v.e.write_word, reinterpret_cast<uint64_t>(&v.block->scratch[1]), 5, 0, 0, 0) ==
                0);
    CHILD_CHECK(ReadWord(v, &v.block->scratch[1]) == 5);
    CHILD_CHECK(cordon_domain_set_rights(g.phys.d, CORDON_RIGHTS_READ) == CORDON_OK);
    CHILD_CHECK(ReadWord(g.phys, g.phys.block) == 0);
    CHILD_CHECK(cordon_domain_set_rights(g.phys.d, CORDON_RIGHTS_READ_WRITE) == CORDON_OK);
    const std::string p = TagProblems();
    if (!p.empty()) fprintf(stderr, "%s", p.c_str());
    CHILD_CHECK(p.empty());
  });
  ExpectCleanExit(o);
}

// A revocation after the lockdown still binds the domain's code: its write
// stops the process (a fault in trusted code is never handed to a handler).
TEST_F(VirtualDomains, AfterTheLockdownARevokedWriteStopsTheProcess) {
  const VDomain& v = g.v[17];
  const ChildOutcome o = RunInChild([&] {
    LockDownForAttack(kErrnoMode);
    CHILD_CHECK(cordon_domain_set_rights(v.d, CORDON_RIGHTS_READ) == CORDON_OK);
    (void)cordon_call(v.e.write_word, reinterpret_cast<uint64_t>(&v.block->scratch[2]), 1, 0, 0, 0);
    fprintf(stderr, "the write went through\n");
  });
  EXPECT_TRUE(o.exited) << Describe(o);
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT) << Describe(o);
  EXPECT_NE(o.err.find("signal 11 (si_code 2)"), std::string::npos) << Describe(o);
  EXPECT_EQ(o.err.find("went through"), std::string::npos) << Describe(o);
}

// A virtual domain's entry table is in its region, under its key: after the
// lockdown its own code cannot add or redirect entries (as for physical
// domains, tests/pku/gate_attack_test.cc).
TEST_F(VirtualDomains, AfterTheLockdownADomainCannotRewriteItsEntryTable) {
  const VDomain& v = g.v[18];
  const ChildOutcome o = RunInChild([&] {
    LockDownForAttack(kErrnoMode);
    CHILD_CHECK(Get(v) == v.value);
    const uint64_t before = ReadWord(v, reinterpret_cast<const void*>(v.region + 8 * 100));
    (void)cordon_call(v.e.write_word, v.region + 8 * 100, before ^ 0x40, 0, 0, 0);
    fprintf(stderr, "the write into the entry table went through\n");
  });
  EXPECT_TRUE(o.exited) << Describe(o);
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT) << Describe(o);
  EXPECT_NE(o.err.find("signal 11 (si_code"), std::string::npos) << Describe(o);
  EXPECT_EQ(o.err.find("went through"), std::string::npos) << Describe(o);
}

// pkey_mprotect with r8 and r9 set: what a caller that guesses the
// runtime's token would make.
long PkeyMprotectWithToken(uintptr_t addr, size_t len, int prot, int key, uint64_t t0, uint64_t t1) {
  long ret;
  register long r10 asm("r10") = key;
  register uint64_t r8 asm("r8") = t0;
  register uint64_t r9 asm("r9") = t1;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(static_cast<long>(SYS_pkey_mprotect)), "D"(addr), "S"(len), "d"(static_cast<long>(prot)),
                 "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
}

// Untrusted code that calls pkey_mprotect itself, without the token or with
// guessed ones, is refused on the virtual domains' pages (to key 0, to the
// parking key, to a slot key) and on its own pages (which it would hide
// under a slot key); and no other memory call reaches the virtual block.
TEST_F(VirtualDomains, AfterTheLockdownUntrustedCodeCannotRetagOrRemapVirtualDomains) {
  const ChildOutcome o = RunInChild([] {
    const VDomain& resident = g.v[19];
    const VDomain& parked = g.v[20];
    CHILD_CHECK(Get(parked) == parked.value);
    CHILD_CHECK(cordon_domain_evict(parked.d) == CORDON_OK);
    CHILD_CHECK(Get(resident) == resident.value);
    void* own = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(own != MAP_FAILED);
    LockDownForAttack(kErrnoMode);
    std::vector<int> keys = {0, g.parking, cordon_domain_pkey(resident.d), cordon_domain_pkey(g.phys.d),
                             cordon_domain_pkey(cordon_trusted_domain())};
    keys.insert(keys.end(), g.slot_keys.begin(), g.slot_keys.end());
    const std::vector<std::pair<uintptr_t, size_t>> targets = {
        {resident.region, resident.region_size},
        {parked.region, parked.region_size},
        {resident.region, kPage},                                             // the entry table
        {reinterpret_cast<uintptr_t>(resident.block) & ~(kPage - 1), kPage},  // the data
        {reinterpret_cast<uintptr_t>(own), kPage}};
    std::mt19937_64 rng(std::random_device{}());
    for (const auto& [addr, len] : targets) {
      for (const int key : keys) {
        for (const int prot : {PROT_READ | PROT_WRITE, PROT_READ, PROT_NONE}) {
          CHILD_DENIED(syscall(SYS_pkey_mprotect, addr, len, prot, key), EPERM);
          CHILD_CHECK(PkeyMprotectWithToken(addr, len, prot, key, 0, 0) == -EPERM);
          CHILD_CHECK(PkeyMprotectWithToken(addr, len, prot, key, ~0ull, ~0ull) == -EPERM);
          for (int guess = 0; guess < 8; ++guess) {
            CHILD_CHECK(PkeyMprotectWithToken(addr, len, prot, key, rng(), rng()) == -EPERM);
          }
        }
      }
    }
    // Plain memory calls on the block: none may change, replace or drop a
    // domain's pages (its heap would be zeroed or become the caller's).
    for (const auto& [addr, len] : targets) {
      if (addr == reinterpret_cast<uintptr_t>(own)) continue;
      void* p = reinterpret_cast<void*>(addr);
      CHILD_DENIED(mprotect(p, len, PROT_READ | PROT_WRITE), EPERM);
      CHILD_DENIED(mprotect(p, len, PROT_NONE), EPERM);
      CHILD_DENIED(madvise(p, len, MADV_DONTNEED), EPERM);
      CHILD_DENIED(madvise(p, len, MADV_FREE), EPERM);
      CHILD_DENIED(munmap(p, len), EPERM);
      errno = 0;
      CHILD_CHECK(mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
                      MAP_FAILED &&
                  errno == EPERM);
      errno = 0;
      CHILD_CHECK(mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, own) == MAP_FAILED && errno == EPERM);
      errno = 0;
      CHILD_CHECK(mremap(own, kPage, kPage, MREMAP_MAYMOVE | MREMAP_FIXED, p) == MAP_FAILED &&
                  errno == EPERM);
    }
    // All of it changed nothing.
    CHILD_CHECK(Get(resident) == resident.value);
    CHILD_CHECK(Get(parked) == parked.value);
    const std::string problems = TagProblems();
    if (!problems.empty()) fprintf(stderr, "%s", problems.c_str());
    CHILD_CHECK(problems.empty());
  });
  ExpectCleanExit(o);
}

// ---- The secret, judged from outside ----

// What a grandchild's SIGSEGV handler reports through a pipe.
struct SeenFault {
  int code;
  uint32_t pkey;
  uintptr_t addr;
};
int g_fault_pipe = -1;
void ReportFaultAndExit(int, siginfo_t* info, void*) {
  const SeenFault f{info->si_code, static_cast<uint32_t>(info->si_pkey),
                    reinterpret_cast<uintptr_t>(info->si_addr)};
  (void)!write(g_fault_pipe, &f, sizeof f);
  _exit(99);
}

// A virtual domain holds the judge's secret in its heap. After the
// lockdown, untrusted code reads the domain's region word by word (each
// read in a forked process, which faults), copies it through the kernel
// (write(2), process_vm_readv, /proc/self/mem), while another thread keeps
// evicting and reloading the domain and pushing it out with calls to
// others. No route gives a byte, and the judge finds the secret nowhere in
// untrusted memory or output.
TEST_F(VirtualDomains, TheJudgeFindsNoSecretOfAVirtualDomainThroughEvictionsAndReads) {
  const Verdict verdict = JudgeAttack([] {
    const VDomain& holder = g.v[21];
    const uint8_t* secret = LoadJudgeSecretInto(holder.d);
    CHILD_CHECK(cordon_domain_of(secret) == holder.d);
    CHILD_CHECK(cordon_domain_is_virtual(holder.d) == 1);
    LockDownForAttack(kErrnoMode);
    // The loads below fault in forked processes, which inherit this handler
    // (installed here, before any thread runs, not in the forked process).
    struct sigaction sa = {};
    sa.sa_sigaction = ReportFaultAndExit;
    sa.sa_flags = SA_SIGINFO;
    CHILD_CHECK(cordon_sigaction(SIGSEGV, &sa, nullptr) == CORDON_OK);

    std::atomic<int> stop{0}, pause{0}, paused{0};
    std::atomic<uint64_t> churns{0};
    // Evicts and reloads the secret's domain, and loads others over it.
    const auto churn_round = [&](int* other) {
      (void)cordon_domain_evict(holder.d);  // BUSY never: nobody else is inside
      CHILD_CHECK(Get(holder) == holder.value);
      for (int i = 0; i < 16; ++i, *other = *other == 999 ? 700 : *other + 1) {
        CHILD_CHECK(Get(g.v[*other]) == g.v[*other].value);
      }
      churns.fetch_add(1);
    };
    // Paused around each fork: a fork while another thread is starting up
    // or attaching (docs/virtual-domains.md, "fork()") is not what this
    // tests; each forked process churns on a thread of its own instead.
    std::thread churn([&] {
      int other = 700;
      while (stop.load() == 0) {
        if (pause.load() != 0) {
          paused.store(1);
          while (pause.load() != 0 && stop.load() == 0) sched_yield();
          paused.store(0);
          continue;
        }
        churn_round(&other);
      }
    });

    const uintptr_t secret_page = reinterpret_cast<uintptr_t>(secret) & ~(kPage - 1);
    std::vector<uintptr_t> pages = {holder.region, secret_page};
    for (uintptr_t p = holder.region; p < holder.region + holder.region_size && pages.size() < 24; p += kPage)
      pages.push_back(p);
    std::vector<uint8_t> got(kPage);
    const int mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    CHILD_CHECK(mem < 0 && errno == EACCES);
    std::set<int> allowed_keys(g.slot_keys);
    allowed_keys.insert(g.parking);
    for (int round = 0; round < 3; ++round) {
      for (const uintptr_t page : pages) {
        // The kernel copies with this thread's PKRU. A pipe of its own for
        // each try: a copy that faults leaves an empty buffer in the pipe's
        // ring, and sixteen of them fill it (EAGAIN).
        int fds[2];
        CHILD_CHECK(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
        errno = 0;
        const ssize_t w = write(fds[1], reinterpret_cast<const void*>(page), kPage);
        const int write_errno = errno;
        if (w >= 0) {
          const ssize_t n = read(fds[0], got.data(), got.size());
          cordon::testing::Evidence(got.data(), n > 0 ? static_cast<size_t>(n) : 0);
          fprintf(stderr, "write(2) copied from %#lx\n", static_cast<unsigned long>(page));
          cordon::testing::ExposeToJudge();
          _exit(2);
        }
        close(fds[0]);
        close(fds[1]);
        errno = write_errno;
        CHILD_CHECK(errno == EFAULT);
        iovec local{got.data(), got.size()}, remote{reinterpret_cast<void*>(page), kPage};
        CHILD_DENIED(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), EPERM);
      }
      // Loads, each in a process of its own (it faults), while the domain
      // moves between keys: the secret, the entry table, and a few pages.
      std::vector<uintptr_t> loads = {reinterpret_cast<uintptr_t>(secret) + 8 * round, holder.region};
      for (size_t i = 2; i < pages.size(); i += 4) loads.push_back(pages[i] + 8 * round);
      for (const uintptr_t at : loads) {
        // At least one reload between two forks: without this wait the churn
        // thread could miss every window between a resume and the next pause
        // (seen under TCG: 0 reloads in a whole run).
        const uint64_t seen = churns.load();
        while (churns.load() == seen) sched_yield();
        int fp[2];
        CHILD_CHECK(pipe(fp) == 0);
        g_fault_pipe = fp[1];
        pause.store(1);
        while (paused.load() == 0) sched_yield();
        const pid_t pid = fork();
        CHILD_CHECK(pid >= 0);
        if (pid == 0) {
          const char forked = 'F';
          (void)!write(fp[1], &forked, 1);
          // The domain moves between keys while this load runs.
          const uint64_t before = churns.load();
          std::thread([&] {
            int other = 700;
            for (;;) churn_round(&other);
          }).detach();
          while (churns.load() == before) sched_yield();
          const uint64_t word = *reinterpret_cast<const volatile uint64_t*>(at);
          cordon::testing::Evidence(&word, sizeof word);
          _exit(2);
        }
        close(fp[1]);
        // A forked process that neither faults nor exits fails the test here,
        // not at ctest's timeout.
        pollfd pf{fp[0], POLLIN, 0};
        char forked = 0;
        if (poll(&pf, 1, 20000) == 0 || read(fp[0], &forked, 1) != 1) {
          fprintf(stderr,
                  "the forked process hangs before fork() returns in it, in the pthread_atfork child "
                  "handlers (pid %d, after %llu reloads)\n",
                  pid, static_cast<unsigned long long>(churns.load()));
          kill(pid, SIGKILL);
          _exit(4);
        }
        if (poll(&pf, 1, 20000) == 0) {
          fprintf(stderr, "the forked process loading %#lx hangs (pid %d, after %llu reloads)\n",
                  static_cast<unsigned long>(at), pid, static_cast<unsigned long long>(churns.load()));
          kill(pid, SIGKILL);
          _exit(4);
        }
        SeenFault f{};
        const ssize_t n = read(fp[0], &f, sizeof f);
        close(fp[0]);
        int status = 0;
        CHILD_CHECK(waitpid(pid, &status, 0) == pid);
        pause.store(0);
        if (n != sizeof f) {
          fprintf(stderr, "the load at %#lx did not fault (status %#x)\n", static_cast<unsigned long>(at),
                  status);
          cordon::testing::ExposeToJudge();
          _exit(2);
        }
        CHILD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 99);
        CHILD_CHECK(f.code == kSegvPkuErr);
        CHILD_CHECK(f.addr == at);
        CHILD_CHECK(allowed_keys.count(static_cast<int>(f.pkey)) == 1);
      }
    }
    stop = 1;
    churn.join();
    fprintf(stderr, "domain reloaded %llu times during the reads\n",
            static_cast<unsigned long long>(churns.load()));
    CHILD_CHECK(churns.load() > 0);
    CHILD_CHECK(Get(holder) == holder.value);
  });
  ExpectHeldToTheEnd(verdict);
}

}  // namespace
