// The lockdown's seccomp filter, built with fixed addresses and compared
// with a golden dump (tests/golden/lockdown_filter.pfc). A change to the
// policy shows up here as a diff to review; regenerate the file with
// CORDON_UPDATE_GOLDEN=1 build/tests/cordon_host_tests --gtest_filter='LockdownFilter.*'.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/lockdown/audit.h"
#include "runtime/lockdown/filter_loader.h"
#include "runtime/lockdown/seccomp_filter.h"

namespace {

using cordon::hw::kGuard;
using cordon::lockdown::FilterSpec;

// A domain in the upper of its two blocks, and a config page in an
// executable's image.
constexpr uint64_t kDomainBlocks = 0x7e0000000000;
constexpr FilterSpec::Range kDomain{kDomainBlocks + kGuard, kDomainBlocks + kGuard + (uint64_t{80} << 20)};
constexpr FilterSpec::Range kConfigPage{0x555555a63000, 0x555555a64000};
// A code region: its header, then 256 MiB of code pages.
constexpr uint64_t kCodeBlocks = 0x7f0000000000;
constexpr FilterSpec::Range kCodeRegion{kCodeBlocks + kGuard,
                                        kCodeBlocks + kGuard + 0x11000 + (uint64_t{256} << 20)};
constexpr FilterSpec::Range kCodePages{kCodeRegion.start + 0x11000, kCodeRegion.end};

FilterSpec Spec(cordon::lockdown::Violation v) {
  FilterSpec spec;
  spec.protected_ranges = {kDomain, kConfigPage, kCodeRegion};
  spec.code_pages = kCodePages;
  spec.violation = v;
  memcpy(spec.signal_token, cordon::lockdown::kPlaceholderToken, sizeof spec.signal_token);
  // The shape for a kernel that writes frames with the interrupted PKRU
  // (before 6.12): signals only a faulting instruction may raise.
  spec.unsendable_signals = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS};
  // An audit stream on descriptor 7 (docs/audit.md): its rules are in the dump.
  spec.audit_fd = 7;
  return spec;
}

std::string Text(cordon::lockdown::Violation v) {
  auto filter = cordon::lockdown::BuildFilter(Spec(v));
  EXPECT_TRUE(filter.ok()) << filter.error();
  if (!filter.ok()) return "";
  auto text = cordon::lockdown::FilterText(*filter);
  EXPECT_TRUE(text.ok()) << text.error();
  return text.ok() ? *text : "";
}

