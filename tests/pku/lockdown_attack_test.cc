// Attacks on a locked-down process, one per class (docs/lockdown.md). Each
// child sets up a trusted secret, calls cordon_lockdown_ex() and then acts
// as untrusted code with full control of its own thread: it tries to read
// the secret, or to get executable memory it chose, by one route. A test
// passes only if the route is closed in the stated way (which errno, or
// which signal or exit status) and the secret never reached the child.
#include <cpuid.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "cordon/cordon.h"
#include "runtime/domains/domain.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/smaps.h"
#include "runtime/policy/memory_guard.h"
#include "tests/support/child.h"

namespace {

using cordon::testing::ChildOutcome;
using cordon::testing::kSegvPkuErr;
using cordon::testing::RunInChild;

constexpr char kSecret[] = "CORDON-SECRET-7f3a9c41d2e8b605";
constexpr size_t kSecretSize = sizeof kSecret;

// What the child knows: where the secret is (an attacker can learn that).
struct Target {
  const char* secret;
  int trusted_key;
  const char* region;
  size_t region_size;
};

uint64_t StoreSecret(uint64_t dst, uint64_t, uint64_t, uint64_t, uint64_t) {
  memcpy(reinterpret_cast<void*>(dst), kSecret, kSecretSize);
  return 0;
}

// The call failed with exactly this errno.

bool Leaked(const void* buf, size_t n) {
  return memmem(buf, n, kSecret, kSecretSize - 1) != nullptr;
}

Target SetUpSecret() {
  CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
  void* p = nullptr;
  CHILD_CHECK(cordon_malloc(kSecretSize, &p) == CORDON_OK);
  cordon_entry store;
  CHILD_CHECK(cordon_register(cordon_trusted_domain(), StoreSecret, "store_secret", &store) == CORDON_OK);
  cordon_call(store, reinterpret_cast<uint64_t>(p), 0, 0, 0, 0);
  Target t{static_cast<const char*>(p), cordon_domain_pkey(cordon_trusted_domain()), nullptr, 0};
  const void* region;
  CHILD_CHECK(cordon_domain_region(cordon_trusted_domain(), &region, &t.region_size) == CORDON_OK);
  t.region = static_cast<const char*>(region);
  return t;
}

void Lock(int violation) {
  cordon::testing::ReportFaultsOnTheCurrentStack();
  cordon_lockdown_options o;
  cordon_lockdown_options_init(&o);
  o.violation = violation;
  const int s = cordon_lockdown_ex(&o);
  if (s != CORDON_OK) fprintf(stderr, "lockdown: %s\n", cordon_strerror(s));
  CHILD_CHECK(s == CORDON_OK);
}

// Runs attack in a child after set-up and lockdown; the attack exits 0 when
// every route it tried was closed as expected.
ChildOutcome Attack(int violation, void (*attack)(const Target&)) {
  return RunInChild([&] {
    const Target t = SetUpSecret();
    Lock(violation);
    attack(t);
    _exit(0);
  });
}

void ExpectClosed(const ChildOutcome& o) {
  EXPECT_TRUE(o.exited) << "signal " << o.signal << "\n" << o.err;
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.err.find(kSecret), std::string::npos);
}

// A forbidden call in the default mode: the runtime's SIGSYS handler names
// it and stops the process with status 70.
void ExpectKilledFor(const ChildOutcome& o, const std::string& what) {
  EXPECT_TRUE(o.exited) << "signal " << o.signal << "\n" << o.err;
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT) << o.err;
  EXPECT_NE(o.err.find("cordon: lockdown violation: " + what), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find(kSecret), std::string::npos);
  EXPECT_EQ(o.err.find("reached"), std::string::npos) << o.err;
}

constexpr int kErrnoMode = CORDON_VIOLATION_ERRNO_FOR_TESTS;

// ---- /proc/<pid>/mem and its spellings (Landlock) ----

