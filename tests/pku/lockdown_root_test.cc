// Attacks that carry something over from set-up into the locked-down process,
// or that use root (docs/lockdown.md): descriptors opened before the lockdown
// (a perf event sampling registers, /proc/self/mem, a pidfd), root bringing
// core dumps back (setfsuid with suid_dumpable, a core_pattern pipe helper),
// a file behind code changed between its inspection and its copy, a seccomp
// filter installed before cordon_init() that fakes pkey system calls, a
// single write to the code region's header, and a child forked during
// set-up. The secret is the judge's (random, read by trusted code straight
// into trusted memory); the judge, outside the attacked process, checks that
// it never reached untrusted memory, output or evidence.
#include <asm/perf_regs.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "cordon/cordon.h"
#include "runtime/code/code_region.h"
#include "runtime/gates/gate_config.h"
#include "runtime/lockdown/lockdown.h"
#include "tests/support/child.h"
#include "tests/support/judge.h"

namespace {

using cordon::testing::Evidence;
using cordon::testing::ExposeToJudge;
using cordon::testing::JudgeAttack;
using cordon::testing::kJudgeSecretSize;
using cordon::testing::LoadJudgeSecret;
using cordon::testing::Verdict;

constexpr uint64_t kPage = 4096;

// A core_pattern pipe helper, run by the kernel as root outside every rule:
// "<this program> --cordon-core-helper PID ADDRESS OUT" reads the secret from
// the dumping process's memory. It exists so that the attack below can show
// what such a helper gets; it runs before main().
__attribute__((constructor)) void CoreHelper(int argc, char** argv) {
  if (argc != 5 || strcmp(argv[1], "--cordon-core-helper") != 0) return;
  char buf[kJudgeSecretSize] = {};
  const int mem = open((std::string("/proc/") + argv[2] + "/mem").c_str(), O_RDONLY);
  const ssize_t n =
      mem < 0 ? -1 : pread(mem, buf, sizeof buf, static_cast<off_t>(strtoull(argv[3], nullptr, 16)));
  const int out = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out >= 0 && n > 0) (void)!write(out, buf, static_cast<size_t>(n));
  char drain[4096];
  while (read(0, drain, sizeof drain) > 0) {
  }
  _exit(0);
}

uint32_t Pkru() {
  uint32_t eax, edx;
  asm volatile("rdpkru" : "=a"(eax), "=d"(edx) : "c"(0));
  return eax;
}

int Lockdown() {
  // The judge's fault handler runs on an alternate stack, which the
  // lockdown refuses; it keeps reporting faults on the current one.
  cordon::testing::ReportFaultsOnTheCurrentStack();
  cordon_lockdown_options o;
  cordon_lockdown_options_init(&o);
  o.violation = CORDON_VIOLATION_ERRNO_FOR_TESTS;
  return cordon_lockdown_ex(&o);
}

// A trusted entry that holds the secret in rbx, r12, r13 and r14 (in that
// order, as a perf sample lists them) and in xmm0-xmm1 (as a core's
// FP-register note lays them out) while it counts down `spins`, then
// clears them.
uint64_t HoldInRegisters(uint64_t src, uint64_t spins, uint64_t, uint64_t, uint64_t) {
  asm volatile(
      "mov 0(%0), %%rbx\n\t"
      "mov 8(%0), %%r12\n\t"
      "mov 16(%0), %%r13\n\t"
      "mov 24(%0), %%r14\n\t"
      "movdqu 0(%0), %%xmm0\n\t"
      "movdqu 16(%0), %%xmm1\n\t"
      "1: dec %1\n\t"
      "jnz 1b\n\t"
      "xor %%ebx, %%ebx\n\t"
      "xor %%r12d, %%r12d\n\t"
      "xor %%r13d, %%r13d\n\t"
      "xor %%r14d, %%r14d\n\t"
      "pxor %%xmm0, %%xmm0\n\t"
      "pxor %%xmm1, %%xmm1\n\t"
      : "+r"(src), "+r"(spins)
      :
      : "rbx", "r12", "r13", "r14", "xmm0", "xmm1", "memory", "cc");
  return 0;
}

struct Trusted {
  const uint8_t* secret;
  cordon_entry hold;
};

