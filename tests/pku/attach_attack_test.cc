// Red-team attacks on thread records and the attach path, with virtual
// domains' key slots (docs/virtual-domains.md, docs/gates.md).
//
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

constexpr int kDomains = 4;

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

// A correct entry that asks its client for the request through a callback
// (cordon_call_untrusted), then answers with its own domain's secret,
// found through its root.
uint64_t CallbackServeEntry(uint64_t fn, uint64_t arg, uint64_t, uint64_t, uint64_t) {
  (void)cordon_call_untrusted(reinterpret_cast<cordon_untrusted_fn>(fn), arg, 0, 0, 0, 0);
  const auto* b = static_cast<const Block*>(cordon_domain_root());
  return b == nullptr ? 0 : b->secret;
}

// Physical domain entries. Park: tells untrusted code where its frame is
// (a trusted address, which tells nothing but where the call runs), then
// waits (at most ~20 s) for *go. Frame: returns where its frame is.
uint64_t ParkEntry(uint64_t out, uint64_t go, uint64_t, uint64_t, uint64_t) {
  if (!cordon_is_untrusted_range(reinterpret_cast<void*>(out), 8) ||
      !cordon_is_untrusted_range(reinterpret_cast<void*>(go), 4))
    return 0;
  reinterpret_cast<std::atomic<uint64_t>*>(out)->store(
      reinterpret_cast<uint64_t>(__builtin_frame_address(0)));
  auto* g = reinterpret_cast<std::atomic<int>*>(go);
  for (long i = 0; i < 200000000L && g->load() == 0; ++i) {
    if (i % 64 == 0) (void)cordon::hw::RawSyscall3(SYS_sched_yield, 0, 0, 0);
  }
  return 1;
}

uint64_t PhysInitEntry(uint64_t secret, uint64_t, uint64_t, uint64_t, uint64_t) {
  void* p = nullptr;
  if (cordon_domain_alloc(cordon_current_domain(), 64, 64, &p) != CORDON_OK) return 0;
  *static_cast<uint64_t*>(p) = secret;
  return reinterpret_cast<uint64_t>(p);
}

__attribute__((noinline)) void WaitFor(uint64_t go) {
  auto* g = reinterpret_cast<std::atomic<int>*>(go);
  for (long i = 0; i < 200000000L && g->load() == 0; ++i) {
    if (i % 64 == 0) (void)cordon::hw::RawSyscall3(SYS_sched_yield, 0, 0, 0);
  }
}

// A correct entry: it checks that src is untrusted memory, works for a
// while (waits for *go), then returns the word at src. `where` gets the
// address of its local (instrumentation standing in for the layout an
// attacker reads off the binary).
__attribute__((noinline)) void WaitFor(uint64_t go);
__attribute__((noinline)) uint64_t SnapshotWork(uint64_t src, uint64_t go, uint64_t where) {
  volatile uint64_t p = src;  // checked by the caller; kept across the work
  reinterpret_cast<std::atomic<uint64_t>*>(where)->store(reinterpret_cast<uint64_t>(&p));
  WaitFor(go);
  return *reinterpret_cast<const volatile uint64_t*>(p);
}

uint64_t SnapshotEntry(uint64_t src, uint64_t go, uint64_t where, uint64_t, uint64_t) {
  if (!cordon_is_untrusted_range(reinterpret_cast<void*>(src), 8) ||
      !cordon_is_untrusted_range(reinterpret_cast<void*>(go), 4) ||
      !cordon_is_untrusted_range(reinterpret_cast<void*>(where), 8))
    return 0;
  volatile uint64_t history[16];  // a work area of the entry's own
  history[src % 16] = go;
  return SnapshotWork(src, go, where) + 0 * history[src % 16];
}

