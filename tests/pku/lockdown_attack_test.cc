// Attacks on a locked-down process, one per class (docs/lockdown.md). Each
// child takes the judge's random secret into trusted memory
// (tests/support/judge.h), calls cordon_lockdown_ex() and then acts as
// untrusted code with full control of its own thread: it tries to read the
// secret, or to get executable memory it chose, by one route. A test passes
// only if the route is closed in the stated way (which errno, or which signal
// or exit status) and the judge, from outside the child, found the secret in
// none of its untrusted memory, its output or what it read.
#include <asm/ldt.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "cordon/cordon.h"
#include "runtime/domains/domain.h"
#include "runtime/gates/gate_config.h"
#include "runtime/hardware/memory_guard.h"
#include "runtime/hardware/smaps.h"
#include "runtime/inspector/patterns.h"
#include "tests/support/child.h"
#include "tests/support/judge.h"
#include "tests/support/signal_policy.h"

namespace {

using cordon::testing::Evidence;
using cordon::testing::ExpectLockdownRefused;
using cordon::testing::ExpectNotLeaked;
using cordon::testing::ExposeToJudge;
using cordon::testing::JudgeAttack;
using cordon::testing::KernelBefore612;
using cordon::testing::kJudgeSecretSize;
using cordon::testing::kSegvPkuErr;
using cordon::testing::LoadJudgeSecret;
using cordon::testing::LockDownForAttack;
using cordon::testing::LockdownRefusalFor;
using cordon::testing::OnlyFaultSignalsHaveHandlers;
using cordon::testing::Verdict;

// What the child knows: where the secret is (an attacker can learn that).
struct Target {
  const uint8_t* secret;
  int trusted_key;
  const char* region;
  size_t region_size;
};

Target SetUpSecret() {
  CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
  Target t{LoadJudgeSecret(), cordon_domain_pkey(cordon_trusted_domain()), nullptr, 0};
  const void* region;
  CHILD_CHECK(cordon_domain_region(cordon_trusted_domain(), &region, &t.region_size) == CORDON_OK);
  t.region = static_cast<const char*>(region);
  return t;
}

// Runs attack in a judged child after set-up and lockdown; the attack
// returns when every route it tried was closed as expected (the judge then
// scans the child), or calls ExposeToJudge() itself before an expected death.
Verdict Attack(int violation, void (*attack)(const Target&)) {
  return JudgeAttack([&] {
    const Target t = SetUpSecret();
    LockDownForAttack(violation);
    attack(t);
  });
}

void ExpectClosed(const Verdict& v) {
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << " si_code " << v.outcome.fault_code
                                << "\n"
                                << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  ExpectNotLeaked(v);
}

// A forbidden call in the default mode: the runtime's SIGSYS handler names
// it and stops the process with status 70.
void ExpectKilledFor(const Verdict& v, const std::string& what) {
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, CORDON_VIOLATION_EXIT) << v.outcome.err;
  EXPECT_NE(v.outcome.err.find("cordon: lockdown violation: " + what), std::string::npos) << v.outcome.err;
  EXPECT_EQ(v.outcome.err.find("reached"), std::string::npos) << v.outcome.err;
  ExpectNotLeaked(v);
}

// A protection-key fault on the trusted key, reported by the child's handler.
void ExpectPkeyFault(const Verdict& v) {
  EXPECT_EQ(v.outcome.signal, SIGSEGV) << v.outcome.err;
  EXPECT_EQ(v.outcome.fault_code, kSegvPkuErr) << v.outcome.err;
  EXPECT_EQ(v.outcome.fault_pkey, 1u) << v.outcome.err;
  ExpectNotLeaked(v);
}

constexpr int kErrnoMode = CORDON_VIOLATION_ERRNO_FOR_TESTS;