Trusted SetUpSecret() {
  CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
  Trusted s{LoadJudgeSecret(), {}};
  CHILD_CHECK(cordon_register(cordon_trusted_domain(), HoldInRegisters, "hold", &s.hold) == CORDON_OK);
  return s;
}

void Hold(const Trusted& s, uint64_t spins) {
  cordon_call(s.hold, reinterpret_cast<uint64_t>(s.secret), spins, 0, 0, 0);
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---- Class 4: descriptors opened before the lockdown ----

perf_event_attr RegisterSampler() {
  perf_event_attr a{};
  a.size = sizeof a;
  a.type = PERF_TYPE_SOFTWARE;  // the VM has no PMU; cpu-clock samples there too
  a.config = PERF_COUNT_SW_CPU_CLOCK;
  a.sample_period = 100000;  // ns
  a.sample_type = PERF_SAMPLE_REGS_USER;
  a.sample_regs_user = (1ull << PERF_REG_X86_BX) | (1ull << PERF_REG_X86_R12) | (1ull << PERF_REG_X86_R13) |
                       (1ull << PERF_REG_X86_R14);
  a.exclude_kernel = 1;
  a.exclude_hv = 1;
  a.disabled = 1;  // the attacker enables it when trusted code is about to run
  return a;
}

TEST(LockdownDescriptors, APerfEventOpenedBeforeLockdownIsRefused) {
  const Verdict v = JudgeAttack([] {
    const Trusted s = SetUpSecret();
    perf_event_attr a = RegisterSampler();
    int fd = static_cast<int>(syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
    CHILD_CHECK(fd >= 0);
    constexpr size_t kRing = 65 * kPage;
    void* ring = mmap(nullptr, kRing, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHILD_CHECK(ring != MAP_FAILED);
    const int rc = Lockdown();
    printf("fd=%d lockdown=%d\n", fd, rc);
    if (rc != CORDON_OK) {
      // Refused, with set-up still open: close it and lock down.
      munmap(ring, kRing);
      close(fd);
      ring = nullptr;
      printf("again=%d\n", Lockdown());
      errno = 0;
      const long r = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
      printf("perf_event_open=%ld errno=%d\n", r, errno);
    }
    // Untrusted code from here on: trusted code runs with the secret in
    // registers while the sampler (if any) records them.
    if (ring != nullptr) CHILD_CHECK(ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) == 0);
    Hold(s, 200000000);
    if (ring != nullptr) Evidence(static_cast<const char*>(ring) + kPage, kRing - kPage);
  });
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.memory_scanned);
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == 0) << v.outcome.err;
  EXPECT_TRUE(Has(v.out, "lockdown=-20\nagain=0\nperf_event_open=-1 errno=1\n")) << v.out;
  const std::string fd = v.out.substr(3, v.out.find(' ') - 3);
  EXPECT_TRUE(Has(v.outcome.err, "cordon_lockdown() refused: descriptor " + fd +
                                     " (anon_inode:[perf_event]) is a perf event: it samples the registers"))
      << v.outcome.err;
}

TEST(LockdownDescriptors, AProcMemDescriptorOpenedBeforeLockdownIsRefused) {
  const Verdict v = JudgeAttack([] {
    const Trusted s = SetUpSecret();
    int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    CHILD_CHECK(fd >= 0);
    const int rc = Lockdown();
    printf("fd=%d lockdown=%d\n", fd, rc);
    if (rc != CORDON_OK) {
      close(fd);
      printf("again=%d\n", Lockdown());
      errno = 0;
      fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
      printf("open=%d errno=%d\n", fd, errno);
    }
    char buf[kJudgeSecretSize] = {};
    if (fd >= 0 && pread(fd, buf, sizeof buf, reinterpret_cast<off_t>(s.secret)) > 0)
      Evidence(buf, sizeof buf);
  });
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.memory_scanned);
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == 0) << v.outcome.err;
  EXPECT_TRUE(Has(v.out, "lockdown=-20\nagain=0\nopen=-1 errno=13\n")) << v.out;
  const std::string fd = v.out.substr(3, v.out.find(' ') - 3);
  EXPECT_TRUE(Has(v.outcome.err, "refused: descriptor " + fd + " (/proc/")) << v.outcome.err;
  EXPECT_TRUE(Has(v.outcome.err, "/mem) is /proc/<pid>/mem of this process: it reads (or writes) memory"))
      << v.outcome.err;
}

