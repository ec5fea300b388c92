// Trusted code's thread-local storage (docs/gates.md, "Thread-local
// storage"): trusted code runs on its record's own TCB, never on its
// caller's, whatever the caller did to its TCB, its TLS or its fs base.
//  - what trusted code sees: its fs base, errno, canary and pthread_self()
//    are its record's, in trusted memory, and ctype works; the caller's
//    come back intact;
//  - the cancellation attack: a caller's TCB that says "cancelled, unwind
//    to here" is not followed by a cancellation point in trusted code
//    (before the fix, the longjmp ran the attacker's code with the domain's
//    rights, tests/redteam/cancel_tcb.c);
//  - a forged TCB at another fs base: the same, and trusted code's errno
//    never lands there;
//  - faults and signals in trusted code on its TCB: a fault stops the
//    process as before (the signal entry finds the record without TLS);
//    from 6.12 on, the handler of a signal that interrupted trusted code
//    runs on the caller's fs base and trusted code resumes on its TCB.
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "cordon/cordon.h"
#include "runtime/domains/domain.h"
#include "tests/support/child.h"
#include "tests/support/fs_base.h"
#include "tests/support/judge.h"
#include "tests/support/signal_policy.h"

extern "C" void __pthread_register_cancel(void* buf);
extern "C" void __pthread_unregister_cancel(void* buf);

namespace {

using cordon::domains::IsUntrustedRange;
using cordon::testing::ChildOutcome;
using cordon::testing::Evidence;
using cordon::testing::ExpectHeldToTheEnd;
using cordon::testing::ExposeToJudge;
using cordon::testing::FsBase;
using cordon::testing::JudgeAttack;
using cordon::testing::LoadJudgeSecret;
using cordon::testing::LockDownForAttack;
using cordon::testing::OnlyFaultSignalsHaveHandlers;
using cordon::testing::RunInChild;
using cordon::testing::SetFsBase;
using cordon::testing::Verdict;

uint64_t Canary() {
  uint64_t v;
  __asm__ volatile("mov %%fs:0x28, %0" : "=r"(v));
  return v;
}

// ---- Trusted entries ----
uint8_t* g_trusted_buf;  // trusted: 64 bytes, from cordon_malloc
const uint8_t* g_secret;

uint64_t EntryFsBase(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return FsBase();
}
uint64_t EntryErrnoAddress(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return reinterpret_cast<uint64_t>(&errno);
}
// A failing system call through libc: errno is written.
uint64_t EntryFailClose(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  errno = 0;
  const int r = close(-1);
  return r == -1 ? static_cast<uint64_t>(errno) : 0;
}
uint64_t EntryCanary(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return Canary();
}
uint64_t EntrySelf(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return reinterpret_cast<uint64_t>(pthread_self());
}
// glibc's ctype functions read per-thread table pointers from TLS.
uint64_t EntryCtype(uint64_t c, uint64_t, uint64_t, uint64_t, uint64_t) {
  const int ch = static_cast<int>(c);
  return (isdigit(ch) ? 1u : 0u) | (isalpha(ch) ? 2u : 0u) | static_cast<uint64_t>(toupper(ch)) << 8;
}
// A libc cancellation point, as key generation calls it.
uint64_t EntryGetrandom(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return static_cast<uint64_t>(getrandom(g_trusted_buf, 16, 0));
}
// A fault on the TCB: a load from the null page.
uint64_t EntryFault(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return *reinterpret_cast<volatile uint64_t*>(8);
}
// Spins until the untrusted flag says the handler ran; returns the fs base
// it then runs on.
std::atomic<int> g_inside{0};
std::atomic<int> g_handled{0};
uint64_t EntrySpin(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  g_inside.store(1);
  while (g_handled.load() == 0) {
  }
  return FsBase();
}

cordon_entry g_fs, g_errno_at, g_fail, g_canary, g_self, g_rand, g_fault, g_spin, g_ctype;

void SetUpChild() {
  cordon_options o;
  cordon_options_init(&o);
  CHILD_CHECK(cordon_init(&o) == CORDON_OK);
  const cordon_domain_t d = cordon_trusted_domain();
  CHILD_CHECK(cordon_register(d, EntryFsBase, "fs", &g_fs) == CORDON_OK);
  CHILD_CHECK(cordon_register(d, EntryErrnoAddress, "errno_at", &g_errno_at) == CORDON_OK);
  CHILD_CHECK(cordon_register(d, EntryFailClose, "fail", &g_fail) == CORDON_OK);
  CHILD_CHECK(cordon_register(d, EntryCanary, "canary", &g_canary) == CORDON_OK);
  CHILD_CHECK(cordon_register(d, EntrySelf, "self", &g_self) == CORDON_OK);
  CHILD_CHECK(cordon_register(d, EntryGetrandom, "getrandom", &g_rand) == CORDON_OK);
  CHILD_CHECK(cordon_register(d, EntryFault, "fault", &g_fault) == CORDON_OK);
  CHILD_CHECK(cordon_register(d, EntrySpin, "spin", &g_spin) == CORDON_OK);
  CHILD_CHECK(cordon_register(d, EntryCtype, "ctype", &g_ctype) == CORDON_OK);
  void* p = nullptr;
  CHILD_CHECK(cordon_malloc(64, &p) == CORDON_OK);
  g_trusted_buf = static_cast<uint8_t*>(p);
}

void ExpectExitedZero(const ChildOutcome& o) {
  EXPECT_TRUE(o.exited) << "signal " << o.signal << "\n" << o.err;
  EXPECT_EQ(o.exit_code, 0) << o.err;
}

uint64_t Call(const cordon_entry& e) {
  return cordon_call(e, 0, 0, 0, 0, 0);
}

// thread_local variables of trusted code start at their initializers in
// each record's TLS, whatever the caller's copy holds.
thread_local int t_calls = 100;
uint64_t EntryThreadLocal(uint64_t x, uint64_t, uint64_t, uint64_t, uint64_t) {
  return x + static_cast<uint64_t>(++t_calls);
}
cordon_entry g_thread_local;

TEST(TrustedTls, ThreadLocalsStartAtTheirInitializersInEachRecord) {
  const ChildOutcome o = RunInChild([] {
    SetUpChild();
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), EntryThreadLocal, "tl", &g_thread_local) ==
                CORDON_OK);
    t_calls = 5;  // the caller's own copy: trusted code never sees it
    CHILD_CHECK(cordon_call(g_thread_local, 7, 0, 0, 0, 0) == 7 + 101);
    CHILD_CHECK(cordon_call(g_thread_local, 9, 0, 0, 0, 0) == 9 + 102);
    CHILD_CHECK(t_calls == 5);
  });
  ExpectExitedZero(o);
}