// Trusted code that copies n bytes (the test's own traitor, for set-up:
// registered before lockdown, used to place the secret where a test needs it).
uint64_t CopyInside(uint64_t dst, uint64_t src, uint64_t n, uint64_t, uint64_t) {
  memcpy(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
  return 0;
}

// A byte the compiler cannot fold into an immediate: this program's own code
// must not contain the patterns it builds (programs_clean checks it).
uint8_t Opaque(uint8_t v) {
  asm volatile("" : "+r"(v));
  return v;
}

bool HasPattern(const void* p, size_t n) {
  return cordon::inspector::FirstPattern(static_cast<const uint8_t*>(p), n).has_value();
}

// ---- /proc/<pid>/mem and its spellings (Landlock) ----

TEST(LockdownAttack, ProcMemIsClosedUnderEverySpelling) {
  ExpectClosed(JudgeAttack([] {
    const Target t = SetUpSecret();
    const std::string pid = std::to_string(getpid()), tid = std::to_string(gettid());
    // Up from the real working directory to /, whatever it is (build/tests
    // natively, / in the VM).
    char cwd[PATH_MAX];
    CHILD_CHECK(getcwd(cwd, sizeof cwd) != nullptr);
    std::string up;
    for (const char* c = cwd; *c != '\0'; ++c) {
      if (*c != '/' && (c == cwd || c[-1] == '/')) up += "../";
    }
    const std::vector<std::string> paths = {"/proc/self/mem",
                                            "/proc//self/mem",
                                            "/proc/thread-self/mem",
                                            "/proc/" + pid + "/mem",
                                            "/proc/self/task/" + tid + "/mem",
                                            "/proc/" + pid + "/task/" + tid + "/mem",
                                            "/proc/" + tid + "/mem",
                                            "/proc/self/root/proc/self/mem",
                                            "/proc/self/cwd/" + up + "proc/self/mem"};
    // Each spelling names the process's or this thread's memory file: an
    // EACCES for a name that does not would prove nothing.
    struct stat process_mem {
    }, task_mem{};
    CHILD_CHECK(stat("/proc/self/mem", &process_mem) == 0);
    CHILD_CHECK(stat(("/proc/self/task/" + tid + "/mem").c_str(), &task_mem) == 0);
    for (const std::string& path : paths) {
      struct stat st {};
      CHILD_CHECK(stat(path.c_str(), &st) == 0);
      const bool same = (st.st_dev == process_mem.st_dev && st.st_ino == process_mem.st_ino) ||
                        (st.st_dev == task_mem.st_dev && st.st_ino == task_mem.st_ino);
      if (!same) {
        fprintf(stderr, "%s does not name the memory file\n", path.c_str());
        _exit(4);
      }
    }
    LockDownForAttack(kErrnoMode);
    for (const std::string& path : paths) {
      for (const int flags : {O_RDONLY, O_RDWR}) {
        errno = 0;
        const int fd = open(path.c_str(), flags | O_CLOEXEC);
        if (fd >= 0) {
          char buf[64] = {};
          (void)!pread(fd, buf, sizeof buf, reinterpret_cast<off_t>(t.secret));
          Evidence(buf, sizeof buf);
          fprintf(stderr, "opened %s\n", path.c_str());
          ExposeToJudge();
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
    iovec local{buf, sizeof buf}, remote{const_cast<uint8_t*>(t.secret), kJudgeSecretSize};
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
    Evidence(buf, sizeof buf);
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
    // A System V segment placed there (shmat takes an address too; without
    // the filter's rule the overlap would fail with EINVAL, not EPERM).
    const int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    CHILD_CHECK(shm >= 0);
    for (void* p : {secret_page, config})
      CHILD_DENIED(shmat(shm, p, 0) == reinterpret_cast<void*>(-1) ? -1 : 0, EPERM);
    shmctl(shm, IPC_RMID, nullptr);
    // From below, with a length that reaches it.
    CHILD_DENIED(mprotect(const_cast<char*>(t.region) - 4096, 8192, PROT_READ | PROT_WRITE), EPERM);
    CHILD_DENIED(munmap(reinterpret_cast<void*>(4096), cordon::hw::kGuard), EPERM);
    CHILD_DENIED(madvise(static_cast<char*>(config) - (64 << 20), (64 << 20) + 4096, MADV_DONTNEED), EPERM);
    // The secret is still there for trusted code, and still closed to us.
    CHILD_CHECK(cordon_domain_of(t.secret) == cordon_trusted_domain());
  }));
}

// ---- No new executable memory ----

TEST(LockdownAttack, AWritableFileCannotBeMappedExecutable) {
  const Verdict v = Attack(CORDON_VIOLATION_KILL, [](const Target&) {
    char path[] = "/tmp/cordon-codeXXXXXX";
    const int fd = mkstemp(path);
    CHILD_CHECK(fd >= 0);
    const unsigned char code[4096] = {0xc3};
    CHILD_CHECK(write(fd, code, sizeof code) == static_cast<ssize_t>(sizeof code));
    unlink(path);
    ExposeToJudge();
    (void)mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    fprintf(stderr, "mmap of a writable file as code was allowed\n");
    _exit(3);
  });
  ExpectKilledFor(v, "system call mmap (9)");
}

// Code that another process rewrites while cordon_lockdown() inspects it
// and replaces it with a private copy: one page of NOPs with 0F 01 at
// kFlipAt - 2 and a RET at the end. The writer, through its own shared
// mapping of the file, makes the byte at kFlipAt an EF (a WRPKRU) once the
// inspection is over: it watches /proc/<pid>/maps of the child, and writes
// as soon as the first file-backed code mapping has become anonymous (the
// privatization has begun, in address order; the race page is mapped above
// every library and a large filler, so it is copied last). A writer that flips the byte back
// and forth during the inspection is caught by it (the inspection
// neutralizes the WRPKRU); this one writes into the gap.
constexpr size_t kFlipAt = 102;
constexpr int kRaceRounds = 6;

// File-backed executable mappings of process pid.
int FileCodeMappings(pid_t pid) {
  FILE* f = fopen(("/proc/" + std::to_string(pid) + "/maps").c_str(), "re");
  if (f == nullptr) return -1;
  int n = 0;
  char line[4096 + 256];
  while (fgets(line, sizeof line, f) != nullptr) {
    char perms[8] = {};
    int path_at = 0;
    if (sscanf(line, "%*x-%*x %7s %*s %*s %*s %n", perms, &path_at) < 1) continue;
    if (perms[2] == 'x' && path_at > 0 && line[path_at] == '/') ++n;
  }
  fclose(f);
  return n;
}

struct Writer {
  pid_t pid;
  volatile int* shared;  // [0] lockdown started, [1] stop, [2] written
};

Writer StartWriter(int fd) {
  auto* shared = static_cast<volatile int*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  CHILD_CHECK(shared != MAP_FAILED);
  const uint8_t ef = Opaque(0xef);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  CHILD_CHECK(pid >= 0);
  if (pid == 0) {
    // Without capabilities and unable to regain them: the lockdown refuses
    // children that could ptrace it afterwards (docs/lockdown.md). It still
    // reads the parent's maps (same uid, dumpable until a later step).
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct none[2] = {};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_capset, &h, none) != 0) _exit(1);
    auto* p = static_cast<volatile uint8_t*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    if (p == MAP_FAILED) _exit(1);
    const int before = FileCodeMappings(parent);
    shared[3] = before;
    while (shared[0] == 0) sched_yield();
    // Real-time priority and a short sleep between looks: the writer runs
    // every 100 us, whatever the lockdown (CPU-bound) does meanwhile.
    const sched_param rt{1};
    (void)sched_setscheduler(0, SCHED_FIFO, &rt);
    const timespec tick{0, 100 * 1000};
    while (shared[1] == 0) {
      const int now = FileCodeMappings(parent);
      if (now >= 0 && now < before) {
        p[kFlipAt] = ef;
        shared[2] = 1;
        break;
      }
      nanosleep(&tick, nullptr);
    }
    while (shared[1] == 0) sched_yield();
    _exit(0);
  }
  while (shared[3] == 0) sched_yield();
  return {pid, shared};
}

// The race page, mapped above every library from fd, with 16 MiB of shared
// code (zeros, no pattern) just below it: the privatization, in address
// order, reaches the race page last, after copying the filler, which gives
// the writer time to see that it has begun. Libraries are mapped below
// mmap_base, which the kernel keeps at least 128 MiB below the stack (and
// randomizes below that), so 32 MiB under the stack is above all of them.
constexpr size_t kFiller = size_t{16} << 20;

unsigned char* MapRacePage(int fd, int flags) {
  const int filler = static_cast<int>(syscall(SYS_memfd_create, "filler", 0));
  CHILD_CHECK(filler >= 0 && ftruncate(filler, kFiller) == 0);
  const uintptr_t a =
      (reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) - (size_t{32} << 20)) & ~uintptr_t{4095};
  void* f = mmap(reinterpret_cast<void*>(a - kFiller), kFiller, PROT_READ | PROT_EXEC,
                 MAP_SHARED | MAP_FIXED_NOREPLACE, filler, 0);
  CHILD_CHECK(f != MAP_FAILED);
  close(filler);
  void* p = mmap(reinterpret_cast<void*>(a), 4096, PROT_READ | PROT_EXEC, flags | MAP_FIXED_NOREPLACE, fd, 0);
  CHILD_CHECK(p != MAP_FAILED);
  return static_cast<unsigned char*>(p);
}

// Locks down while the writer runs. Either the lockdown refuses the code,
// or it succeeds and the bytes that are executable now hold no WRPKRU: what
// runs is what was inspected. Returns whether it locked.
bool LockWhileRewritten(int fd, const unsigned char* mapped) {
  const Writer w = StartWriter(fd);
  cordon::testing::ReportFaultsOnTheCurrentStack();
  cordon_lockdown_options o;
  cordon_lockdown_options_init(&o);
  o.violation = kErrnoMode;
  w.shared[0] = 1;
  const int s = cordon_lockdown_ex(&o);
  w.shared[1] = 1;
  CHILD_CHECK(waitpid(w.pid, nullptr, 0) == w.pid);
  printf("%s during the lockdown; ", w.shared[2] != 0 ? "written" : "not written");
  if (s != CORDON_OK) {
    if (s != CORDON_E_UNSAFE_CODE) fprintf(stderr, "lockdown: %s\n", cordon_strerror(s));
    CHILD_CHECK(s == CORDON_E_UNSAFE_CODE);
    printf("refused\n");
    return false;
  }
  unsigned char in_file = 0;
  (void)!pread(fd, &in_file, 1, kFlipAt);
  printf("locked; executable %#x, file %#x\n", mapped[kFlipAt], in_file);
  if (HasPattern(mapped, 4096)) {
    fprintf(stderr, "a WRPKRU written during the lockdown is executable after it\n");
    ExposeToJudge();
    _exit(3);
  }
  return true;
}

std::vector<unsigned char> RaceCode() {
  std::vector<unsigned char> code(4096, 0x90);
  code[kFlipAt - 2] = 0x0f;
  code[kFlipAt - 1] = 0x01;
  code.back() = 0xc3;
  return code;
}

void RaceTheLockdown(const std::function<void()>& child) {
  for (int round = 0; round < kRaceRounds; ++round) {
    const Verdict v = JudgeAttack(child);
    ExpectClosed(v);
    EXPECT_NE(v.out.find("written during"), std::string::npos) << v.out;
    std::cout << v.out;
    if (::testing::Test::HasFailure()) break;
  }
}

TEST(LockdownAttack, CodeMappedFromAFileBeforeLockdownNoLongerFollowsTheFile) {
  RaceTheLockdown([] {
    SetUpSecret();
    char path[] = "/tmp/cordon-codeXXXXXX";
    const int fd = mkstemp(path);
    CHILD_CHECK(fd >= 0);
    const std::vector<unsigned char> code = RaceCode();
    CHILD_CHECK(write(fd, code.data(), code.size()) == static_cast<ssize_t>(code.size()));
    auto* mapped =
        static_cast<unsigned char*>(mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0));
    CHILD_CHECK(mapped != MAP_FAILED);
    // Another process rewrites the file while the lockdown runs.
    const bool locked = LockWhileRewritten(fd, mapped);
    unlink(path);
    if (!locked) return;
    // And this one rewrites it afterwards, with a WRPKRU at the start.
    unsigned char now[4096];
    memcpy(now, mapped, sizeof now);
    const unsigned char wrpkru[] = {0x31, 0xc9, 0x31, 0xd2, 0x31, 0xc0, 0x0f, 0x01, Opaque(0xef), 0xc3};
    CHILD_CHECK(pwrite(fd, wrpkru, sizeof wrpkru, 0) == static_cast<ssize_t>(sizeof wrpkru));
    CHILD_CHECK(memcmp(mapped, now, sizeof now) == 0);  // the code did not change
    reinterpret_cast<void (*)()>(mapped + 4096 - 1)();  // and it still runs
  });
}

