// PKU tests of several domains, the C++ API and lockdown. Lockdown is
// process-wide and final, so it has this binary's last test suite (gtest
// runs suites in declaration order).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "cordon/cordon.hpp"
#include "tests/support/child.h"

using cordon::testing::ChildOutcome;
using cordon::testing::kSegvPkuErr;
using cordon::testing::RunInChild;

namespace {

// ---- Trusted functions with typed signatures (C++ API) ----

struct Counter {
  uint64_t value;
};
Counter* g_counter = nullptr;  // points into trusted memory

uint64_t AddToCounter(uint64_t delta) {
  return g_counter->value += delta;
}

// Copies the counter out to an untrusted buffer, after checking that the
// buffer really is untrusted memory.
int CopyCounterOut(cordon::Untrusted<uint64_t*> out) {
  const auto checked = out.verify_range(1);
  if (!checked) return -1;
  **checked = g_counter->value;
  return 0;
}

uint8_t ReadAt(const uint8_t* p) {
  return *p;
}
int CurrentDomain() {
  return cordon_current_domain();
}

class Domains : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (cordon_is_initialized()) return;  // once per process, for every suite
    cordon::Options o;
    o.max_threads = 4;
    o.heap_size = size_t{4} << 20;
    const cordon::Status s = cordon::Init(o);
    ASSERT_TRUE(s.ok()) << s.message();
  }
};

TEST_F(Domains, SecondDomainHasItsOwnKeyAndMemory) {
  auto second = cordon::Domain::Create("parser");
  ASSERT_TRUE(second.ok()) << second.status().message();
  const cordon::Domain trusted = cordon::Domain::Trusted();
  EXPECT_NE(second->pkey(), trusted.pkey());
  EXPECT_EQ(second->name(), "parser");
  EXPECT_EQ(cordon::Domain::Current(), cordon::Domain::Untrusted());

  auto in_second = cordon::TrustedBuffer::Allocate(64, *second);
  ASSERT_TRUE(in_second.ok()) << in_second.status().message();
  EXPECT_EQ(cordon::Domain::Of(in_second->get()), *second);

  auto read_from_trusted = cordon::Register<&ReadAt>(trusted, "read_at(trusted)");
  auto read_from_second = cordon::Register<&ReadAt>(*second, "read_at(second)");
  auto where_second = cordon::Register<&CurrentDomain>(*second, "where(second)");
  ASSERT_TRUE(read_from_trusted.ok() && read_from_second.ok() && where_second.ok());

  EXPECT_EQ((*where_second)(), second->handle());
  const auto* p = static_cast<const uint8_t*>(in_second->get());
  EXPECT_EQ((*read_from_second)(p), 0);  // fresh blocks are zero
  // The trusted domain cannot read the second domain's memory.
  const ChildOutcome o = RunInChild([&] { (void)(*read_from_trusted)(p); });
  EXPECT_EQ(o.signal, SIGSEGV);
  EXPECT_EQ(o.fault_code, kSegvPkuErr);
  EXPECT_EQ(o.fault_pkey, static_cast<uint32_t>(second->pkey()));
  EXPECT_EQ(o.fault_addr, reinterpret_cast<uintptr_t>(p));
}

TEST_F(Domains, TypedEntriesCrossValuesExplicitly) {
  auto buf = cordon::TrustedBuffer::Allocate(sizeof(Counter));
  ASSERT_TRUE(buf.ok());
  g_counter = static_cast<Counter*>(buf->get());
  auto add = cordon::Register<&AddToCounter>(cordon::Domain::Trusted(), "add");
  auto copy_out = cordon::Register<&CopyCounterOut>(cordon::Domain::Trusted(), "copy_out");
  ASSERT_TRUE(add.ok() && copy_out.ok());
  EXPECT_EQ((*add)(5), 5u);
  EXPECT_EQ((*add)(7), 12u);
  uint64_t value = 0;
  EXPECT_EQ((*copy_out)(&value), 0);
  EXPECT_EQ(value, 12u);
  // A confused-deputy attempt: ask trusted code to write into trusted memory.
  EXPECT_EQ((*copy_out)(reinterpret_cast<uint64_t*>(g_counter)), -1);
  EXPECT_EQ((*add)(0), 12u) << "the counter was not overwritten";
}

