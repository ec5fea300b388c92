// Signals in a gate's windows, judged from outside (docs/signals.md, "The
// gate's windows"). Untrusted code may jump straight to a gate with any
// stack pointer; between the gate's WRPKRU and its stack switch (and back)
// the thread then holds the domain's rights on that stack pointer. A
// kernel that writes a signal frame with the interrupted PKRU at the
// interrupted stack pointer (before 6.12) would write it into trusted
// memory just below it, with register values the attacker chose.
//
// The attack: a page tagged with the trusted domain's key holds a copy of
// the judge's secret, and the untrusted page just above it holds the
// return address; the attacking thread calls through the gate again and
// again with its stack pointer 64 bytes above the trusted page (a frame
// would cover its top 4 KiB), while another thread floods it with
// signals. Trusted code then checks the page byte for byte. (From 6.12,
// further up: see below.)
//  - 6.12 and later: the program's handler runs (frames go to the
//    runtime's alternate stacks); the test counts the signals that landed
//    in the gate itself, and goes on until enough did.
//  - Before 6.12: the handler is refused (only faults may have one), the
//    flood's signal has no handler (no frame at all), and no signal that
//    may keep a handler can be sent: each way to send one is denied.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "cordon/cordon.h"
#include "runtime/gates/gate_config.h"
#include "tests/support/child.h"
#include "tests/support/judge.h"
#include "tests/support/signal_policy.h"

// window_call(sp, id, gate): calls the gate for entry id with the stack
// pointer at sp, the gate's return address stored at sp, and returns the
// gate's result once the gate's ret has come back to it.
extern "C" uint64_t window_call(uint64_t sp, uint64_t id, uint64_t gate);
asm(R"(
        .text
        .type window_call, @function
window_call:
        push %rbx
        push %rbp
        push %r12
        push %r13
        push %r14
        push %r15
        mov %rsp, %rbx
        lea 1f(%rip), %rax
        mov %rax, (%rdi)
        mov %rsi, %r9
        mov %rdi, %rsp
        jmp *%rdx
1:      mov %rbx, %rsp
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %rbp
        pop %rbx
        ret
        .size window_call, . - window_call
)");

namespace {

using cordon::testing::JudgeAttack;
using cordon::testing::kJudgeSecretSize;
using cordon::testing::LoadJudgeSecret;
using cordon::testing::Verdict;

constexpr size_t kPage = 4096;

const uint8_t* g_secret = nullptr;
unsigned char* g_pages = nullptr;  // [trusted page][3 untrusted pages]
cordon_entry g_fill, g_check, g_nop;
std::atomic<int> g_attacker_tid{0};
std::atomic<bool> g_stop{false};
std::atomic<long> g_delivered{0};
std::atomic<long> g_in_gate{0};
uint64_t g_gate = 0;

bool FramesGoToAltstacks() {
  return !cordon::testing::OnlyFaultSignalsHaveHandlers();
}

// Trusted: fills the trusted page with the secret, over and over.
uint64_t Fill(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  for (size_t i = 0; i < kPage; i += kJudgeSecretSize) memcpy(g_pages + i, g_secret, kJudgeSecretSize);
  return 0;
}
// Trusted: 1 when the trusted page still holds exactly that.
uint64_t Check(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  for (size_t i = 0; i < kPage; i += kJudgeSecretSize) {
    if (memcmp(g_pages + i, g_secret, kJudgeSecretSize) != 0) return 0;
  }
  return 1;
}
uint64_t Nop(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return 42;
}

// The program's handler (6.12 and later): counts, and notes the signals
// whose frame says they interrupted the gate (its window, rewound to the
// gate's PKRU load).
void OnSignal(int, siginfo_t*, void* ucv) {
  g_delivered.fetch_add(1, std::memory_order_relaxed);
  const auto* uc = static_cast<const ucontext_t*>(ucv);
  const auto rip = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RIP]);
  if (rip >= g_gate && rip < g_gate + 512) g_in_gate.fetch_add(1, std::memory_order_relaxed);
}

enum Flood : int { kTgkill, kTimer };

