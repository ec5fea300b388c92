// Attacks on the gates and on the fatal paths (docs/gates.md), after
// cordon_lockdown(), each in a child judged from outside
// (tests/support/judge.h):
//  - forged rights at death: a thread that fails a gate check holds
//    whatever PKRU the check left; the fatal path must block every signal
//    and leave the domain before its first system call, and end the process
//    even when fd 2 is a full pipe;
//  - the kernel's deferred writes (clear_child_tid, robust futex lists,
//    clone3): none may be aimed at trusted memory or the code region;
//  - the TLS oracle: an fs base aimed at trusted words with known values;
//    the gate's behaviour may not depend on them;
//  - a failed claim of another thread's record, and a callback return
//    from another thread: neither may change or resume that thread's state.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "cordon/cordon.h"
#include "runtime/domains/domain.h"
#include "runtime/gates/gate_config.h"
#include "tests/support/audit_capture.h"
#include "tests/support/child.h"
#include "tests/support/judge.h"
#include "tests/support/signal_policy.h"

namespace {

using cordon::testing::ExpectNotLeaked;
using cordon::testing::ExposeToJudge;
using cordon::testing::JudgeAttack;
using cordon::testing::KernelBefore612;
using cordon::testing::kSegvPkuErr;
using cordon::testing::LoadJudgeSecret;
using cordon::testing::LockDownForAttack;
using cordon::testing::OnlyFaultSignalsHaveHandlers;
using cordon::testing::RawCloneAndExit;
using cordon::testing::Verdict;

constexpr int kTrusted = cordon::domains::kTrustedDomain;  // cordon_trusted_domain() after init

struct Target {
  const uint8_t* secret;
  int trusted_key;
};

// Entries registered before the lockdown (ids in untrusted memory: an
// attacker may know them).
cordon_entry g_plant, g_hold, g_call_back, g_nothing;
uint64_t* g_words;  // trusted: {1, 1000}, planted by g_plant

uint64_t Nothing(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return 0;
}

uint64_t Plant(uint64_t words, uint64_t, uint64_t, uint64_t, uint64_t) {
  auto* w = reinterpret_cast<uint64_t*>(words);
  w[0] = 1;     // a valid record index
  w[1] = 1000;  // beyond every record
  return 0;
}

// ---- State shared between the attacking threads (untrusted memory) ----
std::atomic<int> g_inside{0};    // the victim thread is where the attack needs it
std::atomic<int> g_attacked{0};  // the attacker is about to act
std::atomic<uint32_t> g_victim_index{~0u};

void Say(const char* s) {
  (void)!write(1, s, strlen(s));
}

// Trusted, on the victim thread: holds its record in use and watches its
// saved stack pointer while another thread fails to claim the record.
uint64_t Hold(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  auto* r = cordon::domains::RecordForStack(kTrusted, __builtin_frame_address(0));
  if (r == nullptr) {
    Say("no record\n");
    syscall(SYS_exit_group, 5);
  }
  const uint64_t expected = __atomic_load_n(&r->saved_rsp, __ATOMIC_ACQUIRE);
  g_inside.store(1);
  while (g_attacked.load() == 0) sched_yield();
  timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    if (__atomic_load_n(&r->saved_rsp, __ATOMIC_ACQUIRE) != expected) {
      Say("clobbered\n");
      syscall(SYS_exit_group, 4);
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 60000000L);
  Say("intact\n");
  for (;;) pause();
}

// Untrusted callback on the victim thread: stays in progress.
uint64_t WaitInCallback(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  g_inside.store(1);
  for (;;) pause();
}

// Trusted, on the victim thread: suspends its frame in a callback. Reaching
// the line after it means some thread resumed the frame.
uint64_t CallBack(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  const uint64_t got = cordon_call_untrusted(WaitInCallback, 0, 0, 0, 0, 0);
  char msg[96];
  snprintf(msg, sizeof msg, "resumed with %#llx in thread %ld\n", static_cast<unsigned long long>(got),
           static_cast<long>(syscall(SYS_gettid)));
  Say(msg);
  syscall(SYS_exit_group, 4);
  return 0;
}

Target SetUpChild() {
  cordon_options o;
  cordon_options_init(&o);
  CHILD_CHECK(cordon_init(&o) == CORDON_OK);
  Target t{LoadJudgeSecret(), cordon_domain_pkey(cordon_trusted_domain())};
  CHILD_CHECK(cordon_register(cordon_trusted_domain(), Plant, "plant", &g_plant) == CORDON_OK);
  CHILD_CHECK(cordon_register(cordon_trusted_domain(), Hold, "hold", &g_hold) == CORDON_OK);
  CHILD_CHECK(cordon_register(cordon_trusted_domain(), CallBack, "call_back", &g_call_back) == CORDON_OK);
  CHILD_CHECK(cordon_register(cordon_trusted_domain(), Nothing, "nothing", &g_nothing) == CORDON_OK);
  void* words = nullptr;
  CHILD_CHECK(cordon_malloc(2 * sizeof(uint64_t), &words) == CORDON_OK);
  g_words = static_cast<uint64_t*>(words);
  cordon_call(g_plant, reinterpret_cast<uint64_t>(words), 0, 0, 0, 0);
  return t;
}

Verdict Attack(int violation, void (*attack)(const Target&)) {
  return JudgeAttack([&] {
    const Target t = SetUpChild();
    LockDownForAttack(violation);
    attack(t);
  });
}

void ExpectStopped(const Verdict& v, const std::string& message) {
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err << v.out;
  EXPECT_EQ(v.outcome.exit_code, CORDON_VIOLATION_EXIT) << v.outcome.err << v.out;
  if (!message.empty()) EXPECT_NE(v.outcome.err.find(message), std::string::npos) << v.outcome.err;
  ExpectNotLeaked(v);
}

void ExpectPkeyFault(const Verdict& v, uintptr_t addr) {
  EXPECT_EQ(v.outcome.signal, SIGSEGV) << v.outcome.err << v.out;
  EXPECT_EQ(v.outcome.fault_code, kSegvPkuErr) << v.outcome.err;
  EXPECT_EQ(v.outcome.fault_pkey, 1u) << v.outcome.err;
  EXPECT_EQ(v.outcome.fault_addr, addr);
  ExpectNotLeaked(v);
}

uint64_t CallGate(uint64_t id) {
  return cordon::gates::GateFor(kTrusted)(0, 0, 0, 0, 0, id);
}

// Makes fd 2 a pipe that no one reads, filled to the brim: the next
// blocking write to it never returns.
void FillStderr() {
  int p[2];
  CHILD_CHECK(pipe(p) == 0);
  CHILD_CHECK(dup2(p[1], 2) == 2);
  const int flags = fcntl(2, F_GETFL);
  CHILD_CHECK(fcntl(2, F_SETFL, flags | O_NONBLOCK) == 0);
  char block[4096];
  memset(block, 'x', sizeof block);
  while (write(2, block, sizeof block) > 0) {
  }
  CHILD_CHECK(errno == EAGAIN);
  CHILD_CHECK(fcntl(2, F_SETFL, flags & ~O_NONBLOCK) == 0);
}

void StartThread(void* (*fn)(void*)) {
  pthread_t th;
  CHILD_CHECK(pthread_create(&th, nullptr, fn, nullptr) == 0);
  CHILD_CHECK(pthread_detach(th) == 0);
}

// The program's SIGUSR1 handler: says that it ran, on which thread. Before
// 6.12 SIGUSR1 cannot have one after the lockdown (only the fault signals
// may, docs/signals.md): it keeps its default action, which ends the
// process.
std::atomic<long> g_dying_tid{0};
void SayHandled(int) {
  Say("handler ran on the dying thread\n");
}

void InstallUsr1(void (*handler)(int) = SayHandled) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  CHILD_CHECK(cordon_sigaction(SIGUSR1, &sa, nullptr) ==
              (OnlyFaultSignalsHaveHandlers() ? CORDON_E_LOCKED : CORDON_OK));
}

