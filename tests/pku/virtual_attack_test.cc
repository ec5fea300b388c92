// Red-team attacks on virtual domains (docs/virtual-domains.md): a record
// borrowed from another thread, loads under a running call.
//
// Each test asserts that isolation HOLDS: it fails when the attack works.
// Secrets are random, drawn at run time, and live in a virtual domain's
// heap. Every attack runs in a forked child (tests/support/child.h).
#include <errno.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cordon/cordon.h"
#include "runtime/domains/virtual.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/pkey.h"
#include "tests/support/child.h"
#include "tests/support/judge.h"
#include "tests/support/slot_attack.h"

using cordon::testing::ChildOutcome;
using cordon::testing::Describe;
using cordon::testing::GiveThisThreadAnAltStack;
using cordon::testing::kSegvPkuErr;
using cordon::testing::LockDownForAttack;
using cordon::testing::RunInChild;
using cordon::testing::Shared;
using cordon::testing::SlotAnswer;
using cordon::testing::SlotCall;
using cordon::testing::ThreadGone;
namespace virt = cordon::domains::virt;
namespace gates = cordon::gates;

namespace {

constexpr int kDomains = 40;  // past the key slots

struct Block {
  uint64_t secret;
  uint64_t pad[7];
};

uint64_t InitEntry(uint64_t secret, uint64_t, uint64_t, uint64_t, uint64_t) {
  void* p = nullptr;
  if (cordon_domain_alloc(cordon_current_domain(), 64, sizeof(Block), &p) != CORDON_OK) return 0;
  auto* b = static_cast<Block*>(p);
  b->secret = secret;
  if (cordon_domain_set_root(b) != CORDON_OK) return 0;
  return reinterpret_cast<uint64_t>(b);
}

uint64_t GetEntry(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  const auto* b = static_cast<const Block*>(cordon_domain_root());
  return b == nullptr ? 0 : b->secret;
}

// The domain bug the docs say virtual domains contain: an entry that reads
// a word at an address it computed wrongly (an over-read past its heap).
// It first tells untrusted code it is inside (*inside = 1), and waits (at
// most ~20 s) for *go: a long-running entry, as any that works for a while.
uint64_t WaitThenReadEntry(uint64_t addr, uint64_t inside, uint64_t go, uint64_t, uint64_t) {
  reinterpret_cast<std::atomic<int>*>(inside)->store(1);
  auto* g = reinterpret_cast<std::atomic<int>*>(go);
  for (long i = 0; i < 200000000L && g->load() == 0; ++i) {
    if (i % 64 == 0) (void)cordon::hw::RawSyscall3(SYS_sched_yield, 0, 0, 0);
  }
  return *reinterpret_cast<const volatile uint64_t*>(addr);
}

// A correct entry: it waits for a request (a blocking read(2) of one byte
// from fd into its own stack, as a server's entry would), then answers
// with its own domain's secret, found through its root.
uint64_t ServeEntry(uint64_t fd, uint64_t inside, uint64_t, uint64_t, uint64_t) {
  reinterpret_cast<std::atomic<int>*>(inside)->store(1);
  char request = 0;
  (void)cordon::hw::RawSyscall3(SYS_read, static_cast<long>(fd), reinterpret_cast<long>(&request), 1);
  const auto* b = static_cast<const Block*>(cordon_domain_root());
  return b == nullptr ? 0 : b->secret;
}

uint64_t ReadWordEntry(uint64_t addr, uint64_t, uint64_t, uint64_t, uint64_t) {
  return *reinterpret_cast<const volatile uint64_t*>(addr);
}

struct Dom {
  cordon_domain_t d = 0;
  cordon_entry init{}, get{}, wait_read{}, read_word{}, serve{};
  uint64_t secret = 0;
  Block* block = nullptr;
};

struct State {
  bool ready = false;
  std::vector<Dom> v;
  int parking = -1;
};
State g;

// ---- The attacker's direct use of a key slot's gate ----

uint32_t IndexOf(const Dom& x) {
  return static_cast<uint32_t>(x.d - virt::kFirstHandle);
}

class VirtualAttack : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (g.ready) return;
    cordon_options o;
    cordon_options_init(&o);
    o.max_threads = 8;
    o.heap_size = size_t{4} << 20;
    o.virtual_heap_size = size_t{256} << 10;
    ASSERT_EQ(cordon_init(&o), CORDON_OK);
    std::mt19937_64 rng(std::random_device{}());
    g.v.resize(kDomains);
    for (int i = 0; i < kDomains; ++i) {
      Dom& x = g.v[i];
      const std::string n = "va" + std::to_string(i);
      ASSERT_EQ(cordon_domain_create_virtual(n.c_str(), &x.d), CORDON_OK);
      ASSERT_EQ(cordon_register(x.d, InitEntry, "init", &x.init), CORDON_OK);
      ASSERT_EQ(cordon_register(x.d, GetEntry, "get", &x.get), CORDON_OK);
      ASSERT_EQ(cordon_register(x.d, WaitThenReadEntry, "wait_read", &x.wait_read), CORDON_OK);
      ASSERT_EQ(cordon_register(x.d, ReadWordEntry, "read_word", &x.read_word), CORDON_OK);
      ASSERT_EQ(cordon_register(x.d, ServeEntry, "serve", &x.serve), CORDON_OK);
    }
    for (Dom& x : g.v) {
      do x.secret = rng();
      while (x.secret == 0);
      const uint64_t b = cordon_call(x.init, x.secret, 0, 0, 0, 0);
      ASSERT_NE(b, 0u);
      x.block = reinterpret_cast<Block*>(b);
    }
    g.parking = cordon_parking_pkey();
    g.ready = true;
  }
  void SetUp() override { ASSERT_TRUE(g.ready); }
};