TEST(LockdownAttack, ProcMemIsClosedUnderEverySpelling) {
  ExpectClosed(Attack(kErrnoMode, [](const Target& t) {
    const std::string pid = std::to_string(getpid()), tid = std::to_string(gettid());
    for (const std::string& path :
         {std::string("/proc/self/mem"), std::string("/proc//self/mem"), std::string("/proc/thread-self/mem"),
          "/proc/" + pid + "/mem", "/proc/self/task/" + tid + "/mem",
          "/proc/" + pid + "/task/" + tid + "/mem", "/proc/" + tid + "/mem",
          std::string("/proc/self/root/proc/self/mem"), std::string("/proc/self/cwd/../../proc/self/mem")}) {
      for (const int flags : {O_RDONLY, O_RDWR}) {
        errno = 0;
        const int fd = open(path.c_str(), flags | O_CLOEXEC);
        if (fd >= 0) {
          char buf[64] = {};
          (void)!pread(fd, buf, sizeof buf, reinterpret_cast<off_t>(t.secret));
          fprintf(stderr, "opened %s; %s\n", path.c_str(), Leaked(buf, sizeof buf) ? "secret reached" : "");
          _exit(2);
        }
        CHILD_CHECK(errno == EACCES);
      }
    }
    // Relative to a /proc directory descriptor.
    const int proc = open("/proc", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    CHILD_CHECK(proc >= 0);
    CHILD_DENIED(openat(proc, "self/mem", O_RDONLY), EACCES);
    CHILD_DENIED(openat(proc, (pid + "/mem").c_str(), O_RDONLY), EACCES);
    // The rest of /proc/self still works.
    const int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    CHILD_CHECK(maps >= 0);
    close(maps);
  }));
}

TEST(LockdownAttack, ForeignReadsPtraceAndTheirChildrenAreRefused) {
  ExpectClosed(Attack(kErrnoMode, [](const Target& t) {
    char buf[64] = {};
    iovec local{buf, sizeof buf}, remote{const_cast<char*>(t.secret), kSecretSize};
    CHILD_DENIED(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), EPERM);
    CHILD_DENIED(process_vm_writev(getpid(), &local, 1, &remote, 1, 0), EPERM);
    CHILD_DENIED(ptrace(PTRACE_TRACEME, 0, nullptr, nullptr), EPERM);
    // fork, then ptrace the child (a copy of trusted memory) or open its mem.
    const pid_t child = fork();
    if (child == 0) {
      pause();
      _exit(0);
    }
    CHILD_CHECK(child > 0);
    CHILD_DENIED(ptrace(PTRACE_ATTACH, child, nullptr, nullptr), EPERM);
    CHILD_DENIED(ptrace(PTRACE_SEIZE, child, nullptr, nullptr), EPERM);
    CHILD_DENIED(open(("/proc/" + std::to_string(child) + "/mem").c_str(), O_RDONLY), EACCES);
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    CHILD_CHECK(!Leaked(buf, sizeof buf));
    // Core dumps: the process is not dumpable and cannot become so, and the
    // trusted region is excluded from dumps anyway.
    CHILD_CHECK(prctl(PR_GET_DUMPABLE) == 0);
    CHILD_DENIED(prctl(PR_SET_DUMPABLE, 1), EPERM);
    CHILD_DENIED(syscall(SYS_pidfd_getfd, 0, 0, 0), EPERM);
  }));
}

TEST(LockdownAttack, TrustedRegionDumpsAreExcluded) {
  ExpectClosed(Attack(kErrnoMode, [](const Target& t) {
    for (const void* p : {static_cast<const void*>(t.secret), static_cast<const void*>(t.region)}) {
      const auto m = cordon::hw::FindMapping(p);
      CHILD_CHECK(m.has_value() && m->vm_flags.find(" dd") != std::string::npos);
    }
  }));
}

// ---- Keys ----

TEST(LockdownAttack, KeysCannotBeFreedReallocatedOrMoved) {
  ExpectClosed(Attack(kErrnoMode, [](const Target& t) {
    CHILD_DENIED(syscall(SYS_pkey_free, t.trusted_key), EPERM);
    CHILD_DENIED(syscall(SYS_pkey_alloc, 0, 0), EPERM);
    void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(page != MAP_FAILED);
    CHILD_DENIED(syscall(SYS_pkey_mprotect, page, 4096, PROT_READ, 0), EPERM);
    CHILD_DENIED(syscall(SYS_pkey_mprotect, t.secret, 4096, PROT_READ, 0), EPERM);
    // Execute-only memory would move pages between keys (and to key 0).
    CHILD_DENIED(mprotect(page, 4096, PROT_EXEC), EPERM);
  }));
}