// Every other memory file of this process, and of its threads, is refused
// the same way (pagemap, syscall, stack, /proc/thread-self/mem).
TEST(LockdownDescriptors, EveryMemoryFileOfTheProcessIsRefused) {
  const Verdict v = JudgeAttack([] {
    SetUpSecret();
    for (const char* path :
         {"/proc/thread-self/mem", "/proc/self/pagemap", "/proc/self/syscall", "/proc/self/task/%d/mem"}) {
      char name[64];
      snprintf(name, sizeof name, path, static_cast<int>(getpid()));
      const int fd = open(name, O_RDONLY | O_CLOEXEC);
      CHILD_CHECK(fd >= 0);
      printf("%s: %d\n", path, Lockdown());
      close(fd);
    }
    printf("again=%d\n", Lockdown());
  });
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == 0) << v.outcome.err;
  EXPECT_EQ(v.out,
            "/proc/thread-self/mem: -20\n/proc/self/pagemap: -20\n/proc/self/syscall: -20\n"
            "/proc/self/task/%d/mem: -20\nagain=0\n");
  for (const char* file :
       {"/mem) is /proc/<pid>/mem", "/pagemap) is /proc/<pid>/pagemap", "/syscall) is /proc/<pid>/syscall"}) {
    EXPECT_TRUE(Has(v.outcome.err, file)) << file << "\n" << v.outcome.err;
  }
}

TEST(LockdownDescriptors, APidfdOfTheProcessIsRefused) {
  const Verdict v = JudgeAttack([] {
    const Trusted s = SetUpSecret();
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
    CHILD_CHECK(pidfd >= 0);
    // What a pidfd of the process is for: pidfd_getfd takes its descriptors
    // from outside, process_madvise acts on its memory.
    const int rc = Lockdown();
    printf("fd=%d lockdown=%d\n", pidfd, rc);
    if (rc != CORDON_OK) {
      close(pidfd);
      printf("again=%d\n", Lockdown());
      pidfd = -1;
    }
    errno = 0;
    const long stolen = syscall(SYS_pidfd_getfd, pidfd >= 0 ? pidfd : 0, 1, 0);
    printf("pidfd_getfd=%ld errno=%d\n", stolen, errno);
    (void)s;
  });
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == 0) << v.outcome.err;
  EXPECT_TRUE(Has(v.out, "lockdown=-20\nagain=0\npidfd_getfd=-1 errno=1\n")) << v.out;
  const std::string fd = v.out.substr(3, v.out.find(' ') - 3);
  EXPECT_TRUE(
      Has(v.outcome.err, "refused: descriptor " + fd + " (anon_inode:[pidfd]) is a pidfd of this process"))
      << v.outcome.err;
}

// ---- Class 5: root ----

// Saves and restores the two settings that the root attacks go for, so that
// a run on a real machine leaves them as they were even if an attack works.
class KernelSettings {
 public:
  KernelSettings() : dumpable_(Read(kSuid)), pattern_(Read(kPattern)) {}
  ~KernelSettings() {
    Write(kSuid, dumpable_);
    Write(kPattern, pattern_);
  }

 private:
  static constexpr const char* kSuid = "/proc/sys/fs/suid_dumpable";
  static constexpr const char* kPattern = "/proc/sys/kernel/core_pattern";
  static std::string Read(const char* p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static void Write(const char* p, const std::string& v) { std::ofstream(p) << v; }
  std::string dumpable_, pattern_;
};

// 0, or the errno of writing value to a /proc/sys file.
int WriteSetting(const char* path, const std::string& value) {
  const int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int e = write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size()) ? 0 : errno;
  close(fd);
  return e;
}