// Trusted code's fs base, errno, canary and pthread_self() are its
// record's, in trusted memory, one TCB per thread; the caller's fs base and
// errno come back as they were.
TEST(TrustedTls, TrustedCodeRunsOnATcbOfItsOwn) {
  const ChildOutcome o = RunInChild([] {
    SetUpChild();
    const uint64_t fs = FsBase();
    const uint64_t inside = Call(g_fs);
    CHILD_CHECK(inside != fs);
    CHILD_CHECK(inside % 4096 == 0);
    CHILD_CHECK(!IsUntrustedRange(reinterpret_cast<void*>(inside), 8));
    CHILD_CHECK(Call(g_self) == inside);  // THREAD_SELF finds the TCB
    const uint64_t errno_at = Call(g_errno_at);
    CHILD_CHECK(errno_at != reinterpret_cast<uint64_t>(&errno));
    CHILD_CHECK(errno_at < inside && inside - errno_at < (1u << 20));
    CHILD_CHECK(!IsUntrustedRange(reinterpret_cast<void*>(errno_at), sizeof(int)));
    errno = 1234;
    CHILD_CHECK(Call(g_fail) == EBADF);
    CHILD_CHECK(errno == 1234);
    CHILD_CHECK(FsBase() == fs);
    // The canary is the domain's own, not the caller's (which untrusted
    // code knows and may change).
    CHILD_CHECK(Call(g_canary) != Canary());
    CHILD_CHECK((Call(g_canary) & 0xff) == 0);
    // The ctype tables are there (set per thread by glibc, not by the TLS
    // image): found by the TCB's builder.
    CHILD_CHECK(cordon_call(g_ctype, '7', 0, 0, 0, 0) == (1u | uint64_t{'7'} << 8));
    CHILD_CHECK(cordon_call(g_ctype, 'q', 0, 0, 0, 0) == (2u | uint64_t{'Q'} << 8));
    // Same record, same TCB; another thread, another one.
    CHILD_CHECK(Call(g_fs) == inside);
    static uint64_t other = 0;
    pthread_t th;
    CHILD_CHECK(pthread_create(
                    &th, nullptr,
                    [](void*) -> void* {
                      other = Call(g_fs);
                      return nullptr;
                    },
                    nullptr) == 0);
    CHILD_CHECK(pthread_join(th, nullptr) == 0);
    CHILD_CHECK(other != 0 && other != inside);
    CHILD_CHECK(!IsUntrustedRange(reinterpret_cast<void*>(other), 8));
  });
  ExpectExitedZero(o);
}

// ---- The cancellation attack ----

// glibc's struct pthread_unwind_buf.
struct UnwindBuf {
  struct {
    uint64_t jmp_buf[8];
    int mask_was_saved;
  } cancel_jmp_buf[1];
  void* priv[4];
};
UnwindBuf g_ubuf;
alignas(64) uint8_t g_evil_stack[65536];
std::atomic<int> g_evil_ran{0};