TEST(LockdownAttack, SharedCodeRewrittenFromOutsideDuringLockdownIsNotWhatRuns) {
  // The same race on a memfd mapped shared as code here and writable in
  // the other process.
  RaceTheLockdown([] {
    SetUpSecret();
    const int fd = static_cast<int>(syscall(SYS_memfd_create, "race", 0));
    CHILD_CHECK(fd >= 0);
    const std::vector<unsigned char> code = RaceCode();
    CHILD_CHECK(write(fd, code.data(), code.size()) == static_cast<ssize_t>(code.size()));
    unsigned char* mapped = MapRacePage(fd, MAP_SHARED);
    if (!LockWhileRewritten(fd, mapped)) return;
    reinterpret_cast<void (*)()>(mapped + 4096 - 1)();
  });
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

const char* ExecutablePage(const void* addr) {
  const auto* page = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(addr) & ~uintptr_t{4095});
  const auto m = cordon::hw::FindMapping(page);
  CHILD_CHECK(m.has_value() && m->perms.size() >= 3 && m->perms[2] == 'x');
  return page;
}

TEST(LockdownAttack, MremapCannotGlueCodePages) {
  ExpectClosed(Attack(kErrnoMode, [](const Target&) {
    // Executable pages: one of this program's, one of libc's. Moving one in
    // front of the other (or anywhere, or growing it) could put the end of
    // one page before the start of another, and a WRPKRU across the seam.
    char* mine = const_cast<char*>(ExecutablePage(reinterpret_cast<const void*>(&SetUpSecret)));
    char* libc = const_cast<char*>(ExecutablePage(reinterpret_cast<const void*>(&write)));
    std::vector<char> mine_before(mine, mine + 4096), libc_before(libc, libc + 4096);
    auto refused = [](void* r) { return r == MAP_FAILED ? -1 : 0; };
    CHILD_DENIED(refused(mremap(mine, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, libc - 4096)), EPERM);
    CHILD_DENIED(refused(mremap(libc, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, mine + 4096)), EPERM);
    CHILD_DENIED(refused(mremap(mine, 4096, 4096, MREMAP_MAYMOVE)), EPERM);
    CHILD_DENIED(refused(mremap(libc, 4096, 8192, 0)), EPERM);
    CHILD_DENIED(refused(mremap(mine, 4096, 4096, MREMAP_MAYMOVE | 4 /* MREMAP_DONTUNMAP */)), EPERM);
    // A data page ending in 0F 01 moved in front of code that starts with EF.
    void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(page != MAP_FAILED);
    CHILD_DENIED(refused(mremap(page, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, mine - 4096)), EPERM);
    // Nothing moved or changed.
    ExecutablePage(mine);
    ExecutablePage(libc);
    CHILD_CHECK(memcmp(mine, mine_before.data(), 4096) == 0 && memcmp(libc, libc_before.data(), 4096) == 0);
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
  const unsigned char wrpkru[] = {0x0f, 0x01, Opaque(0xef)};
  while (!g_stop.load()) memcpy(page, wrpkru, sizeof wrpkru);
  return nullptr;
}

// No page becomes executable by a system call after lockdown, so a thread
// that writes a WRPKRU into a page while another asks for it to become
// executable has nothing to race for. (The race against the lockdown's own
// inspection is SharedCodeRewrittenFromOutsideDuringLockdownIsNotWhatRuns;
// against the code region's scan, tests/pku/code_test.cc.)
TEST(LockdownAttack, NoPageBecomesExecutableWhileAThreadWritesAWrpkruIntoIt) {
  ExpectClosed(Attack(kErrnoMode, [](const Target&) {
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

// ---- 32-bit system calls ----

// A page of the trusted key below 4 GiB, holding the secret: what a 32-bit
// system call can name. (The runtime places its own regions high, so the
// test makes one: an mmap'd page tagged with the trusted key before lockdown
// and filled by trusted code.)
uint8_t* g_low_secret = nullptr;

void SetUpLowSecret(const Target& t) {
  cordon_entry copy;
  CHILD_CHECK(cordon_register(cordon_trusted_domain(), CopyInside, "copy_inside", &copy) == CORDON_OK);
  void* p = MAP_FAILED;
  for (uintptr_t a = 0x10000000; a < 0xf0000000 && p == MAP_FAILED; a += 0x10000000) {
    p = mmap(reinterpret_cast<void*>(a), 4096, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  }
  CHILD_CHECK(p != MAP_FAILED && reinterpret_cast<uintptr_t>(p) < (uintptr_t{1} << 32));
  CHILD_CHECK(syscall(SYS_pkey_mprotect, p, 4096, PROT_READ | PROT_WRITE, t.trusted_key) == 0);
  g_low_secret = static_cast<uint8_t*>(p);
  cordon_call(copy, reinterpret_cast<uint64_t>(p), reinterpret_cast<uint64_t>(t.secret), kJudgeSecretSize, 0,
              0);
}

long Int80(long nr, uintptr_t a, long b, long c, long d) {
  long ret;
  asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d) : "memory");
  return ret;
}

constexpr long kI386Mprotect = 125, kI386PkeyMprotect = 380;

TEST(LockdownAttack, ThirtyTwoBitMprotectThroughInt80IsStopped) {
  for (const long nr : {kI386Mprotect, kI386PkeyMprotect}) {
    static long g_nr;
    g_nr = nr;
    const Verdict v = JudgeAttack([] {
      const Target t = SetUpSecret();
      SetUpLowSecret(t);
      LockDownForAttack(CORDON_VIOLATION_KILL);
      ExposeToJudge();
      // i386 mprotect / pkey_mprotect (to key 0) of the secret's page, read-write.
      const long ret =
          Int80(g_nr, reinterpret_cast<uintptr_t>(g_low_secret), 4096, PROT_READ | PROT_WRITE, 0);
      fprintf(stderr, "int 0x80 returned %ld\n", ret);
      _exit(3);
    });
    ExpectKilledFor(v, "a 32-bit system call (int 0x80, number " + std::to_string(nr) + ")");
  }
}

TEST(LockdownAttack, ThirtyTwoBitCallsFailInErrnoMode) {
  ExpectClosed(Attack(kErrnoMode, [](const Target&) {
    CHILD_CHECK(Int80(20, 0, 0, 0, 0) == -EPERM);  // i386 getpid
  }));
  // On the secret's page below 4 GiB: refused, and the page keeps its key.
  ExpectPkeyFault(JudgeAttack([] {
    const Target t = SetUpSecret();
    SetUpLowSecret(t);
    LockDownForAttack(kErrnoMode);
    const auto low = reinterpret_cast<uintptr_t>(g_low_secret);
    CHILD_CHECK(Int80(kI386Mprotect, low, 4096, PROT_READ | PROT_WRITE, 0) == -EPERM);
    CHILD_CHECK(Int80(kI386PkeyMprotect, low, 4096, PROT_READ | PROT_WRITE, 0) == -EPERM);
    const auto m = cordon::hw::FindMapping(g_low_secret);
    CHILD_CHECK(m.has_value() && m->pkey == t.trusted_key);
    ExposeToJudge();
    uint8_t copy[kJudgeSecretSize];
    memcpy(copy, g_low_secret, sizeof copy);
    Evidence(copy, sizeof copy);
    fprintf(stderr, "the low secret was read\n");
    _exit(3);
  }));
}

// ---- Other routes around keys ----

// Segments of the caller's choosing serve 32-bit code only (a far jump to
// the 32-bit code segment needs no system call; red-team compat_mode_exit
// aimed a GDT TLS data segment at a gate check's operand): refused, where
// the kernel would have answered 0 or ENOSYS.
TEST(LockdownAttack, SegmentsOfTheCallersChoosingAreRefused) {
  ExpectClosed(Attack(kErrnoMode, [](const Target&) {
    user_desc u{};
    u.entry_number = static_cast<unsigned>(-1);
    u.limit = 0xfffff;
    u.seg_32bit = 1;
    u.limit_in_pages = 1;
    u.useable = 1;
    CHILD_DENIED(syscall(SYS_set_thread_area, &u), EPERM);
    u.entry_number = 0;
    u.contents = 2; /* code */
    CHILD_DENIED(syscall(SYS_modify_ldt, 1, &u, sizeof u), EPERM);
    char ldt[64];
    CHILD_DENIED(syscall(SYS_modify_ldt, 0, ldt, sizeof ldt), EPERM);
  }));
}

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
  ExpectPkeyFault(Attack(kErrnoMode, [](const Target&) {
    ExposeToJudge();
    // The heap's allocator, called without its gate.
    (void)cordon::domains::HeapAllocInside(cordon_trusted_domain(), 64, 16);
    fprintf(stderr, "an internal allocator ran without the gate\n");
    _exit(3);
  }));
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
  ExpectClosed(JudgeAttack([] {
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

// ---- What the kernel writes on the way out ----
//
// A process stopped for a violation is gone, and so is its trusted memory:
// what the kernel writes into that memory as the process dies is visible
// only in memory that outlives it. So the canary is a page shared with the
// judge (MAP_SHARED before the fork), tagged with the trusted key in the
// child before lockdown, like a trusted mapping of a file would be. The
// attacker aims the kernel's own writes at it, then makes the violation; the
// judge reads the page after the child is dead. Every byte must be as it was.
constexpr uint8_t kCanary = 0xa5;

struct Canary {
  uint8_t* page;
  Canary() {
    page =
        static_cast<uint8_t*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (page != MAP_FAILED) memset(page, kCanary, 4096);
  }
  ~Canary() { munmap(page, 4096); }
  // The first byte that changed, or -1.
  int Changed() const {
    for (int i = 0; i < 4096; ++i) {
      if (page[i] != kCanary) return i;
    }
    return -1;
  }
};
uint8_t* g_canary = nullptr;

void TagCanary(const Target& t) {
  CHILD_CHECK(syscall(SYS_pkey_mprotect, g_canary, 4096, PROT_READ | PROT_WRITE, t.trusted_key) == 0);
}

int g_block_fds[2];
std::atomic<int> g_inside{0};

// Trusted code that blocks in the kernel with the trusted PKRU loaded.
uint64_t BlockInside(uint64_t fd, uint64_t, uint64_t, uint64_t, uint64_t) {
  g_inside.fetch_add(1);
  char c;
  (void)!read(static_cast<int>(fd), &c, 1);
  return 0;
}

// Threads that sleep in untrusted code, so that a thread inside trusted
// code is not the last of the process to exit (the kernel clears
// clear_child_tid only while the memory has other users).
void StartSleepers(int n) {
  for (int i = 0; i < n; ++i) {
    pthread_t th;
    CHILD_CHECK(pthread_create(
                    &th, nullptr,
                    [](void*) -> void* {
                      pause();
                      return nullptr;
                    },
                    nullptr) == 0);
  }
}

// The canary is a page the program tagged with the trusted key itself: the
// lockdown guards such pages like its own regions, so set_tid_address aimed
// at one is refused at once (the rule on deferred kernel writes), before any
// thread can die with a trusted clear_child_tid word.
TEST(LockdownAttack, TheKernelWritesNothingIntoTrustedMemoryOnTheWayOut) {
  // clear_child_tid of the violating thread aimed at a trusted word.
  {
    Canary canary;
    ASSERT_NE(canary.page, MAP_FAILED);
    g_canary = canary.page;
    const Verdict v = JudgeAttack([] {
      const Target t = SetUpSecret();
      TagCanary(t);
      LockDownForAttack(CORDON_VIOLATION_KILL);
      StartSleepers(2);
      ExposeToJudge();
      syscall(SYS_set_tid_address, g_canary + 64);
      syscall(SYS_pkey_alloc, 0, 0);
      _exit(3);
    });
    ExpectKilledFor(v, "system call set_tid_address");
    EXPECT_EQ(canary.Changed(), -1) << "clear_child_tid of the violating thread";
  }
  // clear_child_tid of threads that are inside trusted code, blocked in the
  // kernel with the trusted PKRU, when the violation stops the process: the
  // kernel clears the word as each dies, under that thread's PKRU.
  for (int round = 0; round < 3; ++round) {
    Canary canary;
    ASSERT_NE(canary.page, MAP_FAILED);
    g_canary = canary.page;
    const Verdict v = JudgeAttack([] {
      const Target t = SetUpSecret();
      TagCanary(t);
      static cordon_entry block;
      CHILD_CHECK(cordon_register(cordon_trusted_domain(), BlockInside, "block_inside", &block) == CORDON_OK);
      CHILD_CHECK(pipe(g_block_fds) == 0);
      LockDownForAttack(CORDON_VIOLATION_KILL);
      ExposeToJudge();  // the first thread's set_tid_address ends the process
      StartSleepers(2);
      static std::atomic<int> n{0};
      for (int i = 0; i < 2; ++i) {
        pthread_t th;
        CHILD_CHECK(pthread_create(
                        &th, nullptr,
                        [](void*) -> void* {
                          syscall(SYS_set_tid_address, g_canary + 128 + 64 * n.fetch_add(1));
                          cordon_call(block, static_cast<uint64_t>(g_block_fds[0]), 0, 0, 0, 0);
                          return nullptr;
                        },
                        nullptr) == 0);
      }
      while (g_inside.load() < 2) sched_yield();
      const timespec settle{0, 200 * 1000 * 1000};  // into the read
      nanosleep(&settle, nullptr);
      StartSleepers(2);
      syscall(SYS_pkey_alloc, 0, 0);
      _exit(3);
    });
    ExpectKilledFor(v, "system call set_tid_address");
    EXPECT_EQ(canary.Changed(), -1) << "clear_child_tid of a thread inside trusted code";
    if (::testing::Test::HasFailure()) break;
  }
}

// The violation's own signal frame, with the stack pointer in trusted
// memory. 6.1 writes it under the thread's PKRU: the write fails and the
// kernel kills the process with SIGSEGV. 6.12 writes signal frames with
// PKRU 0 (docs/signals.md), into any page.
// The kernel's series from uname (this test process is not locked down).
bool KernelAtLeast(int major, int minor) {
  utsname u{};
  int a = 0, b = 0;
  return uname(&u) == 0 && sscanf(u.release, "%d.%d", &a, &b) == 2 &&
         (a > major || (a == major && b >= minor));
}

TEST(LockdownAttack, TheViolationsSignalFrameIsNotWrittenIntoTrustedMemory) {
  Canary canary;
  ASSERT_NE(canary.page, MAP_FAILED);
  g_canary = canary.page;
  const Verdict v = JudgeAttack([] {
    const Target t = SetUpSecret();
    TagCanary(t);
    LockDownForAttack(CORDON_VIOLATION_KILL);
    ExposeToJudge();
    asm volatile(
        "mov %0, %%rsp\n\t"
        "mov %1, %%eax\n\t"
        "syscall\n\t"
        "ud2"
        :
        : "r"(g_canary + 2048), "i"(SYS_pkey_alloc)
        : "memory");
  });
  // Where the kernel writes frames anywhere (6.12 and later), the frame goes
  // to the runtime's alternate stack, and the runtime refuses to copy it to
  // a stack pointer in trusted memory: exit 70 with its message.
  if (KernelAtLeast(6, 12)) {
    EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err;
    EXPECT_EQ(v.outcome.exit_code, CORDON_VIOLATION_EXIT) << v.outcome.err;
    EXPECT_NE(v.outcome.err.find("cordon: signal violation: no untrusted memory below the stack pointer"),
              std::string::npos)
        << v.outcome.err;
  } else {
    EXPECT_FALSE(v.outcome.exited) << v.outcome.err;
    EXPECT_EQ(v.outcome.signal, SIGSEGV) << v.outcome.err;
  }
  ExpectNotLeaked(v);
  EXPECT_EQ(canary.Changed(), -1) << "the SIGSYS frame";
}

// ---- Signals (docs/signals.md) ----

extern "C" void cordon_signal_entry(int, siginfo_t*, void*);
extern "C" void cordon_signal_resume_1();

const uint8_t* g_secret = nullptr;  // where the secret is, for handlers

void ReadSecretAndSayIt() {
  uint8_t copy[kJudgeSecretSize];
  memcpy(copy, g_secret, sizeof copy);
  Evidence(copy, sizeof copy);
  fprintf(stderr, "secret reached\n");
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
    // Before 6.12 only the fault signals may have a handler after the
    // lockdown (docs/signals.md); ignoring a signal is no handler.
    CHILD_CHECK(cordon_sigaction(SIGUSR1, &sa, nullptr) ==
                (OnlyFaultSignalsHaveHandlers() ? CORDON_E_LOCKED : CORDON_OK));
    CHILD_CHECK(cordon_sigaction(SIGILL, &sa, nullptr) == CORDON_OK);
    sa.sa_handler = SIG_IGN;
    CHILD_CHECK(cordon_sigaction(SIGUSR1, &sa, nullptr) == CORDON_OK);
  }));
  ExpectKilledFor(Attack(CORDON_VIOLATION_KILL,
                         [](const Target&) {
                           ExposeToJudge();
                           syscall(SYS_rt_sigreturn);
                         }),
                  "system call rt_sigreturn");
  ExpectKilledFor(Attack(CORDON_VIOLATION_KILL,
                         [](const Target&) {
                           ExposeToJudge();
                           signal(SIGUSR1, SIG_IGN);
                         }),
                  "system call rt_sigaction");
}

TEST(LockdownSignals, AnAlternateSignalStackIsRefusedAtLockdown) {
  ExpectClosed(JudgeAttack([] {
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

// Offset of PKRU (XSAVE component 9) in an XSAVE area. Standard format: from
// CPUID.(EAX=0DH,ECX=9).EBX. Compacted format (XCOMP_BV bit 63): after the
// 512-byte legacy area and the 64-byte header, the components of xcomp_bv
// from 2 up, each at its size (CPUID.(0DH,i).EAX), aligned to 64 bytes when
// CPUID.(0DH,i).ECX bit 1 says so.
uint32_t PkruOffset(bool compacted, uint64_t xcomp_bv) {
  unsigned eax, ebx, ecx, edx;
  if (!compacted) {
    __cpuid_count(0xd, 9, eax, ebx, ecx, edx);
    return ebx;
  }
  uint32_t offset = 576;
  for (unsigned i = 2; i <= 9; ++i) {
    if ((xcomp_bv & (uint64_t{1} << i)) == 0) continue;
    __cpuid_count(0xd, i, eax, ebx, ecx, edx);
    if ((ecx & 2) != 0) offset = (offset + 63) & ~uint32_t{63};
    if (i == 9) return offset;
    offset += eax;
  }
  return offset;
}

// The handler edits the frame of the signal it got (SIGILL, from a ud2: a
// fault signal keeps its handler on every kernel): PKRU 0 (every key
// open) and a return into code that reads the secret. The runtime's
// sigreturn path puts the untrusted PKRU back, so the read faults. The
// compacted variant sets XCOMP_BV bit 63 and puts PKRU 0 where the
// compacted layout has it: on a CPU with XSAVEC the kernel's fast path
// XRSTORs the frame in that layout; on one without (QEMU -cpu max) the
// XRSTOR faults and the kernel takes its slow path.
bool g_forge_compacted = false;

void ForgePkruAndRip(int, siginfo_t*, void* ucv) {
  auto* uc = static_cast<ucontext_t*>(ucv);
  auto* fp = reinterpret_cast<unsigned char*>(uc->uc_mcontext.fpregs);
  CHILD_CHECK(fp != nullptr);
  auto* xstate_bv = reinterpret_cast<uint64_t*>(fp + 512);
  auto* xcomp_bv = reinterpret_cast<uint64_t*>(fp + 520);
  *xstate_bv |= uint64_t{1} << 9;
  *reinterpret_cast<uint32_t*>(fp + PkruOffset(false, 0)) = 0;
  if (g_forge_compacted) {
    *xcomp_bv = (uint64_t{1} << 63) | *xstate_bv;
    *reinterpret_cast<uint32_t*>(fp + PkruOffset(true, *xcomp_bv)) = 0;
  }
  uc->uc_mcontext.gregs[REG_RIP] = reinterpret_cast<greg_t>(&ReadSecretAndSayIt);
  uc->uc_mcontext.gregs[REG_RSP] &= ~greg_t{15};
  uc->uc_mcontext.gregs[REG_RSP] -= 8;
}

Verdict ForgeAFrame(bool compacted) {
  g_forge_compacted = compacted;
  return Attack(kErrnoMode, [](const Target& t) {
    g_secret = t.secret;
    struct sigaction sa {};
    sa.sa_sigaction = ForgePkruAndRip;
    sa.sa_flags = SA_SIGINFO;
    CHILD_CHECK(cordon_sigaction(SIGILL, &sa, nullptr) == CORDON_OK);
    ExposeToJudge();
    asm volatile("ud2" ::: "memory");
    fprintf(stderr, "the forged frame did not take effect\n");
    _exit(4);
  });
}

TEST(LockdownSignals, AForgedFrameReturnsWithTheUntrustedPkru) {
  const Verdict v = ForgeAFrame(false);
  ExpectPkeyFault(v);
  EXPECT_EQ(v.outcome.err.find("secret reached"), std::string::npos) << v.outcome.err;
}

TEST(LockdownSignals, AForgedCompactedFrameReturnsWithTheUntrustedPkru) {
  const Verdict v = ForgeAFrame(true);
  ExpectPkeyFault(v);
  EXPECT_EQ(v.outcome.err.find("secret reached"), std::string::npos) << v.outcome.err;
}

// Trusted code that keeps secret bytes in registers for as long as it
// runs: until untrusted handlers have seen three signals that interrupted
// it (or, before 6.12, until another thread has tried to send it every
// signal that may have a handler there). It returns a checksum that trusted
// code computes again, without signals, so a wrong resume (registers or
// stack not restored) shows.
std::atomic<int> g_trusted_hits{0};
std::atomic<int> g_untrusted_hits{0};
std::atomic<bool> g_spinning{false};
std::atomic<bool> g_stop_spinning{false};
uint64_t g_rounds = 0;

uint64_t SpinOverSecret(uint64_t secret, uint64_t, uint64_t, uint64_t, uint64_t) {
  const auto* s = reinterpret_cast<const unsigned char*>(secret);
  uint64_t acc = 0, rounds = 0;
  g_spinning = true;
  while (g_trusted_hits.load(std::memory_order_relaxed) < 3 &&
         !g_stop_spinning.load(std::memory_order_relaxed) && rounds < (uint64_t{1} << 34)) {
    for (size_t i = 0; i < kJudgeSecretSize; ++i) acc = acc * 31 + s[i];
    ++rounds;
  }
  g_rounds = rounds;
  return acc;
}

uint64_t ChecksumInside(uint64_t secret, uint64_t rounds, uint64_t, uint64_t, uint64_t) {
  const auto* s = reinterpret_cast<const unsigned char*>(secret);
  uint64_t acc = 0;
  for (uint64_t r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < kJudgeSecretSize; ++i) acc = acc * 31 + s[i];
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
  CHILD_CHECK(cordon_current_domain() == CORDON_DOMAIN_UNTRUSTED);
  if (g_trusted_hits.load() < 64) Evidence(uc, sizeof *uc);
  g_trusted_hits.fetch_add(1);
}

// The signals that may keep a handler after the lockdown before 6.12, and
// SIGSYS: no one may send them there (docs/signals.md).
constexpr int kUnsendable[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS};

// Before 6.12, from another thread, for as long as the victim thread
// calls gates or runs trusted code: the ways to send it a signal that may
// have a handler there, again and again, each refused (errno mode: EPERM).
// Once the victim is in SpinOverSecret, 300 more attempts end the spin.
std::atomic<long> g_victim{0};
std::atomic<bool> g_stop_sending{false};
std::atomic<long> g_refused_sends{0};

void* SendFaultSignalsToTheVictim(void*) {
  siginfo_t si{};
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  long spinning_since = -1;
  while (!g_stop_sending.load()) {
    if (spinning_since < 0 && g_spinning.load()) spinning_since = g_refused_sends.load();
    if (spinning_since >= 0 && g_refused_sends.load() >= spinning_since + 300) g_stop_spinning = true;
    for (const int sig : kUnsendable) {
      si.si_signo = sig;
      CHILD_DENIED(syscall(SYS_tgkill, getpid(), g_victim.load(), sig), EPERM);
      CHILD_DENIED(syscall(SYS_rt_tgsigqueueinfo, getpid(), g_victim.load(), sig, &si), EPERM);
      CHILD_DENIED(kill(getpid(), sig), EPERM);
      g_refused_sends += 3;
    }
    sigevent sev{};
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGSEGV;
    sev._sigev_un._tid = static_cast<pid_t>(g_victim.load());
    int timer = -1;
    CHILD_DENIED(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &timer), EPERM);
    sched_yield();
  }
  return nullptr;
}

void StartSendingFaultSignals(pthread_t* th) {
  g_victim = gettid();
  CHILD_CHECK(pthread_create(th, nullptr, SendFaultSignalsToTheVictim, nullptr) == 0);
}

// Since 6.12: a timer's signal interrupts the trusted code again and
// again; its handler runs as untrusted code and sees nothing of the trusted
// state, and the code resumes exactly. Before 6.12 SIGALRM cannot keep its
// handler (the lockdown refuses it, cordon_sigaction() too), and no signal
// that can have one reaches the trusted code: another thread tries to send
// one in every way all the while it runs, each refused; the code runs to
// its end unchanged, and the process took none of them (it would have
// ended: SIGSEGV's handler reports and exits, the others have none).
TEST(LockdownSignals, AHandlerOfASignalInTrustedCodeSeesNoTrustedStateAndTheCodeResumes) {
  const Verdict v = JudgeAttack([] {
    const Target t = SetUpSecret();
    cordon_entry spin, checksum;
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), SpinOverSecret, "spin", &spin) == CORDON_OK);
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), ChecksumInside, "checksum", &checksum) == CORDON_OK);
    // Installed before lockdown with plain sigaction: the lockdown takes it over.
    struct sigaction sa {};
    sa.sa_sigaction = CountAndInspect;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    CHILD_CHECK(sigaction(SIGALRM, &sa, nullptr) == 0);
    if (OnlyFaultSignalsHaveHandlers()) {
      ExpectLockdownRefused(kErrnoMode);
      CHILD_CHECK(signal(SIGALRM, SIG_DFL) != SIG_ERR);
      LockDownForAttack(kErrnoMode);
      CHILD_CHECK(cordon_sigaction(SIGALRM, &sa, nullptr) == CORDON_E_LOCKED);
      pthread_t sender;
      StartSendingFaultSignals(&sender);
      const uint64_t acc = cordon_call(spin, reinterpret_cast<uint64_t>(t.secret), 0, 0, 0, 0);
      g_stop_sending = true;
      CHILD_CHECK(pthread_join(sender, nullptr) == 0);
      CHILD_CHECK(g_trusted_hits.load() == 0 && g_untrusted_hits.load() == 0);
      CHILD_CHECK(acc == cordon_call(checksum, reinterpret_cast<uint64_t>(t.secret), g_rounds, 0, 0, 0));
      printf("%ld sends refused, %lu rounds of trusted code\n", g_refused_sends.load(),
             static_cast<unsigned long>(g_rounds));
      return;
    }
    LockDownForAttack(CORDON_VIOLATION_KILL);
    const itimerval every{{0, 2000}, {0, 2000}};
    CHILD_CHECK(setitimer(ITIMER_REAL, &every, nullptr) == 0);
    const uint64_t acc = cordon_call(spin, reinterpret_cast<uint64_t>(t.secret), 0, 0, 0, 0);
    const itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    CHILD_CHECK(g_trusted_hits.load() >= 3);
    CHILD_CHECK(acc == cordon_call(checksum, reinterpret_cast<uint64_t>(t.secret), g_rounds, 0, 0, 0));
  });
  ExpectClosed(v);
  if (KernelBefore612()) {
    EXPECT_NE(v.outcome.err.find(LockdownRefusalFor(SIGALRM, "SIGALRM")), std::string::npos) << v.outcome.err;
    EXPECT_NE(v.out.find(" sends refused, "), std::string::npos) << v.out;
  }
}

// Round trips through the gates (in, and out again through a callback)
// while a timer interrupts them: signals land between a WRPKRU and its stack
// switch too, and every call must still return its own result. The loop runs
// until enough signals have landed in untrusted code and in trusted code
// (the handler tells them apart: a signal that interrupted trusted code has
// an empty ucontext), however fast the machine. Before 6.12 SIGALRM cannot
// have a handler after the lockdown (CORDON_E_LOCKED), and no signal that
// can have one can be sent: the round trips run while another thread keeps
// trying to send one to the calling thread, each refused, and the process
// takes none.
constexpr int kHitsEach = 20;
constexpr int kDeadlineSeconds = 60;

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
  const Verdict v = JudgeAttack([] {
    SetUpSecret();
    cordon_entry add, via;
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), AddOne, "add", &add) == CORDON_OK);
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), AddOneViaCallback, "via", &via) == CORDON_OK);
    struct sigaction sa {};
    sa.sa_sigaction = CountAndInspect;
    sa.sa_flags = SA_SIGINFO;
    if (OnlyFaultSignalsHaveHandlers()) {
      LockDownForAttack(kErrnoMode);
      CHILD_CHECK(cordon_sigaction(SIGALRM, &sa, nullptr) == CORDON_E_LOCKED);
      pthread_t sender;
      StartSendingFaultSignals(&sender);
      uint64_t i = 0;
      while (i < 20000 || g_refused_sends.load() < 1000) {
        for (int k = 0; k < 100; ++k, ++i) {
          CHILD_CHECK(cordon_call(add, i, 0, 0, 0, 0) == i + 1);
          CHILD_CHECK(cordon_call(via, i, 0, 0, 0, 0) == 2 * i + 1);
        }
      }
      g_stop_sending = true;
      CHILD_CHECK(pthread_join(sender, nullptr) == 0);
      CHILD_CHECK(g_trusted_hits.load() == 0 && g_untrusted_hits.load() == 0);
      printf("%lu round trips, %ld sends refused\n", static_cast<unsigned long>(i), g_refused_sends.load());
      return;
    }
    LockDownForAttack(CORDON_VIOLATION_KILL);
    CHILD_CHECK(cordon_sigaction(SIGALRM, &sa, nullptr) == CORDON_OK);
    const itimerval every{{0, 200}, {0, 200}};
    CHILD_CHECK(setitimer(ITIMER_REAL, &every, nullptr) == 0);
    timespec start{}, now{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint64_t i = 0;
    while (g_untrusted_hits.load() < kHitsEach || g_trusted_hits.load() < kHitsEach) {
      for (int k = 0; k < 1000; ++k, ++i) {
        CHILD_CHECK(cordon_call(add, i, 0, 0, 0, 0) == i + 1);
        CHILD_CHECK(cordon_call(via, i, 0, 0, 0, 0) == 2 * i + 1);
      }
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec - start.tv_sec > kDeadlineSeconds) {
        fprintf(stderr, "after %d s: %d signals in untrusted code, %d in trusted code\n", kDeadlineSeconds,
                g_untrusted_hits.load(), g_trusted_hits.load());
        _exit(5);
      }
    }
    const itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    printf("%lu round trips, %d signals in untrusted code, %d in trusted code\n",
           static_cast<unsigned long>(i), g_untrusted_hits.load(), g_trusted_hits.load());
  });
  ExpectClosed(v);
  std::cout << v.out;
}