void* FloodTheAttacker(void* arg) {
  const int how = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  while (g_attacker_tid.load() == 0) {
  }
  if (how == kTimer) {
    // A fast timer, taken by the attacker alone (the others block it).
    const itimerval every{{0, 200}, {0, 200}};
    CHILD_CHECK(setitimer(ITIMER_REAL, &every, nullptr) == 0);
    while (!g_stop.load()) usleep(1000);
    const itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    return nullptr;
  }
  while (!g_stop.load()) syscall(SYS_tgkill, getpid(), g_attacker_tid.load(), SIGUSR1);
  return nullptr;
}

// The child: set-up, lockdown, then the attack; prints what it saw.
void Attack(Flood how) {
  CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
  g_secret = LoadJudgeSecret();
  const cordon_domain_t d = cordon_trusted_domain();
  void* pages = mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHILD_CHECK(pages != MAP_FAILED);
  g_pages = static_cast<unsigned char*>(pages);
  CHILD_CHECK(pkey_mprotect(g_pages, kPage, PROT_READ | PROT_WRITE, cordon_domain_pkey(d)) == 0);
  CHILD_CHECK(cordon_register(d, Fill, "fill", &g_fill) == CORDON_OK);
  CHILD_CHECK(cordon_register(d, Check, "check", &g_check) == CORDON_OK);
  CHILD_CHECK(cordon_register(d, Nop, "nop", &g_nop) == CORDON_OK);
  CHILD_CHECK(cordon_call(g_fill, 0, 0, 0, 0, 0) == 0);
  g_gate = reinterpret_cast<uint64_t>(cordon::gates::GateFor(d));
  const int sig = how == kTimer ? SIGALRM : SIGUSR1;
  struct sigaction sa {};
  sa.sa_sigaction = OnSignal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  const bool altstacks = FramesGoToAltstacks();
  if (altstacks) {
    CHILD_CHECK(cordon_sigaction(sig, &sa, nullptr) == CORDON_OK);
  } else {
    // Ignored: a signal with neither handler nor default action, which
    // the flood may send as much as it likes.
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    CHILD_CHECK(cordon_sigaction(sig, &ign, nullptr) == CORDON_OK);
  }
  cordon::testing::LockDownForAttack(CORDON_VIOLATION_ERRNO_FOR_TESTS);
  if (!altstacks) {
    // The handler the attack would need is refused now.
    CHILD_CHECK(cordon_sigaction(sig, &sa, nullptr) == CORDON_E_LOCKED);
    // And no signal that may keep a handler here can be sent.
    for (const int fault : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS}) {
      CHILD_DENIED(syscall(SYS_tgkill, getpid(), gettid(), fault), EPERM);
    }
    printf("handlers refused, fault signals unsendable\n");
  }
  // The attacker is attached to the domain (a record of its own), and the
  // other threads leave the timer's signal to it.
  CHILD_CHECK(cordon_call(g_nop, 0, 0, 0, 0, 0) == 42);
  sigset_t alarm;
  sigemptyset(&alarm);
  sigaddset(&alarm, SIGALRM);
  CHILD_CHECK(pthread_sigmask(SIG_BLOCK, &alarm, nullptr) == 0);
  pthread_t flood;
  CHILD_CHECK(pthread_create(&flood, nullptr, FloodTheAttacker, reinterpret_cast<void*>(intptr_t{how})) == 0);
  CHILD_CHECK(pthread_sigmask(SIG_UNBLOCK, &alarm, nullptr) == 0);
  g_attacker_tid = static_cast<int>(gettid());

  // Before 6.12, 64 bytes above the trusted page: a frame written at the
  // stack pointer would cover its top. From 6.12 the runtime copies each
  // frame from its alternate stack to below the interrupted stack pointer
  // (and stops the process when that memory is not all untrusted): room
  // for that copy, so that the calls go on and the signals that land in
  // the gate can be counted.
  const uint64_t sp = reinterpret_cast<uint64_t>(altstacks ? g_pages + 4 * kPage - 64 : g_pages + kPage + 64);
  long calls = 0;
  const time_t deadline = time(nullptr) + 60;
  // At least 20000 calls; on 6.12 until 20 signals have landed in the gate.
  while (calls < 20000 || (altstacks && g_in_gate.load() < 20 && time(nullptr) < deadline)) {
    CHILD_CHECK(window_call(sp, g_nop.id, g_gate) == 42);
    ++calls;
  }
  g_stop = true;
  pthread_join(flood, nullptr);
  const bool intact = cordon_call(g_check, 0, 0, 0, 0, 0) == 1;
  printf("calls %ld, delivered %ld, in the gate %ld, trusted page %s\n", calls, g_delivered.load(),
         g_in_gate.load(), intact ? "intact" : "CHANGED");
  fflush(stdout);
  CHILD_CHECK(intact);
  if (altstacks) CHILD_CHECK(g_in_gate.load() >= 20);
}

