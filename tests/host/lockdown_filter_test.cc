// The lockdown's seccomp filter, built with fixed addresses and compared
// with a golden dump (tests/golden/lockdown_filter.pfc). A change to the
// policy shows up here as a diff to review; regenerate the file with
// CORDON_UPDATE_GOLDEN=1 build/tests/cordon_host_tests --gtest_filter='LockdownFilter.*'.
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "runtime/policy/seccomp_filter.h"
#include "runtime/signals/signals.h"

namespace {

using cordon::policy::FilterSpec;
using cordon::policy::kGuard;

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

FilterSpec Spec(cordon::policy::Violation v) {
  FilterSpec spec;
  spec.protected_ranges = {kDomain, kConfigPage, kCodeRegion};
  spec.code_pages = kCodePages;
  spec.violation = v;
  memcpy(spec.signal_token, cordon::signals::kPlaceholderToken, sizeof spec.signal_token);
  return spec;
}

std::string Text(cordon::policy::Violation v) {
  auto filter = cordon::policy::BuildFilter(Spec(v));
  EXPECT_TRUE(filter.ok()) << filter.error();
  if (!filter.ok()) return "";
  auto text = cordon::policy::FilterText(*filter);
  EXPECT_TRUE(text.ok()) << text.error();
  return text.ok() ? *text : "";
}

TEST(LockdownFilter, MatchesTheGoldenDump) {
  const std::string path = std::string(CORDON_SOURCE_DIR) + "/tests/golden/lockdown_filter.pfc";
  const std::string text = Text(cordon::policy::Violation::kKill);
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
  std::string kill = Text(cordon::policy::Violation::kKill);
  const std::string errno_mode = Text(cordon::policy::Violation::kErrno);
  ASSERT_NE(kill.find("action TRAP;"), std::string::npos);
  EXPECT_EQ(errno_mode.find("action TRAP;"), std::string::npos);
  // Every rule's action, and the bad-architecture one, follow the mode.
  for (size_t at; (at = kill.find("action TRAP;")) != std::string::npos;)
    kill.replace(at, 12, "action ERRNO(1);");
  EXPECT_EQ(kill, errno_mode);
}

TEST(LockdownFilter, CoversEachRangeAndTheGuardBelowIt) {
  EXPECT_EQ(cordon::policy::BlocksFor(kDomain),
            (std::vector<uint64_t>{kDomainBlocks, kDomainBlocks + kGuard}));
  // A range that does not start on a block: its block and the one below.
  const std::vector<uint64_t> config = cordon::policy::BlocksFor(kConfigPage);
  ASSERT_EQ(config.size(), 2u);
  EXPECT_EQ(config[1], kConfigPage.start & ~(kGuard - 1));
  EXPECT_EQ(config[0], config[1] - kGuard);
  // Near address 0 nothing underflows.
  EXPECT_EQ(cordon::policy::BlocksFor({0x1000, 0x2000}), (std::vector<uint64_t>{0}));
}

// The pseudo code does not show it, but the BPF sends x32 system call
// numbers (bit 30) to the bad-architecture action, like i386 ones.
TEST(LockdownFilter, SendsX32AndI386CallsToTheBadArchitectureAction) {
  auto filter = cordon::policy::BuildFilter(Spec(cordon::policy::Violation::kKill));
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
// four 32-bit halves inside trusted memory (signals::LoadFilterInside): each
// must appear as the constant of a jeq.
TEST(LockdownFilter, CarriesEveryPlaceholderWordForTheToken) {
  auto filter = cordon::policy::BuildFilter(Spec(cordon::policy::Violation::kKill));
  ASSERT_TRUE(filter.ok());
  auto prog = cordon::policy::ExportBpf(*filter);
  ASSERT_TRUE(prog.ok()) << prog.error();
  for (const uint64_t word : cordon::signals::kPlaceholderToken) {
    for (const uint32_t half : {static_cast<uint32_t>(word), static_cast<uint32_t>(word >> 32)}) {
      int seen = 0;
      for (const sock_filter& insn : *prog)
        seen += insn.code == (BPF_JMP | BPF_JEQ | BPF_K) && insn.k == half;
      EXPECT_GE(seen, 1) << std::hex << half;
    }
  }
}

}  // namespace