// What a root attacker does to be dumpable again: suid_dumpable, then a
// change of fsuid (the kernel then sets dumpable to suid_dumpable), and a
// core limit as high as it goes.
void TryToBecomeDumpable(const char* suid_dumpable, const std::string& pattern) {
  const int e1 = WriteSetting("/proc/sys/fs/suid_dumpable", suid_dumpable);
  const int e2 = WriteSetting("/proc/sys/kernel/core_pattern", pattern);
  const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
  const int e3 = setrlimit(RLIMIT_CORE, &unlimited) == 0 ? 0 : errno;
  errno = 0;
  const long f = syscall(SYS_setfsuid, 65534);
  const int e4 = errno;
  (void)syscall(SYS_setfsuid, 0);
  printf("suid_dumpable=%d core_pattern=%d rlimit=%d setfsuid=%ld/%d dumpable=%d\n", e1, e2, e3, f, e4,
         prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr char kRootAttackResult[] = "suid_dumpable=13 core_pattern=13 rlimit=1 setfsuid=-1/1 dumpable=0\n";

TEST(LockdownRoot, SetfsuidAndSuidDumpableBringNoCoreBack) {
  KernelSettings restore;
  const Verdict v = JudgeAttack([] {
    const Trusted s = SetUpSecret();
    CHILD_CHECK(chdir("/tmp") == 0);
    CHILD_CHECK(Lockdown() == CORDON_OK);
    TryToBecomeDumpable("1", "/tmp/cordon-core.%p");
    // A copy of the process, stopped by a core-dumping signal while trusted
    // code holds the secret in its registers.
    const pid_t kid = fork();
    if (kid == 0) {
      Hold(s, ~0ull >> 1);
      _exit(0);
    }
    usleep(300000);
    kill(kid, SIGQUIT);
    int status = 0;
    CHILD_CHECK(waitpid(kid, &status, 0) == kid);
    printf("signal=%d core=%d\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1, WCOREDUMP(status) ? 1 : 0);
    for (const std::string& f : {"/tmp/cordon-core." + std::to_string(kid), std::string("/tmp/core"),
                                 "/tmp/core." + std::to_string(kid)}) {
      const std::string core = Slurp(f);
      if (!core.empty()) Evidence(core.data(), core.size());
    }
  });
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.memory_scanned);
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == 0) << v.outcome.err;
  EXPECT_EQ(v.out, std::string(kRootAttackResult) + "signal=3 core=0\n");
}

TEST(LockdownRoot, ACorePatternPipeHelperIsNeverRun) {
  KernelSettings restore;
  const Verdict v = JudgeAttack([] {
    const Trusted s = SetUpSecret();
    char exe[4096];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHILD_CHECK(n > 0);
    exe[n] = '\0';
    const std::string out = "/tmp/cordon-helper-" + std::to_string(getpid());
    char addr[32];
    snprintf(addr, sizeof addr, "%lx", reinterpret_cast<unsigned long>(s.secret));
    CHILD_CHECK(Lockdown() == CORDON_OK);
    TryToBecomeDumpable("2", std::string("|") + exe + " --cordon-core-helper %P " + addr + " " + out);
    const pid_t kid = fork();
    if (kid == 0) {
      kill(getpid(), SIGQUIT);
      _exit(0);
    }
    int status = 0;
    CHILD_CHECK(waitpid(kid, &status, 0) == kid);
    const std::string got = Slurp(out);
    printf("signal=%d core=%d helper=%s\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1,
           WCOREDUMP(status) ? 1 : 0, got.empty() ? "none" : "ran");
    if (!got.empty()) Evidence(got.data(), got.size());
  });
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == 0) << v.outcome.err;
  EXPECT_EQ(v.out, std::string(kRootAttackResult) + "signal=3 core=0 helper=none\n");
}