void InstallUsr1Quiet() {
  InstallUsr1([](int) {});
}

// The survivor: after the violation, signals the dying thread, then says
// the process is still alive and ends it with status 3. Reaching that line
// means the violation did not stop the process. (Before 6.12 SIGUSR1 has
// no handler: if the process were still alive, it would end by signal 10
// instead of status 70.)
[[noreturn]] void Survive() {
  while (g_dying_tid.load() == 0) sched_yield();
  usleep(100 * 1000);
  syscall(SYS_tgkill, getpid(), g_dying_tid.load(), SIGUSR1);
  usleep(1500 * 1000);
  Say("still alive after the violation\n");
  syscall(SYS_exit_group, 3);
  __builtin_unreachable();
}

// The message cannot be written (fd 2 stays full): the fatal path drops it
// rather than block, and the process ends at once with status 70, before
// the survivor's SIGUSR1.
void ExpectEndedWhileStderrFull(const Verdict& v) {
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.out;
  EXPECT_EQ(v.outcome.exit_code, CORDON_VIOLATION_EXIT) << v.out;
  EXPECT_EQ(v.out.find("still alive"), std::string::npos) << v.out;
  EXPECT_EQ(v.out.find("handler ran"), std::string::npos) << "a signal landed on the dying thread: " << v.out;
  ExpectNotLeaked(v);
}