TEST_F(VirtualAttack, SetUpWorks) {
  for (const Dom& x : g.v) EXPECT_EQ(cordon_call(x.get, 0, 0, 0, 0, 0), x.secret);
}

// Makes x resident on slot `slot` through that slot's gate (evicting it
// from wherever it is first). False if it would not go there.
bool MakeResidentOn(uint32_t slot, const Dom& x) {
  for (int i = 0; i < 200; ++i) {
    const SlotAnswer a = SlotCall(slot, IndexOf(x), x.get.id);
    if (a.outcome == virt::kRan) return a.r == x.secret;
    if (a.outcome == virt::kElsewhere) (void)cordon_domain_evict(x.d);
    sched_yield();
  }
  return false;
}

struct BorrowReport {
  std::atomic<int> inside{0};
  std::atomic<int> go{0};
  std::atomic<int> loaded{0};      // the other thread got W loaded onto the slot
  std::atomic<int> leaked{0};      // the buggy entry returned W's secret
  std::atomic<uint64_t> tries{0};  // load attempts
  std::atomic<int> w_key{-1};      // W's key seen from the loader
};

// BREAK candidate: the slot entry names the thread it runs for by the
// record's owner word (virtual.cc SlotEntry: tid = RecordAt(S, self)->owner),
// but the gate lets any thread claim any free record (its index comes from
// untrusted TLS; only a held claim and a callback's return check the
// owner). A record last owned by a thread that has exited carries that dead
// thread id: a thread that enters a slot on it marks itself active under
// the dead id, and the loader's Quiesce skips a record whose active thread
// "no longer exists" (ThreadAlive false). So a load re-tags the slot under
// a thread that is still running the previous resident's code: two domains
// run on one key at once, and the first one's over-read reaches the second
// one's memory, which the docs say it never can ("at most one domain is on
// a slot's key"; an over-read "stopped where the next client's memory
// begins").
//
// Holds when: the buggy read of W's secret faults (SEGV_PKUERR: W parked,
// or on another key) or the process stops; never returns W's secret.
void BorrowDeadRecordAttack(BorrowReport* rep, bool borrow, bool lockdown, bool serve = false,
                            bool via_fork = false) {
  const Dom& v = g.v[0];
  const Dom& w = g.v[1];
  // After the lockdown the runtime gives each thread its alternate stack.
  const auto alt_stack = [lockdown] {
    if (!lockdown) GiveThisThreadAnAltStack();
  };
  if (lockdown) LockDownForAttack(CORDON_VIOLATION_ERRNO_FOR_TESTS);
  alt_stack();
  const uint32_t slot = 0;
  const int sd = gates::Config().virt.slot_domain[slot];
  CHILD_CHECK(MakeResidentOn(slot, v));
  // A thread that calls in on the slot (claims a record there) and exits.
  struct Dead {
    uint32_t index = ~0u;
    pid_t tid = 0;
  } dead;
  std::atomic<int> called{0}, release{0};
  std::thread t([&] {
    alt_stack();
    const SlotAnswer a = SlotCall(slot, IndexOf(v), v.get.id);
    CHILD_CHECK(a.outcome == virt::kRan && a.r == v.secret);
    dead.index = cordon_tls_records[sd];
    dead.tid = static_cast<pid_t>(syscall(SYS_gettid));
    called.store(1);
    // With via_fork the thread stays alive (outside every domain) in this
    // process: only the fork child lacks it.
    while (via_fork && release.load() == 0) usleep(1000);
  });
  if (via_fork) {
    while (called.load() == 0) usleep(1000);
    const pid_t pid = fork();
    CHILD_CHECK(pid >= 0);
    if (pid != 0) {
      int status = 0;
      CHILD_CHECK(waitpid(pid, &status, 0) == pid);
      release.store(1);
      t.join();
      if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
      fprintf(stderr, "fork child: signal %d\n", WTERMSIG(status));
      _exit(3);
    }
    // The fork child: the thread that owns the record is not here.
  } else {
    t.join();
  }
  CHILD_CHECK(dead.index != ~0u);
  if (!via_fork) CHILD_CHECK(dead.index != cordon_tls_records[sd]);
  for (int i = 0; i < 10000 && !ThreadGone(dead.tid); ++i) usleep(1000);
  CHILD_CHECK(ThreadGone(dead.tid));
  // The loader: a live thread with records of its own.
  int fds[2];
  CHILD_CHECK(pipe(fds) == 0);
  std::thread loader([&] {
    alt_stack();
    while (rep->inside.load() == 0) sched_yield();
    for (int i = 0; i < 2000 && rep->loaded.load() == 0; ++i) {
      rep->tries.fetch_add(1);
      const SlotAnswer a = SlotCall(slot, IndexOf(w), w.get.id);
      if (a.outcome == virt::kRan && a.r == w.secret) rep->loaded.store(1);
      if (a.outcome == virt::kElsewhere) (void)cordon_domain_evict(w.d);
      if (rep->loaded.load() == 0) usleep(1000);
    }
    rep->go.store(1);
    CHILD_CHECK(write(fds[1], "x", 1) == 1);  // the request the serving entry waits for
  });
  // The attacker's own thread borrows the dead thread's record on the slot.
  const uint32_t mine = cordon_tls_records[sd];
  if (borrow) cordon_tls_records[sd] = dead.index;
  const SlotAnswer a =
      serve ? SlotCall(slot, IndexOf(v), v.serve.id, static_cast<uint64_t>(fds[0]),
                       reinterpret_cast<uint64_t>(&rep->inside))
            : SlotCall(slot, IndexOf(v), v.wait_read.id, reinterpret_cast<uint64_t>(&w.block->secret),
                       reinterpret_cast<uint64_t>(&rep->inside), reinterpret_cast<uint64_t>(&rep->go));
  cordon_tls_records[sd] = mine;
  loader.join();
  if (serve) CHILD_CHECK(a.outcome == virt::kRan);
  if (serve && a.r != w.secret) CHILD_CHECK(a.r == v.secret);
  if (a.outcome == virt::kRan && a.r == w.secret) {
    rep->leaked.store(1);
    fprintf(stderr, "LEAKED: virtual domain %d's code read virtual domain %d's secret %#llx\n", v.d, w.d,
            static_cast<unsigned long long>(a.r));
  }
  if (via_fork) {
    fflush(nullptr);
    _exit(0);
  }
}

