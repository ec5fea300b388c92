// Signal attacks on a locked-down process (docs/signals.md), judged from
// outside: each child loads the judge's random secret into trusted memory,
// locks down and then attacks as untrusted code with full control of its
// thread. The judge checks that no byte of the secret reached untrusted
// memory or output; the test asserts exactly how the attack was stopped.
//  - SignalForgedFrames: a handler (of SIGILL, raised by a ud2: a fault
//    signal keeps its handler on every kernel) forges its sigreturn frame in
//    every XSAVE layout and header form by which the CPU or the kernel could
//    be made to load another PKRU; the return must come back with the
//    untrusted PKRU, so the read of the secret faults with SEGV_PKUERR on
//    the trusted key.
//  - SignalFramesAnywhere: untrusted code points its stack pointer at
//    trusted memory (entry table, domain state, a trusted stack, the heap
//    block holding the secret) and takes a real signal (tgkill, a fault, a
//    timer), so that the real kernel writes the frame. 6.12 and later would
//    write it there; the runtime's alternate stack takes it instead and the
//    process stops. 6.1 writes under the interrupted PKRU: the write of a
//    fault's frame faults. There the tgkill and timer signals cannot have a
//    handler at all (the lockdown refuses it, and a fault signal cannot be
//    sent): the kernel ends the process with them, writing no frame.
//  - SignalsBefore612: that policy of kernels before 6.12, path by path:
//    which handlers the lockdown and cordon_sigaction() accept, and every
//    way to send SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGSYS refused; on 6.12
//    and later the same calls work.
#include <cpuid.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>

#include "cordon/cordon.h"
#include "runtime/gates/gate_config.h"
#include "tests/support/audit_capture.h"
#include "tests/support/child.h"
#include "tests/support/judge.h"
#include "tests/support/signal_policy.h"

// Points the stack pointer at sp and sends sig to this thread with tgkill;
// the kernel delivers it on the way back from the system call, with the
// stack pointer still at sp. Restores the stack pointer if it returns, and
// returns what tgkill returned (0 or -errno).
extern "C" long signal_test_raise_at(uint64_t sp, long tgid, long tid, long sig);
// The same with a fault (ud2: SIGILL) at sp, and with a spin at sp until a
// timer's signal comes (unblocking the signals in *unblock first, so that
// none comes before the stack pointer is there). Neither returns.
extern "C" void signal_test_fault_at(uint64_t sp);
extern "C" void signal_test_spin_at(uint64_t sp, const uint64_t* unblock);
asm(R"(
        .text
        .type signal_test_raise_at, @function
signal_test_raise_at:
        push %rbx
        mov %rsp, %rbx
        mov %rdi, %rsp
        mov %rsi, %rdi
        mov %rdx, %rsi
        mov %rcx, %rdx
        mov $234, %eax
        syscall
        mov %rbx, %rsp
        pop %rbx
        ret
        .size signal_test_raise_at, . - signal_test_raise_at
        .type signal_test_fault_at, @function
signal_test_fault_at:
        mov %rdi, %rsp
        ud2
        .size signal_test_fault_at, . - signal_test_fault_at
        .type signal_test_spin_at, @function
signal_test_spin_at:
        mov %rdi, %rsp
        mov $1, %edi
        xor %edx, %edx
        mov $8, %r10d
        mov $14, %eax
        syscall
1:      jmp 1b
        .size signal_test_spin_at, . - signal_test_spin_at
)");

namespace {

using cordon::testing::ChildOutcome;
using cordon::testing::Evidence;
using cordon::testing::ExpectLockdownRefused;
using cordon::testing::ExpectNotLeaked;
using cordon::testing::ExposeToJudge;
using cordon::testing::JudgeAttack;
using cordon::testing::KernelBefore612;
using cordon::testing::kJudgeSecretSize;
using cordon::testing::kSegvPkuErr;
using cordon::testing::LoadJudgeSecret;
using cordon::testing::LockdownRefusalFor;
using cordon::testing::OnlyFaultSignalsHaveHandlers;
using cordon::testing::Verdict;

const uint8_t* g_secret = nullptr;
int g_trusted_key = 0;

bool FramesGoToAltstacks() {
  return cordon::gates::Config().signal_altstack != 0;
}

void SetUpChild() {
  CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
  g_secret = LoadJudgeSecret();
  g_trusted_key = cordon_domain_pkey(cordon_trusted_domain());
  fprintf(stderr, "trusted key %d\n", g_trusted_key);
  printf("kernel writes %s\n",
         FramesGoToAltstacks() ? "frames to altstacks" : "frames under the interrupted PKRU");
  fflush(stdout);
}

void Lock() {
  cordon::testing::LockDownForAttack(CORDON_VIOLATION_ERRNO_FOR_TESTS);
}

void ExpectNoLeak(const Verdict& v) {
  cordon::testing::ExpectNotLeaked(v);
  EXPECT_EQ(v.outcome.err.find("secret reached"), std::string::npos) << v.outcome.err;
}

// ---- Forged sigreturn frames ----

enum Forge : int {
  kStandard,            // PKRU 0 at the standard offset, XSTATE_BV bit 9 set
  kCompacted,           // XCOMP_BV bit 63: PKRU 0 at the compacted offset
  kPkruBitClear,        // XSTATE_BV bit 9 clear: PKRU's initial value is 0
  kBogusSoftwareBytes,  // magic, sizes and features that select the legacy-only restore
  kFpregsElsewhere,     // fpregs at a compacted area of the attacker's
  kReservedHeader,      // reserved header bytes set (XRSTOR faults)
  kBadMxcsr,            // reserved MXCSR bits set (XRSTOR faults)
  kNoFpregs,            // fpregs NULL
};
std::atomic<int> g_forge{kStandard};
alignas(64) unsigned char g_elsewhere[64 * 1024];

uint64_t Xcr0() {
  uint32_t eax, edx;
  asm volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t{edx} << 32) | eax;
}

unsigned StandardPkruOffset() {
  unsigned eax, ebx, ecx, edx;
  __cpuid_count(0xd, 9, eax, ebx, ecx, edx);
  return ebx;
}

// Where XRSTOR reads PKRU in the compacted form for the components in
// xcomp (SDM vol. 1, 13.4.3): after the legacy area and the header, each
// present component in order, 64-byte aligned where CPUID 0xD says so.
unsigned CompactedPkruOffset(uint64_t xcomp) {
  unsigned offset = 576;
  for (unsigned i = 2; i <= 9; ++i) {
    if (((xcomp >> i) & 1) == 0) continue;
    unsigned eax, ebx, ecx, edx;
    __cpuid_count(0xd, i, eax, ebx, ecx, edx);
    if ((ecx & 2) != 0) offset = (offset + 63) & ~63u;
    if (i == 9) return offset;
    offset += eax;
  }
  return 0;
}

// A compacted XSAVE area at fp: every enabled component, PKRU 0 where the
// compacted layout has it, the kernel's untrusted value left at the
// standard offset.
void MakeCompacted(unsigned char* fp) {
  const uint64_t xcomp = (Xcr0() & ~uint64_t{0}) | (uint64_t{1} << 9);
  auto& bv = *reinterpret_cast<uint64_t*>(fp + 512);
  bv = (bv | (uint64_t{1} << 9)) & xcomp;
  *reinterpret_cast<uint64_t*>(fp + 520) = xcomp | (uint64_t{1} << 63);
  *reinterpret_cast<uint32_t*>(fp + CompactedPkruOffset(xcomp)) = 0;
}