// ---- Fatal paths ----

// A gate entered at its first instruction with a forged TLS index fails
// its check holding the domain's rights. With fd 2 full, the old fatal path
// blocked in write(2) with those rights, signals open, while the process
// ran on.
TEST(GateFatal, ForgedIndexWithStderrFullStillEndsTheProcess) {
  cordon::testing::AuditRecordMayBeMissing(
      "a gate death with a forged record index: the recording's own entry reads the same index");
  const Verdict v = Attack(CORDON_VIOLATION_KILL, [](const Target&) {
    InstallUsr1();
    ExposeToJudge();
    FillStderr();
    StartThread([](void*) -> void* {
      g_dying_tid.store(syscall(SYS_gettid));
      cordon_tls_records[kTrusted] = 0x7000;  // no such record, and not "none yet"
      CallGate(0);
      Say("the gate returned\n");
      syscall(SYS_exit_group, 6);
      return nullptr;
    });
    Survive();
  });
  ExpectEndedWhileStderrFull(v);
}

// A jump to the entry WRPKRU with EAX = 0: PKRU 0 is loaded, the check
// fails, and the fatal path starts with every key open.
TEST(GateFatal, JumpWithPkruZeroAndStderrFullStillEndsTheProcess) {
  // Before 6.12 a new thread has not entered the trusted domain (from 6.12
  // on its alternate signal stack, a trusted record's, makes it attach).
  cordon::testing::AuditRecordMayBeMissing(
      "an assembly death of a thread that never entered the trusted domain");
  const Verdict v = Attack(CORDON_VIOLATION_KILL, [](const Target&) {
    InstallUsr1();
    ExposeToJudge();
    FillStderr();
    StartThread([](void*) -> void* {
      uintptr_t site = 0;
      for (size_t i = 0; i < cordon::gates::SiteCount(); ++i) {
        const auto s = cordon::gates::SiteAt(i);
        if (s.kind == SITE_ENTRY && s.domain == kTrusted &&
            s.wide == (cordon::gates::Config().wide_scrub != 0))
          site = s.address;
      }
      CHILD_CHECK(site != 0);
      g_dying_tid.store(syscall(SYS_gettid));
      asm volatile("xor %%ecx, %%ecx\n\txor %%edx, %%edx\n\tjmp *%0" : : "r"(site), "a"(0) : "rcx", "rdx");
      return nullptr;
    });
    Survive();
  });
  ExpectEndedWhileStderrFull(v);
}

// ---- The kernel's deferred writes ----

// clear_child_tid: the kernel writes 0 there when the thread exits, with
// the PKRU the thread dies with (a domain's, if it is killed inside one).
TEST(DeferredWrites, SetTidAddressIntoTrustedMemoryStops) {
  const Verdict v = Attack(CORDON_VIOLATION_KILL, [](const Target& t) {
    ExposeToJudge();
    syscall(SYS_set_tid_address, t.secret);
    Say("set_tid_address accepted\n");
  });
  ExpectStopped(v, "cordon: lockdown violation: system call set_tid_address (218)");
}

// The code region's header is under the trusted key too: a 4-byte zero
// there once turned a guard page into a usable block.
TEST(DeferredWrites, SetTidAddressIntoTheCodeRegionHeaderStops) {
  const Verdict v = Attack(CORDON_VIOLATION_KILL, [](const Target&) {
    const uint64_t header = cordon::gates::Config().code_start;
    CHILD_CHECK(header != 0);
    ExposeToJudge();
    syscall(SYS_set_tid_address, header + 64);
    Say("set_tid_address accepted\n");
  });
  ExpectStopped(v, "cordon: lockdown violation: system call set_tid_address (218)");
}