// A correct entry: stores value into slot idx of a table of its own (on
// its stack), works for a while, returns the slot.
uint64_t FillThenParkEntry(uint64_t value, uint64_t idx, uint64_t go, uint64_t where, uint64_t) {
  if (!cordon_is_untrusted_range(reinterpret_cast<void*>(go), 4) ||
      !cordon_is_untrusted_range(reinterpret_cast<void*>(where), 8) || idx >= 64)
    return 0;
  volatile uint64_t table[64];
  table[idx] = value;
  reinterpret_cast<std::atomic<uint64_t>*>(where)->store(reinterpret_cast<uint64_t>(&table[0]));
  WaitFor(go);
  return table[idx];
}

uint64_t FrameEntry(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return reinterpret_cast<uint64_t>(__builtin_frame_address(0));
}

uint64_t ReadWordEntry(uint64_t addr, uint64_t, uint64_t, uint64_t, uint64_t) {
  return *reinterpret_cast<const volatile uint64_t*>(addr);
}

struct Dom {
  cordon_domain_t d = 0;
  cordon_entry init{}, get{}, wait_read{}, read_word{}, serve{}, cb_serve{};
  uint64_t secret = 0;
  Block* block = nullptr;
};

struct Phys {
  cordon_domain_t d = 0;
  cordon_entry park{}, frame{}, pinit{}, snapshot{}, fill{};
  uint64_t secret = 0;
  uint64_t secret_addr = 0;
};

struct State {
  bool ready = false;
  Phys p;
  std::vector<Dom> v;
  int parking = -1;
};
State g;

// ---- The attacker's direct use of a key slot's gate ----

uint32_t IndexOf(const Dom& x) {
  return static_cast<uint32_t>(x.d - virt::kFirstHandle);
}