// The capabilities are gone for good, and the credential calls refused.
TEST(LockdownRoot, CapabilitiesAreDroppedForGood) {
  const Verdict v = JudgeAttack([] {
    SetUpSecret();
    CHILD_CHECK(Lockdown() == CORDON_OK);
    const std::string status = Slurp("/proc/self/status");
    for (const char* k : {"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"}) {
      const size_t at = status.find(k);
      CHILD_CHECK(at != std::string::npos);
      printf("%s%s\n", k, status.substr(at + strlen(k), status.find('\n', at) - at - strlen(k)).c_str());
    }
    printf("securebits=%#x\n", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct d[2] = {};
    d[0].effective = d[0].permitted = 1u << CAP_SYS_PTRACE;
    errno = 0;
    printf("capset=%ld/%d\n", syscall(SYS_capset, &h, d), errno);
    for (const long nr : {long{SYS_setuid}, long{SYS_setresuid}, long{SYS_setgid}, long{SYS_setgroups}}) {
      errno = 0;
      printf("%ld: %ld/%d\n", nr, syscall(nr, 0, 0, 0), errno);
    }
    errno = 0;
    printf("securebits_set=%d/%d\n", prctl(PR_SET_SECUREBITS, 0, 0, 0, 0), errno);
    rlimit core{};
    getrlimit(RLIMIT_CORE, &core);
    printf("core=%lu/%lu\n", static_cast<unsigned long>(core.rlim_cur),
           static_cast<unsigned long>(core.rlim_max));
  });
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == 0) << v.outcome.err;
  EXPECT_EQ(v.out,
            "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
            "CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nsecurebits=0xef\ncapset=-1/1\n"
            "105: -1/1\n117: -1/1\n106: -1/1\n116: -1/1\nsecurebits_set=-1/1\ncore=1/1\n");
}

// ---- Class 6: the file behind code changes between inspection and copy ----

int g_to_writer = -1, g_from_writer = -1;
bool g_flipped = false;

void AskWriter(uint8_t byte) {
  CHILD_CHECK(write(g_to_writer, &byte, 1) == 1);
  char ack;
  CHILD_CHECK(read(g_from_writer, &ack, 1) == 1);
}

// Runs where the old lockdown had its window: after the re-inspection,
// before the copy.
void FlipOnce() {
  if (g_flipped) return;
  g_flipped = true;
  AskWriter(0xee + 1);  // RDPKRU (0F 01 EE) becomes WRPKRU (0F 01 EF)
}

TEST(LockdownPrivatization, TheBytesThatRunAreTheBytesThatWereScanned) {
  const Verdict v = JudgeAttack([] {
    // The code file, mapped before cordon_init(): xor eax, ecx, edx; RDPKRU; ret.
    const std::string path = "/tmp/cordon-race-" + std::to_string(getpid());
    uint8_t code[kPage];
    memset(code, 0xcc, sizeof code);
    const uint8_t body[] = {0x31, 0xc0, 0x31, 0xc9, 0x31, 0xd2, 0x0f, 0x01, 0xee, 0xc3};
    memcpy(code, body, sizeof body);
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHILD_CHECK(fd >= 0 && write(fd, code, sizeof code) == static_cast<ssize_t>(sizeof code));
    void* fn = mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    CHILD_CHECK(fn != MAP_FAILED);
    // The writer: another process, without capabilities (so the lockdown
    // accepts it as a child), that changes the file when asked.
    int to[2], from[2];
    CHILD_CHECK(pipe2(to, O_CLOEXEC) == 0 && pipe2(from, O_CLOEXEC) == 0);
    const pid_t writer = fork();
    if (writer == 0) {
      close(to[1]);
      close(from[0]);
      __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
      __user_cap_data_struct none[2] = {};
      CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && syscall(SYS_capset, &h, none) == 0);
      uint8_t b;
      while (read(to[0], &b, 1) == 1) {
        CHILD_CHECK(pwrite(fd, &b, 1, 8) == 1);
        CHILD_CHECK(write(from[1], "k", 1) == 1);
      }
      _exit(0);
    }
    close(fd);
    close(to[0]);
    close(from[1]);
    g_to_writer = to[1];
    g_from_writer = from[0];
    const Trusted s = SetUpSecret();
    cordon::lockdown::SetBeforePrivatizeHookForTests(FlipOnce);
    const int rc = Lockdown();
    printf("lockdown=%d\n", rc);
    if (rc != CORDON_OK) {
      AskWriter(0xee);  // clean again
      printf("again=%d\n", Lockdown());
    }
    close(to[1]);
    CHILD_CHECK(waitpid(writer, nullptr, 0) == writer);
    unlink(path.c_str());
    // Untrusted code runs the code the lockdown let through.
    const auto run = reinterpret_cast<uint32_t (*)()>(fn);
    const uint32_t before = Pkru();
    run();
    const uint32_t after = Pkru();
    printf("pkru %s\n", after == before ? "unchanged" : "changed");
    const int key = cordon_domain_pkey(cordon_trusted_domain());
    if (((after >> (2 * key)) & 3) == 0) Evidence(s.secret, kJudgeSecretSize);  // the key is open
  });
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.memory_scanned);
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == 0) << v.outcome.err;
  EXPECT_EQ(v.out, "lockdown=-15\nagain=0\npkru unchanged\n");
  EXPECT_TRUE(Has(v.outcome.err, "cordon: cordon_lockdown() refused: WRPKRU at "));
  EXPECT_TRUE(Has(v.outcome.err,
                  "is in the code as it would run after cordon_lockdown(): the file behind it "
                  "changed after it was inspected; nothing was made private"))
      << v.outcome.err;
}