TEST(DeferredWrites, CloneChildCleartidIntoTrustedMemoryStops) {
  const Verdict v = Attack(CORDON_VIOLATION_KILL, [](const Target& t) {
    ExposeToJudge();
    const long pid = syscall(SYS_clone, CLONE_CHILD_CLEARTID | SIGCHLD, 0, 0, t.secret, 0);
    if (pid == 0) _exit(0);
    Say("clone accepted\n");
  });
  ExpectStopped(v, "cordon: lockdown violation: system call clone (56)");
}

TEST(DeferredWrites, CloneParentSettidIntoTheCodeRegionHeaderStops) {
  const Verdict v = Attack(CORDON_VIOLATION_KILL, [](const Target&) {
    const uint64_t header = cordon::gates::Config().code_start;
    ExposeToJudge();
    const long pid = syscall(SYS_clone, CLONE_PARENT_SETTID | SIGCHLD, 0, header + 64, 0, 0);
    if (pid == 0) _exit(0);
    Say("clone accepted\n");
  });
  ExpectStopped(v, "cordon: lockdown violation: system call clone (56)");
}

// A process sharing the address space outside the thread group would
// survive the group's death and keep running over the same trusted memory.
TEST(DeferredWrites, SharedMemoryProcessesAreRefused) {
  const Verdict v = Attack(CORDON_VIOLATION_ERRNO_FOR_TESTS, [](const Target&) {
    CHILD_CHECK(RawCloneAndExit(SYS_clone, CLONE_VM | SIGCHLD) == -EPERM);
    CHILD_CHECK(RawCloneAndExit(SYS_clone, CLONE_VM | CLONE_VFORK | SIGCHLD) == -EPERM);
    // A thread too: it would escape the runtime's thread creation (its
    // alternate signal stack, on kernels that write frames anywhere).
    CHILD_CHECK(RawCloneAndExit(SYS_clone, CLONE_VM | CLONE_VFORK | CLONE_THREAD | CLONE_SIGHAND) == -EPERM);
    CHILD_CHECK(RawCloneAndExit(SYS_vfork, 0) == -EPERM);
    // fork and threads still work.
    const pid_t pid = fork();
    if (pid == 0) _exit(7);
    int status = 0;
    CHILD_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 7);
  });
  EXPECT_TRUE(v.outcome.exited) << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  ExpectNotLeaked(v);
}

// clone3 passes the tid pointers in a struct seccomp cannot read.
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

TEST(DeferredWrites, Clone3IsUnavailable) {
  const Verdict v = Attack(CORDON_VIOLATION_KILL, [](const Target& t) {
    CloneArgs a{};
    a.flags = CLONE_CHILD_CLEARTID;
    a.child_tid = reinterpret_cast<uint64_t>(t.secret);
    a.exit_signal = SIGCHLD;
    errno = 0;
    const long pid = syscall(SYS_clone3, &a, sizeof a);
    if (pid == 0) _exit(0);
    CHILD_CHECK(pid == -1 && errno == ENOSYS);
    // And threads still start: glibc falls back to clone.
    pthread_t th;
    CHILD_CHECK(pthread_create(
                    &th, nullptr, [](void*) -> void* { return nullptr; }, nullptr) == 0);
    CHILD_CHECK(pthread_join(th, nullptr) == 0);
  });
  EXPECT_TRUE(v.outcome.exited) << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  ExpectNotLeaked(v);
}

// A robust futex list is walked at thread exit through nodes in untrusted
// memory; a node can point at any trusted word.
TEST(DeferredWrites, NoRobustListIsLeftAndNoneCanBeSet) {
  const Verdict v = Attack(CORDON_VIOLATION_KILL, [](const Target& t) {
    robust_list_head* head = nullptr;
    size_t len = 0;
    CHILD_CHECK(syscall(SYS_get_robust_list, 0, &head, &len) == 0);
    CHILD_CHECK(head == nullptr);  // the lockdown unregistered glibc's
    static robust_list_head forged;
    static robust_list node;
    node.next = &forged.list;
    forged.list.next = &node;
    forged.futex_offset = reinterpret_cast<const char*>(t.secret) - reinterpret_cast<char*>(&node);
    forged.list_op_pending = nullptr;
    CHILD_DENIED(syscall(SYS_set_robust_list, &forged, sizeof forged), EPERM);
    CHILD_CHECK(syscall(SYS_get_robust_list, 0, &head, &len) == 0);
    CHILD_CHECK(head == nullptr);
  });
  EXPECT_TRUE(v.outcome.exited) << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  ExpectNotLeaked(v);
}