void ReadSecretAndSayIt() {
  uint8_t copy[kJudgeSecretSize];
  memcpy(copy, g_secret, sizeof copy);
  Evidence(copy, sizeof copy);
  fprintf(stderr, "secret reached\n");
  _exit(3);
}

void ForgeFrame(int, siginfo_t*, void* ucv) {
  auto* uc = static_cast<ucontext_t*>(ucv);
  auto* fp = reinterpret_cast<unsigned char*>(uc->uc_mcontext.fpregs);
  CHILD_CHECK(fp != nullptr);
  auto& bv = *reinterpret_cast<uint64_t*>(fp + 512);
  auto& pkru = *reinterpret_cast<uint32_t*>(fp + StandardPkruOffset());
  switch (g_forge.load()) {
    case kStandard:
      bv |= uint64_t{1} << 9;
      pkru = 0;
      break;
    case kCompacted:
      MakeCompacted(fp);
      break;
    case kPkruBitClear:
      bv &= ~(uint64_t{1} << 9);
      pkru = 0;
      break;
    case kBogusSoftwareBytes:
      pkru = 0;
      bv |= uint64_t{1} << 9;
      *reinterpret_cast<uint32_t*>(fp + 464) = 0;        // magic1
      *reinterpret_cast<uint32_t*>(fp + 468) = 1;        // extended_size
      *reinterpret_cast<uint64_t*>(fp + 472) = 3;        // xfeatures: x87 and SSE only
      *reinterpret_cast<uint32_t*>(fp + 480) = 0xfffff;  // xstate_size
      break;
    case kFpregsElsewhere:
      memcpy(g_elsewhere, fp, 4096);
      MakeCompacted(g_elsewhere);
      *reinterpret_cast<uint32_t*>(g_elsewhere + StandardPkruOffset()) = 0;
      uc->uc_mcontext.fpregs = reinterpret_cast<fpregset_t>(g_elsewhere);
      break;
    case kReservedHeader:
      pkru = 0;
      memset(fp + 528, 0xff, 48);
      break;
    case kBadMxcsr:
      pkru = 0;
      *reinterpret_cast<uint32_t*>(fp + 24) |= 0xffff0000u;
      break;
    case kNoFpregs:
      pkru = 0;
      uc->uc_mcontext.fpregs = nullptr;
      break;
  }
  uc->uc_mcontext.gregs[REG_RIP] = reinterpret_cast<greg_t>(&ReadSecretAndSayIt);
  uc->uc_mcontext.gregs[REG_RSP] &= ~greg_t{15};
  uc->uc_mcontext.gregs[REG_RSP] -= 8;
  ExposeToJudge();  // the forged frame is in untrusted memory: scanned too
}

// The handler is SIGILL's and a ud2 raises it: a fault signal, which keeps
// its handler on every kernel (docs/signals.md), so the restorer is tested
// on 6.1 too.
Verdict ForgeAndReturn(Forge forge) {
  g_forge = forge;
  return JudgeAttack([] {
    SetUpChild();
    Lock();
    struct sigaction sa {};
    sa.sa_sigaction = ForgeFrame;
    sa.sa_flags = SA_SIGINFO;
    CHILD_CHECK(cordon_sigaction(SIGILL, &sa, nullptr) == CORDON_OK);
    asm volatile("ud2" ::: "memory");
    fprintf(stderr, "the forged frame did not take effect\n");
    _exit(4);
  });
}

// The key the child's trusted domain got, as it printed it.
uint32_t TrustedKeyOf(const ChildOutcome& o) {
  const size_t at = o.err.find("trusted key ");
  return at == std::string::npos ? 0 : static_cast<uint32_t>(atoi(o.err.c_str() + at + 12));
}

// The read of the secret, where the forged frame returns to, faults on
// the trusted key: the frame came back with the untrusted PKRU.
void ExpectUntrustedReturn(const Verdict& v) {
  ExpectNoLeak(v);
  EXPECT_EQ(v.outcome.signal, SIGSEGV) << v.outcome.err;
  EXPECT_EQ(v.outcome.fault_code, kSegvPkuErr) << v.outcome.err;
  EXPECT_NE(TrustedKeyOf(v.outcome), 0u) << v.outcome.err;
  EXPECT_EQ(v.outcome.fault_pkey, TrustedKeyOf(v.outcome)) << v.outcome.err;
}

TEST(SignalForgedFrames, StandardLayout) {
  ExpectUntrustedReturn(ForgeAndReturn(kStandard));
}

// On a CPU with XSAVEC the kernel's XRSTOR from the frame would read PKRU 0
// at the compacted offset; without XSAVEC (QEMU) it would fault.
TEST(SignalForgedFrames, CompactedLayout) {
  ExpectUntrustedReturn(ForgeAndReturn(kCompacted));
}

TEST(SignalForgedFrames, PkruBitClear) {
  ExpectUntrustedReturn(ForgeAndReturn(kPkruBitClear));
}

TEST(SignalForgedFrames, BogusSoftwareBytes) {
  ExpectUntrustedReturn(ForgeAndReturn(kBogusSoftwareBytes));
}

TEST(SignalForgedFrames, FpregsPointingAtACompactedAreaElsewhere) {
  ExpectUntrustedReturn(ForgeAndReturn(kFpregsElsewhere));
}

TEST(SignalForgedFrames, ReservedHeaderBytes) {
  ExpectUntrustedReturn(ForgeAndReturn(kReservedHeader));
}

TEST(SignalForgedFrames, ReservedMxcsrBits) {
  ExpectUntrustedReturn(ForgeAndReturn(kBadMxcsr));
}

TEST(SignalForgedFrames, NoFpregs) {
  ExpectUntrustedReturn(ForgeAndReturn(kNoFpregs));
}

// ---- Frames the kernel writes wherever the stack pointer is ----

enum Target : int { kEntryTable, kDomainState, kTrustedStack, kSecretBlock };
enum How : int { kTgkill, kFault, kTimer };

// A stack pointer that makes the kernel's frame (up to a few KiB below
// it) cover the target.
uint64_t StackPointerAt(Target t) {
  const auto& d = cordon::gates::Config().domains[cordon_trusted_domain()];
  switch (t) {
    case kEntryTable:
      return d.table + 4096;
    case kDomainState:
      return d.state + 4096 + 128;
    case kTrustedStack:
      return d.records - 512;  // record 0's stack, just below the record
    case kSecretBlock:
      return reinterpret_cast<uint64_t>(g_secret) + 128 + kJudgeSecretSize;
  }
  return 0;
}

std::atomic<int> g_target{kEntryTable};
std::atomic<int> g_ordinary{0};
std::atomic<int> g_ordinary_tid{0};
std::atomic<int> g_how{kTgkill};

void NeverRuns(int, siginfo_t*, void*) {
  fprintf(stderr, "the program's handler ran\n");
}

// On a kernel before 6.12 the attack's tgkill and timer signals have no
// handler (the lockdown refused them); a handled signal there is a fault
// signal, and none can be sent: tgkill of one, at the same stack pointer,
// and a timer that names one, are refused first.
void TryTheFaultSignalsFirst(uint64_t sp, How how) {
  if (how == kTgkill) {
    for (const int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS}) {
      CHILD_CHECK(signal_test_raise_at(sp, getpid(), gettid(), sig) == -EPERM);
    }
    fprintf(stderr, "tgkill of a fault signal at trusted memory: EPERM\n");
  } else if (how == kTimer) {
    sigevent sev{};
    sev.sigev_notify = SIGEV_SIGNAL;
    timer_t timer;
    for (const int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS}) {
      sev.sigev_signo = sig;
      CHILD_DENIED(timer_create(CLOCK_MONOTONIC, &sev, &timer), EPERM);
    }
    fprintf(stderr, "a timer of a fault signal: EPERM\n");
  }
}