// ---- Memory calls on trusted memory and the gate config ----

TEST(LockdownAttack, MemoryCallsCannotTouchTrustedMemoryOrTheConfigPage) {
  ExpectClosed(Attack(kErrnoMode, [](const Target& t) {
    auto* secret_page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(t.secret) & ~uintptr_t{4095});
    auto* config = const_cast<void*>(static_cast<const void*>(&cordon::gates::Config()));
    for (void* p : {secret_page, static_cast<void*>(const_cast<char*>(t.region)), config}) {
      CHILD_DENIED(mprotect(p, 4096, PROT_READ | PROT_WRITE), EPERM);
      CHILD_DENIED(madvise(p, 4096, MADV_DONTNEED), EPERM);
      CHILD_DENIED(munmap(p, 4096), EPERM);
      CHILD_DENIED(
          mmap(p, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED
              ? -1
              : 0,
          EPERM);
      CHILD_DENIED(mremap(p, 4096, 8192, MREMAP_MAYMOVE) == MAP_FAILED ? -1 : 0, EPERM);
    }
    // From below, with a length that reaches it.
    CHILD_DENIED(mprotect(const_cast<char*>(t.region) - 4096, 8192, PROT_READ | PROT_WRITE), EPERM);
    CHILD_DENIED(munmap(reinterpret_cast<void*>(4096), cordon::policy::kGuard), EPERM);
    CHILD_DENIED(madvise(static_cast<char*>(config) - (64 << 20), (64 << 20) + 4096, MADV_DONTNEED), EPERM);
    // The secret is still there for trusted code, and still closed to us.
    CHILD_CHECK(cordon_domain_of(t.secret) == cordon_trusted_domain());
  }));
}

// ---- No new executable memory ----

TEST(LockdownAttack, AWritableFileCannotBeMappedExecutable) {
  const ChildOutcome o = Attack(CORDON_VIOLATION_KILL, [](const Target&) {
    char path[] = "/tmp/cordon-codeXXXXXX";
    const int fd = mkstemp(path);
    CHILD_CHECK(fd >= 0);
    const unsigned char code[4096] = {0xc3};
    CHILD_CHECK(write(fd, code, sizeof code) == static_cast<ssize_t>(sizeof code));
    (void)mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    fprintf(stderr, "mmap of a writable file as code was allowed\n");
    _exit(3);
  });
  ExpectKilledFor(o, "system call mmap (9)");
}

TEST(LockdownAttack, CodeMappedFromAFileBeforeLockdownNoLongerFollowsTheFile) {
  ExpectClosed(RunInChild([] {
    SetUpSecret();
    char path[] = "/tmp/cordon-codeXXXXXX";
    const int fd = mkstemp(path);
    CHILD_CHECK(fd >= 0);
    unsigned char code[4096];
    memset(code, 0x90, sizeof code);
    code[sizeof code - 1] = 0xc3;
    CHILD_CHECK(write(fd, code, sizeof code) == static_cast<ssize_t>(sizeof code));
    auto* mapped =
        static_cast<unsigned char*>(mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0));
    CHILD_CHECK(mapped != MAP_FAILED);
    Lock(kErrnoMode);
    // The attacker rewrites the file with a WRPKRU (kept in data here).
    static const unsigned char wrpkru[] = {0x31, 0xc9, 0x31, 0xd2, 0x31, 0xc0, 0x0f, 0x01, 0xef, 0xc3};
    CHILD_CHECK(pwrite(fd, wrpkru, sizeof wrpkru, 0) == static_cast<ssize_t>(sizeof wrpkru));
    CHILD_CHECK(memcmp(mapped, code, sizeof code) == 0);       // the code did not change
    reinterpret_cast<void (*)()>(mapped + sizeof code - 1)();  // and it still runs
    unlink(path);
  }));
}