// ---- The TLS oracle ----

long RawArchPrctl(long code, uint64_t addr) {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(SYS_arch_prctl), "D"(code), "S"(addr) : "rcx", "r11", "memory");
  return ret;
}

__attribute__((target("fsgsbase"))) void WriteFsBase(uint64_t base) {
  __builtin_ia32_wrfsbase64(base);
}

// fs moved so that fs:cordon_tls_records[1] is the trusted word w (the row
// the gate reads first starts 4 bytes before it), then a
// gate call. Nothing between the move and the gate touches TLS.
enum class FsWrite { kArchPrctl, kWrfsbase };
FsWrite g_fs_write;
size_t g_word;

void AimFsAndCall(const Target&) {
  uint64_t fs;
  asm volatile("mov %%fs:0, %0" : "=r"(fs));
  const uint64_t offset = reinterpret_cast<uint64_t>(&cordon_tls_records[kTrusted]) - fs;
  const uint64_t aimed = reinterpret_cast<uint64_t>(&g_words[g_word]) - offset;
  // The gate's first read through fs is the whole row of record indices,
  // from cordon_tls_records[0]: that is where the fault must be.
  char row[64];
  snprintf(row, sizeof row, "row at %#lx\n",
           static_cast<unsigned long>(reinterpret_cast<uint64_t>(&g_words[g_word]) - 4 * kTrusted));
  Say(row);
  ExposeToJudge();
  if (g_fs_write == FsWrite::kArchPrctl) {
    CHILD_CHECK(RawArchPrctl(0x1002 /* ARCH_SET_FS */, aimed) == 0);
  } else {
    WriteFsBase(aimed);
  }
  const uint64_t r = CallGate(g_nothing.id);
  if (g_fs_write == FsWrite::kArchPrctl) {
    RawArchPrctl(0x1002, fs);
  } else {
    WriteFsBase(fs);
  }
  Say(r == 0 ? "the call ran\n" : "the call failed\n");
}

void ExpectSameFaultForEveryWord(FsWrite how) {
  for (size_t word = 0; word < 2; ++word) {
    g_fs_write = how;
    g_word = word;
    cordon::testing::AuditRecordMayBeMissing("a fault of a thread whose fs base points into trusted memory");
    const Verdict v = Attack(CORDON_VIOLATION_KILL, AimFsAndCall);
    // The child's g_words is at the same address as this process's copy's
    // would be only by chance: compare with what the child faulted on.
    unsigned long row = 0;
    const size_t at = v.out.find("row at ");
    ASSERT_NE(at, std::string::npos) << v.out;
    row = std::stoul(v.out.substr(at + 7), nullptr, 16);
    ExpectPkeyFault(v, row);
    EXPECT_EQ(v.out.find("the call"), std::string::npos) << "word " << word << ": " << v.out;
    EXPECT_EQ(v.outcome.err.find("record index"), std::string::npos)
        << "word " << word << ": " << v.outcome.err;
  }
}

TEST(GateTls, FsAimedAtTrustedWordsFaultsBeforeTheEntry) {
  ExpectSameFaultForEveryWord(FsWrite::kArchPrctl);
  // WRFSBASE where the CPU and kernel allow it (HWCAP2_FSGSBASE).
  const bool wrfsbase = (getauxval(AT_HWCAP2) & 2) != 0;
  printf("fs moved with arch_prctl%s\n", wrfsbase ? " and WRFSBASE" : " (no WRFSBASE here)");
  if (wrfsbase) ExpectSameFaultForEveryWord(FsWrite::kWrfsbase);
}

// ---- Claims and returns across threads ----

void* EnterHold(void*) {
  CHILD_CHECK(cordon_call(g_nothing, 0, 0, 0, 0, 0) == 0);  // attached
  g_victim_index.store(cordon_tls_records[kTrusted]);
  cordon_call(g_hold, 0, 0, 0, 0, 0);
  return nullptr;
}