void PointTheStackAtTrustedMemoryAndTakeASignal() {
  const uint64_t sp = StackPointerAt(static_cast<Target>(g_target.load())) & ~uint64_t{15};
  if (OnlyFaultSignalsHaveHandlers()) TryTheFaultSignalsFirst(sp, static_cast<How>(g_how.load()));
  ExposeToJudge();  // the process does not survive the attack
  switch (g_how.load()) {
    case kTgkill:
      signal_test_raise_at(sp, getpid(), gettid(), SIGUSR1);
      break;
    case kFault:
      signal_test_fault_at(sp);
      break;
    case kTimer: {
      static const uint64_t alarm_bit = uint64_t{1} << (SIGALRM - 1);
      sigset_t block;
      sigemptyset(&block);
      sigaddset(&block, SIGALRM);
      CHILD_CHECK(sigprocmask(SIG_BLOCK, &block, nullptr) == 0);
      const itimerval every{{0, 2000}, {0, 2000}};
      CHILD_CHECK(setitimer(ITIMER_REAL, &every, nullptr) == 0);
      signal_test_spin_at(sp, &alarm_bit);
      break;
    }
  }
  fprintf(stderr, "survived the signal\n");
  _exit(5);
}

void* AttackOnANewThread(void*) {
  PointTheStackAtTrustedMemoryAndTakeASignal();
  return nullptr;
}

// The program's handlers, installed before the lockdown (which takes them
// over); the attack runs on the main thread, or on a thread made after the
// lockdown (by pthread_create, whose clone the runtime completes) as the
// very first thing it does. Before 6.12 the lockdown refuses the handlers
// of SIGUSR1 and then of SIGALRM, naming each; without them it goes ahead
// (SIGILL's stays), and cordon_sigaction() refuses them afterwards.
Verdict FrameAttack(Target target, How how, bool new_thread = false) {
  g_target = target;
  g_how = how;
  return JudgeAttack([new_thread] {
    SetUpChild();
    struct sigaction sa {};
    sa.sa_sigaction = NeverRuns;
    sa.sa_flags = SA_SIGINFO;
    for (const int sig : {SIGUSR1, SIGILL, SIGALRM}) CHILD_CHECK(sigaction(sig, &sa, nullptr) == 0);
    if (OnlyFaultSignalsHaveHandlers()) {
      for (const int sig : {SIGUSR1, SIGALRM}) {
        ExpectLockdownRefused(CORDON_VIOLATION_ERRNO_FOR_TESTS);
        CHILD_CHECK(signal(sig, SIG_DFL) != SIG_ERR);
      }
    }
    Lock();
    if (OnlyFaultSignalsHaveHandlers()) {
      for (const int sig : {SIGUSR1, SIGALRM})
        CHILD_CHECK(cordon_sigaction(sig, &sa, nullptr) == CORDON_E_LOCKED);
    }
    if (!new_thread) PointTheStackAtTrustedMemoryAndTakeASignal();
    // The timer's signal is the process's: only the attacking thread may
    // take it (it inherits the mask and unblocks it at trusted memory).
    sigset_t alarm;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    CHILD_CHECK(sigprocmask(SIG_BLOCK, &alarm, nullptr) == 0);
    pthread_t th;
    CHILD_CHECK(pthread_create(&th, nullptr, AttackOnANewThread, nullptr) == 0);
    pthread_join(th, nullptr);
  });
}

// 6.12 and later: the frame went to the runtime's alternate stack, trusted
// memory was not written, and the runtime stopped the process with this
// message. 6.1: the kernel's write of the fault's frame under the untrusted
// PKRU faulted and the kernel killed the process with SIGSEGV (it cannot
// deliver that either); the tgkill and the timer signal had no handler
// (the lockdown refused them, and fault signals could not be sent): the
// kernel ended the process with that signal and wrote no frame. Both: the
// program's handler never ran.
void ExpectStoppedBeforeTrustedMemoryChanged(const Verdict& v, int sig) {
  ExpectNoLeak(v);
  EXPECT_EQ(v.outcome.err.find("the program's handler ran"), std::string::npos) << v.outcome.err;
  EXPECT_EQ(v.outcome.err.find("survived"), std::string::npos) << v.outcome.err;
  if (!KernelBefore612()) {
    EXPECT_NE(v.out.find("frames to altstacks"), std::string::npos) << v.out;
    EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err;
    EXPECT_EQ(v.outcome.exit_code, CORDON_VIOLATION_EXIT) << v.outcome.err;
    EXPECT_NE(v.outcome.err.find("cordon: signal violation: untrusted code had its stack pointer in trusted "
                                 "memory (domain 1) when signal " +
                                 std::to_string(sig) + "\n"),
              std::string::npos)
        << v.outcome.err;
    return;
  }
  EXPECT_NE(v.out.find("frames under the interrupted PKRU"), std::string::npos) << v.out;
  const size_t usr1 = v.outcome.err.find(LockdownRefusalFor(SIGUSR1, "SIGUSR1"));
  const size_t alrm = v.outcome.err.find(LockdownRefusalFor(SIGALRM, "SIGALRM"));
  EXPECT_NE(usr1, std::string::npos) << v.outcome.err;
  EXPECT_NE(alrm, std::string::npos) << v.outcome.err;
  EXPECT_LT(usr1, alrm) << v.outcome.err;
  EXPECT_FALSE(v.outcome.exited) << v.outcome.err;
  if (sig == SIGILL) {
    EXPECT_EQ(v.outcome.signal, SIGSEGV) << v.outcome.err;
    return;
  }
  EXPECT_EQ(v.outcome.signal, sig) << v.outcome.err;
  EXPECT_NE(v.outcome.err.find(sig == SIGUSR1 ? "tgkill of a fault signal at trusted memory: EPERM\n"
                                              : "a timer of a fault signal: EPERM\n"),
            std::string::npos)
      << v.outcome.err;
}

TEST(SignalFramesAnywhere, StackAtTheEntryTable) {
  ExpectStoppedBeforeTrustedMemoryChanged(FrameAttack(kEntryTable, kTgkill), SIGUSR1);
}

TEST(SignalFramesAnywhere, StackAtTheDomainState) {
  ExpectStoppedBeforeTrustedMemoryChanged(FrameAttack(kDomainState, kTgkill), SIGUSR1);
}

TEST(SignalFramesAnywhere, StackAtATrustedStack) {
  ExpectStoppedBeforeTrustedMemoryChanged(FrameAttack(kTrustedStack, kTgkill), SIGUSR1);
}

TEST(SignalFramesAnywhere, StackAtTheSecretsHeapBlock) {
  ExpectStoppedBeforeTrustedMemoryChanged(FrameAttack(kSecretBlock, kTgkill), SIGUSR1);
}

TEST(SignalFramesAnywhere, AFaultWithTheStackAtTheEntryTable) {
  ExpectStoppedBeforeTrustedMemoryChanged(FrameAttack(kEntryTable, kFault), SIGILL);
}

TEST(SignalFramesAnywhere, ATimerWithTheStackAtTheSecretsHeapBlock) {
  ExpectStoppedBeforeTrustedMemoryChanged(FrameAttack(kSecretBlock, kTimer), SIGALRM);
}

TEST(SignalFramesAnywhere, ANewThreadAtOnce) {
  ExpectStoppedBeforeTrustedMemoryChanged(FrameAttack(kEntryTable, kTgkill, true), SIGUSR1);
}

