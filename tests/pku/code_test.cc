// The code region (docs/code.md): code published at run time runs, code
// that holds WRPKRU or XRSTOR anywhere never becomes executable, and after
// cordon_lockdown() untrusted code can neither change the region's pages
// itself nor make the runtime publish bytes it did not check. Each test runs
// in a child, so that every one starts from a fresh runtime.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cordon/cordon.hpp"
#include "runtime/gates/gate_config.h"
#include "runtime/inspector/patterns.h"
#include "tests/support/child.h"
#include "tests/support/judge.h"
#include "tests/support/signal_policy.h"

namespace {

using cordon::testing::ChildOutcome;
using cordon::testing::Evidence;
using cordon::testing::ExpectNotLeaked;
using cordon::testing::ExposeToJudge;
using cordon::testing::JudgeAttack;
using cordon::testing::kJudgeSecretSize;
using cordon::testing::LoadJudgeSecret;
using cordon::testing::LockDownForAttack;
using cordon::testing::OnlyFaultSignalsHaveHandlers;
using cordon::testing::RunInChild;
using cordon::testing::Verdict;

constexpr size_t kPage = 4096;
constexpr int kErrnoMode = CORDON_VIOLATION_ERRNO_FOR_TESTS;

#define CHILD_STATUS(call, expected)                                                                        \
  do {                                                                                                      \
    const int s_ = (call);                                                                                  \
    if (s_ != (expected)) {                                                                                 \
      fprintf(stderr, "child check failed at line %d: %s gave %d (%s), expected %s\n", __LINE__, #call, s_, \
              cordon_strerror(s_), #expected);                                                              \
      _exit(1);                                                                                             \
    }                                                                                                       \
  } while (0)

// A byte the compiler cannot fold into an immediate: this program's own code
// must not contain the patterns it builds (programs_clean checks it).
uint8_t Opaque(uint8_t v) {
  asm volatile("" : "+r"(v));
  return v;
}

// Machine code, built at run time.
std::vector<uint8_t> ReturnValue(uint32_t v) {  // mov eax, v; ret
  return {0xb8, uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24), 0xc3};
}
std::vector<uint8_t> RealWrpkru() {  // xor ecx,ecx; xor edx,edx; xor eax,eax; wrpkru; ret
  return {0x31, 0xc9, 0x31, 0xd2, 0x31, 0xc0, 0x0f, 0x01, Opaque(0xef), 0xc3};
}
std::vector<uint8_t> HiddenWrpkru() {  // mov eax, 0x00ef010f; ret
  return {0xb8, 0x0f, 0x01, Opaque(0xef), 0x00, 0xc3};
}
std::vector<uint8_t> Xrstor() {  // xrstor [rdi]; ret
  return {0x0f, 0xae, Opaque(0x2f), 0xc3};
}

uint32_t RunCode(void* code) {
  return reinterpret_cast<uint32_t (*)()>(code)();
}

bool HasPattern(const void* p, size_t n) {
  return cordon::inspector::FirstPattern(static_cast<const uint8_t*>(p), n).has_value();
}

void Init(size_t code_size = 0) {
  cordon_options o;
  cordon_options_init(&o);
  if (code_size != 0) o.code_size = code_size;
  CHILD_STATUS(cordon_init(&o), CORDON_OK);
}

void ExpectClean(const ChildOutcome& o) {
  EXPECT_TRUE(o.exited) << "signal " << o.signal << " si_code " << o.fault_code << "\n" << o.err;
  EXPECT_EQ(o.exit_code, 0) << o.err;
}

void ExpectClean(const Verdict& v) {
  ExpectClean(v.outcome);
  ExpectNotLeaked(v);
}

// Both before and after lockdown.
void PublishAndRun() {
  const std::vector<uint8_t> code = ReturnValue(42);
  void* fn = nullptr;
  CHILD_STATUS(cordon_code_load(code.data(), code.size(), &fn), CORDON_OK);
  CHILD_CHECK(RunCode(fn) == 42);
  // Untrusted code can read its code; the rest of the page is INT3.
  CHILD_CHECK(memcmp(fn, code.data(), code.size()) == 0);
  const auto* page = static_cast<const uint8_t*>(fn);
  for (size_t i = code.size(); i < kPage; ++i) CHILD_CHECK(page[i] == 0xcc);
  // Generated for a reserved address, then replaced in place.
  void* block = nullptr;
  CHILD_STATUS(cordon_code_reserve(3 * kPage, &block), CORDON_OK);
  std::vector<uint8_t> big(3 * kPage, 0x90);  // NOPs, then the return
  const std::vector<uint8_t> ret = ReturnValue(7);
  memcpy(big.data() + big.size() - ret.size(), ret.data(), ret.size());
  CHILD_STATUS(cordon_code_publish(block, big.data(), big.size()), CORDON_OK);
  CHILD_CHECK(RunCode(block) == 7);
  const std::vector<uint8_t> eight = ReturnValue(8);
  CHILD_STATUS(cordon_code_publish(block, eight.data(), eight.size()), CORDON_OK);
  CHILD_CHECK(RunCode(block) == 8);
  CHILD_STATUS(cordon_code_release(block), CORDON_OK);
  CHILD_STATUS(cordon_code_release(fn), CORDON_OK);
  CHILD_STATUS(cordon_code_release(fn), CORDON_E_INVALID_POINTER);  // twice
}

TEST(CodeRegion, PublishedCodeRunsBeforeAndAfterLockdown) {
  ExpectClean(RunInChild([] {
    Init();
    PublishAndRun();
    LockDownForAttack(kErrnoMode);
    PublishAndRun();
    _exit(0);
  }));
}

TEST(CodeRegion, CodeWithWrpkruOrXrstorAnywhereIsRefused) {
  ExpectClean(RunInChild([] {
    Init();
    LockDownForAttack(kErrnoMode);
    std::vector<std::vector<uint8_t>> unsafe = {RealWrpkru(), HiddenWrpkru(), Xrstor()};
    // At the very end of a page, and across the boundary of two pages.
    for (const size_t at : {kPage - 3, kPage - 1}) {
      std::vector<uint8_t> code(2 * kPage, 0x90);
      code[at] = 0x0f;
      code[at + 1] = 0x01;
      code[at + 2] = Opaque(0xef);
      unsafe.push_back(code);
    }
    for (const auto& code : unsafe) {
      void* fn = nullptr;
      CHILD_STATUS(cordon_code_load(code.data(), code.size(), &fn), CORDON_E_UNSAFE_CODE);
      CHILD_CHECK(fn == nullptr);
    }
    // A refusal leaves a reserved block reserved, and published code in
    // place.
    void* block = nullptr;
    CHILD_STATUS(cordon_code_reserve(kPage, &block), CORDON_OK);
    CHILD_STATUS(cordon_code_publish(block, unsafe[0].data(), unsafe[0].size()), CORDON_E_UNSAFE_CODE);
    const std::vector<uint8_t> five = ReturnValue(5);
    CHILD_STATUS(cordon_code_publish(block, five.data(), five.size()), CORDON_OK);
    CHILD_STATUS(cordon_code_publish(block, unsafe[1].data(), unsafe[1].size()), CORDON_E_UNSAFE_CODE);
    CHILD_CHECK(RunCode(block) == 5);
    _exit(0);
  }));
}

TEST(CodeRegion, TheRefusalSaysWhere) {
  const ChildOutcome o = RunInChild([] {
    Init();
    const std::vector<uint8_t> code = RealWrpkru();
    void* fn = nullptr;
    CHILD_STATUS(cordon_code_load(code.data(), code.size(), &fn), CORDON_E_UNSAFE_CODE);
    _exit(0);
  });
  ExpectClean(o);
  EXPECT_NE(o.err.find("cordon: code refused: WRPKRU at "), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("(offset 0x6 of the code), UNSAFE: real instruction"), std::string::npos) << o.err;
}

TEST(CodeRegion, BadArgumentsChangeNothing) {
  ExpectClean(RunInChild([] {
    // Options are checked before anything is created.
    cordon_options o;
    cordon_options_init(&o);
    o.code_size = size_t{5} << 30;
    CHILD_STATUS(cordon_init(&o), CORDON_E_INVALID_ARGUMENT);
    Init(kPage * 16);
    const std::vector<uint8_t> code = ReturnValue(1);
    void* fn = nullptr;
    CHILD_STATUS(cordon_code_load(nullptr, 6, &fn), CORDON_E_INVALID_ARGUMENT);
    CHILD_STATUS(cordon_code_load(code.data(), 0, &fn), CORDON_E_INVALID_ARGUMENT);
    CHILD_STATUS(cordon_code_reserve(0, &fn), CORDON_E_INVALID_ARGUMENT);
    CHILD_STATUS(cordon_code_reserve(kPage * 16, &fn), CORDON_E_NO_MEMORY);  // no room for its guard page
    CHILD_STATUS(cordon_code_publish(const_cast<uint8_t*>(code.data()), code.data(), 6),
                 CORDON_E_INVALID_POINTER);
    void* block = nullptr;
    CHILD_STATUS(cordon_code_reserve(kPage, &block), CORDON_OK);
    std::vector<uint8_t> too_long(kPage + 1, 0x90);
    CHILD_STATUS(cordon_code_publish(block, too_long.data(), too_long.size()), CORDON_E_INVALID_ARGUMENT);
    CHILD_STATUS(cordon_code_publish(static_cast<char*>(block) + 16, code.data(), 6),
                 CORDON_E_INVALID_POINTER);
    CHILD_STATUS(cordon_code_release(static_cast<char*>(block) + kPage),
                 CORDON_E_INVALID_POINTER);  // its guard
    CHILD_STATUS(cordon_code_publish(block, code.data(), code.size()), CORDON_OK);
    CHILD_CHECK(RunCode(block) == 1);
    // The region fills up, and released blocks are used again.
    std::vector<void*> blocks;
    void* b = nullptr;
    while (cordon_code_reserve(kPage, &b) == CORDON_OK) blocks.push_back(b);
    CHILD_CHECK(blocks.size() == 7);  // 16 pages: the first block and its guard, then 7 more
    CHILD_STATUS(cordon_code_release(blocks[2]), CORDON_OK);
    CHILD_STATUS(cordon_code_reserve(kPage, &b), CORDON_OK);
    CHILD_CHECK(b == blocks[2]);
    _exit(0);
  }));
}

TEST(CodeRegion, WithoutARegionNothingIsPublished) {
  ExpectClean(RunInChild([] {
    cordon_options o;
    cordon_options_init(&o);
    o.code_size = 0;
    CHILD_STATUS(cordon_init(&o), CORDON_OK);
    const std::vector<uint8_t> code = ReturnValue(1);
    void* fn = nullptr;
    CHILD_STATUS(cordon_code_load(code.data(), code.size(), &fn), CORDON_E_NO_CODE_REGION);
    LockDownForAttack(kErrnoMode);
    CHILD_STATUS(cordon_code_load(code.data(), code.size(), &fn), CORDON_E_NO_CODE_REGION);
    // And pkey_mprotect is closed everywhere.
    void* page = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(page != MAP_FAILED);
    CHILD_DENIED(syscall(SYS_pkey_mprotect, page, kPage, PROT_READ, 0), EPERM);
    _exit(0);
  }));
}

TEST(CodeRegion, TheCppWrapperOwnsItsBlock) {
  ExpectClean(RunInChild([] {
    Init();
    const std::vector<uint8_t> three = ReturnValue(3), four = ReturnValue(4);
    void* first = nullptr;
    {
      auto code = cordon::PublishedCode::Load(three.data(), three.size());
      CHILD_CHECK(code.ok());
      CHILD_CHECK(code->as<uint32_t (*)()>()() == 3);
      CHILD_CHECK(code->Publish(four.data(), four.size()).ok());
      CHILD_CHECK(code->as<uint32_t (*)()>()() == 4);
      const cordon::Status refused = code->Publish(RealWrpkru().data(), RealWrpkru().size());
      CHILD_CHECK(refused.code() == CORDON_E_UNSAFE_CODE);
      first = code->address();
      cordon::PublishedCode moved = std::move(*code);
      CHILD_CHECK(moved.address() == first && code->address() == nullptr);
    }
    // Released with its owner.
    CHILD_STATUS(cordon_code_release(first), CORDON_E_INVALID_POINTER);
    auto reserved = cordon::PublishedCode::Reserve(4096);
    CHILD_CHECK(reserved.ok() && reserved->address() != nullptr);
    auto none = cordon::PublishedCode::Load(three.data(), 0);
    CHILD_CHECK(none.status().code() == CORDON_E_INVALID_ARGUMENT);
    _exit(0);
  }));
}

// ---- Attacks, after lockdown ----

// The judge's secret, in trusted memory.
const uint8_t* SetUpSecret() {
  Init();
  return LoadJudgeSecret();
}

// In a child: a secret, the lockdown, and published code that returns 9.
void* LockedDownWithCode(int violation) {
  SetUpSecret();
  LockDownForAttack(violation);
  const std::vector<uint8_t> code = ReturnValue(9);
  void* fn = nullptr;
  CHILD_STATUS(cordon_code_load(code.data(), code.size(), &fn), CORDON_OK);
  return fn;
}

// The child printed "<tag> <address>" and then faulted on a page it may not
// access, at that address plus offset.
void ExpectAccessFaultAt(const Verdict& v, const std::string& tag, uintptr_t offset) {
  ExpectNotLeaked(v);
  const ChildOutcome& o = v.outcome;
  ASSERT_EQ(o.signal, SIGSEGV) << o.err;
  EXPECT_EQ(o.fault_code, SEGV_ACCERR);
  unsigned long reported = 0;
  ASSERT_EQ(sscanf(o.err.c_str(), (tag + " %lx").c_str(), &reported), 1) << o.err;
  EXPECT_EQ(o.fault_addr, reported + offset);
}

TEST(CodeRegionAttack, TheRuntimeCopiesNoTrustedBytesIntoCode) {
  ExpectClean(JudgeAttack([] {
    const uint8_t* secret = SetUpSecret();
    LockDownForAttack(kErrnoMode);
    const auto& c = cordon::gates::Config();
    void* block = nullptr;
    CHILD_STATUS(cordon_code_reserve(kPage, &block), CORDON_OK);
    const void* region;
    size_t region_size;
    CHILD_STATUS(cordon_domain_region(cordon_trusted_domain(), &region, &region_size), CORDON_OK);
    // The secret, the domain's memory, the config page, the region's header
    // (just below its first page) and code pages themselves.
    const void* sources[] = {secret, region, &c, reinterpret_cast<const void*>(c.code_start - 64),
                             reinterpret_cast<const void*>(c.code_start)};
    for (const void* src : sources) {
      CHILD_STATUS(cordon_code_publish(block, src, 32), CORDON_E_INVALID_ARGUMENT);
    }
    // A range that starts in readable untrusted memory and runs into the
    // config page.
    CHILD_STATUS(cordon_code_publish(block, reinterpret_cast<const char*>(&c) - 16, 48),
                 CORDON_E_INVALID_ARGUMENT);
  }));
}

TEST(CodeRegionAttack, UntrustedCodeCannotChangeTheRegionsPages) {
  ExpectClean(JudgeAttack([] {
    void* fn = LockedDownWithCode(kErrnoMode);
    void* reserved = nullptr;
    CHILD_STATUS(cordon_code_reserve(kPage, &reserved), CORDON_OK);
    const auto header = reinterpret_cast<void*>(cordon::gates::Config().code_start - kPage);
    for (void* p : {fn, reserved, header}) {
      CHILD_DENIED(mprotect(p, kPage, PROT_READ | PROT_WRITE), EPERM);
      CHILD_DENIED(mprotect(p, kPage, PROT_READ | PROT_EXEC), EPERM);
      CHILD_DENIED(syscall(SYS_pkey_mprotect, p, kPage, PROT_READ | PROT_WRITE, 0), EPERM);
      CHILD_DENIED(munmap(p, kPage), EPERM);
      CHILD_DENIED(madvise(p, kPage, MADV_DONTNEED), EPERM);
      CHILD_DENIED(
          mmap(p, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED
              ? -1
              : 0,
          EPERM);
      CHILD_DENIED(mremap(p, kPage, 2 * kPage, MREMAP_MAYMOVE) == MAP_FAILED ? -1 : 0, EPERM);
    }
    // Guessing the token: 64 random tries in r8 and r9.
    for (int i = 0; i < 64; ++i) {
      uint64_t guess[2];
      CHILD_CHECK(getrandom(guess, sizeof guess, 0) == sizeof guess);
      register uint64_t r10 asm("r10") = 0;
      register uint64_t r8 asm("r8") = guess[0];
      register uint64_t r9 asm("r9") = guess[1];
      long ret;
      asm volatile("syscall"
                   : "=a"(ret)
                   : "0"(SYS_pkey_mprotect), "D"(fn), "S"(kPage), "d"(PROT_READ | PROT_WRITE), "r"(r10),
                     "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
      CHILD_CHECK(ret == -EPERM);
    }
    CHILD_CHECK(RunCode(fn) == 9);
  }));
}

TEST(CodeRegionAttack, PkeyMprotectWithoutTheTokenStopsTheProcess) {
  const Verdict v = JudgeAttack([] {
    void* fn = LockedDownWithCode(CORDON_VIOLATION_KILL);
    ExposeToJudge();
    (void)syscall(SYS_pkey_mprotect, fn, kPage, PROT_READ | PROT_WRITE | PROT_EXEC, 0);
    fprintf(stderr, "pkey_mprotect of published code was allowed\n");
    _exit(3);
  });
  ExpectNotLeaked(v);
  const ChildOutcome& o = v.outcome;
  EXPECT_TRUE(o.exited) << o.err;
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT) << o.err;
  EXPECT_NE(o.err.find("cordon: lockdown violation: system call pkey_mprotect (329)"), std::string::npos)
      << o.err;
}

TEST(CodeRegionAttack, PublishedCodeCannotBeWritten) {
  const Verdict v = JudgeAttack([] {
    void* fn = LockedDownWithCode(kErrnoMode);
    // Tell the parent where it is through stderr, then write to it.
    fprintf(stderr, "block %p\n", fn);
    ExposeToJudge();
    static_cast<volatile uint8_t*>(fn)[1] = 0x0f;
    fprintf(stderr, "published code was written\n");
    _exit(3);
  });
  ExpectAccessFaultAt(v, "block", 1);
}

TEST(CodeRegionAttack, ReleasedCodeNoLongerRuns) {
  const Verdict v = JudgeAttack([] {
    void* fn = LockedDownWithCode(kErrnoMode);
    CHILD_STATUS(cordon_code_release(fn), CORDON_OK);
    fprintf(stderr, "block %p\n", fn);
    ExposeToJudge();
    RunCode(fn);
    _exit(3);
  });
  ExpectAccessFaultAt(v, "block", 0);
}

// Two blocks, one ending in 0F 01 and the next starting with EF: each is
// clean alone, and the page between them is never executable, so the
// instruction at the end of the first cannot take its last byte from the
// second.
TEST(CodeRegionAttack, BlocksCannotBeGluedIntoAWrpkru) {
  const Verdict v = JudgeAttack([] {
    SetUpSecret();
    LockDownForAttack(kErrnoMode);
    std::vector<uint8_t> first(kPage, 0x90);
    first[kPage - 2] = 0x0f;
    first[kPage - 1] = 0x01;
    const std::vector<uint8_t> second = {Opaque(0xef), 0xc3};
    void* a = nullptr;
    void* b = nullptr;
    CHILD_STATUS(cordon_code_load(first.data(), first.size(), &a), CORDON_OK);
    CHILD_STATUS(cordon_code_load(second.data(), second.size(), &b), CORDON_OK);
    const auto end = reinterpret_cast<uintptr_t>(a) + kPage;
    CHILD_CHECK(reinterpret_cast<uintptr_t>(b) >= end + kPage);  // a guard page between
    fprintf(stderr, "guard %#lx\n", static_cast<unsigned long>(end));
    ExposeToJudge();
    reinterpret_cast<void (*)()>(end - 2)();  // 0F 01, then the guard page
    fprintf(stderr, "ran across the end of a block\n");
    _exit(3);
  });
  ExpectAccessFaultAt(v, "guard", 0);
}

// While the runtime copies and checks a 1 MiB source, untrusted code keeps
// turning one of its bytes into the last byte of a WRPKRU and back: a timer
// signal's handler on the publishing thread (it runs while the trusted copy
// is interrupted), and a second thread. Whatever the copy caught, the bytes
// that became executable are the bytes that were checked. Before 6.12 no
// handler can interrupt the copy (only the fault signals may have one after
// the lockdown: SIGALRM's is CORDON_E_LOCKED), and the second thread alone
// changes the byte.
constexpr size_t kRaceBytes = size_t{1} << 20;
constexpr size_t kRaceAt = 64;  // early: the rest of the copy is the window
constexpr int kRaceRounds = 60;
uint8_t* g_race_byte;
std::atomic<bool> g_race_stop{false};

void Toggle() {
  const uint8_t now = __atomic_load_n(g_race_byte, __ATOMIC_RELAXED);
  __atomic_store_n(g_race_byte, now == 0x90 ? Opaque(0xef) : uint8_t{0x90}, __ATOMIC_RELAXED);
}

void ToggleOnSignal(int) {
  Toggle();
}

void* ToggleForever(void*) {
  while (!g_race_stop.load(std::memory_order_relaxed)) Toggle();
  return nullptr;
}

TEST(CodeRegionAttack, ChangingTheSourceDuringTheScanGainsNothing) {
  const Verdict v = JudgeAttack([] {
    SetUpSecret();
    LockDownForAttack(kErrnoMode);
    std::vector<uint8_t> code(kRaceBytes, 0x90);
    code[kRaceAt] = 0x0f;
    code[kRaceAt + 1] = 0x01;
    code.back() = 0xc3;
    g_race_byte = &code[kRaceAt + 2];
    struct sigaction sa {};
    sa.sa_handler = ToggleOnSignal;
    sa.sa_flags = SA_RESTART;
    const bool timer = !OnlyFaultSignalsHaveHandlers();
    CHILD_STATUS(cordon_sigaction(SIGALRM, &sa, nullptr), timer ? CORDON_OK : CORDON_E_LOCKED);
    const itimerval every{{0, 1000}, {0, 1000}};
    if (timer) CHILD_CHECK(setitimer(ITIMER_REAL, &every, nullptr) == 0);
    pthread_t t;
    CHILD_CHECK(pthread_create(&t, nullptr, ToggleForever, nullptr) == 0);
    int published = 0, refused = 0;
    for (int i = 0; i < kRaceRounds; ++i) {
      void* fn = nullptr;
      const int s = cordon_code_load(code.data(), code.size(), &fn);
      CHILD_CHECK(s == CORDON_OK || s == CORDON_E_UNSAFE_CODE);
      if (s == CORDON_OK) {
        ++published;
        CHILD_CHECK(!HasPattern(fn, kRaceBytes));  // what runs is what was checked
        CHILD_STATUS(cordon_code_release(fn), CORDON_OK);
      } else {
        ++refused;
      }
    }
    const itimerval off{};
    if (timer) setitimer(ITIMER_REAL, &off, nullptr);
    g_race_stop = true;
    pthread_join(t, nullptr);
    fprintf(stderr, "published %d, refused %d%s\n", published, refused, timer ? "" : " (no timer)");
  });
  ExpectClean(v);
  const ChildOutcome& o = v.outcome;
  int published = -1, refused = -1;
  const size_t at = o.err.find("published ");
  ASSERT_NE(at, std::string::npos) << o.err;
  ASSERT_EQ(sscanf(o.err.c_str() + at, "published %d, refused %d", &published, &refused), 2);
  EXPECT_EQ(published + refused, kRaceRounds);
  printf("published %d, refused %d\n", published, refused);
  // The byte really changed under the runtime: both outcomes happened.
  EXPECT_GT(published, 0);
  EXPECT_GT(refused, 0);
}

// Publishing from several threads at once: the page table stays consistent
// and every thread runs its own code.
void* PublishLoop(void* arg) {
  const auto id = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(arg));
  for (uint32_t i = 0; i < 200; ++i) {
    const std::vector<uint8_t> code = ReturnValue(id * 1000 + i);
    void* fn = nullptr;
    if (cordon_code_load(code.data(), code.size(), &fn) != CORDON_OK) return reinterpret_cast<void*>(1);
    if (RunCode(fn) != id * 1000 + i) return reinterpret_cast<void*>(2);
    if (cordon_code_release(fn) != CORDON_OK) return reinterpret_cast<void*>(3);
  }
  return nullptr;
}

TEST(CodeRegion, ThreadsPublishAtTheSameTime) {
  ExpectClean(JudgeAttack([] {
    SetUpSecret();
    LockDownForAttack(kErrnoMode);
    pthread_t threads[4];
    for (uintptr_t i = 0; i < 4; ++i) {
      CHILD_CHECK(pthread_create(&threads[i], nullptr, PublishLoop, reinterpret_cast<void*>(i + 1)) == 0);
    }
    for (pthread_t t : threads) {
      void* r = nullptr;
      pthread_join(t, &r);
      CHILD_CHECK(r == nullptr);
    }
  }));
}

// Trusted code may publish too (the call runs directly, inside the domain),
// with the same rule for the source.
uint64_t PublishFromInside(uint64_t src, uint64_t len, uint64_t out, uint64_t, uint64_t) {
  return static_cast<uint64_t>(static_cast<int64_t>(
      cordon_code_load(reinterpret_cast<const void*>(src), len, reinterpret_cast<void**>(out))));
}

TEST(CodeRegion, TrustedCodeCanPublishUntrustedBytes) {
  ExpectClean(JudgeAttack([] {
    const uint8_t* secret = SetUpSecret();
    cordon_entry publish;
    CHILD_STATUS(cordon_register(cordon_trusted_domain(), PublishFromInside, "publish", &publish), CORDON_OK);
    LockDownForAttack(kErrnoMode);
    const std::vector<uint8_t> code = ReturnValue(77);
    void* fn = nullptr;
    const auto s = static_cast<int>(cordon_call(publish, reinterpret_cast<uint64_t>(code.data()), code.size(),
                                                reinterpret_cast<uint64_t>(&fn), 0, 0));
    CHILD_STATUS(s, CORDON_OK);
    CHILD_CHECK(RunCode(fn) == 77);
    const auto s2 = static_cast<int>(
        cordon_call(publish, reinterpret_cast<uint64_t>(secret), 16, reinterpret_cast<uint64_t>(&fn), 0, 0));
    CHILD_STATUS(s2, CORDON_E_INVALID_ARGUMENT);
  }));
}

}  // namespace