// Another thread's record is busy; a claim with its index must fail without
// writing the attacker's stack pointer into it.
TEST(GateClaim, FailedClaimLeavesTheOtherThreadsRecordAlone) {
  cordon::testing::AuditRecordMayBeMissing(
      "a gate death with a forged record index: the recording's own entry reads the same index");
  const Verdict v = Attack(CORDON_VIOLATION_KILL, [](const Target&) {
    ExposeToJudge();
    StartThread(EnterHold);
    while (g_inside.load() == 0) sched_yield();
    cordon_tls_records[kTrusted] = g_victim_index.load();
    g_attacked.store(1);
    CallGate(g_nothing.id);
    Say("the claim succeeded\n");
    syscall(SYS_exit_group, 6);
  });
  // The victim watches its record from the moment of the attack until the
  // process ends: the old claim wrote the attacker's stack pointer there at
  // once, before its fatal path. (The fatal path no longer waits on a full
  // fd 2, so the victim gets no fixed window to say "intact" in.)
  EXPECT_EQ(v.out.find("clobbered"), std::string::npos) << v.out;
  EXPECT_EQ(v.out.find("claim succeeded"), std::string::npos) << v.out;
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal;
  EXPECT_EQ(v.outcome.exit_code, CORDON_VIOLATION_EXIT) << v.out;
  EXPECT_NE(v.outcome.err.find("this thread's trusted stack is already in use"), std::string::npos)
      << v.outcome.err;
  ExpectNotLeaked(v);
}

void* EnterCallBack(void*) {
  CHILD_CHECK(cordon_call(g_nothing, 0, 0, 0, 0, 0) == 0);
  g_victim_index.store(cordon_tls_records[kTrusted]);
  cordon_call(g_call_back, 0, 0, 0, 0, 0);
  return nullptr;
}

// The callback return path, entered from another thread that aims its
// index at the victim's record: it would resume the victim's suspended
// trusted frame, on the attacker's thread, with a result of its choosing.
TEST(GateClaim, CallbackReturnFromAnotherThreadStops) {
  cordon::testing::AuditRecordMayBeMissing(
      "a gate death with a forged record index: the recording's own entry reads the same index");
  const Verdict v = Attack(CORDON_VIOLATION_KILL, [](const Target&) {
    ExposeToJudge();
    StartThread(EnterCallBack);
    while (g_inside.load() == 0) sched_yield();
    // The callback return's load: the first rewind resume point after the
    // start of the callout gate (the only one inside it).
    const auto callout = reinterpret_cast<uintptr_t>(cordon::gates::CalloutFor(kTrusted));
    uintptr_t resume = ~uintptr_t{0};
    for (size_t i = 0; i < cordon::gates::RewindCount(); ++i) {
      const auto w = cordon::gates::RewindAt(i);
      if (w.resume > callout && w.resume < resume) resume = w.resume;
    }
    CHILD_CHECK(resume != ~uintptr_t{0});
    const uint32_t index = g_victim_index.load();
    cordon_tls_records[kTrusted] = index;
    asm volatile(
        "vmovd %1, %%xmm15\n\t"
        "mov $0x1337, %%r9d\n\t"
        "mov $0x1337, %%r11d\n\t"
        "xor %%ecx, %%ecx\n\t"
        "xor %%edx, %%edx\n\t"
        "jmp *%0"
        :
        : "r"(resume), "r"(index)
        : "rcx", "rdx", "r9", "r11", "xmm15", "memory");
  });
  ExpectStopped(v, "from a thread that does not own the record");
  EXPECT_EQ(v.out.find("resumed with"), std::string::npos) << v.out;
}

// The held-claim check lets only a claim that a signal cut off continue.
// A thread in a callback has its own record in use, with its saved stack
// pointer known (here the test's trusted code hands it over, as a leak
// would): entering the gate with exactly that stack pointer must still stop,
// or the new call would run over the suspended trusted frames. (A
// regression test for .Lheld: the old XCHG claim stopped here too.)
cordon_entry g_call_back_with_saved;
uint64_t JumpWithSavedStack(uint64_t saved, uint64_t, uint64_t, uint64_t, uint64_t) {
  const auto gate = reinterpret_cast<uintptr_t>(cordon::gates::GateFor(kTrusted));
  asm volatile("mov %0, %%rsp\n\txor %%r9d, %%r9d\n\tjmp *%1" : : "r"(saved), "r"(gate) : "r9", "memory");
  return 0;
}
uint64_t CallBackWithSaved(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  auto* r = cordon::domains::RecordForStack(kTrusted, __builtin_frame_address(0));
  cordon_call_untrusted(JumpWithSavedStack, r->saved_rsp, 0, 0, 0, 0);
  Say("the callback returned\n");
  return 0;
}