// ---- A seccomp filter installed before cordon_init() ----

// Makes system call nr return 0 without doing anything.
void FakeSuccess(long nr) {
  sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof f / sizeof f[0]), f};
  CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
  CHILD_CHECK(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0);
}

Verdict InitUnder(long faked) {
  return JudgeAttack([faked] {
    FakeSuccess(faked);
    const int rc = cordon_init(nullptr);
    printf("init=%d\n", rc);
    if (rc != CORDON_OK) return;
    // Init believed it: the "trusted" secret is then plain key-0 memory.
    const uint8_t* secret = LoadJudgeSecret();
    if (cordon_domain_pkey(cordon_trusted_domain()) == 0 || faked == SYS_pkey_mprotect) {
      uint8_t copy[kJudgeSecretSize];
      memcpy(copy, secret, sizeof copy);
      Evidence(copy, sizeof copy);
    }
  });
}

TEST(LockdownPreexistingFilter, ANoOpPkeyMprotectMakesInitFail) {
  const Verdict v = InitUnder(SYS_pkey_mprotect);
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == 0) << v.outcome.err;
  EXPECT_EQ(v.out, "init=-13\n") << v.outcome.err;
  EXPECT_TRUE(Has(v.outcome.err, "cordon: protection keys not set up: the trusted domain's memory at 0x"));
  EXPECT_TRUE(Has(v.outcome.err,
                  "does not start with read-write pages; the kernel did not do what its system "
                  "calls reported; a seccomp filter was installed before cordon_init() "
                  "(Seccomp: 2 in /proc/self/status)"))
      << v.outcome.err;
}

TEST(LockdownPreexistingFilter, APkeyAllocThatReturnsZeroMakesInitFail) {
  const Verdict v = InitUnder(SYS_pkey_alloc);
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == 0) << v.outcome.err;
  EXPECT_EQ(v.out, "init=-13\n") << v.outcome.err;
  EXPECT_TRUE(Has(v.outcome.err,
                  "cordon: protection keys not set up: pkey_alloc gave key 0, which no domain can use; "
                  "the kernel did not do what its system calls reported; a seccomp filter"))
      << v.outcome.err;
}

// ---- The code region's guard pages ----

constexpr char kHeaderBroken[] =
    "cordon: code region: the header does not hold together (a write to trusted memory changed it); process "
    "stopped: the block at page ";
constexpr uint64_t kStateOffset = 64;  // of the code region's state bytes in its header

uint8_t* Scratch(size_t n) {
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHILD_CHECK(p != MAP_FAILED);
  return static_cast<uint8_t*>(p);
}

uint64_t WriteByte(uint64_t addr, uint64_t value, uint64_t, uint64_t, uint64_t) {
  *reinterpret_cast<volatile uint8_t*>(addr) = static_cast<uint8_t>(value);
  return 0;
}
uint64_t WriteWord(uint64_t addr, uint64_t value, uint64_t, uint64_t, uint64_t) {
  *reinterpret_cast<volatile uint32_t*>(addr) = static_cast<uint32_t>(value);
  return 0;
}