TEST(LockdownAttack, ASharedMappingCannotBeAliasedExecutable) {
  ExpectClosed(Attack(kErrnoMode, [](const Target&) {
    const int fd = static_cast<int>(syscall(SYS_memfd_create, "alias", 0));
    CHILD_CHECK(fd >= 0 && ftruncate(fd, 4096) == 0);
    void* rw = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHILD_CHECK(rw != MAP_FAILED);
    CHILD_DENIED(mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0) == MAP_FAILED ? -1 : 0, EPERM);
    CHILD_DENIED(mprotect(rw, 4096, PROT_READ | PROT_EXEC), EPERM);
    const int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    if (shm >= 0) {
      CHILD_DENIED(shmat(shm, nullptr, SHM_EXEC) == reinterpret_cast<void*>(-1) ? -1 : 0, EPERM);
      shmctl(shm, IPC_RMID, nullptr);
    }
  }));
}

TEST(LockdownAttack, MremapCannotGlueCodePages) {
  ExpectClosed(Attack(kErrnoMode, [](const Target&) {
    // Two executable pages of this program, and a page ending in 0F 01 to
    // move in front of code that starts with EF: mremap is refused outright.
    auto* code = reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(&StoreSecret) & ~uintptr_t{4095});
    void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(page != MAP_FAILED);
    CHILD_DENIED(mremap(page, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, code - 4096) == MAP_FAILED ? -1 : 0,
                 EPERM);
    CHILD_DENIED(mremap(code, 4096, 4096, MREMAP_MAYMOVE) == MAP_FAILED ? -1 : 0, EPERM);
    // glibc's realloc of a large block falls back to copying.
    void* big = malloc(size_t{8} << 20);
    CHILD_CHECK(big != nullptr);
    memset(big, 7, size_t{8} << 20);
    big = realloc(big, size_t{32} << 20);
    CHILD_CHECK(big != nullptr && static_cast<char*>(big)[(size_t{8} << 20) - 1] == 7);
    free(big);
  }));
}

std::atomic<bool> g_stop{false};
void* WriteWrpkruForever(void* page) {
  static const unsigned char wrpkru[] = {0x0f, 0x01, 0xef};
  while (!g_stop.load()) memcpy(page, wrpkru, sizeof wrpkru);
  return nullptr;
}

TEST(LockdownAttack, ScanAndMapRacesFindNothingToRaceFor) {
  ExpectClosed(Attack(kErrnoMode, [](const Target&) {
    // A second thread writes a WRPKRU while this one asks for the page to
    // become executable: no new executable memory exists to race for.
    void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(page != MAP_FAILED);
    pthread_t writer;
    CHILD_CHECK(pthread_create(&writer, nullptr, WriteWrpkruForever, page) == 0);
    for (int i = 0; i < 1000; ++i) CHILD_DENIED(mprotect(page, 4096, PROT_READ | PROT_EXEC), EPERM);
    g_stop = true;
    pthread_join(writer, nullptr);
    // A library that changes between inspection and loading: nothing new
    // is loaded after lockdown.
    CHILD_CHECK(dlopen("libz.so.1", RTLD_NOW) == nullptr);
    CHILD_CHECK(strstr(dlerror(), "refused") != nullptr);
  }));
}

TEST(LockdownAttack, ThirtyTwoBitMprotectThroughInt80IsStopped) {
  const ChildOutcome o = Attack(CORDON_VIOLATION_KILL, [](const Target& t) {
    // i386 mprotect (125) on the secret's page, read-write.
    long ret;
    const auto page = reinterpret_cast<uintptr_t>(t.secret) & 0xfffff000u;
    asm volatile("int $0x80" : "=a"(ret) : "a"(125), "b"(page), "c"(4096), "d"(3) : "memory");
    fprintf(stderr, "int 0x80 returned %ld\n", ret);
    _exit(3);
  });
  ExpectKilledFor(o, "a 32-bit system call (int 0x80, number 125)");
}

TEST(LockdownAttack, ThirtyTwoBitCallsFailInErrnoMode) {
  ExpectClosed(Attack(kErrnoMode, [](const Target&) {
    long ret;
    asm volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory");  // i386 getpid
    CHILD_CHECK(ret == -EPERM);
  }));
}

// ---- Other routes around keys ----