TEST(SignalFramesAnywhere, ANewThreadWithATimer) {
  ExpectStoppedBeforeTrustedMemoryChanged(FrameAttack(kSecretBlock, kTimer, true), SIGALRM);
}

// What the runtime does for threads keeps them ordinary: threads made after
// the lockdown run, block and unblock signals, take them, and the trusted
// secret is intact afterwards (a checksum computed inside the domain).
// Before 6.12 SIGUSR2 cannot keep its handler (the lockdown refuses it, and
// it is ignored instead): blocked, it stays pending, and unblocked it is
// gone without stopping the thread. On every kernel each thread also takes
// a fault's signal (SIGILL from a ud2) in its handler and resumes after it.
uint64_t g_sum_before = 0;
std::atomic<int> g_faults{0};
uint64_t SumSecret(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < kJudgeSecretSize; ++i) h = (h ^ g_secret[i]) * 1099511628211ull;
  return h;
}

void SkipTheUd2(int, siginfo_t*, void* ucv) {
  static_cast<ucontext_t*>(ucv)->uc_mcontext.gregs[REG_RIP] += 2;
  g_faults.fetch_add(1);
}

void* BlockTakeAndUnblock(void*) {
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  CHILD_CHECK(pthread_sigmask(SIG_BLOCK, &usr2, nullptr) == 0);
  raise(SIGUSR2);
  CHILD_CHECK(g_ordinary.load() == 0);  // blocked: pending
  sigset_t now, pending;
  CHILD_CHECK(pthread_sigmask(SIG_SETMASK, nullptr, &now) == 0);
  CHILD_CHECK(sigismember(&now, SIGUSR2) == 1);
  CHILD_CHECK(sigpending(&pending) == 0 && sigismember(&pending, SIGUSR2) == 1);
  CHILD_CHECK(pthread_sigmask(SIG_UNBLOCK, &usr2, nullptr) == 0);
  CHILD_CHECK(sigpending(&pending) == 0 && sigismember(&pending, SIGUSR2) == 0);
  // Delivered when unblocked (ignored before 6.12: gone).
  CHILD_CHECK(g_ordinary.load() == (OnlyFaultSignalsHaveHandlers() ? 0 : 1));
  const int faults = g_faults.load();
  asm volatile("ud2" ::: "memory");
  CHILD_CHECK(g_faults.load() == faults + 1);
  g_ordinary_tid = static_cast<int>(gettid());
  return nullptr;
}

TEST(SignalFramesAnywhere, ThreadsMadeAfterLockdownWorkAndTheSecretIsIntact) {
  const Verdict v = JudgeAttack([] {
    SetUpChild();
    cordon_entry sum;
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), SumSecret, "sum", &sum) == CORDON_OK);
    g_sum_before = cordon_call(sum, 0, 0, 0, 0, 0);
    struct sigaction sa {};
    sa.sa_sigaction = [](int, siginfo_t*, void*) { g_ordinary.fetch_add(1); };
    sa.sa_flags = SA_SIGINFO;
    CHILD_CHECK(sigaction(SIGUSR2, &sa, nullptr) == 0);
    if (OnlyFaultSignalsHaveHandlers()) {
      ExpectLockdownRefused(CORDON_VIOLATION_ERRNO_FOR_TESTS);
      CHILD_CHECK(signal(SIGUSR2, SIG_IGN) != SIG_ERR);
    }
    sa.sa_sigaction = SkipTheUd2;
    CHILD_CHECK(sigaction(SIGILL, &sa, nullptr) == 0);
    Lock();
    for (int round = 0; round < 3; ++round) {
      g_ordinary = 0;
      pthread_t th;
      CHILD_CHECK(pthread_create(&th, nullptr, BlockTakeAndUnblock, nullptr) == 0);
      CHILD_CHECK(pthread_join(th, nullptr) == 0);
      CHILD_CHECK(g_ordinary_tid.load() != 0 && g_ordinary_tid.load() != gettid());
    }
    // On kernels that write frames anywhere SIGSYS stays unblocked (the
    // runtime's traps need it); elsewhere blocking it is the program's.
    sigset_t sys, now;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    CHILD_CHECK(sigprocmask(SIG_BLOCK, &sys, nullptr) == 0);
    CHILD_CHECK(sigprocmask(SIG_SETMASK, nullptr, &now) == 0);
    CHILD_CHECK(sigismember(&now, SIGSYS) == (FramesGoToAltstacks() ? 0 : 1));
    CHILD_CHECK(sigprocmask(SIG_UNBLOCK, &sys, nullptr) == 0);
    CHILD_CHECK(cordon_call(sum, 0, 0, 0, 0, 0) == g_sum_before);
    CHILD_CHECK(g_faults.load() == 3);
  });
  ExpectNoLeak(v);
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  if (KernelBefore612()) {
    EXPECT_NE(v.outcome.err.find(LockdownRefusalFor(SIGUSR2, "SIGUSR2")), std::string::npos) << v.outcome.err;
  }
}

// Where frames go is the runtime's: untrusted code cannot give itself an
// alternate stack (it could be trusted memory, or the runtime's own).
TEST(SignalFramesAnywhere, UntrustedCodeCannotSetAnAlternateStack) {
  const Verdict v = JudgeAttack([] {
    SetUpChild();
    Lock();
    stack_t ss{};
    ss.ss_sp = const_cast<uint8_t*>(g_secret);
    ss.ss_size = 64 * 1024;
    CHILD_DENIED(sigaltstack(&ss, nullptr), EPERM);
    stack_t cur{};
    CHILD_CHECK(sigaltstack(nullptr, &cur) == 0);  // queries stay open
    CHILD_CHECK(cur.ss_sp != g_secret);
  });
  ExpectNoLeak(v);
  EXPECT_TRUE(v.outcome.exited) << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
}

// The probe, not the version, decides; on the kernels the suite runs (6.1
// and 6.12 in the VM, 6.18 natively) it must agree with what they are
// known to do (KNOWLEDGE: 70044df250d0 in 6.12).
TEST(SignalFramesAnywhere, TheProbeMatchesTheKernel) {
  const Verdict v = JudgeAttack([] {
    SetUpChild();
    utsname u{};
    CHILD_CHECK(uname(&u) == 0);
    int major = 0, minor = 0;
    CHILD_CHECK(sscanf(u.release, "%d.%d", &major, &minor) == 2);
    const bool since_6_12 = major > 6 || (major == 6 && minor >= 12);
    CHILD_CHECK(FramesGoToAltstacks() == since_6_12);
  });
  ExpectNoLeak(v);
  EXPECT_TRUE(v.outcome.exited) << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
}

// ---- Signals before 6.12 (docs/signals.md) ----
//
// A kernel before 6.12 writes each frame with the interrupted instruction's
// PKRU, at its stack pointer. Untrusted code can jump straight to a gate's
// WRPKRU with its stack pointer aimed at trusted memory, and a signal that
// comes right then has its frame written there, with the domain's rights.
// So on such a kernel no handled signal may come at an arbitrary
// instruction: after the lockdown only SIGSEGV, SIGBUS, SIGILL and SIGFPE
// keep handlers (the kernel raises them at the faulting instruction), and
// no one may send them, or SIGSYS, by any means. These tests take that
// policy call by call, in errno mode; on 6.12 and later, where it does not
// apply, the same calls must work.

constexpr int kUnsendable[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS};
std::atomic<int> g_path{0};

enum class Path : int {
  kKill,
  kTkill,
  kTgkill,
  kSigqueueinfo,
  kTgsigqueueinfo,
  kPidfdSendSignal,
  kParentDeathSignal,
  kFcntlSetsig,
  kTiocsig,
  kCloneExitSignal,
  kTimerCreate,
  kMqNotify,
};