void ExpectBorrowAttackHeld(BorrowReport* rep, const ChildOutcome& o) {
  EXPECT_EQ(rep->leaked.load(), 0) << "the slot was re-tagged under a running call (loaded="
                                   << rep->loaded.load() << ", tries=" << rep->tries.load()
                                   << "): " << Describe(o);
  // Isolation held: the over-read faulted on W's key (parked), or the process stopped.
  if (o.signal == SIGSEGV) {
    EXPECT_EQ(o.fault_code, kSegvPkuErr) << Describe(o);
    EXPECT_EQ(o.fault_addr, reinterpret_cast<uintptr_t>(&g.v[1].block->secret)) << Describe(o);
    EXPECT_EQ(o.fault_pkey, static_cast<uint32_t>(g.parking)) << Describe(o);
  } else {
    EXPECT_FALSE(o.exited && o.exit_code == 0) << Describe(o);
  }
  printf("outcome: loaded=%d tries=%llu %s", rep->loaded.load(),
         static_cast<unsigned long long>(rep->tries.load()), Describe(o).c_str());
}

// The control: the same with the thread's own record. The loader gives up
// (the record is active under a live thread id) and the over-read faults.
TEST_F(VirtualAttack, ControlOwnRecordALoadWaitsForTheRunningCall) {
  auto* rep = Shared<BorrowReport>();
  const ChildOutcome o = RunInChild([&] { BorrowDeadRecordAttack(rep, false, false); });
  ExpectBorrowAttackHeld(rep, o);
  EXPECT_EQ(rep->loaded.load(), 0);
  munmap(rep, sizeof *rep);
}