uint64_t WriteThroughNull(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  *static_cast<volatile int*>(nullptr) = 1;
  return 0;
}

// Stopped by the runtime (not by the filter) with this message.
void ExpectStoppedWith(const Verdict& v, const std::string& what) {
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, CORDON_VIOLATION_EXIT) << v.outcome.err;
  EXPECT_NE(v.outcome.err.find(what), std::string::npos) << v.outcome.err;
  EXPECT_EQ(v.outcome.err.find("secret reached"), std::string::npos) << v.outcome.err;
  ExpectNotLeaked(v);
}

TEST(LockdownSignals, AFaultInTrustedCodeStopsTheProcess) {
  const Verdict v = JudgeAttack([] {
    SetUpSecret();
    cordon_entry bad;
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), WriteThroughNull, "bad", &bad) == CORDON_OK);
    LockDownForAttack(CORDON_VIOLATION_KILL);  // the fault reporter is a handler now
    ExposeToJudge();
    cordon_call(bad, 0, 0, 0, 0, 0);
    _exit(3);
  });
  ExpectStoppedWith(v, "signal 11 (si_code 1)");
  ExpectStoppedWith(v, "a fault in trusted code is never handed to a handler");
}

TEST(LockdownSignals, JumpingIntoTheSignalPathsStops) {
  // The entry, with the stack pointer in trusted memory while this thread
  // runs no trusted code: as if the kernel had written a frame there.
  ExpectStoppedWith(Attack(CORDON_VIOLATION_KILL,
                           [](const Target& t) {
                             ExposeToJudge();
                             const char* sp = t.region + t.region_size / 2;
                             asm volatile("mov %0, %%rsp\n\tjmp cordon_signal_entry" : : "r"(sp));
                           }),
                    "signal violation: the signal handler entry was reached");
  // The resume path, with no handler in progress.
  ExpectStoppedWith(Attack(CORDON_VIOLATION_KILL,
                           [](const Target&) {
                             ExposeToJudge();
                             cordon_signal_resume_1();
                           }),
                    "return from a signal handler that this thread does not have in progress");
}