const char* PathName(Path p) {
  switch (p) {
    case Path::kKill:
      return "kill";
    case Path::kTkill:
      return "tkill";
    case Path::kTgkill:
      return "tgkill";
    case Path::kSigqueueinfo:
      return "rt_sigqueueinfo";
    case Path::kTgsigqueueinfo:
      return "rt_tgsigqueueinfo";
    case Path::kPidfdSendSignal:
      return "pidfd_send_signal";
    case Path::kParentDeathSignal:
      return "prctl(PR_SET_PDEATHSIG)";
    case Path::kFcntlSetsig:
      return "fcntl(F_SETSIG)";
    case Path::kTiocsig:
      return "ioctl(TIOCSIG)";
    case Path::kCloneExitSignal:
      return "clone exit signal";
    case Path::kTimerCreate:
      return "timer_create";
    case Path::kMqNotify:
      return "mq_notify";
  }
  return "?";
}

// What the paths need: a pidfd of this process, a pseudo-terminal master
// (TIOCSIG), made after the lockdown; a message queue (unlinked at once),
// made before it (after it mq_open fails with EACCES).
struct Means {
  int pidfd = -1;
  int ptm = -1;
  mqd_t mq = -1;
};

mqd_t MakeQueue() {
  const std::string name = "/cordon-signals-" + std::to_string(getpid());
  mq_attr attr{};
  attr.mq_maxmsg = 1;
  attr.mq_msgsize = 8;
  const mqd_t mq = mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
  CHILD_CHECK(mq != static_cast<mqd_t>(-1));
  CHILD_CHECK(mq_unlink(name.c_str()) == 0);
  return mq;
}

Means MakeMeans(mqd_t mq) {
  Means m;
  m.mq = mq;
  m.pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  CHILD_CHECK(m.pidfd >= 0);
  m.ptm = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  CHILD_CHECK(m.ptm >= 0);
  return m;
}

long Result(long r) {
  return r == -1 ? -errno : r;
}

// A fork-like clone with this exit signal, whose child exits at once; the
// child is reaped. Returns 0, or -errno.
long CloneWithExitSignal(int sig) {
  const long pid = cordon::testing::RawCloneAndExit(SYS_clone, static_cast<unsigned long>(sig));
  if (pid < 0) return pid;
  int status = 0;
  CHILD_CHECK(waitpid(static_cast<pid_t>(pid), &status, __WALL) == pid);
  CHILD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return 0;
}

constexpr int kNothing = INT32_MIN;
constexpr long kNotMade = 1;  // SendBy's result when the call was not made

// The si_code of sig if it is pending or arrives within ms (it is blocked),
// taking it; else kNothing.
int Arrived(int sig, long ms) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  const timespec wait{ms / 1000, (ms % 1000) * 1000000};
  siginfo_t info{};
  // Not glibc's sigtimedwait(), which reports SI_TKILL as SI_USER.
  const int got = static_cast<int>(syscall(SYS_rt_sigtimedwait, &set, &info, &wait, 8));
  if (got < 0) {
    CHILD_CHECK(errno == EAGAIN);
    return kNothing;
  }
  CHILD_CHECK(got == sig);
  return info.si_code;
}

// The timer SendBy made, deleted by DoneWith after its signal was taken
// (deleting it can take back its pending signal).
timer_t g_timer;
bool g_timer_made = false;

void DoneWith(Path p) {
  if (p != Path::kTimerCreate || !g_timer_made) return;
  const timespec expired{0, 20 * 1000 * 1000};  // for a signal not looked at
  nanosleep(&expired, nullptr);
  CHILD_CHECK(timer_delete(g_timer) == 0);
  g_timer_made = false;
}

// Sends sig by path p, or sets it up to come and makes it come (p's event:
// a child's exit, input on a descriptor, a timer's expiry, a message).
// Returns the call that names the signal's result (0 or -errno, as the
// kernel or the filter gives it); *code is the si_code the signal comes
// with, kNothing if the path sends none. With arm false, the event that
// would send it is not made to happen.
long SendBy(Path p, int sig, const Means& m, bool arm, int* code) {
  siginfo_t si{};
  si.si_signo = sig;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  *code = kNothing;
  switch (p) {
    case Path::kKill:
      *code = SI_USER;
      return Result(kill(getpid(), sig));
    case Path::kTkill:
      *code = SI_TKILL;
      return Result(syscall(SYS_tkill, gettid(), sig));
    case Path::kTgkill:
      *code = SI_TKILL;
      return Result(syscall(SYS_tgkill, getpid(), gettid(), sig));
    case Path::kSigqueueinfo:
      *code = SI_QUEUE;
      return Result(syscall(SYS_rt_sigqueueinfo, getpid(), sig, &si));
    case Path::kTgsigqueueinfo:
      *code = SI_QUEUE;
      return Result(syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), sig, &si));
    case Path::kPidfdSendSignal:
      *code = SI_USER;
      return Result(syscall(SYS_pidfd_send_signal, m.pidfd, sig, nullptr, 0));
    case Path::kParentDeathSignal: {
      // Comes only when the parent (the judge) dies: the setting is looked at.
      const long r = Result(prctl(PR_SET_PDEATHSIG, sig));
      int now = -1;
      CHILD_CHECK(prctl(PR_GET_PDEATHSIG, &now) == 0);
      CHILD_CHECK(now == (r == 0 ? sig : 0));
      CHILD_CHECK(prctl(PR_SET_PDEATHSIG, 0) == 0);
      return r;
    }
    case Path::kFcntlSetsig: {
      // The descriptor's owner gets the signal when input arrives (O_ASYNC);
      // without F_SETSIG it would be SIGIO, which is ignored here.
      int pipe_fds[2];
      CHILD_CHECK(pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) == 0);
      CHILD_CHECK(fcntl(pipe_fds[0], F_SETOWN, getpid()) == 0);
      const long r = Result(fcntl(pipe_fds[0], F_SETSIG, sig));
      CHILD_CHECK(fcntl(pipe_fds[0], F_GETSIG) == (r == 0 ? sig : 0));
      if (arm) {
        // POLL_IN, but SI_SIGIO for a signal whose si_codes mean something
        // else (every one of kUnsendable).
        *code = SI_SIGIO;
        CHILD_CHECK(fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK | O_ASYNC) == 0);
        CHILD_CHECK(write(pipe_fds[1], "x", 1) == 1);
      }
      close(pipe_fds[0]);
      close(pipe_fds[1]);
      return r;
    }
    case Path::kTiocsig:
      // To the slave's foreground process group, of which there is none:
      // nothing comes, whatever the signal.
      return Result(ioctl(m.ptm, TIOCSIG, sig));
    case Path::kCloneExitSignal:
      if (!arm) return kNotMade;
      *code = CLD_EXITED;
      return CloneWithExitSignal(sig);
    case Path::kTimerCreate: {
      sigevent sev{};
      sev.sigev_notify = SIGEV_SIGNAL;
      sev.sigev_signo = sig;
      const long r = Result(timer_create(CLOCK_MONOTONIC, &sev, &g_timer));
      if (r == 0) {
        *code = SI_TIMER;
        g_timer_made = true;
        const itimerspec once{{0, 0}, {0, 1000 * 1000}};
        CHILD_CHECK(timer_settime(g_timer, 0, &once, nullptr) == 0);
      }
      return r;
    }
    case Path::kMqNotify: {
      sigevent sev{};
      sev.sigev_notify = SIGEV_SIGNAL;
      sev.sigev_signo = sig;
      const long r = Result(mq_notify(m.mq, &sev));
      // A message into the empty queue: the registration, if any, fires.
      CHILD_CHECK(mq_send(m.mq, "x", 1, 0) == 0);
      char msg[8];
      CHILD_CHECK(mq_receive(m.mq, msg, sizeof msg, nullptr) == 1);
      if (r == 0) *code = SI_MESGQ;
      CHILD_CHECK(mq_notify(m.mq, nullptr) == 0);  // removing one (none is left) is no signal
      return r;
    }
  }
  return -EINVAL;
}