TEST_F(VirtualAttack, ABorrowedRecordOfAnExitedThreadDoesNotLetALoadRetagTheSlotUnderARunningCall) {
  auto* rep = Shared<BorrowReport>();
  const ChildOutcome o = RunInChild([&] { BorrowDeadRecordAttack(rep, true, false); });
  ExpectBorrowAttackHeld(rep, o);
  munmap(rep, sizeof *rep);
}

TEST_F(VirtualAttack, AfterTheLockdownABorrowedRecordOfAnExitedThreadDoesNotLetALoadRetagTheSlot) {
  auto* rep = Shared<BorrowReport>();
  const ChildOutcome o = RunInChild([&] { BorrowDeadRecordAttack(rep, true, true); });
  ExpectBorrowAttackHeld(rep, o);
  munmap(rep, sizeof *rep);
}

// BREAK candidate, no domain bug at all: V's correct serving entry, blocked
// in read(2) for its request, comes back after the loader (fooled by the
// borrowed record's dead thread id) put W on the slot. cordon_domain_root()
// inside V's code goes by PKRU and the directory (virt::CurrentIndex): it is
// W's root now, and W's pages are on the slot's key: V's entry answers its
// client with W's secret.
TEST_F(VirtualAttack, AfterTheLockdownABorrowedRecordDoesNotMakeACorrectEntryAnswerWithAnotherDomainsRoot) {
  auto* rep = Shared<BorrowReport>();
  const ChildOutcome o = RunInChild([&] { BorrowDeadRecordAttack(rep, true, true, true); });
  EXPECT_EQ(rep->leaked.load(), 0) << "V's entry answered with W's secret (loaded=" << rep->loaded.load()
                                   << "): " << Describe(o);
  EXPECT_TRUE(o.exited) << Describe(o);
  printf("outcome: loaded=%d %s", rep->loaded.load(), Describe(o).c_str());
  munmap(rep, sizeof *rep);
}

// The same in a fork() child, with no thread exiting: every other thread of
// the parent that ever called into the slot left a free record owned by a
// thread id the child does not have.
TEST_F(VirtualAttack, AfterTheLockdownAForkChildCannotBorrowAParentThreadsRecordToServeAnotherDomainsRoot) {
  auto* rep = Shared<BorrowReport>();
  const ChildOutcome o = RunInChild([&] { BorrowDeadRecordAttack(rep, true, true, true, true); });
  EXPECT_EQ(rep->leaked.load(), 0) << "V's entry answered with W's secret in the fork child (loaded="
                                   << rep->loaded.load() << "): " << Describe(o);
  printf("outcome: loaded=%d %s", rep->loaded.load(), Describe(o).c_str());
  munmap(rep, sizeof *rep);
}

TEST_F(VirtualAttack, ControlOwnRecordACorrectEntryAnswersWithItsOwnRoot) {
  auto* rep = Shared<BorrowReport>();
  const ChildOutcome o = RunInChild([&] { BorrowDeadRecordAttack(rep, false, true, true); });
  EXPECT_EQ(rep->leaked.load(), 0) << Describe(o);
  EXPECT_EQ(rep->loaded.load(), 0) << Describe(o);
  EXPECT_TRUE(o.exited && o.exit_code == 0) << Describe(o);
  munmap(rep, sizeof *rep);
}

// A call block whose end wraps past the top of the address space: its
// range checks must not wrap with it. The slot stops the process as a gate
// violation, before it reads anything there.
TEST_F(VirtualAttack, ACallBlockThatWrapsTheAddressSpaceIsAGateViolation) {
  for (const uint64_t block : {~uint64_t{0} - 7, ~uint64_t{0} - 15}) {
    const ChildOutcome o = RunInChild([&] {
      const int d = gates::Config().virt.slot_domain[0];
      (void)gates::GateFor(d)(0, 0, 0, 0, block, virt::kSlotEntryId);
    });
    EXPECT_TRUE(o.exited) << Describe(o);
    EXPECT_EQ(o.exit_code, 70) << Describe(o);
    EXPECT_NE(o.err.find("a virtual domain call's block is not in untrusted memory"), std::string::npos)
        << Describe(o);
  }
}

}  // namespace