TEST(LockdownAttack, KernelRoutesAroundKeysAreRefused) {
  ExpectClosed(Attack(kErrnoMode, [](const Target&) {
    CHILD_DENIED(syscall(SYS_io_uring_setup, 8, nullptr), EPERM);
    CHILD_DENIED(syscall(SYS_userfaultfd, 0), EPERM);
    CHILD_DENIED(syscall(SYS_modify_ldt, 0, nullptr, 0), EPERM);
    CHILD_DENIED(syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0), EPERM);
    CHILD_DENIED(syscall(SYS_seccomp, 0, 0, nullptr), EPERM);
    CHILD_DENIED(prctl(PR_SET_SECCOMP, 2, 0, 0, 0), EPERM);
    // The high half of an int argument is ignored by the kernel, and by the filter.
    CHILD_DENIED(syscall(SYS_prctl, (1UL << 32) | PR_SET_SECCOMP, 2, 0, 0, 0), EPERM);
    CHILD_DENIED(personality(READ_IMPLIES_EXEC), EPERM);
    CHILD_CHECK(personality(0xffffffff) != -1);
    CHILD_DENIED(open("/dev/userfaultfd", O_RDWR), EACCES);
    struct sigaction sa {};
    sa.sa_handler = SIG_IGN;
    CHILD_DENIED(sigaction(SIGSYS, &sa, nullptr), EPERM);
    char* argv[] = {nullptr};
    CHILD_DENIED(execve("/proc/self/exe", argv, argv), EPERM);
  }));
}

// rseq: an abort handler set by the untrusted side must never fire while
// trusted code runs, so no thread has an rseq area after lockdown.
void* TryRseq(void*) {
  static thread_local char area[32] __attribute__((aligned(32)));
  errno = 0;
  const long r = syscall(SYS_rseq, area, 32, 0, 0x53053053);
  return reinterpret_cast<void*>(r == -1 && errno == EPERM ? 1 : 0);
}

TEST(LockdownAttack, NoThreadHasAnRseqArea) {
  ExpectClosed(Attack(kErrnoMode, [](const Target&) {
    CHILD_CHECK(TryRseq(nullptr) != nullptr);
    pthread_t th;
    void* ok = nullptr;
    CHILD_CHECK(pthread_create(&th, nullptr, TryRseq, nullptr) == 0 && pthread_join(th, &ok) == 0);
    CHILD_CHECK(ok != nullptr);
    CHILD_CHECK(sched_getcpu() >= 0);  // glibc falls back to the system call
  }));
}

// ---- Entering trusted code other than through a gate ----

TEST(LockdownAttack, CallingARuntimeInternalDirectlyFaultsOnTheTrustedKey) {
  int key = -1;
  const ChildOutcome o = RunInChild([&] {
    const Target t = SetUpSecret();
    key = t.trusted_key;
    Lock(kErrnoMode);
    // The heap's allocator, called without its gate.
    (void)cordon::domains::HeapAllocInside(cordon_trusted_domain(), 64, 16);
    fprintf(stderr, "an internal allocator ran without the gate\n");
    _exit(3);
  });
  EXPECT_EQ(o.signal, SIGSEGV) << o.err;
  EXPECT_EQ(o.fault_code, kSegvPkuErr);
  EXPECT_EQ(o.fault_pkey, 1u);
}

// ---- Lockdown's own rules ----

TEST(LockdownAttack, ThePolicyDoesNotBreakOrdinaryWork) {
  ExpectClosed(Attack(CORDON_VIOLATION_KILL, [](const Target& t) {
    void* big = malloc(size_t{64} << 20);  // mmap and munmap
    CHILD_CHECK(big != nullptr);
    free(big);
    char path[] = "/tmp/cordon-fileXXXXXX";
    const int fd = mkstemp(path);
    CHILD_CHECK(fd >= 0 && write(fd, "x", 1) == 1);
    unlink(path);
    pthread_t th;
    CHILD_CHECK(pthread_create(
                    &th, nullptr, [](void*) -> void* { return nullptr; }, nullptr) == 0);
    CHILD_CHECK(pthread_join(th, nullptr) == 0);
    void* p = nullptr;
    CHILD_CHECK(cordon_malloc(16, &p) == CORDON_E_LOCKED);  // set-up is over
    CHILD_CHECK(cordon_domain_of(t.secret) == cordon_trusted_domain());
  }));
}