// ---- Domain roots (cordon_domain_set_root) ----

int SetRoot(void* p) {
  return cordon_domain_set_root(p);
}
void* Root() {
  return cordon_domain_root();
}

TEST_F(Domains, EachDomainFindsItsOwnRootWhichIsSetOnceFromInside) {
  auto rooted = cordon::Domain::Create("rooted");
  ASSERT_TRUE(rooted.ok()) << rooted.status().message();
  auto block = cordon::TrustedBuffer::Allocate(64, *rooted);
  auto other_block = cordon::TrustedBuffer::Allocate(64, *rooted);
  auto trusted_block = cordon::TrustedBuffer::Allocate(64);
  ASSERT_TRUE(block.ok() && other_block.ok() && trusted_block.ok());
  auto set = cordon::Register<&SetRoot>(*rooted, "set_root");
  auto get = cordon::Register<&Root>(*rooted, "root");
  auto get_trusted = cordon::Register<&Root>(cordon::Domain::Trusted(), "root(trusted)");
  ASSERT_TRUE(set.ok() && get.ok() && get_trusted.ok());

  // Untrusted code can neither set a root nor see one.
  EXPECT_EQ(cordon_domain_set_root(block->get()), CORDON_E_WRONG_DOMAIN);
  EXPECT_EQ(cordon_domain_root(), nullptr);
  EXPECT_EQ((*get)(), nullptr) << "no root before one is set";

  uint64_t untrusted_word = 0;
  EXPECT_EQ((*set)(nullptr), CORDON_E_INVALID_ARGUMENT);
  EXPECT_EQ((*set)(&untrusted_word), CORDON_E_INVALID_ARGUMENT) << "a root in untrusted memory";
  EXPECT_EQ((*set)(trusted_block->get()), CORDON_E_INVALID_ARGUMENT) << "a root in another domain";
  EXPECT_EQ((*get)(), nullptr) << "refused roots change nothing";

  EXPECT_EQ((*set)(block->get()), CORDON_OK);
  EXPECT_EQ((*get)(), block->get());
  EXPECT_EQ((*set)(other_block->get()), CORDON_E_ROOT_SET);
  EXPECT_EQ((*set)(block->get()), CORDON_E_ROOT_SET);
  EXPECT_EQ((*get)(), block->get()) << "the first root stays";
  EXPECT_EQ((*get_trusted)(), nullptr) << "the trusted domain has a root of its own (none)";
  EXPECT_EQ(cordon_domain_root(), nullptr) << "still invisible from untrusted code";
  EXPECT_STRNE(cordon_strerror(CORDON_E_ROOT_SET), "unknown Cordon status code");
  (void)block->release();  // the domain's root stays allocated
}

TEST_F(Domains, TrustedBufferFreesOnScopeExit) {
  void* raw = nullptr;
  {
    auto buf = cordon::TrustedBuffer::Allocate(100);
    ASSERT_TRUE(buf.ok());
    raw = buf->get();
  }
  EXPECT_EQ(cordon_free(raw), CORDON_E_DOUBLE_FREE) << "already freed by the destructor";
}