// The kernel's own answer where the filter lets the call through.
long AllowedResult(Path p) {
  return p == Path::kTiocsig ? -EINVAL : 0;  // a pty sends only SIGINT, SIGQUIT and SIGTSTP
}

void BlockSignals(std::initializer_list<int> sigs) {
  sigset_t set;
  sigemptyset(&set);
  for (const int sig : sigs) sigaddset(&set, sig);
  CHILD_CHECK(sigprocmask(SIG_BLOCK, &set, nullptr) == 0);
}

// Every signal of kUnsendable by path p, in errno mode, each blocked so
// that what the call sent stays pending and is looked at. Before 6.12: EPERM
// and nothing sent. Since 6.12: the kernel's result, and the signal comes
// with the path's si_code. (There SIGSYS cannot be blocked: the runtime
// needs it for its traps, and its handler passes over a SIGSYS that no trap
// sent. Only a child's exit is not made for SIGSYS there: the exit signal
// comes with si_code CLD_EXITED, 1, SYS_SECCOMP's value, and the runtime
// takes it for a trap and stops the process.)
Verdict SendEachUnsendableSignal(Path p) {
  g_path = static_cast<int>(p);
  return JudgeAttack([] {
    SetUpChild();
    const mqd_t mq = MakeQueue();
    Lock();
    const auto path = static_cast<Path>(g_path.load());
    const bool refused = OnlyFaultSignalsHaveHandlers();
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    CHILD_CHECK(cordon_sigaction(SIGIO, &ign, nullptr) == CORDON_OK);
    const Means means = MakeMeans(mq);
    BlockSignals({SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS});
    sigset_t mask;
    CHILD_CHECK(sigprocmask(SIG_SETMASK, nullptr, &mask) == 0);
    CHILD_CHECK(sigismember(&mask, SIGSYS) == (refused ? 1 : 0));
    for (const int sig : kUnsendable) {
      const bool observed = sigismember(&mask, sig) == 1;
      const bool arm = observed || path != Path::kCloneExitSignal;
      int code = kNothing;
      const long r = SendBy(path, sig, means, arm, &code);
      if (refused) {
        CHILD_CHECK(r == -EPERM);
        CHILD_CHECK(Arrived(sig, 20) == kNothing);
      } else if (r != kNotMade) {
        CHILD_CHECK(r == AllowedResult(path));
        if (observed) {
          const int got = Arrived(sig, code == kNothing ? 20 : 2000);
          if (got != code)
            fprintf(stderr, "%s: signal %d came with si_code %d, not %d\n", PathName(path), sig, got, code);
          CHILD_CHECK(got == code);
        }
      }
      DoneWith(path);
      printf("%s %s: %s\n", PathName(path), sigabbrev_np(sig),
             refused         ? "EPERM"
             : r == kNotMade ? "not made"
                             : "allowed");
    }
  });
}

// The child said, for each signal of kUnsendable, that the path refused it
// (before 6.12) or let it through, and ended well.
void ExpectEachSignal(const Verdict& v, Path p) {
  ExpectNoLeak(v);
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  for (const int sig : kUnsendable) {
    const bool not_made = !KernelBefore612() && sig == SIGSYS && p == Path::kCloneExitSignal;
    const std::string line = std::string(PathName(p)) + " " + sigabbrev_np(sig) + ": " +
                             (KernelBefore612() ? "EPERM"
                              : not_made        ? "not made"
                                                : "allowed") +
                             "\n";
    EXPECT_NE(v.out.find(line), std::string::npos) << line << v.out;
  }
}

TEST(SignalsBefore612, Kill) {
  ExpectEachSignal(SendEachUnsendableSignal(Path::kKill), Path::kKill);
}

TEST(SignalsBefore612, Tkill) {
  ExpectEachSignal(SendEachUnsendableSignal(Path::kTkill), Path::kTkill);
}

TEST(SignalsBefore612, Tgkill) {
  ExpectEachSignal(SendEachUnsendableSignal(Path::kTgkill), Path::kTgkill);
}

TEST(SignalsBefore612, RtSigqueueinfo) {
  ExpectEachSignal(SendEachUnsendableSignal(Path::kSigqueueinfo), Path::kSigqueueinfo);
}

TEST(SignalsBefore612, RtTgsigqueueinfo) {
  ExpectEachSignal(SendEachUnsendableSignal(Path::kTgsigqueueinfo), Path::kTgsigqueueinfo);
}

TEST(SignalsBefore612, PidfdSendSignal) {
  ExpectEachSignal(SendEachUnsendableSignal(Path::kPidfdSendSignal), Path::kPidfdSendSignal);
}

TEST(SignalsBefore612, ParentDeathSignal) {
  ExpectEachSignal(SendEachUnsendableSignal(Path::kParentDeathSignal), Path::kParentDeathSignal);
}

TEST(SignalsBefore612, FcntlSetsig) {
  ExpectEachSignal(SendEachUnsendableSignal(Path::kFcntlSetsig), Path::kFcntlSetsig);
}

TEST(SignalsBefore612, Tiocsig) {
  ExpectEachSignal(SendEachUnsendableSignal(Path::kTiocsig), Path::kTiocsig);
}

TEST(SignalsBefore612, CloneExitSignal) {
  ExpectEachSignal(SendEachUnsendableSignal(Path::kCloneExitSignal), Path::kCloneExitSignal);
}

TEST(SignalsBefore612, TimerCreate) {
  ExpectEachSignal(SendEachUnsendableSignal(Path::kTimerCreate), Path::kTimerCreate);
}

TEST(SignalsBefore612, MqNotify) {
  ExpectEachSignal(SendEachUnsendableSignal(Path::kMqNotify), Path::kMqNotify);
}

// The same paths with SIGUSR1, which has no handler (ignored: SIG_IGN,
// set before the lockdown, which leaves it so), on every kernel: each is
// allowed and the signal comes (blocked, it stays pending and is taken
// here); the ioctl's kernel answer for a signal a pty does not send is
// EINVAL, and SIGINT, which it does send, is allowed. Before 6.12 a timer
// or a message queue notification with a sigevent is refused whatever its
// signal (seccomp cannot read the sigevent), and so is glibc's
// timer_create() always; without one (a timer's SIGALRM, removing a
// notification) the system call works on every kernel. And
// unblocked SIGUSR1, ignored, is sent too.
bool NeedsASigevent(Path p) {
  return p == Path::kTimerCreate || p == Path::kMqNotify;
}