TEST(LockdownAttack, LockdownWithThreadsRunningIsRefusedAndSetUpStaysOpen) {
  ExpectClosed(RunInChild([] {
    SetUpSecret();
    pthread_t th;
    CHILD_CHECK(pthread_create(
                    &th, nullptr,
                    [](void*) -> void* {
                      pause();
                      return nullptr;
                    },
                    nullptr) == 0);
    CHILD_CHECK(cordon_lockdown() == CORDON_E_THREADS);
    CHILD_CHECK(cordon_is_locked_down() == 0);
    void* p = nullptr;
    CHILD_CHECK(cordon_malloc(16, &p) == CORDON_OK);
  }));
}

// ---- Signals (docs/signals.md) ----

extern "C" void cordon_signal_entry(int, siginfo_t*, void*);
extern "C" void cordon_signal_resume_1();

const char* g_secret = nullptr;  // where the secret is, for handlers

void ReadSecretAndSayIt() {
  char copy[kSecretSize];
  memcpy(copy, g_secret, kSecretSize);
  fprintf(stderr, "secret reached: %s\n", copy);
  _exit(3);
}

TEST(LockdownSignals, UntrustedCodeCannotSigreturnOrInstallHandlers) {
  ExpectClosed(Attack(kErrnoMode, [](const Target&) {
    // rt_sigreturn with guessed token words: refused before the kernel
    // reads any frame.
    CHILD_DENIED(syscall(SYS_rt_sigreturn, 0, 0, 0, 0, 0x1234, 0x5678), EPERM);
    struct sigaction sa {};
    sa.sa_handler = SIG_IGN;
    CHILD_DENIED(sigaction(SIGUSR1, &sa, nullptr), EPERM);
    struct sigaction old {};
    CHILD_CHECK(sigaction(SIGUSR1, nullptr, &old) == 0);  // queries stay open
    // The runtime refuses what it cannot honour.
    sa.sa_handler = [](int) {};
    sa.sa_flags = SA_ONSTACK;
    CHILD_CHECK(cordon_sigaction(SIGUSR1, &sa, nullptr) == CORDON_E_INVALID_ARGUMENT);
    sa.sa_flags = 0;
    CHILD_CHECK(cordon_sigaction(SIGSYS, &sa, nullptr) == CORDON_E_INVALID_ARGUMENT);
    CHILD_CHECK(cordon_sigaction(SIGUSR1, &sa, nullptr) == CORDON_OK);
  }));
  ExpectKilledFor(Attack(CORDON_VIOLATION_KILL, [](const Target&) { syscall(SYS_rt_sigreturn); }),
                  "system call rt_sigreturn");
  ExpectKilledFor(Attack(CORDON_VIOLATION_KILL, [](const Target&) { signal(SIGUSR1, SIG_IGN); }),
                  "system call rt_sigaction");
}

TEST(LockdownSignals, AnAlternateSignalStackIsRefusedAtLockdown) {
  ExpectClosed(RunInChild([] {
    SetUpSecret();
    static char stack[1 << 16];
    stack_t ss{};
    ss.ss_sp = stack;
    ss.ss_size = sizeof stack;
    CHILD_CHECK(sigaltstack(&ss, nullptr) == 0);
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sa.sa_flags = SA_ONSTACK;
    CHILD_CHECK(sigaction(SIGUSR2, &sa, nullptr) == 0);
    cordon::testing::ReportFaultsOnTheCurrentStack();
    CHILD_CHECK(cordon_lockdown() == CORDON_E_LOCKDOWN_FAILED);
    CHILD_CHECK(cordon_is_locked_down() == 0);  // a refusal changes nothing
  }));
}