// 6.12 and later: frames the kernel wrote earlier stay on the alternate
// stack, below the slot a new one takes at its top; only that slot's
// frame is the kernel's fresh one. A jump to the entry with rsp anywhere
// else on this thread's own alternate stack, with its own record index in
// xmm15 (so that every ownership check passes), stops the process: a
// replayed frame would resume trusted code from a past state
// (tests/redteam/stale_frame_replay.c). Before 6.12 there is no alternate
// stack, and the same jump meets the entry's domain checks.
TEST(LockdownSignals, AStaleFrameOnTheAlternateStackIsNotReplayed) {
  const bool before_612 = cordon::testing::KernelBefore612();
  ExpectStoppedWith(
      Attack(CORDON_VIOLATION_KILL,
             [](const Target& t) {
               stack_t ss{};
               CHILD_CHECK(sigaltstack(nullptr, &ss) == 0);
               const uint32_t index = cordon_tls_records[cordon_trusted_domain()];
               CHILD_CHECK(index != 0xffffffffu);  // attached (the set-up called the domain)
               // (Before 6.12 the alternate stack, if any, is the test
               // harness's own, in untrusted memory.)
               const char* sp = cordon::testing::OnlyFaultSignalsHaveHandlers()
                                    ? t.region + t.region_size / 2
                                    : static_cast<const char*>(ss.ss_sp) + ss.ss_size - 8192 - 8;
               ExposeToJudge();
               asm volatile("vmovd %1, %%xmm15\n\tmov %0, %%rsp\n\tjmp cordon_signal_entry"
                            :
                            : "r"(sp), "r"(index));
             }),
      before_612 ? "signal violation: the signal handler entry was reached"
                 : "signal violation: the signal entry was reached on the alternate stack with a frame the "
                   "kernel did not just write there");
}

}  // namespace