class AttachAttack : public ::testing::Test {
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
    // A physical domain, made before the first virtual one takes the keys left.
    ASSERT_EQ(cordon_domain_create("phys", &g.p.d), CORDON_OK);
    ASSERT_EQ(cordon_register(g.p.d, ParkEntry, "park", &g.p.park), CORDON_OK);
    ASSERT_EQ(cordon_register(g.p.d, FrameEntry, "frame", &g.p.frame), CORDON_OK);
    ASSERT_EQ(cordon_register(g.p.d, PhysInitEntry, "pinit", &g.p.pinit), CORDON_OK);
    ASSERT_EQ(cordon_register(g.p.d, SnapshotEntry, "snapshot", &g.p.snapshot), CORDON_OK);
    ASSERT_EQ(cordon_register(g.p.d, FillThenParkEntry, "fill", &g.p.fill), CORDON_OK);
    do g.p.secret = rng();
    while (g.p.secret == 0);
    g.p.secret_addr = cordon_call(g.p.pinit, g.p.secret, 0, 0, 0, 0);
    ASSERT_NE(g.p.secret_addr, 0u);
    g.v.resize(kDomains);
    for (int i = 0; i < kDomains; ++i) {
      Dom& x = g.v[i];
      const std::string n = "aa" + std::to_string(i);
      ASSERT_EQ(cordon_domain_create_virtual(n.c_str(), &x.d), CORDON_OK);
      ASSERT_EQ(cordon_register(x.d, InitEntry, "init", &x.init), CORDON_OK);
      ASSERT_EQ(cordon_register(x.d, GetEntry, "get", &x.get), CORDON_OK);
      ASSERT_EQ(cordon_register(x.d, WaitThenReadEntry, "wait_read", &x.wait_read), CORDON_OK);
      ASSERT_EQ(cordon_register(x.d, ReadWordEntry, "read_word", &x.read_word), CORDON_OK);
      ASSERT_EQ(cordon_register(x.d, ServeEntry, "serve", &x.serve), CORDON_OK);
      ASSERT_EQ(cordon_register(x.d, CallbackServeEntry, "cb_serve", &x.cb_serve), CORDON_OK);
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

TEST_F(AttachAttack, SetUpWorks) {
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

// ---- BREAK candidate: a callback's return resumed by the record's owner,
// not by the thread that made the call ----
//
// The slot entry marks its record active under the kernel's id of the
// thread that runs the call (virtual.cc SlotEntry, me.active = gettid),
// while the callback return lets only the record's *owner* back in
// (gate.S CALLOUT: gettid == REC_OWNER). With a borrowed record these are
// two threads: B borrows live thread O's idle record on slot s (a forged
// TLS index; the gate lets any thread claim a free record), calls V's
// correct entry that makes a callback, and exits inside the callback. The
// record's active word names B, who no longer exists: a loader's Quiesce
// takes the record for idle and re-tags the slot to W. O (the owner, alive)
// then returns into the callback: the checks pass, and V's suspended frame
// resumes with W resident on V's key. V's correct entry answers with
// cordon_domain_root(), which is now W's root: W's secret.

struct ResumeReport {
  std::atomic<int> inside{0};       // B is in the callback
  std::atomic<uint64_t> resume{0};  // the callback's return address (the callout's return path)
  std::atomic<int> loaded{0};       // W went onto the slot while V's call was suspended
  std::atomic<uint64_t> tries{0};
  std::atomic<int> done{0};  // V's resumed call came back
  std::atomic<uint64_t> answer{0};
  std::atomic<uint32_t> outcome{0};
  std::atomic<int> leaked{0};
};
ResumeReport* g_rep = nullptr;

uint64_t ExitInCallback(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  g_rep->resume.store(reinterpret_cast<uint64_t>(__builtin_return_address(0)));
  g_rep->inside.store(1);
  // The thread ends inside the callback: its record stays in use, its
  // active word names a thread that is gone.
  for (;;) (void)cordon::hw::RawSyscall3(SYS_exit, 0, 0, 0);
}

void ResumeByOwnerAttack(ResumeReport* rep, bool lockdown) {
  g_rep = rep;
  const Dom& v = g.v[0];
  const Dom& w = g.v[1];
  const auto alt_stack = [lockdown] {
    if (!lockdown) GiveThisThreadAnAltStack();
  };
  if (lockdown) LockDownForAttack(CORDON_VIOLATION_ERRNO_FOR_TESTS);
  alt_stack();
  const uint32_t slot = 0;
  const int sd = gates::Config().virt.slot_domain[slot];
  CHILD_CHECK(MakeResidentOn(slot, v));
  // O: attaches to the slot (owns a record there), then waits, idle.
  std::atomic<uint32_t> o_index{~0u};
  std::atomic<int> o_go{0};
  std::thread o([&] {
    alt_stack();
    const SlotAnswer a = SlotCall(slot, IndexOf(v), v.get.id);
    CHILD_CHECK(a.outcome == virt::kRan && a.r == v.secret);
    o_index.store(cordon_tls_records[sd]);
    while (o_go.load() == 0) usleep(1000);
    // The owner returns into the callback its record has in progress.
    const uint64_t target = rep->resume.load();
    const uint64_t result = 0;
    asm volatile("mov %0, %%rax\n\tjmp *%1" ::"r"(result), "r"(target) : "rax", "memory");
    __builtin_unreachable();
  });
  while (o_index.load() == ~0u) usleep(1000);
  // B: borrows O's record and calls V's correct entry, which calls back.
  std::atomic<pid_t> b_tid{0};
  std::thread b([&] {
    alt_stack();
    b_tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
    cordon_tls_records[sd] = o_index.load();
    const SlotAnswer a =
        SlotCall(slot, IndexOf(v), v.cb_serve.id, reinterpret_cast<uint64_t>(&ExitInCallback));
    // Runs only if the suspended call is resumed (on the resuming thread,
    // on this thread's stack).
    rep->answer.store(a.r);
    rep->outcome.store(a.outcome);
    rep->done.store(1);
    for (;;) (void)cordon::hw::RawSyscall3(SYS_exit, 0, 0, 0);
  });
  b.detach();
  while (rep->inside.load() == 0) usleep(1000);
  for (int i = 0; i < 10000 && !ThreadGone(b_tid.load()); ++i) usleep(1000);
  CHILD_CHECK(ThreadGone(b_tid.load()));
  // The loader: W onto the slot.
  for (int i = 0; i < 200 && rep->loaded.load() == 0; ++i) {
    rep->tries.fetch_add(1);
    const SlotAnswer a = SlotCall(slot, IndexOf(w), w.get.id);
    if (a.outcome == virt::kRan && a.r == w.secret) rep->loaded.store(1);
    if (a.outcome == virt::kElsewhere) (void)cordon_domain_evict(w.d);
    if (rep->loaded.load() == 0) usleep(1000);
  }
  fprintf(stderr, "loaded=%d tries=%llu\n", rep->loaded.load(),
          static_cast<unsigned long long>(rep->tries.load()));
  o_go.store(1);
  for (int i = 0; i < 20000 && rep->done.load() == 0; ++i) usleep(1000);
  if (rep->done.load() != 0 && rep->answer.load() == w.secret) {
    rep->leaked.store(1);
    fprintf(stderr,
            "LEAKED: virtual domain %d's correct entry answered with virtual domain %d's secret %#llx\n", v.d,
            w.d, static_cast<unsigned long long>(rep->answer.load()));
  }
  fflush(nullptr);
  _exit(rep->done.load() != 0 ? 0 : 4);
}

void ExpectResumeHeld(ResumeReport* rep, const ChildOutcome& o) {
  EXPECT_EQ(rep->leaked.load(), 0)
      << "the owner resumed a borrowed call after the slot was re-tagged (loaded=" << rep->loaded.load()
      << ", tries=" << rep->tries.load() << ", done=" << rep->done.load() << "): " << Describe(o);
  // The borrower's entry is refused: the key slot stops a thread on a
  // record that is not its own.
  EXPECT_TRUE(o.exited && o.exit_code == 70) << Describe(o);
  EXPECT_NE(o.err.find("a thread entered a virtual domain's key slot on another thread's record"),
            std::string::npos)
      << Describe(o);
  printf("outcome: loaded=%d done=%d answer=%#llx %s", rep->loaded.load(), rep->done.load(),
         static_cast<unsigned long long>(rep->answer.load()), Describe(o).c_str());
}

TEST_F(AttachAttack, AnOwnerCannotResumeABorrowedCallbackAfterTheSlotWasRetagged) {
  auto* rep = Shared<ResumeReport>();
  const ChildOutcome o = RunInChild([&] { ResumeByOwnerAttack(rep, false); });
  ExpectResumeHeld(rep, o);
  munmap(rep, sizeof *rep);
}

TEST_F(AttachAttack, AfterTheLockdownAnOwnerCannotResumeABorrowedCallbackAfterTheSlotWasRetagged) {
  auto* rep = Shared<ResumeReport>();
  const ChildOutcome o = RunInChild([&] { ResumeByOwnerAttack(rep, true); });
  ExpectResumeHeld(rep, o);
  munmap(rep, sizeof *rep);
}

// ---- BREAK candidate: two threads on one trusted stack (physical domain) ----
//
// HELD_CLAIM (gate_sequences.inc) lets a gate entry that finds its record
// held continue onto the record's stack when the record's saved stack
// pointer equals the caller's, gettid() is the record's owner and no
// callback or signal handler is in progress. That is meant for the owner's
// own claim cut off by a signal before the switch. But the saved stack
// pointer is the claimer's, whoever it was: thread B borrows live thread O's
// idle record (forged TLS index; the gate lets any thread claim a free
// record) and enters with its stack pointer at an address O knows; O then
// enters on its own record with that same stack pointer value, and goes
// through onto the stack that B's running call is using.

// GateAtRsp(gate, a0, a1, id, rsp): calls gate(a0, a1, 0, 0, 0, id) with
// the stack pointer at rsp (the gate sees rsp - 8, holding the return
// address), then goes back to its own stack.
extern "C" uint64_t GateAtRsp(uint64_t gate, uint64_t a0, uint64_t a1, uint64_t id, uint64_t rsp);
asm(R"(
        .text
        .p2align 4
        .type GateAtRsp, @function
GateAtRsp:
        push %rbp
        push %rbx
        mov %rsp, %rbx
        mov %rdi, %rax
        mov %rsi, %rdi
        mov %rdx, %rsi
        mov %rcx, %r9
        xor %edx, %edx
        xor %ecx, %ecx
        mov %r8, %rsp
        xor %r8d, %r8d
        call *%rax
        mov %rbx, %rsp
        pop %rbx
        pop %rbp
        ret
        .size GateAtRsp, . - GateAtRsp
)");

struct ShareReport {
  std::atomic<uint64_t> b_frame{0};  // where B's running call's frame is
  std::atomic<int> go{0};
  std::atomic<uint64_t> o_frame{0};  // where O's call ran
  std::atomic<int> o_done{0};
};

alignas(64) unsigned char g_shared_stack[64 * 1024];

void ShareStackAttack(ShareReport* rep, bool lockdown) {
  const auto alt_stack = [lockdown] {
    if (!lockdown) GiveThisThreadAnAltStack();
  };
  if (lockdown) LockDownForAttack(CORDON_VIOLATION_ERRNO_FOR_TESTS);
  alt_stack();
  const int d = g.p.d;
  const uint64_t gate = reinterpret_cast<uint64_t>(gates::GateFor(d));
  const uint64_t rsp = reinterpret_cast<uint64_t>(g_shared_stack + sizeof g_shared_stack - 64);
  std::atomic<uint32_t> o_index{~0u};
  std::atomic<int> o_go{0};
  std::thread o([&] {
    alt_stack();
    CHILD_CHECK(cordon_call(g.p.frame, 0, 0, 0, 0, 0) != 0);  // attaches: O owns a record
    o_index.store(cordon_tls_records[d]);
    while (o_go.load() == 0) usleep(1000);
    // O enters on its own record, with B's stack pointer value.
    rep->o_frame.store(GateAtRsp(gate, 0, 0, g.p.frame.id, rsp));
    rep->o_done.store(1);
  });
  while (o_index.load() == ~0u) usleep(1000);
  std::thread b([&] {
    alt_stack();
    cordon_tls_records[d] = o_index.load();  // borrows O's idle record
    (void)GateAtRsp(gate, reinterpret_cast<uint64_t>(&rep->b_frame), reinterpret_cast<uint64_t>(&rep->go),
                    g.p.park.id, rsp);
    // Not reached when the attack works (the child exits first).
  });
  b.detach();
  for (int i = 0; i < 20000 && rep->b_frame.load() == 0; ++i) usleep(1000);
  CHILD_CHECK(rep->b_frame.load() != 0);
  o_go.store(1);
  for (int i = 0; i < 20000 && rep->o_done.load() == 0; ++i) usleep(1000);
  const uint64_t bf = rep->b_frame.load(), of = rep->o_frame.load();
  if (rep->o_done.load() != 0) {
    fprintf(stderr,
            "O's call ran with its frame at %#llx while B's call is running with its frame at %#llx\n",
            static_cast<unsigned long long>(of), static_cast<unsigned long long>(bf));
  }
  fflush(nullptr);
  _exit(0);  // B is still inside (its go flag is never set)
}

std::string ShareDescribe(ShareReport* rep, const ChildOutcome& o) {
  char buf[160];
  snprintf(buf, sizeof buf,
           "b_frame=%#llx o_frame=%#llx o_done=%d: ", static_cast<unsigned long long>(rep->b_frame.load()),
           static_cast<unsigned long long>(rep->o_frame.load()), rep->o_done.load());
  return buf + Describe(o);
}

void ExpectShareHeld(ShareReport* rep, const ChildOutcome& o) {
  // O's call must not have run on B's record: the process stops (a nested
  // or forged entry).
  const uint64_t bf = rep->b_frame.load(), of = rep->o_frame.load();
  const auto& c = gates::Config().domains[g.p.d];
  const bool same_stack =
      rep->o_done.load() != 0 && of != 0 && bf != 0 && (of > bf ? of - bf : bf - of) < c.stride;
  EXPECT_FALSE(same_stack) << "two threads ran on one trusted stack at once: " << ShareDescribe(rep, o);
  EXPECT_EQ(rep->o_done.load(), 0) << ShareDescribe(rep, o);
  // The owner's entry is refused: the claim it finds is one a thread has
  // switched to, not its own cut off.
  EXPECT_TRUE(o.exited && o.exit_code == 70) << ShareDescribe(rep, o);
  EXPECT_NE(o.err.find("trusted stack is already in use"), std::string::npos) << ShareDescribe(rep, o);
  printf("outcome: %s", ShareDescribe(rep, o).c_str());
}

TEST_F(AttachAttack, TwoThreadsNeverRunOnOneTrustedStackThroughAHeldClaimWithTheBorrowersStackPointer) {
  auto* rep = Shared<ShareReport>();
  const ChildOutcome o = RunInChild([&] { ShareStackAttack(rep, false); });
  ExpectShareHeld(rep, o);
  munmap(rep, sizeof *rep);
}

TEST_F(AttachAttack, AfterTheLockdownTwoThreadsNeverRunOnOneTrustedStackThroughAHeldClaim) {
  auto* rep = Shared<ShareReport>();
  const ChildOutcome o = RunInChild([&] { ShareStackAttack(rep, true); });
  ExpectShareHeld(rep, o);
  munmap(rep, sizeof *rep);
}

// ---- Escalation: the shared stack makes a correct entry read the
// domain's secret for untrusted code ----
//
// B (on O's borrowed record, stack pointer P) runs SnapshotEntry(src =
// untrusted), which checked src and keeps it in its frame while it works.
// O enters FillThenParkEntry on the same stack (the held claim, stack
// pointer P): its table overlays B's frame, and its slot idx is where B
// keeps src. O stores the secret's address there. B's checked pointer is
// now the secret's: B's call returns the domain's secret to untrusted code.

struct GateBlock {
  uint64_t a0, a1, a2, a3, id, rsp;
};
// GateAtRsp2(gate, block, slot, odd): gate(a0..a3, 0, id), entered by a
// jump with its return address at block->rsp and the stack pointer there
// too, or (odd = 1) one byte above it: an odd value, which the ABI never
// gives but nothing stops. After the gate returns it finds its own stack
// again by the kernel's thread id (g_saves[slot]): the registers and fs a
// shared trusted stack gives back may be the other thread's.
struct SaveSlot {
  uint64_t tid;
  uint64_t rsp;
};
extern "C" SaveSlot g_saves[4];
SaveSlot g_saves[4];
extern "C" uint64_t GateAtRsp2(uint64_t gate, const GateBlock* b, uint64_t slot, uint64_t odd);
asm(R"(
        .text
        .p2align 4
        .type GateAtRsp2, @function
GateAtRsp2:
        push %rbp
        push %rbx
        push %r12
        push %r13
        push %r14
        push %r15
        mov %rdi, %r12
        mov %rsi, %r13
        mov %rdx, %r14
        mov %rcx, %r15
        mov $186, %eax
        syscall
        lea g_saves(%rip), %rcx
        shl $4, %r14
        mov %rax, (%rcx,%r14)
        mov %rsp, 8(%rcx,%r14)
        mov %r12, %rax
        mov 0(%r13), %rdi
        mov 8(%r13), %rsi
        mov 16(%r13), %rdx
        mov 24(%r13), %rcx
        xor %r8d, %r8d
        mov 32(%r13), %r9
        mov 40(%r13), %r11
        lea 3f(%rip), %r10
        mov %r10, (%r11)
        lea (%r11,%r15), %rsp
        jmp *%rax
3:      mov %rax, %r12
        mov $186, %eax
        syscall
        lea g_saves(%rip), %rcx
        xor %edx, %edx
1:      cmp (%rcx,%rdx), %rax
        je 2f
        add $16, %rdx
        cmp $64, %rdx
        jb 1b
        ud2
2:      mov 8(%rcx,%rdx), %rsp
        mov %r12, %rax
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %rbx
        pop %rbp
        ret
        .size GateAtRsp2, . - GateAtRsp2
)");

struct StealReport {
  std::atomic<uint64_t> p_at{0};      // where B keeps its checked pointer
  std::atomic<uint64_t> table_at{0};  // O's table
  std::atomic<int> b_go{0}, o_go{0};
  std::atomic<int> b_done{0};
  std::atomic<uint64_t> answer{0};
  std::atomic<int> leaked{0};
  std::atomic<int64_t> idx{-1};
};

alignas(64) unsigned char g_shared_stack2[64 * 1024];
uint64_t g_decoy = 0x1234;

void StealAttack(StealReport* rep, bool lockdown, bool odd = false) {
  const auto alt_stack = [lockdown] {
    if (!lockdown) GiveThisThreadAnAltStack();
  };
  if (lockdown) LockDownForAttack(CORDON_VIOLATION_ERRNO_FOR_TESTS);
  alt_stack();
  const int d = g.p.d;
  const uint64_t gate = reinterpret_cast<uint64_t>(gates::GateFor(d));
  const uint64_t rsp = reinterpret_cast<uint64_t>(g_shared_stack2 + sizeof g_shared_stack2 - 64);
  // The layout (what an attacker reads off the binary): both entries once,
  // on this thread's own record, each finished before the next.
  std::atomic<int> one{1};
  std::atomic<uint64_t> p_at{0}, table_at{0};
  CHILD_CHECK(cordon_call(g.p.snapshot, reinterpret_cast<uint64_t>(&g_decoy),
                          reinterpret_cast<uint64_t>(&one), reinterpret_cast<uint64_t>(&p_at), 0,
                          0) == g_decoy);
  CHILD_CHECK(cordon_call(g.p.fill, 7, 0, reinterpret_cast<uint64_t>(&one),
                          reinterpret_cast<uint64_t>(&table_at), 0) == 7);
  const int64_t idx = (static_cast<int64_t>(p_at.load()) - static_cast<int64_t>(table_at.load())) / 8;
  rep->idx.store(idx);
  CHILD_CHECK(idx >= 0 && idx < 64);
  std::atomic<uint32_t> o_index{~0u};
  std::atomic<int> o_start{0};
  std::thread o([&] {
    alt_stack();
    CHILD_CHECK(cordon_call(g.p.frame, 0, 0, 0, 0, 0) != 0);  // attaches: O owns a record
    o_index.store(cordon_tls_records[d]);
    while (o_start.load() == 0) usleep(1000);
    const GateBlock blk{g.p.secret_addr,
                        static_cast<uint64_t>(idx),
                        reinterpret_cast<uint64_t>(&rep->o_go),
                        reinterpret_cast<uint64_t>(&rep->table_at),
                        g.p.fill.id,
                        rsp};
    (void)GateAtRsp2(gate, &blk, 1, odd ? 1 : 0);
    for (;;) (void)cordon::hw::RawSyscall3(SYS_exit, 0, 0, 0);
  });
  o.detach();
  while (o_index.load() == ~0u) usleep(1000);
  std::thread b([&] {
    alt_stack();
    cordon_tls_records[d] = o_index.load();  // borrows O's idle record
    const GateBlock blk{reinterpret_cast<uint64_t>(&g_decoy),
                        reinterpret_cast<uint64_t>(&rep->b_go),
                        reinterpret_cast<uint64_t>(&rep->p_at),
                        0,
                        g.p.snapshot.id,
                        rsp};
    const uint64_t r = GateAtRsp2(gate, &blk, 0, odd ? 1 : 0);
    rep->answer.store(r);
    rep->b_done.store(1);
    for (;;) (void)cordon::hw::RawSyscall3(SYS_exit, 0, 0, 0);
  });
  b.detach();
  for (int i = 0; i < 20000 && rep->p_at.load() == 0; ++i) usleep(1000);
  CHILD_CHECK(rep->p_at.load() != 0);
  o_start.store(1);
  for (int i = 0; i < 5000 && rep->table_at.load() == 0; ++i) usleep(1000);
  rep->b_go.store(1);  // B finishes its work and reads through its checked pointer
  for (int i = 0; i < 20000 && rep->b_done.load() == 0; ++i) usleep(1000);
  if (rep->b_done.load() != 0 && rep->answer.load() == g.p.secret) {
    rep->leaked.store(1);
    fprintf(stderr, "LEAKED: a correct entry of domain %d returned its secret %#llx to untrusted code\n", d,
            static_cast<unsigned long long>(rep->answer.load()));
  }
  fflush(nullptr);
  _exit(0);
}

TEST_F(AttachAttack, AfterTheLockdownASharedTrustedStackDoesNotMakeACorrectEntryReturnItsSecret) {
  auto* rep = Shared<StealReport>();
  const ChildOutcome o = RunInChild([&] { StealAttack(rep, true); });
  EXPECT_EQ(rep->leaked.load(), 0) << "idx=" << rep->idx.load() << " p_at=" << std::hex << rep->p_at.load()
                                   << " table_at=" << rep->table_at.load() << " answer=" << rep->answer.load()
                                   << std::dec << ": " << Describe(o);
  EXPECT_TRUE(o.exited && o.exit_code == 70) << Describe(o);
  EXPECT_NE(o.err.find("trusted stack is already in use"), std::string::npos) << Describe(o);
  printf("outcome: idx=%lld b_done=%d answer=%#llx %s", static_cast<long long>(rep->idx.load()),
         rep->b_done.load(), static_cast<unsigned long long>(rep->answer.load()), Describe(o).c_str());
  munmap(rep, sizeof *rep);
}

// ---- The switched-to bit with an odd caller stack pointer: a first
// version of SWITCH_TO_RECORD set bit 0 of the saved stack pointer,
// assuming a caller's is 8 mod 16; entering with an odd one (nothing
// checks) left it unchanged, and HELD_CLAIM's "saved == caller's rsp" held
// again for a claim B was running on (red team, broken then). The bit is
// flipped now. Same steal as above, both entries at one odd stack
// pointer. ----
TEST_F(AttachAttack, AfterTheLockdownAnOddStackPointerDoesNotShareATrustedStackAndLeakTheSecret) {
  auto* rep = Shared<StealReport>();
  const ChildOutcome o = RunInChild([&] { StealAttack(rep, true, true); });
  EXPECT_EQ(rep->leaked.load(), 0) << "idx=" << rep->idx.load() << " p_at=" << std::hex << rep->p_at.load()
                                   << " table_at=" << rep->table_at.load() << " answer=" << rep->answer.load()
                                   << std::dec << ": " << Describe(o);
  EXPECT_TRUE(o.exited && o.exit_code == 70) << Describe(o);
  EXPECT_NE(o.err.find("trusted stack is already in use"), std::string::npos) << Describe(o);
  printf("outcome: idx=%lld b_done=%d answer=%#llx %s", static_cast<long long>(rep->idx.load()),
         rep->b_done.load(), static_cast<unsigned long long>(rep->answer.load()), Describe(o).c_str());
  munmap(rep, sizeof *rep);
}

}  // namespace