// The handler edits the frame of the signal it got: PKRU 0 (every key
// open) and a return into code that reads the secret. The runtime's
// sigreturn path puts the untrusted PKRU back, so the read faults.
void ForgePkruAndRip(int, siginfo_t*, void* ucv) {
  auto* uc = static_cast<ucontext_t*>(ucv);
  auto* fp = reinterpret_cast<unsigned char*>(uc->uc_mcontext.fpregs);
  CHILD_CHECK(fp != nullptr);
  unsigned eax, ebx, ecx, edx;
  __cpuid_count(0xd, 9, eax, ebx, ecx, edx);
  *reinterpret_cast<uint64_t*>(fp + 512) |= uint64_t{1} << 9;
  *reinterpret_cast<uint32_t*>(fp + ebx) = 0;
  uc->uc_mcontext.gregs[REG_RIP] = reinterpret_cast<greg_t>(&ReadSecretAndSayIt);
  uc->uc_mcontext.gregs[REG_RSP] &= ~greg_t{15};
  uc->uc_mcontext.gregs[REG_RSP] -= 8;
}

TEST(LockdownSignals, AForgedFrameReturnsWithTheUntrustedPkru) {
  const ChildOutcome o = Attack(kErrnoMode, [](const Target& t) {
    g_secret = t.secret;
    struct sigaction sa {};
    sa.sa_sigaction = ForgePkruAndRip;
    sa.sa_flags = SA_SIGINFO;
    CHILD_CHECK(cordon_sigaction(SIGUSR1, &sa, nullptr) == CORDON_OK);
    raise(SIGUSR1);
    fprintf(stderr, "the forged frame did not take effect\n");
    _exit(4);
  });
  EXPECT_EQ(o.signal, SIGSEGV) << o.err;
  EXPECT_EQ(o.fault_code, kSegvPkuErr);
  EXPECT_EQ(o.fault_pkey, 1u);
  EXPECT_EQ(o.err.find("secret reached"), std::string::npos) << o.err;
}

// Trusted code that keeps secret bytes in registers for as long as it
// runs: until untrusted handlers have seen three signals that interrupted
// it. It returns a checksum the test can recompute, so a wrong resume
// (registers or stack not restored) shows.
std::atomic<int> g_trusted_hits{0};
std::atomic<int> g_untrusted_hits{0};
uint64_t g_rounds = 0;

uint64_t SpinOverSecret(uint64_t secret, uint64_t, uint64_t, uint64_t, uint64_t) {
  const auto* s = reinterpret_cast<const unsigned char*>(secret);
  uint64_t acc = 0, rounds = 0;
  while (g_trusted_hits.load(std::memory_order_relaxed) < 3 && rounds < (uint64_t{1} << 34)) {
    for (size_t i = 0; i < kSecretSize - 1; ++i) acc = acc * 31 + s[i];
    ++rounds;
  }
  g_rounds = rounds;
  return acc;
}

uint64_t Checksum(uint64_t rounds) {
  uint64_t acc = 0;
  for (uint64_t r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < kSecretSize - 1; ++i) acc = acc * 31 + static_cast<unsigned char>(kSecret[i]);
  }
  return acc;
}

void CountAndInspect(int, siginfo_t*, void* ucv) {
  auto* uc = static_cast<ucontext_t*>(ucv);
  if (uc->uc_mcontext.gregs[REG_RIP] != 0) {
    g_untrusted_hits.fetch_add(1);
    return;
  }
  // A signal that interrupted trusted code: nothing of it is visible.
  for (const greg_t r : uc->uc_mcontext.gregs) CHILD_CHECK(r == 0);
  CHILD_CHECK(uc->uc_mcontext.fpregs == nullptr);
  CHILD_CHECK(!Leaked(uc, sizeof *uc));
  CHILD_CHECK(cordon_current_domain() == CORDON_DOMAIN_UNTRUSTED);
  g_trusted_hits.fetch_add(1);
}

TEST(LockdownSignals, AHandlerOfASignalInTrustedCodeSeesNoTrustedStateAndTheCodeResumes) {
  ExpectClosed(RunInChild([] {
    const Target t = SetUpSecret();
    cordon_entry spin;
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), SpinOverSecret, "spin", &spin) == CORDON_OK);
    // Installed before lockdown with plain sigaction: the lockdown takes it over.
    struct sigaction sa {};
    sa.sa_sigaction = CountAndInspect;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    CHILD_CHECK(sigaction(SIGALRM, &sa, nullptr) == 0);
    Lock(CORDON_VIOLATION_KILL);
    const itimerval every{{0, 2000}, {0, 2000}};
    CHILD_CHECK(setitimer(ITIMER_REAL, &every, nullptr) == 0);
    const uint64_t acc = cordon_call(spin, reinterpret_cast<uint64_t>(t.secret), 0, 0, 0, 0);
    const itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    CHILD_CHECK(g_trusted_hits.load() >= 3);
    CHILD_CHECK(acc == Checksum(g_rounds));
  }));
}