void ExpectTrustedPageIntact(const Verdict& v) {
  cordon::testing::ExpectNotLeaked(v);
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << " si_code " << v.outcome.fault_code
                                << " si_pkey " << v.outcome.fault_pkey << " at " << std::hex
                                << v.outcome.fault_addr << std::dec << "\n"
                                << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.out << v.outcome.err;
  EXPECT_NE(v.out.find("trusted page intact"), std::string::npos) << v.out << v.outcome.err;
  if (v.out.find("handlers refused") == std::string::npos) {
    EXPECT_EQ(v.out.find("in the gate 0,"), std::string::npos) << v.out;
  }
}

TEST(GateWindow, SignalsSentWithTgkillNeverWriteIntoTrustedMemory) {
  ExpectTrustedPageIntact(JudgeAttack([] { Attack(kTgkill); }));
}

TEST(GateWindow, ATimersSignalsNeverWriteIntoTrustedMemory) {
  ExpectTrustedPageIntact(JudgeAttack([] { Attack(kTimer); }));
}

// Child side: the lockdown in errno mode, and what came of it on stdout.
void TryLockdownAndSay() {
  cordon_lockdown_options o;
  cordon_lockdown_options_init(&o);
  o.violation = CORDON_VIOLATION_ERRNO_FOR_TESTS;
  const int s = cordon_lockdown_ex(&o);
  printf("lockdown %d, frames %s\n", s,
         FramesGoToAltstacks() ? "to altstacks" : "under the interrupted PKRU");
  fflush(stdout);
}

// Test side: before 6.12 TryLockdownAndSay() was refused with message on
// stderr; from 6.12 on it succeeded.
void ExpectRefusedOnlyBefore612(const Verdict& v, const std::string& message) {
  cordon::testing::ExpectNotLeaked(v);
  EXPECT_TRUE(v.outcome.exited) << message << "\n" << v.outcome.err;
  if (v.out.find("frames to altstacks") != std::string::npos) {
    EXPECT_NE(v.out.find("lockdown 0,"), std::string::npos) << message << "\n" << v.out << v.outcome.err;
  } else {
    EXPECT_NE(v.out.find("lockdown " + std::to_string(CORDON_E_LOCKDOWN_FAILED) + ","), std::string::npos)
        << message << "\n"
        << v.out << v.outcome.err;
    EXPECT_NE(v.outcome.err.find(message), std::string::npos) << v.outcome.err;
  }
}

// Before 6.12, a handler for a signal that is not a fault makes the
// lockdown refuse, and says why; 6.12 and later take it over.
TEST(GateWindow, AHandlerThatCouldLandInAWindowIsRefusedBefore612) {
  const Verdict v = JudgeAttack([] {
    CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
    LoadJudgeSecret();
    cordon::testing::ReportFaultsOnTheCurrentStack();
    struct sigaction sa {};
    sa.sa_sigaction = OnSignal;
    sa.sa_flags = SA_SIGINFO;
    CHILD_CHECK(sigaction(SIGUSR2, &sa, nullptr) == 0);
    TryLockdownAndSay();
  });
  ExpectRefusedOnlyBefore612(v,
                             "signal 12 (SIGUSR2) has a handler, and on this kernel (signal frames "
                             "written with the interrupted code's protection-key rights, Linux before "
                             "6.12) only SIGSEGV, SIGBUS, SIGILL and SIGFPE may have handlers after "
                             "lockdown");
}