uint64_t Mangle(uint64_t v, uint64_t guard) {
  v ^= guard;
  return (v << 0x11) | (v >> (64 - 0x11));
}

// Reached by the cancellation's longjmp if it is followed: with the
// domain's rights, it copies the secret out and hands it to the judge.
[[noreturn]] void Evil() {
  g_evil_ran.store(1);
  uint8_t copy[cordon::testing::kJudgeSecretSize];
  for (size_t i = 0; i < sizeof copy; ++i) copy[i] = g_secret[i];
  Evidence(copy, sizeof copy);
  ExposeToJudge();
  syscall(SYS_exit_group, 5);
  __builtin_unreachable();
}

// Offsets in glibc's struct pthread, from glibc's own description of it
// (for libthread_db): cancelhandling, and the unwind buffer just before it,
// checked against what pthread_cleanup_push() writes there.
struct CancelFields {
  size_t cancelhandling;
  size_t jmp_buf;
};
CancelFields FindCancelFields() {
  const auto* desc = static_cast<const uint32_t*>(dlsym(RTLD_DEFAULT, "_thread_db_pthread_cancelhandling"));
  CHILD_CHECK(desc != nullptr && desc[0] == 32);
  const CancelFields f{desc[2], desc[2] - 8};
  // What C's pthread_cleanup_push() calls (C++'s uses a destructor).
  auto* self = reinterpret_cast<unsigned char*>(pthread_self());
  static UnwindBuf probe;
  __pthread_register_cancel(&probe);
  uint64_t seen;
  memcpy(&seen, self + f.jmp_buf, 8);
  __pthread_unregister_cancel(&probe);
  CHILD_CHECK(seen == reinterpret_cast<uint64_t>(&probe));
  return f;
}

// Writes "cancelled, unwind to Evil()" into the TCB at tp (the thread's own
// fields of a copy of them).
void ForgeCancellation(unsigned char* tp, const CancelFields& f) {
  uint64_t guard;
  memcpy(&guard, tp + 0x30, 8);
  memset(&g_ubuf, 0, sizeof g_ubuf);
  g_ubuf.cancel_jmp_buf[0].jmp_buf[6] =
      Mangle(reinterpret_cast<uint64_t>(g_evil_stack + sizeof g_evil_stack - 72), guard);  // rsp
  g_ubuf.cancel_jmp_buf[0].jmp_buf[7] = Mangle(reinterpret_cast<uint64_t>(&Evil), guard);  // rip
  const uint64_t ub = reinterpret_cast<uint64_t>(&g_ubuf);
  const uint32_t canceled = 1u << 3;  // CANCELED_BIT, enabled and deferred
  const uint32_t many = 1;
  memcpy(tp + f.jmp_buf, &ub, 8);
  memcpy(tp + f.cancelhandling, &canceled, 4);
  memcpy(tp + 0x18, &many, 4);  // header.multiple_threads
}

// The caller's own TCB says "cancelled, unwind to Evil()": the trusted
// entry's getrandom() (a cancellation point) does not follow it.
TEST(TrustedTls, TheCallersCancellationStateIsNotFollowed) {
  const Verdict v = JudgeAttack([] {
    SetUpChild();
    g_secret = LoadJudgeSecret();
    LockDownForAttack(CORDON_VIOLATION_KILL);
    const CancelFields f = FindCancelFields();
    CHILD_CHECK(Call(g_rand) == 16);  // an ordinary call first
    // The forgery, the call, and the TCB as it was (untrusted code's own
    // libc calls would follow the forgery too, without the domain's rights).
    auto* self = reinterpret_cast<unsigned char*>(pthread_self());
    unsigned char saved[16];
    memcpy(saved, self + f.jmp_buf, sizeof saved);
    ForgeCancellation(self, f);
    const uint64_t r = Call(g_rand);
    memcpy(self + f.jmp_buf, saved, sizeof saved);
    CHILD_CHECK(g_evil_ran.load() == 0);
    CHILD_CHECK(r == 16);
  });
  ExpectHeldToTheEnd(v);
}