TEST_F(Domains, DomainsPastThePhysicalLimitAreVirtual) {
  // The first CORDON_PHYSICAL_DOMAIN_LIMIT domains (the trusted one and
  // those the other tests made included) get keys of their own; after them
  // creation goes on with virtual domains, which share the keys left.
  std::vector<cordon_domain_t> made;
  for (int i = 0; i < 20; ++i) {
    auto d = cordon::Domain::Create("extra" + std::to_string(i));
    ASSERT_TRUE(d.ok()) << "domain " << i << ": " << d.status().message();
    made.push_back(d->handle());
  }
  int physical = 0;
  bool keys[16] = {};
  for (const cordon_domain_t d : made) {
    if (cordon_domain_is_virtual(d) != 0) continue;
    ++physical;
    const int key = cordon_domain_pkey(d);
    ASSERT_GT(key, 0);
    ASSERT_LT(key, 16);
    EXPECT_FALSE(keys[key]) << "two physical domains share key " << key;
    keys[key] = true;
  }
  EXPECT_LT(physical, CORDON_PHYSICAL_DOMAIN_LIMIT);
  EXPECT_EQ(cordon_domain_is_virtual(made.back()), 1);
  const int parking = cordon_parking_pkey();
  ASSERT_GT(parking, 0);
  EXPECT_FALSE(keys[parking]) << "the parking key is a physical domain's";
  EXPECT_EQ(cordon_domain_pkey(made.back()), parking) << "a new virtual domain starts parked";
  EXPECT_EQ(cordon::Domain::Current(), cordon::Domain::Untrusted()) << "creation leaves us untrusted";
}

// ---- fork() while another thread attaches ----

uint64_t PlusOne(uint64_t a0, uint64_t, uint64_t, uint64_t, uint64_t) {
  return a0 + 1;
}

// What a grandchild says: once when it starts, once when its calls came
// back (one write each, smaller than PIPE_BUF).
struct GrandchildReport {
  long pid;
  int done;
  uint64_t got[2];
};

// A thread's first call into a domain takes the domain's bootstrap record
// for a moment (to claim a record of its own). A fork() in that moment
// leaves the child a bootstrap record held by a thread that does not exist
// there: the child's threads must still get into the domain. The moment
// is made long: threads call once and stay, holding their records, until
// one finds none free and waits for one, holding the bootstrap record
// (then stops its process, as max_threads says). Meanwhile the forking
// thread forks one grandchild after another, each of which calls in, from
// the forking thread and from a new one. (How many records the runtime's
// own use takes, the adopted one of a fork child's signal stack among
// them, need not be known.)
TEST_F(Domains, AChildForkedWhileAThreadAttachesGetsIntoTheDomain) {
  cordon_entry entry;
  ASSERT_EQ(cordon_register(cordon_trusted_domain(), &PlusOne, "plus_one(fork)", &entry), CORDON_OK);
  int result[2];
  ASSERT_EQ(pipe(result), 0);
  constexpr int kMaxGrandchildren = 24;
  const ChildOutcome o = RunInChild([&] {
    close(result[0]);
    CHILD_CHECK(cordon_call(entry, 1, 0, 0, 0, 0) == 2);
    static std::atomic<int> attached{0};
    int forks = 0;
    for (int i = 0;; ++i) {
      CHILD_CHECK(i < 64);
      std::thread([entry] {
        CHILD_CHECK(cordon_call(entry, 2, 0, 0, 0, 0) == 3);  // or stops the process
        attached.fetch_add(1);
        for (;;) pause();
      }).detach();
      while (attached.load() == i) {
        if (forks == kMaxGrandchildren) continue;
        ++forks;
        const pid_t child = fork();
        CHILD_CHECK(child >= 0);
        if (child != 0) continue;
        GrandchildReport r{getpid(), 0, {0, 0}};
        CHILD_CHECK(write(result[1], &r, sizeof r) == static_cast<ssize_t>(sizeof r));
        // Not its parent's stdout and stderr: the test reads them to their
        // end, which a grandchild that waits forever would never give.
        const int null = open("/dev/null", O_WRONLY);
        CHILD_CHECK(null >= 0 && dup2(null, 1) == 1 && dup2(null, 2) == 2);
        r.got[0] = cordon_call(entry, 10, 0, 0, 0, 0);
        std::thread([&] { r.got[1] = cordon_call(entry, 20, 0, 0, 0, 0); }).join();
        r.done = 1;
        CHILD_CHECK(write(result[1], &r, sizeof r) == static_cast<ssize_t>(sizeof r));
        _exit(0);
      }
    }
  });
  close(result[1]);
  // The waiting thread stopped the child.
  EXPECT_TRUE(o.exited) << o.err;
  EXPECT_EQ(o.exit_code, 70) << o.err;
  EXPECT_NE(o.err.find("no free trusted thread slot"), std::string::npos) << o.err;
  // Every grandchild has been forked; the pipe ends when they all have
  // exited.
  std::map<long, int> done;
  for (;;) {
    pollfd p{result[0], POLLIN, 0};
    if (poll(&p, 1, 120 * 1000) != 1) break;
    GrandchildReport r;
    const ssize_t n = read(result[0], &r, sizeof r);
    if (n == 0) break;
    ASSERT_EQ(n, static_cast<ssize_t>(sizeof r));
    if (r.done == 0) {
      done[r.pid] = 0;
      continue;
    }
    done[r.pid] = 1;
    EXPECT_EQ(r.got[0], 11u);
    EXPECT_EQ(r.got[1], 21u);
  }
  close(result[0]);
  EXPECT_FALSE(done.empty()) << "no grandchild was forked";
  for (const auto& [pid, ok] : done) {
    if (ok == 0) kill(static_cast<pid_t>(pid), SIGKILL);
    EXPECT_EQ(ok, 1) << "grandchild " << pid
                     << " never got into the domain: it waits for a record held by a thread of its parent's";
  }
}