TEST(GateClaim, OwnRecordInACallbackIsNoInterruptedClaim) {
  cordon::testing::AuditRecordMayBeMissing("a gate death whose trusted record is busy (in a callback)");
  const Verdict v = JudgeAttack([] {
    SetUpChild();
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), CallBackWithSaved, "call_back_with_saved",
                                &g_call_back_with_saved) == CORDON_OK);
    LockDownForAttack(CORDON_VIOLATION_KILL);
    ExposeToJudge();
    cordon_call(g_call_back_with_saved, 0, 0, 0, 0, 0);
    Say("the call returned\n");
  });
  ExpectStopped(v, "this thread's trusted stack is already in use");
  EXPECT_EQ(v.out.find("returned"), std::string::npos) << v.out;
}

// Signals while a thread calls the gate over and over: a signal between the
// claim and the stack switch resumes through the checked held-claim path,
// never into a false "nested entry". Before 6.12 SIGUSR1 cannot have a
// handler after the lockdown, and a signal that can (a fault signal)
// cannot be sent: the other thread's tgkill of each is refused (errno mode)
// all the while, and the calls go on.
std::atomic<long> g_sends{0};

TEST(GateClaim, SignalsDuringGateCallsNeverStopTheProcess) {
  const int violation = KernelBefore612() ? CORDON_VIOLATION_ERRNO_FOR_TESTS : CORDON_VIOLATION_KILL;
  const Verdict v = Attack(violation, [](const Target&) {
    InstallUsr1Quiet();
    static std::atomic<long> caller{0};
    static std::atomic<int> done{0};
    caller.store(syscall(SYS_gettid));
    StartThread([](void*) -> void* {
      while (done.load() == 0) {
        if (!OnlyFaultSignalsHaveHandlers()) {
          syscall(SYS_tgkill, getpid(), caller.load(), SIGUSR1);
        } else {
          for (const int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS}) {
            CHILD_DENIED(syscall(SYS_tgkill, getpid(), caller.load(), sig), EPERM);
          }
        }
        g_sends.fetch_add(1);
        sched_yield();
      }
      return nullptr;
    });
    // Natively 20000 calls take about 2 ms, which the sender may spend
    // being scheduled: the calls go on until it has sent 100 signals too.
    for (long i = 0; i < 20000 || (g_sends.load() < 100 && i < 50000000); ++i) {
      CHILD_CHECK(CallGate(g_nothing.id) == 0);
    }
    done.store(1);
    CHILD_CHECK(g_sends.load() >= 100);
  });
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  ExpectNotLeaked(v);
}

// The entry table is read-only from the lockdown on: a write of trusted
// code into it (the write primitive a confused trusted function would give)
// faults, and the process stops, instead of adding an entry point.
uint64_t WriteWord(uint64_t at, uint64_t value, uint64_t, uint64_t, uint64_t) {
  *reinterpret_cast<volatile uint64_t*>(at) = value;
  return 0;
}
cordon_entry g_write_word;

TEST(GateTable, TheEntryTableIsReadOnlyAfterTheLockdown) {
  const Verdict v = JudgeAttack([] {
    (void)SetUpChild();
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), WriteWord, "write_word", &g_write_word) ==
                CORDON_OK);
    const uint64_t table = cordon::gates::Config().domains[kTrusted].table;
    // Before the lockdown the table takes the write (slot 1000 is unused).
    CHILD_CHECK(cordon_call(g_write_word, table + 8 * 1000, reinterpret_cast<uint64_t>(&Nothing), 0, 0, 0) ==
                0);
    CHILD_CHECK(cordon_call(cordon_entry{cordon_trusted_domain(), 1000}, 0, 0, 0, 0, 0) == 0);
    LockDownForAttack(CORDON_VIOLATION_KILL);
    ExposeToJudge();
    (void)cordon_call(g_write_word, table + 8 * 1001, reinterpret_cast<uint64_t>(&Nothing), 0, 0, 0);
    Say("the write into the entry table went through\n");
  });
  ExpectStopped(v, "signal 11 (si_code 2)");
  EXPECT_NE(v.outcome.err.find("in code of domain 1"), std::string::npos) << v.outcome.err;
  EXPECT_EQ(v.out.find("went through"), std::string::npos) << v.out;
}

}  // namespace