// A copy of the caller's TLS and TCB at another fs base, forged the same
// way: not followed either, and trusted code's errno is not written there.
TEST(TrustedTls, AForgedTcbAtAnotherFsBaseIsNotFollowed) {
  const Verdict v = JudgeAttack([] {
    SetUpChild();
    g_secret = LoadJudgeSecret();
    LockDownForAttack(CORDON_VIOLATION_KILL);
    const CancelFields f = FindCancelFields();
    using StaticInfo = void (*)(size_t*, size_t*);
    const auto info = reinterpret_cast<StaticInfo>(dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info"));
    CHILD_CHECK(info != nullptr);
    size_t size = 0, align = 0;
    info(&size, &align);
    const auto* pthread_size = static_cast<const uint32_t*>(dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread"));
    CHILD_CHECK(pthread_size != nullptr && size > *pthread_size);
    const size_t tls_below = size - *pthread_size;
    const size_t below = (tls_below + 4095) / 4096 * 4096 + 4096;
    const size_t above = (*pthread_size + 4095) / 4096 * 4096 + 4096;
    auto* area = static_cast<unsigned char*>(
        mmap(nullptr, below + above, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    CHILD_CHECK(area != MAP_FAILED);
    const uint64_t fs = FsBase();
    unsigned char* tp = area + below;
    // The whole static TLS and the descriptor, as the thread has them.
    memcpy(tp - tls_below, reinterpret_cast<unsigned char*>(fs) - tls_below, size);
    const uint64_t tpv = reinterpret_cast<uint64_t>(tp);
    memcpy(tp, &tpv, 8);
    memcpy(tp + 0x10, &tpv, 8);
    ForgeCancellation(tp, f);
    const size_t errno_off = fs - reinterpret_cast<uint64_t>(&errno);
    const int planted = 777;
    memcpy(tp - errno_off, &planted, sizeof planted);

    SetFsBase(tpv);
    const uint64_t r = Call(g_rand);
    const uint64_t failed = Call(g_fail);
    const uint64_t fs_after = FsBase();
    SetFsBase(fs);

    CHILD_CHECK(g_evil_ran.load() == 0);
    CHILD_CHECK(r == 16);
    CHILD_CHECK(failed == EBADF);
    CHILD_CHECK(fs_after == tpv);  // the caller's fs base comes back
    int seen;
    memcpy(&seen, tp - errno_off, sizeof seen);
    CHILD_CHECK(seen == planted);
  });
  ExpectHeldToTheEnd(v);
}

// A fault in trusted code running on its TCB still stops the process, with
// the runtime's message: the signal entry finds the record from where the
// frame is, not through TLS (which that PKRU could not read).
TEST(TrustedTls, AFaultOnTheTcbStopsTheProcessWithTheMessage) {
  const ChildOutcome o = RunInChild([] {
    SetUpChild();
    LockDownForAttack(CORDON_VIOLATION_KILL);
    (void)Call(g_fault);
  });
  EXPECT_TRUE(o.exited) << "signal " << o.signal << "\n" << o.err;
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT) << o.err;
  EXPECT_NE(o.err.find("in code of domain 1"), std::string::npos) << o.err;
}

// The handler of a signal that interrupted trusted code runs on the
// caller's fs base (its TLS reads work), and trusted code resumes on its
// TCB. Before 6.12 such a signal can have no handler after the lockdown
// (docs/signals.md): cordon_sigaction() says so, and the test checks that.
thread_local int t_marker = 0;
std::atomic<uint64_t> g_handler_fs{0};
std::atomic<int> g_handler_marker{0};
std::atomic<long> g_spinner{0};

TEST(TrustedTls, HandlersRunOnTheCallersFsBaseAndTrustedCodeResumesOnItsTcb) {
  const Verdict v = JudgeAttack([] {
    SetUpChild();
    g_secret = LoadJudgeSecret();
    struct sigaction sa {};
    sa.sa_handler = [](int) {
      g_handler_fs.store(FsBase());
      g_handler_marker.store(t_marker);
      g_handled.store(1);
    };
    LockDownForAttack(CORDON_VIOLATION_KILL);
    if (OnlyFaultSignalsHaveHandlers()) {
      CHILD_CHECK(cordon_sigaction(SIGUSR1, &sa, nullptr) == CORDON_E_LOCKED);
      return;
    }
    CHILD_CHECK(cordon_sigaction(SIGUSR1, &sa, nullptr) == CORDON_OK);
    t_marker = 4242;
    const uint64_t fs = FsBase();
    const uint64_t tcb = Call(g_fs);
    g_spinner.store(syscall(SYS_gettid));
    pthread_t th;
    CHILD_CHECK(pthread_create(
                    &th, nullptr,
                    [](void*) -> void* {
                      while (g_inside.load() == 0) {
                      }
                      syscall(SYS_tgkill, getpid(), g_spinner.load(), SIGUSR1);
                      return nullptr;
                    },
                    nullptr) == 0);
    const uint64_t resumed = Call(g_spin);
    CHILD_CHECK(pthread_join(th, nullptr) == 0);
    CHILD_CHECK(g_handler_fs.load() == fs);
    CHILD_CHECK(g_handler_marker.load() == 4242);
    CHILD_CHECK(resumed == tcb);
    CHILD_CHECK(FsBase() == fs);
  });
  ExpectHeldToTheEnd(v);
}

}  // namespace