// Round trips through the gates (in, and out again through a callback)
// while a timer interrupts them: signals land between a WRPKRU and its stack
// switch too, and every call must still return its own result.
uint64_t AddOne(uint64_t v, uint64_t, uint64_t, uint64_t, uint64_t) {
  return v + 1;
}
uint64_t Twice(uint64_t v, uint64_t, uint64_t, uint64_t, uint64_t) {
  return 2 * v;
}
uint64_t AddOneViaCallback(uint64_t v, uint64_t, uint64_t, uint64_t, uint64_t) {
  return cordon_call_untrusted(Twice, v, 0, 0, 0, 0) + 1;
}

TEST(LockdownSignals, GateRoundTripsWhileSignalsArriveKeepTheirResults) {
  ExpectClosed(RunInChild([] {
    SetUpSecret();
    cordon_entry add, via;
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), AddOne, "add", &add) == CORDON_OK);
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), AddOneViaCallback, "via", &via) == CORDON_OK);
    Lock(CORDON_VIOLATION_KILL);
    struct sigaction sa {};
    sa.sa_sigaction = CountAndInspect;
    sa.sa_flags = SA_SIGINFO;
    CHILD_CHECK(cordon_sigaction(SIGALRM, &sa, nullptr) == CORDON_OK);
    const itimerval every{{0, 200}, {0, 200}};
    CHILD_CHECK(setitimer(ITIMER_REAL, &every, nullptr) == 0);
    for (uint64_t i = 0; i < 20000; ++i) {
      CHILD_CHECK(cordon_call(add, i, 0, 0, 0, 0) == i + 1);
      CHILD_CHECK(cordon_call(via, i, 0, 0, 0, 0) == 2 * i + 1);
    }
    const itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    CHILD_CHECK(g_untrusted_hits.load() + g_trusted_hits.load() > 100);
  }));
}

uint64_t WriteThroughNull(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  *static_cast<volatile int*>(nullptr) = 1;
  return 0;
}

// Stopped by the runtime (not by the filter) with this message.
void ExpectStoppedWith(const ChildOutcome& o, const std::string& what) {
  EXPECT_TRUE(o.exited) << "signal " << o.signal << "\n" << o.err;
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT) << o.err;
  EXPECT_NE(o.err.find(what), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("secret reached"), std::string::npos) << o.err;
}

TEST(LockdownSignals, AFaultInTrustedCodeStopsTheProcess) {
  const ChildOutcome o = RunInChild([] {
    SetUpSecret();
    cordon_entry bad;
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), WriteThroughNull, "bad", &bad) == CORDON_OK);
    Lock(CORDON_VIOLATION_KILL);  // the fault reporter is a handler now
    cordon_call(bad, 0, 0, 0, 0, 0);
    _exit(3);
  });
  ExpectStoppedWith(o, "signal 11 (si_code 1)");
  ExpectStoppedWith(o, "a fault in trusted code is never handed to a handler");
}

TEST(LockdownSignals, JumpingIntoTheSignalPathsStops) {
  // The entry, with the stack pointer in trusted memory while this thread
  // runs no trusted code: as if the kernel had written a frame there.
  ExpectStoppedWith(Attack(CORDON_VIOLATION_KILL,
                           [](const Target& t) {
                             const char* sp = t.region + t.region_size / 2;
                             asm volatile("mov %0, %%rsp\n\tjmp cordon_signal_entry" : : "r"(sp));
                           }),
                    "signal violation: the signal handler entry was reached");
  // The resume path, with no handler in progress.
  ExpectStoppedWith(Attack(CORDON_VIOLATION_KILL, [](const Target&) { cordon_signal_resume_1(); }),
                    "return from a signal handler that this thread does not have in progress");
}

}  // namespace