// One write into the region's header (as a memory-corruption bug in
// trusted code would make) turns the guard page after block A into a body
// page. Publishing two pages into A would then make the guard executable,
// right in front of block B, and the two blocks glue into a WRPKRU. The
// head's link still names the guard page, which no longer says it is one:
// the publish stops the process before anything changes.
TEST(LockdownCodeRegion, OneWriteToTheHeaderCannotMakeAGuardPageExecutable) {
  const Verdict v = JudgeAttack([] {
    const Trusted s = SetUpSecret();
    cordon_entry write_byte;
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), WriteByte, "write_byte", &write_byte) == CORDON_OK);
    CHILD_CHECK(Lockdown() == CORDON_OK);
    void *a = nullptr, *b = nullptr;
    CHILD_CHECK(cordon_code_reserve(kPage, &a) == CORDON_OK && cordon_code_reserve(kPage, &b) == CORDON_OK);
    CHILD_CHECK(reinterpret_cast<uint64_t>(b) == reinterpret_cast<uint64_t>(a) + 2 * kPage);
    // The header: a 64-byte fixed part, then one state byte per code page
    // (code_region.cc); 1 is a body page.
    const uint64_t guard_index =
        (reinterpret_cast<uint64_t>(a) - cordon::gates::Config().code_start) / kPage + 1;
    cordon_call(write_byte, cordon::code::RegionSpan().start + kStateOffset + guard_index, 1, 0, 0, 0);
    uint8_t* code_b = Scratch(kPage);
    code_b[0] = 0xee + 1;  // ..EF (the end of a WRPKRU)
    code_b[1] = 0xc3;      // ret
    CHILD_CHECK(cordon_code_publish(b, code_b, 2) == CORDON_OK);
    // Sources in fresh anonymous memory (static arrays can sit next to the
    // gate config page, which is no source).
    uint8_t* code_a = Scratch(2 * kPage);
    memset(code_a, 0xcc, 2 * kPage);
    const uint8_t tail[] = {0x31, 0xc0, 0x31, 0xc9, 0x31, 0xd2, 0x0f, 0x01};  // xor eax/ecx/edx; 0F 01..
    memcpy(code_a + 2 * kPage - sizeof tail, tail, sizeof tail);
    fflush(stdout);
    ExposeToJudge();  // the publish below is expected to stop the process
    const int rc = cordon_code_publish(a, code_a, 2 * kPage);
    printf("publish two pages=%d\n", rc);
    if (rc == CORDON_OK) {
      // Untrusted code runs A's last bytes, 0F 01 then B's EF: WRPKRU with 0.
      reinterpret_cast<void (*)()>(reinterpret_cast<uint64_t>(a) + 2 * kPage - sizeof tail)();
      uint8_t copy[kJudgeSecretSize];
      memcpy(copy, s.secret, sizeof copy);
      Evidence(copy, sizeof copy);
    }
  });
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.memory_scanned);
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == CORDON_VIOLATION_EXIT) << v.out << v.outcome.err;
  EXPECT_EQ(v.out, "");
  EXPECT_TRUE(Has(v.outcome.err, kHeaderBroken)) << v.outcome.err;
}

// A single word written the other way: the head's link made to name the
// next block's guard page, so that the block would reach over its own
// guard and the whole next block. The guard named does not link back: the
// process stops before anything becomes executable.
TEST(LockdownCodeRegion, OneWriteToAHeadsLinkStopsTheProcess) {
  const Verdict v = JudgeAttack([] {
    SetUpSecret();
    cordon_entry write_word;
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), WriteWord, "write_word", &write_word) == CORDON_OK);
    CHILD_CHECK(Lockdown() == CORDON_OK);
    void *a = nullptr, *b = nullptr;
    CHILD_CHECK(cordon_code_reserve(kPage, &a) == CORDON_OK && cordon_code_reserve(kPage, &b) == CORDON_OK);
    const auto& c = cordon::gates::Config();
    const uint64_t pages = (c.code_end - c.code_start) / kPage;
    const uint64_t head = (reinterpret_cast<uint64_t>(a) - c.code_start) / kPage;
    // The links: one 32-bit word per page after the state bytes (page index + 1).
    const uint64_t links = cordon::code::RegionSpan().start + ((64 + pages + 3) & ~uint64_t{3});
    cordon_call(write_word, links + 4 * head, head + 3 + 1, 0, 0, 0);  // B's guard page
    uint8_t* code = Scratch(3 * kPage);
    memset(code, 0xcc, 3 * kPage);
    fflush(stdout);
    ExposeToJudge();
    printf("publish=%d\n", cordon_code_publish(a, code, 3 * kPage));
  });
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.memory_scanned);
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == CORDON_VIOLATION_EXIT) << v.out << v.outcome.err;
  EXPECT_EQ(v.out, "");
  EXPECT_TRUE(Has(v.outcome.err, kHeaderBroken)) << v.outcome.err;
}