// The bytes after a gate's WRPKRU are what makes it sound: unmapped,
// made non-executable or replaced, they would fault with the domain's
// rights on the caller's stack pointer; zeroed (MADV_DONTNEED or MADV_FREE
// on the private copy the lockdown runs), they would slide into whatever
// code follows with those rights. After lockdown no memory call may touch
// any code, nor the read-only data (relocated function pointers included)
// of a file with code; other memory stays the program's.
TEST(GateWindow, CodeAndItsReadOnlyDataCannotBeUnmappedChangedOrZeroed) {
  const Verdict v = JudgeAttack([] {
    CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
    LoadJudgeSecret();
    cordon::testing::LockDownForAttack(CORDON_VIOLATION_ERRNO_FOR_TESTS);
    const auto page_of = [](const void* p) {
      return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{kPage - 1});
    };
    void* gate = page_of(reinterpret_cast<void*>(cordon::gates::GateFor(cordon_trusted_domain())));
    void* libc = page_of(reinterpret_cast<void*>(&memcpy));
    // This program's relocated read-only data: the page holding the
    // address of a libc function that it calls.
    static void* (*const volatile kCopy)(void*, const void*, size_t) = &memcpy;
    void* relro = page_of(const_cast<void*>(reinterpret_cast<const volatile void*>(&kCopy)));
    int refused = 0;
    for (void* page : {gate, static_cast<void*>(static_cast<unsigned char*>(gate) + kPage), libc, relro}) {
      CHILD_DENIED(munmap(page, kPage), EPERM);
      CHILD_DENIED(mprotect(page, kPage, PROT_READ | PROT_WRITE), EPERM);
      CHILD_DENIED(mprotect(page, kPage, PROT_NONE), EPERM);
      CHILD_DENIED(madvise(page, kPage, MADV_DONTNEED), EPERM);
      CHILD_DENIED(madvise(page, kPage, MADV_FREE), EPERM);
      // From below, reaching into it by one byte.
      CHILD_DENIED(munmap(static_cast<unsigned char*>(page) - 16 * kPage, 15 * kPage + 1), EPERM);
      errno = 0;
      CHILD_CHECK(mmap(page, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
                      MAP_FAILED &&
                  errno == EPERM);
      refused += 7;
    }
    // Other memory is the program's own.
    void* mine = mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(mine != MAP_FAILED);
    CHILD_CHECK(madvise(mine, kPage, MADV_DONTNEED) == 0);
    CHILD_CHECK(mprotect(mine, kPage, PROT_READ) == 0);
    CHILD_CHECK(mmap(mine, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == mine);
    CHILD_CHECK(munmap(mine, 4 * kPage) == 0);
    printf("refused %d\n", refused);
  });
  cordon::testing::ExpectNotLeaked(v);
  EXPECT_TRUE(v.outcome.exited) << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  EXPECT_NE(v.out.find("refused 28"), std::string::npos) << v.out << v.outcome.err;
}

// The read-only data of every file with code is a private copy after
// lockdown, like the code: a page of a MAP_PRIVATE file mapping that was
// never written shows whatever the file holds now, and the file's owner
// (root, for libc) could change the constants and switch tables trusted
// code reads. And Syscall User Dispatch, which would turn any system call
// instruction into a SIGSYS there (a gate's fatal path included), is refused.
TEST(GateWindow, NothingThatRunsOrIsReadOnlyFollowsAFileAndNoSyscallUserDispatch) {
  const Verdict v = JudgeAttack([] {
    CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
    LoadJudgeSecret();
    cordon::testing::LockDownForAttack(CORDON_VIOLATION_ERRNO_FOR_TESTS);
    FILE* maps = fopen("/proc/self/maps", "re");
    CHILD_CHECK(maps != nullptr);
    char line[4096];
    int file_backed_read_only = 0, lines = 0;
    while (fgets(line, sizeof line, maps) != nullptr) {
      ++lines;
      char perms[8] = {};
      int path_at = 0;
      if (sscanf(line, "%*x-%*x %7s %*x %*s %*s %n", perms, &path_at) < 1 || path_at == 0) continue;
      if (line[path_at] == '/' && perms[1] != 'w') {
        fprintf(stderr, "still mapped from its file: %s", line);
        ++file_backed_read_only;
      }
    }
    fclose(maps);
    CHILD_CHECK(lines > 10);
    CHILD_CHECK(file_backed_read_only == 0);
    char selector = 0;
    CHILD_DENIED(prctl(59 /* PR_SET_SYSCALL_USER_DISPATCH */, 1 /* ON */, 0, 0, &selector), EPERM);
    // Nor tagged addresses, which the memory rules would not recognise.
    CHILD_DENIED(syscall(SYS_arch_prctl, 0x4002 /* ARCH_ENABLE_TAGGED_ADDR */, 6), EPERM);
    printf("private and no dispatch\n");
  });
  cordon::testing::ExpectNotLeaked(v);
  EXPECT_TRUE(v.outcome.exited) << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  EXPECT_NE(v.out.find("private and no dispatch"), std::string::npos) << v.out << v.outcome.err;
}

// Before 6.12 the fault signals may come only from a faulting instruction:
// a source that set-up left armed (a parent-death signal, a POSIX timer, a
// descriptor's F_SETSIG signal, a message queue's notification, a child's
// exit signal) makes the lockdown refuse, naming it. 6.12 and later keep
// them.
enum Source : int { kPdeath, kPosixTimer, kSetsig, kMqueue, kChild };
std::atomic<int> g_source{kPdeath};
long g_child = 0;

TEST(GateWindow, FaultSignalSourcesLeftBySetUpAreRefusedBefore612) {
  const std::pair<Source, std::string> cases[] = {
      {kPdeath, "the parent-death signal is 4"},
      {kPosixTimer, "a POSIX timer delivers signal 7"},
      {kSetsig, "delivers signal 11 (F_SETSIG)"},
      {kMqueue, "notifies with signal 8"},
      {kChild, "has exit signal 31"},
  };
  for (const auto& [source, message] : cases) {
    g_source = source;
    const Verdict v = JudgeAttack([] {
      CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
      LoadJudgeSecret();
      cordon::testing::ReportFaultsOnTheCurrentStack();
      switch (g_source.load()) {
        case kPdeath:
          CHILD_CHECK(prctl(PR_SET_PDEATHSIG, SIGILL) == 0);
          break;
        case kPosixTimer: {
          sigevent ev{};
          ev.sigev_notify = SIGEV_SIGNAL;
          ev.sigev_signo = SIGBUS;
          timer_t t;
          CHILD_CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t) == 0);
          break;
        }
        case kSetsig: {
          int p[2];
          CHILD_CHECK(pipe(p) == 0);
          CHILD_CHECK(fcntl(p[0], F_SETSIG, SIGSEGV) == 0);
          break;
        }
        case kMqueue: {
          mq_attr attr{};
          attr.mq_maxmsg = 1;
          attr.mq_msgsize = 8;
          char name[64];
          snprintf(name, sizeof name, "/cordon-test-%d", getpid());
          const mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
          CHILD_CHECK(q != static_cast<mqd_t>(-1));
          mq_unlink(name);
          sigevent ev{};
          ev.sigev_notify = SIGEV_SIGNAL;
          ev.sigev_signo = SIGFPE;
          CHILD_CHECK(mq_notify(q, &ev) == 0);
          break;
        }
        case kChild: {
          // A child without capabilities (the lockdown refuses others) whose
          // exit would send this process SIGSYS.
          int ready[2];
          CHILD_CHECK(pipe(ready) == 0);
          g_child = syscall(SYS_clone, SIGSYS, 0, 0, 0, 0);
          CHILD_CHECK(g_child >= 0);
          if (g_child == 0) {
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || setresgid(65534, 65534, 65534) != 0 ||
                setresuid(65534, 65534, 65534) != 0) {
              _exit(2);
            }
            (void)!write(ready[1], "r", 1);
            // Outlives this test's process quietly: no descriptor of its
            // output kept open, and gone a minute later (reparented by
            // then, so its exit signal is an ordinary SIGCHLD).
            for (int fd = 0; fd < 1024; ++fd) close(fd);
            alarm(60);
            pause();
            _exit(0);
          }
          char c;
          CHILD_CHECK(read(ready[0], &c, 1) == 1);
          break;
        }
      }
      TryLockdownAndSay();
    });
    ExpectRefusedOnlyBefore612(v, message);
  }
}

}  // namespace