// ---- Lockdown: keep last ----

uint64_t g_locked_block = 0;
uint64_t AllocAfterLockdown() {
  void* p = nullptr;
  if (cordon_malloc(32, &p) != CORDON_OK) return 0;
  g_locked_block = reinterpret_cast<uint64_t>(p);
  return cordon_free(p) == CORDON_OK ? 1 : 0;
}

class ZLockdown : public Domains {};

TEST_F(ZLockdown, ClosesSetUpButTrustedCodeKeepsItsHeap) {
  auto inside = cordon::Register<&AllocAfterLockdown>(cordon::Domain::Trusted(), "alloc_after_lockdown");
  auto set_root = cordon::Register<&SetRoot>(cordon::Domain::Trusted(), "set_root(trusted)");
  auto get_root = cordon::Register<&Root>(cordon::Domain::Trusted(), "root(trusted, locked)");
  auto root_block = cordon::TrustedBuffer::Allocate(64);
  ASSERT_TRUE(inside.ok() && set_root.ok() && get_root.ok() && root_block.ok());
  void* before = nullptr;
  ASSERT_EQ(cordon_malloc(64, &before), CORDON_OK);
  ASSERT_TRUE(cordon::Lockdown().ok());
  EXPECT_EQ(cordon::Lockdown().code(), CORDON_E_LOCKED);
  EXPECT_TRUE(cordon_is_locked_down());
  void* p = nullptr;
  EXPECT_EQ(cordon_malloc(16, &p), CORDON_E_LOCKED);
  EXPECT_EQ(cordon_free(before), CORDON_E_LOCKED) << "untrusted code may not free trusted blocks";
  EXPECT_EQ(cordon::Domain::Create("late").status().code(), CORDON_E_LOCKED);
  EXPECT_EQ(cordon::Register<&AddToCounter>(cordon::Domain::Trusted(), "late").status().code(),
            CORDON_E_LOCKED);
  EXPECT_EQ((*inside)(), 1u);
  EXPECT_NE(g_locked_block, 0u);
  // The trusted domain has no root; after the lockdown none can be set.
  EXPECT_EQ((*set_root)(root_block->get()), CORDON_E_LOCKED);
  EXPECT_EQ((*get_root)(), nullptr);
  (void)root_block->release();  // untrusted code may not free it any more
}

}  // namespace