TEST(SignalsBefore612, AnIgnoredSignalIsSentByEveryPath) {
  const Verdict v = JudgeAttack([] {
    SetUpChild();
    const mqd_t mq = MakeQueue();
    CHILD_CHECK(signal(SIGUSR1, SIG_IGN) != SIG_ERR);
    Lock();
    struct sigaction now {};
    CHILD_CHECK(sigaction(SIGUSR1, nullptr, &now) == 0);
    CHILD_CHECK(now.sa_handler == SIG_IGN);
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    CHILD_CHECK(cordon_sigaction(SIGIO, &ign, nullptr) == CORDON_OK);
    const Means means = MakeMeans(mq);
    CHILD_CHECK(kill(getpid(), SIGUSR1) == 0);  // ignored: nothing happens
    BlockSignals({SIGUSR1});
    for (int p = 0; p <= static_cast<int>(Path::kMqNotify); ++p) {
      const auto path = static_cast<Path>(p);
      int code = kNothing;
      const long r = SendBy(path, SIGUSR1, means, true, &code);
      if (OnlyFaultSignalsHaveHandlers() && NeedsASigevent(path)) {
        CHILD_CHECK(r == -EPERM);
        CHILD_CHECK(Arrived(SIGUSR1, 20) == kNothing);
        printf("%s SIGUSR1: EPERM\n", PathName(path));
        continue;
      }
      CHILD_CHECK(r == AllowedResult(path));
      // SIGUSR1 has no si_codes of its own: O_ASYNC input says POLL_IN.
      if (path == Path::kFcntlSetsig) code = POLL_IN;
      CHILD_CHECK(Arrived(SIGUSR1, code == kNothing ? 20 : 2000) == code);
      DoneWith(path);
      printf("%s SIGUSR1: allowed\n", PathName(path));
    }
    int code = kNothing;
    CHILD_CHECK(SendBy(Path::kTiocsig, SIGINT, means, true, &code) == 0);
    // The system call: glibc's timer_create() passes a sigevent of its own
    // for a null one, which is refused before 6.12 too.
    int timer = -1;
    CHILD_CHECK(syscall(SYS_timer_create, CLOCK_MONOTONIC, nullptr, &timer) == 0);  // SIGALRM
    CHILD_CHECK(syscall(SYS_timer_delete, timer) == 0);
    CHILD_CHECK(mq_notify(mq, nullptr) == 0);
  });
  ExpectNoLeak(v);
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  for (int p = 0; p <= static_cast<int>(Path::kMqNotify); ++p) {
    const auto path = static_cast<Path>(p);
    const bool refused = KernelBefore612() && NeedsASigevent(path);
    const std::string line =
        std::string(PathName(path)) + " SIGUSR1: " + (refused ? "EPERM" : "allowed") + "\n";
    EXPECT_NE(v.out.find(line), std::string::npos) << line << v.out;
  }
}

// In the default mode a refused send is a violation like any other.
TEST(SignalsBefore612, SendingAFaultSignalIsAViolationInKillMode) {
  const Verdict v = JudgeAttack([] {
    SetUpChild();
    cordon::testing::LockDownForAttack(CORDON_VIOLATION_KILL);
    struct sigaction sa {};
    sa.sa_sigaction = [](int, siginfo_t*, void*) { g_ordinary.fetch_add(1); };
    sa.sa_flags = SA_SIGINFO;
    CHILD_CHECK(cordon_sigaction(SIGILL, &sa, nullptr) == CORDON_OK);
    ExposeToJudge();
    syscall(SYS_tgkill, getpid(), gettid(), SIGILL);
    CHILD_CHECK(g_ordinary.load() == 1);
    printf("SIGILL sent and handled\n");
  });
  ExpectNoLeak(v);
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err;
  if (KernelBefore612()) {
    EXPECT_EQ(v.outcome.exit_code, CORDON_VIOLATION_EXIT) << v.outcome.err;
    EXPECT_NE(v.outcome.err.find("cordon: lockdown violation: system call tgkill (234)"), std::string::npos)
        << v.outcome.err;
    EXPECT_EQ(v.out.find("SIGILL sent"), std::string::npos) << v.out;
  } else {
    EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
    EXPECT_NE(v.out.find("SIGILL sent and handled\n"), std::string::npos) << v.out;
  }
}

// ---- Which handlers a process keeps ----

extern "C" void cordon_signal_entry(int, siginfo_t*, void*);

// The kernel's handler for sig (glibc's sigaction() refuses 32 and 33).
uint64_t KernelHandler(int sig) {
  struct {
    uint64_t handler, flags, restorer, mask;
  } k{};
  CHILD_CHECK(syscall(SYS_rt_sigaction, sig, nullptr, &k, 8) == 0);
  return k.handler;
}

// A handler as glibc installs its own for 32 and 33.
constexpr uint64_t kSaRestorer = 0x04000000;  // SA_RESTORER: the kernel's, not in glibc's headers
void InstallGlibcLike(int sig) {
  struct {
    uint64_t handler, flags, restorer, mask;
  } k{};
  k.handler = reinterpret_cast<uint64_t>(&NeverRuns);
  k.flags = SA_SIGINFO | kSaRestorer | SA_RESTART;
  k.restorer = reinterpret_cast<uint64_t>(&NeverRuns);  // never delivered
  CHILD_CHECK(syscall(SYS_rt_sigaction, sig, &k, nullptr, 8) == 0);
}

// Before 6.12 the lockdown refuses while a signal other than the four
// fault signals has a handler, and names it: SIGUSR1, then (once SIGUSR1 is
// ignored instead) the real-time SIGRTMIN; without them it goes ahead,
// keeping the fault signals' handlers and an ignored SIGUSR1, and resets
// glibc's 32 and 33 to their default. Since 6.12 it takes every handler
// over, 32 and 33 included.
TEST(SignalsBefore612, TheLockdownKeepsHandlersOfFaultSignalsOnly) {
  const Verdict v = JudgeAttack([] {
    SetUpChild();
    struct sigaction sa {};
    sa.sa_sigaction = NeverRuns;
    sa.sa_flags = SA_SIGINFO;
    for (const int sig : {SIGUSR1, SIGRTMIN, SIGBUS, SIGILL, SIGFPE})
      CHILD_CHECK(sigaction(sig, &sa, nullptr) == 0);
    InstallGlibcLike(32);
    InstallGlibcLike(33);
    const auto entry = reinterpret_cast<uint64_t>(&cordon_signal_entry);
    if (OnlyFaultSignalsHaveHandlers()) {
      ExpectLockdownRefused(CORDON_VIOLATION_ERRNO_FOR_TESTS);
      CHILD_CHECK(KernelHandler(SIGUSR1) == reinterpret_cast<uint64_t>(&NeverRuns));  // as it was
      CHILD_CHECK(signal(SIGUSR1, SIG_IGN) != SIG_ERR);
      ExpectLockdownRefused(CORDON_VIOLATION_ERRNO_FOR_TESTS);
      CHILD_CHECK(signal(SIGRTMIN, SIG_DFL) != SIG_ERR);
      Lock();
      CHILD_CHECK(KernelHandler(32) == reinterpret_cast<uint64_t>(SIG_DFL));
      CHILD_CHECK(KernelHandler(33) == reinterpret_cast<uint64_t>(SIG_DFL));
      CHILD_CHECK(KernelHandler(SIGUSR1) == reinterpret_cast<uint64_t>(SIG_IGN));
      CHILD_CHECK(KernelHandler(SIGRTMIN) == reinterpret_cast<uint64_t>(SIG_DFL));
    } else {
      Lock();
      for (const int sig : {SIGUSR1, SIGRTMIN, 32, 33}) CHILD_CHECK(KernelHandler(sig) == entry);
    }
    for (const int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE}) CHILD_CHECK(KernelHandler(sig) == entry);
    printf("locked down\n");
  });
  ExpectNoLeak(v);
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  EXPECT_NE(v.out.find("locked down\n"), std::string::npos) << v.out;
  const size_t usr1 = v.outcome.err.find(LockdownRefusalFor(SIGUSR1, "SIGUSR1"));
  const size_t rt = v.outcome.err.find(LockdownRefusalFor(34, "real-time"));
  if (KernelBefore612()) {
    EXPECT_NE(usr1, std::string::npos) << v.outcome.err;
    EXPECT_NE(rt, std::string::npos) << v.outcome.err;
    EXPECT_LT(usr1, rt) << v.outcome.err;
  } else {
    EXPECT_EQ(v.outcome.err.find("refused"), std::string::npos) << v.outcome.err;
  }
}