// The same write, the other way: the guard page marked free is not handed
// out again as part of a new block.
TEST(LockdownCodeRegion, OneWriteToTheHeaderCannotFreeAGuardPage) {
  const Verdict v = JudgeAttack([] {
    // Three code pages: block A and its guard, and one free page, so that
    // the only two free pages in a row would be A's guard and the next.
    cordon_options o;
    cordon_options_init(&o);
    o.code_size = 3 * kPage;
    CHILD_CHECK(cordon_init(&o) == CORDON_OK);
    LoadJudgeSecret();
    cordon_entry write_byte;
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), WriteByte, "write_byte", &write_byte) == CORDON_OK);
    CHILD_CHECK(Lockdown() == CORDON_OK);
    void *a = nullptr, *c = nullptr;
    CHILD_CHECK(cordon_code_reserve(kPage, &a) == CORDON_OK);
    const uint64_t guard = reinterpret_cast<uint64_t>(a) + kPage;
    const uint64_t guard_index = (guard - cordon::gates::Config().code_start) / kPage;
    cordon_call(write_byte, cordon::code::RegionSpan().start + kStateOffset + guard_index, 0, 0, 0,
                0);  // "free"
    const int rc = cordon_code_reserve(kPage, &c);
    printf("reserve=%d%s\n", rc,
           rc == CORDON_OK && reinterpret_cast<uint64_t>(c) == guard ? " at the guard page" : "");
  });
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == 0) << v.outcome.err;
  EXPECT_EQ(v.out, "reserve=-5\n");  // CORDON_E_NO_MEMORY: the guard page is not free
}

// ---- A child forked during set-up ----

TEST(LockdownChildren, ARootChildForkedDuringSetUpIsRefused) {
  const Verdict v = JudgeAttack([] {
    const Trusted s = SetUpSecret();
    int go[2], back[2];
    CHILD_CHECK(pipe2(go, O_CLOEXEC) == 0 && pipe2(back, O_CLOEXEC) == 0);
    const pid_t parent = getpid();
    const pid_t kid = fork();
    if (kid == 0) {
      // Not confined, and root: once the parent is locked down it reads
      // the parent's trusted memory (ptrace or process_vm_writev would set
      // its registers and PKRU just as well).
      char b;
      if (read(go[0], &b, 1) != 1) _exit(0);
      char buf[kJudgeSecretSize] = {};
      const int mem = open(("/proc/" + std::to_string(parent) + "/mem").c_str(), O_RDONLY);
      if (mem >= 0 && pread(mem, buf, sizeof buf, reinterpret_cast<off_t>(s.secret)) > 0) {
        (void)!write(back[1], buf, sizeof buf);
      }
      _exit(0);
    }
    close(go[0]);
    close(back[1]);
    int rc = Lockdown();
    printf("kid=%d lockdown=%d\n", static_cast<int>(kid), rc);
    if (rc != CORDON_OK) {
      kill(kid, SIGKILL);
      CHILD_CHECK(waitpid(kid, nullptr, 0) == kid);
      printf("again=%d\n", Lockdown());
      return;
    }
    CHILD_CHECK(write(go[1], "g", 1) == 1);
    char buf[kJudgeSecretSize];
    const ssize_t n = read(back[0], buf, sizeof buf);
    if (n > 0) Evidence(buf, static_cast<size_t>(n));
    CHILD_CHECK(waitpid(kid, nullptr, 0) == kid);
  });
  EXPECT_FALSE(v.leaked) << v.leak_where;
  EXPECT_TRUE(v.outcome.exited && v.outcome.exit_code == 0) << v.outcome.err;
  const std::string kid = v.out.substr(4, v.out.find(' ') - 4);
  EXPECT_EQ(v.out, "kid=" + kid + " lockdown=-20\nagain=0\n");
  EXPECT_TRUE(Has(v.outcome.err, "cordon: cordon_lockdown() refused: child process " + kid + " ("))
      << v.outcome.err;
  EXPECT_TRUE(Has(v.outcome.err,
                  ") holds or can regain capabilities and is not confined; as root it could "
                  "ptrace this process"))
      << v.outcome.err;
}

}  // namespace