TEST(LockdownFilter, MatchesTheGoldenDump) {
  const std::string path = std::string(CORDON_SOURCE_DIR) + "/tests/golden/lockdown_filter.pfc";
  const std::string text = Text(cordon::lockdown::Violation::kKill);
  ASSERT_FALSE(text.empty());
  if (getenv("CORDON_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << text;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing " << path;
  std::stringstream golden;
  golden << in.rdbuf();
  EXPECT_EQ(text, golden.str()) << "the filter changed; review the difference, then regenerate " << path
                                << " as this file's banner says";
}

TEST(LockdownFilter, ErrnoModeDiffersOnlyInTheAction) {
  std::string kill = Text(cordon::lockdown::Violation::kKill);
  const std::string errno_mode = Text(cordon::lockdown::Violation::kErrno);
  ASSERT_NE(kill.find("action TRAP;"), std::string::npos);
  EXPECT_EQ(errno_mode.find("action TRAP;"), std::string::npos);
  // Every rule's action, and the bad-architecture one, follow the mode.
  for (size_t at; (at = kill.find("action TRAP;")) != std::string::npos;)
    kill.replace(at, 12, "action ERRNO(1);");
  EXPECT_EQ(kill, errno_mode);
}

TEST(LockdownFilter, GuardsOnlyTheAuditDescriptorWhenThereIsOne) {
  FilterSpec spec = Spec(cordon::lockdown::Violation::kKill);
  auto with = cordon::lockdown::BuildFilter(spec);
  spec.audit_fd = -1;
  auto without = cordon::lockdown::BuildFilter(spec);
  ASSERT_TRUE(with.ok() && without.ok());
  const std::string a = *cordon::lockdown::FilterText(*with), b = *cordon::lockdown::FilterText(*without);
  EXPECT_NE(a.find("syscall \"close_range\""), std::string::npos);
  EXPECT_EQ(b.find("syscall \"close_range\""), std::string::npos);
  EXPECT_EQ(b.find("syscall \"io_submit\""), std::string::npos);
  EXPECT_NE(a.find("syscall \"io_submit\""), std::string::npos);
}

TEST(LockdownFilter, CoversEachRangeAndTheGuardBelowIt) {
  EXPECT_EQ(cordon::lockdown::BlocksFor(kDomain),
            (std::vector<uint64_t>{kDomainBlocks, kDomainBlocks + kGuard}));
  // A range that does not start on a block: its block and the one below.
  const std::vector<uint64_t> config = cordon::lockdown::BlocksFor(kConfigPage);
  ASSERT_EQ(config.size(), 2u);
  EXPECT_EQ(config[1], kConfigPage.start & ~(kGuard - 1));
  EXPECT_EQ(config[0], config[1] - kGuard);
  // Near address 0 nothing underflows.
  EXPECT_EQ(cordon::lockdown::BlocksFor({0x1000, 0x2000}), (std::vector<uint64_t>{0}));
}

// The pseudo code does not show it, but the BPF sends x32 system call
// numbers (bit 30) to the bad-architecture action, like i386 ones.
TEST(LockdownFilter, SendsX32AndI386CallsToTheBadArchitectureAction) {
  auto filter = cordon::lockdown::BuildFilter(Spec(cordon::lockdown::Violation::kKill));
  ASSERT_TRUE(filter.ok());
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(seccomp_export_bpf(filter->get(), fds[1]), 0);
  close(fds[1]);
  std::vector<sock_filter> prog;
  sock_filter insn;
  while (read(fds[0], &insn, sizeof insn) == static_cast<ssize_t>(sizeof insn)) prog.push_back(insn);
  close(fds[0]);
  ASSERT_GT(prog.size(), 4u);
  constexpr uint32_t kTrap = 0x00030000;  // SECCOMP_RET_TRAP
  // ld arch; jeq X86_64 else -> bad arch.
  EXPECT_EQ(prog[0].code, BPF_LD | BPF_W | BPF_ABS);
  EXPECT_EQ(prog[0].k, 4u);
  EXPECT_EQ(prog[1].code, BPF_JMP | BPF_JEQ | BPF_K);
  EXPECT_EQ(prog[1].k, 0xc000003eu);  // AUDIT_ARCH_X86_64
  const sock_filter& arch_miss = prog[1 + 1 + prog[1].jf];
  EXPECT_EQ(arch_miss.code, BPF_RET | BPF_K);
  EXPECT_EQ(arch_miss.k, kTrap);
  // ld nr; jge 0x40000000 -> (unless it is -1) bad arch.
  EXPECT_EQ(prog[3].code, BPF_JMP | BPF_JGE | BPF_K);
  EXPECT_EQ(prog[3].k, 0x40000000u);
  bool x32_trapped = false;
  for (size_t i = 4; i < prog.size(); ++i) {
    if (prog[i].code == (BPF_RET | BPF_K) && prog[i].k == kTrap) x32_trapped = true;
  }
  EXPECT_TRUE(x32_trapped);
}

// The lockdown loads this program after replacing the placeholder token's
// four 32-bit halves inside trusted memory (lockdown::LoadFilterInside): each
// must appear as the constant of a jeq.
TEST(LockdownFilter, CarriesEveryPlaceholderWordForTheToken) {
  auto filter = cordon::lockdown::BuildFilter(Spec(cordon::lockdown::Violation::kKill));
  ASSERT_TRUE(filter.ok());
  auto prog = cordon::lockdown::ExportBpf(*filter, Spec(cordon::lockdown::Violation::kKill));
  ASSERT_TRUE(prog.ok()) << prog.error();
  for (const uint64_t word : cordon::lockdown::kPlaceholderToken) {
    for (const uint32_t half : {static_cast<uint32_t>(word), static_cast<uint32_t>(word >> 32)}) {
      int seen = 0;
      for (const sock_filter& insn : *prog)
        seen += insn.code == (BPF_JMP | BPF_JEQ | BPF_K) && insn.k == half;
      EXPECT_GE(seen, 1) << std::hex << half;
    }
  }
}

// The immutable-mappings prefix, loaded for real in a child (with "allow"
// after it): a memory call that overlaps a protected range by one page is
// refused, one that ends exactly at it or starts exactly after it is not,
// and the 64-bit end is right across a 4 GiB boundary (the carry).
// The pkey_mprotect prefix (virtual domains, physical heaps' rights): with
// the token, a listed key, a protection without execute, wholly inside the
// range: allowed, and the kernel answers (EINVAL: no such key in this
// child); anything else goes on to the rest of the program, which here
// refuses pkey_mprotect with EACCES.
TEST(LockdownFilter, RetagPrefixAllowsOnlyTheRetaggingShape) {
  constexpr uint64_t kPage = 4096;
  constexpr uint64_t kBase = 0x4ffffff00000;
  constexpr uint64_t kTok0 = 0x1111222233334444, kTok1 = 0x5555666677778888;
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (mmap(reinterpret_cast<void*>(kBase), 4 * kPage, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != reinterpret_cast<void*>(kBase)) {
      _exit(2);
    }
    FilterSpec spec;
    spec.signal_token[0] = kTok0;
    spec.signal_token[1] = kTok1;
    spec.retag_rules = {{{kBase + kPage, kBase + 3 * kPage}, {5, 7}},
                        {{kBase + 3 * kPage, kBase + 4 * kPage}, {9}}};
    std::vector<sock_filter> prog = cordon::lockdown::RetagPrefix(spec);
    // The rest of the program: pkey_mprotect refused, everything else allowed.
    prog.push_back(sock_filter{BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(seccomp_data, nr)});
    prog.push_back(sock_filter{BPF_JMP | BPF_JEQ | BPF_K, 0, 1, SYS_pkey_mprotect});
    prog.push_back(sock_filter{BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | EACCES});
    prog.push_back(sock_filter{BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW});
    sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) {
      _exit(3);
    }
    int step = 10;
    const auto call = [](uint64_t addr, uint64_t len, uint64_t prot, uint64_t key, uint64_t t0 = kTok0,
                         uint64_t t1 = kTok1) {
      errno = 0;
      return syscall(SYS_pkey_mprotect, addr, len, prot, key, t0, t1) == -1 ? errno : 0;
    };
    const auto allowed = [&step](int err) {
      ++step;
      if (err == EACCES) _exit(step);
    };
    const auto refused = [&step](int err) {
      ++step;
      if (err != EACCES) _exit(step);
    };
    const uint64_t r = kBase + kPage;
    allowed(call(r, 2 * kPage, PROT_READ | PROT_WRITE, 5));                     // 11: the whole range
    allowed(call(r + kPage, kPage, PROT_READ, 7));                              // 12
    allowed(call(r, kPage, PROT_NONE, 5));                                      // 13
    allowed(call(kBase + 3 * kPage, kPage, PROT_READ, 9));                      // 14: the second rule
    refused(call(r, kPage, PROT_READ, 5, kTok0 ^ 1));                           // 15: token words
    refused(call(r, kPage, PROT_READ, 5, kTok0 ^ (uint64_t{1} << 40)));         // 16
    refused(call(r, kPage, PROT_READ, 5, kTok0, kTok1 ^ 1));                    // 17
    refused(call(r, kPage, PROT_READ, 5, kTok0, kTok1 ^ (uint64_t{1} << 40)));  // 18
    refused(call(r, kPage, PROT_READ, 6));                                      // 19: another key
    refused(call(r, kPage, PROT_READ, 0));                                      // 20: key 0
    refused(call(r, kPage, PROT_READ, 5 | (uint64_t{1} << 32)));                // 21
    refused(call(r, kPage, PROT_READ, 9));                                      // 22: the other rule's key
    refused(call(r, kPage, PROT_READ | PROT_EXEC, 5));                          // 23: never executable
    refused(call(r, kPage, PROT_EXEC, 5));                                      // 24
    refused(call(r, kPage, PROT_READ | PROT_WRITE | PROT_EXEC, 5));             // 25
    refused(call(r, kPage, PROT_READ | (uint64_t{1} << 32), 5));                // 26
    refused(call(kBase, kPage, PROT_READ, 5));                                  // 27: below
    refused(call(kBase, 2 * kPage, PROT_READ, 5));                              // 28: from below into it
    refused(call(r + kPage, 2 * kPage, PROT_READ, 5));                          // 29: out past the end
    refused(call(r, uint64_t{1} << 41, PROT_READ, 5));                          // 30: too long
    refused(call(r, ~uint64_t{0} - r + 2, PROT_READ, 5));                       // 31: wraps
    refused(call(kBase + 4 * kPage, kPage, PROT_READ, 9));                      // 32: after
    ++step;
    if (syscall(SYS_mprotect, r, kPage, PROT_READ) != 0) _exit(step);  // 33: other calls pass
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "failed step " << WEXITSTATUS(status);
}

TEST(LockdownFilter, ImmutableMappingsAreRefusedByExactOverlap) {
  constexpr uint64_t kPage = 4096;
  constexpr uint64_t kBase = 0x4fffffffe000;  // pages ...e000, ...f000, 0x500000000000
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const auto map = [](uint64_t at, uint64_t len) {
      return mmap(reinterpret_cast<void*>(at), len, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == reinterpret_cast<void*>(at);
    };
    if (!map(kBase, 3 * kPage)) _exit(2);
    // Protected: the third page (above the boundary) and, elsewhere, one page.
    std::vector<sock_filter> prog = cordon::lockdown::ImmutableMappingsPrefix(
        {{kBase + 2 * kPage, kBase + 3 * kPage}}, SECCOMP_RET_ERRNO | EPERM);
    prog.push_back(sock_filter{BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW});
    sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) {
      _exit(3);
    }
    int step = 10;
    const auto refused = [&step](long rc) {
      ++step;
      if (!(rc == -1 && errno == EPERM)) _exit(step);
    };
    const auto allowed = [&step](long rc) {
      ++step;
      if (rc != 0) _exit(step);
    };
    void* base = reinterpret_cast<void*>(kBase);
    auto* third = reinterpret_cast<unsigned char*>(kBase + 2 * kPage);
    refused(munmap(base, 3 * kPage));                            // 11: across the boundary, into it
    refused(mprotect(base, 2 * kPage + 1, PROT_READ));           // 12: one byte into it
    refused(madvise(third, kPage, MADV_DONTNEED));               // 13
    refused(mprotect(third - 1 * kPage, 2 * kPage, PROT_NONE));  // 14
    errno = 0;
    void* over = mmap(third, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    refused(over == MAP_FAILED ? -1 : 0);             // 15: MAP_FIXED over it
    allowed(mprotect(base, 2 * kPage, PROT_READ));    // 16: ends exactly at it
    allowed(madvise(third + kPage, 0, MADV_NORMAL));  // 17: starts after it (empty)
    void* elsewhere = mmap(third, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    allowed(elsewhere != MAP_FAILED && elsewhere != third ? 0 : -1);  // 18: no MAP_FIXED: placed elsewhere
    allowed(munmap(base, 2 * kPage));                                 // 19
    if (third[0] != 0) _exit(30);                                     // still mapped, untouched
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "failed step " << WEXITSTATUS(status);
}

}  // namespace

// The lockdown's descriptor audit, decided from what /proc/self/fd and
// fdinfo say (runtime/lockdown/audit.cc); the VM tests open the real ones.
namespace {

using cordon::lockdown::DescriptorFacts;
using cordon::lockdown::WhyDescriptorIsUnsafe;

constexpr pid_t kSelf = 100;
bool OwnTask(long pid) {
  return pid == kSelf || pid == 101;
}

std::string Why(const std::string& target, mode_t mode = S_IFREG, long magic = 0, int flags = O_RDONLY,
                dev_t rdev = 0, long pidfd_pid = -1) {
  DescriptorFacts f;
  f.target = target;
  f.mode = mode;
  f.fs_magic = magic;
  f.flags = flags;
  f.rdev = rdev;
  f.pidfd_pid = pidfd_pid;
  return WhyDescriptorIsUnsafe(f, kSelf, OwnTask);
}

TEST(LockdownDescriptorAudit, RefusesWhatReachesAroundTheKeys) {
  EXPECT_NE(Why("anon_inode:[perf_event]", 0).find("a perf event"), std::string::npos);
  EXPECT_NE(Why("anon_inode:[userfaultfd]", 0).find("userfaultfd"), std::string::npos);
  EXPECT_NE(Why("anon_inode:[io_uring]", 0).find("io_uring"), std::string::npos);
  EXPECT_NE(Why("anon_inode:bpf-map", 0).find("bpf object"), std::string::npos);
  EXPECT_NE(Why("anon_inode:bpf-prog", 0).find("bpf object"), std::string::npos);
  EXPECT_NE(Why("anon_inode:[seccomp notify]", 0).find("seccomp listener"), std::string::npos);
  EXPECT_NE(Why("anon_inode:kvm-vm", 0).find("KVM"), std::string::npos);
  EXPECT_NE(Why("anon_inode:[something new]", 0).find("does not know"), std::string::npos);
  EXPECT_NE(Why("anon_inode:[pidfd]", 0, 0, O_RDONLY, 0, kSelf).find("pidfd of this process"),
            std::string::npos);
  EXPECT_NE(Why("anon_inode:[pidfd]", 0, 0, O_RDONLY, 0, 101).find("pidfd of this process"),
            std::string::npos);
  for (const char* f : {"/proc/100/mem", "/proc/100/task/101/mem", "/proc/100/pagemap", "/proc/100/syscall",
                        "/proc/100/stack", "/proc/555/mem", "/proc/kcore", "/proc/kpageflags"}) {
    EXPECT_FALSE(Why(f, S_IFREG, PROC_SUPER_MAGIC).empty()) << f;
  }
  EXPECT_FALSE(Why("/proc/sys/kernel/core_pattern", S_IFREG, PROC_SUPER_MAGIC, O_WRONLY).empty());
  EXPECT_FALSE(Why("/sys/kernel/mm/foo", S_IFREG, SYSFS_MAGIC, O_RDWR).empty());
  EXPECT_FALSE(Why("/sys/kernel/tracing/trace_pipe", S_IFREG, TRACEFS_MAGIC).empty());
  EXPECT_FALSE(Why("/dev/mem", S_IFCHR, 0, O_RDONLY, makedev(1, 1)).empty());
  EXPECT_FALSE(Why("/dev/kvm", S_IFCHR, 0, O_RDWR, makedev(10, 232)).empty());
  EXPECT_FALSE(Why("/dev/sda", S_IFBLK, 0, O_RDONLY, makedev(8, 0)).empty());
}

TEST(LockdownDescriptorAudit, KeepsWhatIsHarmless) {
  for (const char* t : {"anon_inode:[eventfd]", "anon_inode:[eventpoll]", "anon_inode:[signalfd]",
                        "anon_inode:[timerfd]", "anon_inode:inotify", "socket:[1234]", "pipe:[99]"}) {
    EXPECT_EQ(Why(t, 0), "") << t;
  }
  EXPECT_EQ(Why("anon_inode:[pidfd]", 0, 0, O_RDONLY, 0, 555), "");  // another process's
  EXPECT_EQ(Why("/proc/100/maps", S_IFREG, PROC_SUPER_MAGIC), "");
  EXPECT_EQ(Why("/proc/100/oom_score_adj", S_IFREG, PROC_SUPER_MAGIC, O_WRONLY), "");
  EXPECT_EQ(Why("/proc/sys/kernel/pid_max", S_IFREG, PROC_SUPER_MAGIC), "");  // reading
  EXPECT_EQ(Why("/sys/devices/system/cpu/online", S_IFREG, SYSFS_MAGIC), "");
  for (const dev_t d : {makedev(1, 3), makedev(1, 5), makedev(1, 9), makedev(5, 1), makedev(136, 0)}) {
    EXPECT_EQ(Why("/dev/x", S_IFCHR, 0, O_RDWR, d), "");
  }
  EXPECT_EQ(Why("/tmp/data", S_IFREG, 0x01021994, O_RDWR), "");
}

}  // namespace