// After the lockdown, before 6.12, cordon_sigaction() gives a handler only
// to the fault signals: any other signal's is CORDON_E_LOCKED and leaves its
// action as it was, while SIG_DFL and SIG_IGN still work. Since 6.12 every
// signal may have one. On both, the signals it never takes stay refused.
TEST(SignalsBefore612, AfterTheLockdownHandlersAreForFaultSignalsOnly) {
  const Verdict v = JudgeAttack([] {
    SetUpChild();
    Lock();
    const bool refused = OnlyFaultSignalsHaveHandlers();
    struct sigaction handler {
    }, with_info{}, dfl{}, ign{};
    handler.sa_handler = [](int) {};
    with_info.sa_sigaction = NeverRuns;
    with_info.sa_flags = SA_SIGINFO;
    dfl.sa_handler = SIG_DFL;
    ign.sa_handler = SIG_IGN;
    int locked = 0, installed = 0;
    for (int sig = 1; sig <= 64; ++sig) {
      if (sig == SIGKILL || sig == SIGSTOP || sig == SIGSYS || sig == 32 || sig == 33) {
        CHILD_CHECK(cordon_sigaction(sig, &handler, nullptr) == CORDON_E_INVALID_ARGUMENT);
        continue;
      }
      const bool fault = sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE;
      const int expected = refused && !fault ? CORDON_E_LOCKED : CORDON_OK;
      CHILD_CHECK(cordon_sigaction(sig, &handler, nullptr) == expected);
      CHILD_CHECK(cordon_sigaction(sig, &with_info, nullptr) == expected);
      struct sigaction old {};
      CHILD_CHECK(cordon_sigaction(sig, nullptr, &old) == CORDON_OK);
      if (expected == CORDON_E_LOCKED) {
        CHILD_CHECK(old.sa_handler == SIG_DFL);
        ++locked;
      } else {
        CHILD_CHECK(old.sa_sigaction == NeverRuns);
        ++installed;
      }
      CHILD_CHECK(cordon_sigaction(sig, &ign, nullptr) == CORDON_OK);
      CHILD_CHECK(cordon_sigaction(sig, nullptr, &old) == CORDON_OK && old.sa_handler == SIG_IGN);
      CHILD_CHECK(cordon_sigaction(sig, &dfl, nullptr) == CORDON_OK);
    }
    printf("%d refused, %d installed\n", locked, installed);
  });
  ExpectNoLeak(v);
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  // 64 signals less SIGKILL, SIGSTOP, SIGSYS, 32 and 33.
  EXPECT_NE(v.out.find(KernelBefore612() ? "55 refused, 4 installed\n" : "0 refused, 59 installed\n"),
            std::string::npos)
      << v.out;
}

// ---- Parked frames resume in order (6.12 and later) ----
// A frame parked for domain 2's interrupted code, then one parked for
// domain 3's (entered from the first handler): only the innermost may
// resume. A handler that resumes the outer one first (a jump to
// cordon_signal_resume_2) would give the thread its whole alternate stack
// back while domain 3's record still names a frame there, which a later
// frame could replace (tests/redteam/resume_out_of_order.c replayed trusted
// code that way and read the secret). Before 6.12 no such handler can
// exist after the lockdown: cordon_sigaction() says so.
std::atomic<int> g_park_in[2];
std::atomic<int> g_park_phase{0};
std::atomic<long> g_park_tid{0};
cordon_entry g_park_spin2, g_park_spin3;

// Spins for 5 s (long enough for the signals), then returns.
uint64_t ParkSpin(uint64_t in, uint64_t, uint64_t, uint64_t, uint64_t) {
  reinterpret_cast<std::atomic<int>*>(in)->store(1);
  timespec start{}, now{};
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &start);
  do {
    __builtin_ia32_pause();
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &now);
  } while (now.tv_sec - start.tv_sec < 5);
  return 0;
}

void OnParkSignal(int) {
  if (g_park_phase.exchange(1) == 0) {
    (void)cordon_call(g_park_spin3, reinterpret_cast<uint64_t>(&g_park_in[1]), 0, 0, 0, 0);
    return;
  }
  // Domain 3 parked too: resume domain 2's frame first.
  __asm__ volatile("jmp cordon_signal_resume_2");
}

TEST(ParkedFrames, OnlyTheInnermostParkedFrameResumes) {
  cordon::testing::AuditRecordMayBeMissing(
      "a death decided while the thread is inside another domain than the trusted one");
  const Verdict v = JudgeAttack([] {
    cordon_options o;
    cordon_options_init(&o);
    CHILD_CHECK(cordon_init(&o) == CORDON_OK);
    (void)LoadJudgeSecret();
    cordon_domain_t d2, d3;
    CHILD_CHECK(cordon_domain_create("two", &d2) == CORDON_OK && d2 == 2);
    CHILD_CHECK(cordon_domain_create("three", &d3) == CORDON_OK && d3 == 3);
    CHILD_CHECK(cordon_register(d2, ParkSpin, "spin2", &g_park_spin2) == CORDON_OK);
    CHILD_CHECK(cordon_register(d3, ParkSpin, "spin3", &g_park_spin3) == CORDON_OK);
    struct sigaction sa {};
    sa.sa_handler = OnParkSignal;
    sa.sa_flags = SA_NODEFER;
    if (!KernelBefore612()) CHILD_CHECK(cordon_sigaction(SIGUSR1, &sa, nullptr) == CORDON_OK);
    cordon::testing::LockDownForAttack(CORDON_VIOLATION_KILL);
    if (OnlyFaultSignalsHaveHandlers()) {
      CHILD_CHECK(cordon_sigaction(SIGUSR1, &sa, nullptr) == CORDON_E_LOCKED);
      printf("refused before 6.12\n");
      fflush(stdout);
      return;
    }
    g_park_tid.store(syscall(SYS_gettid));
    pthread_t th;
    CHILD_CHECK(pthread_create(
                    &th, nullptr,
                    [](void*) -> void* {
                      for (int i = 0; i < 2; ++i) {
                        while (g_park_in[i].load() == 0) {
                        }
                        syscall(SYS_tgkill, getpid(), g_park_tid.load(), SIGUSR1);
                      }
                      return nullptr;
                    },
                    nullptr) == 0);
    ExposeToJudge();
    (void)cordon_call(g_park_spin2, reinterpret_cast<uint64_t>(&g_park_in[0]), 0, 0, 0, 0);
    printf("domain 2 returned\n");
    fflush(stdout);
  });
  if (v.out.find("refused before 6.12") != std::string::npos) {
    EXPECT_TRUE(KernelBefore612());
    EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == 0) << v.outcome.err;
    return;
  }
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err << v.out;
  EXPECT_EQ(v.outcome.exit_code, CORDON_VIOLATION_EXIT) << v.outcome.err << v.out;
  EXPECT_NE(v.outcome.err.find("return from a signal handler that this thread does not have in progress"),
            std::string::npos)
      << v.outcome.err;
  EXPECT_EQ(v.out.find("domain 2 returned"), std::string::npos) << v.out;
  ExpectNotLeaked(v);
}

}  // namespace
