// Checks of the gate machine code that need no PKU: each listed gate site
// is a WRPKRU followed by its check, and the register scrub clears what it
// must (AVX-512 included, which the PKU VM cannot run). That the runtime has
// no other WRPKRU is checked by cordon-scan on a runtime-only program
// (tests/scan/).
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "runtime/gates/gate_config.h"
#include "runtime/hardware/cpu.h"

extern "C" {
void cordon_internal_scrub_probe_avx();
void cordon_internal_scrub_probe_avx512();
}

namespace {

TEST(GateCode, EveryGateSiteIsAWrpkruFollowedByACheck) {
  // 7 per gate (entry, exit, callout, callback return, and the attach
  // path's three), 2 variants, 15 domains; 8 signal sites per domain
  // (enter, leave, resume, and for frames on the alternate stack: back to
  // domain 1 to resume, enter, decide, park, leave); the signal return into
  // domain 1, the landing on the alternate stack and its way out, and a new
  // thread's way out (docs/signals.md); the fatal path's leave.
  ASSERT_EQ(cordon::gates::SiteCount(), 7u * 2u * 15u + 8u * 15u + 4u + 1u);
  std::set<int> entry_domains;
  for (size_t i = 0; i < cordon::gates::SiteCount(); ++i) {
    const auto s = cordon::gates::SiteAt(i);
    const auto* b = reinterpret_cast<const unsigned char*>(s.address);
    EXPECT_EQ(memcmp(b, "\x0f\x01\xef", 3), 0) << "site " << i << " is not a WRPKRU";
    EXPECT_EQ(b[3], 0x3b) << "cmp eax, [rip+disp32] must follow the WRPKRU";
    EXPECT_EQ(b[4], 0x05);
    EXPECT_EQ(b[9], 0x0f) << "then jne rel32";
    EXPECT_EQ(b[10], 0x85);
    EXPECT_TRUE(s.kind >= SITE_ENTRY && s.kind <= SITE_DIE_LEAVE);
    if (s.kind == SITE_ENTRY && !s.wide) entry_domains.insert(s.domain);
  }
  EXPECT_EQ(entry_domains.size(), 15u);
}

struct Regs {
  uint64_t gpr[6];  // rcx rdx rsi rdi r8 r9 ... (r10 below)
  uint64_t r10;
  unsigned char ymm[16][32];
};

__attribute__((target("avx2"))) void DirtyAvxAndScrub(void (*probe)(), Regs* out) {
  asm volatile(
      "vpcmpeqb %%ymm0, %%ymm0, %%ymm0\n\t"
      "vpcmpeqb %%ymm5, %%ymm5, %%ymm5\n\t"
      "vpcmpeqb %%ymm15, %%ymm15, %%ymm15\n\t"
      "mov $-1, %%rcx\n\tmov $-1, %%rdx\n\tmov $-1, %%rsi\n\tmov $-1, %%rdi\n\t"
      "mov $-1, %%r8\n\tmov $-1, %%r9\n\tmov $-1, %%r10\n\t"
      "call *%%rax\n\t"
      "mov %%rcx, 0(%%rbx)\n\tmov %%rdx, 8(%%rbx)\n\tmov %%rsi, 16(%%rbx)\n\tmov %%rdi, 24(%%rbx)\n\t"
      "mov %%r8, 32(%%rbx)\n\tmov %%r9, 40(%%rbx)\n\tmov %%r10, 48(%%rbx)\n\t"
      "vmovdqu %%ymm0, 56(%%rbx)\n\tvmovdqu %%ymm5, 216(%%rbx)\n\tvmovdqu %%ymm15, 536(%%rbx)\n\t"
      :
      : "a"(probe), "b"(out)
      : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3",
        "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

TEST(GateCode, ScrubClearsGeneralAndVectorRegisters) {
  ASSERT_TRUE(cordon::hw::CpuHasAvx());
  for (auto probe : {cordon_internal_scrub_probe_avx, cordon_internal_scrub_probe_avx512}) {
    if (probe == cordon_internal_scrub_probe_avx512 && !cordon::hw::CpuHasAvx512()) continue;
    Regs r;
    memset(&r, 0x5a, sizeof r);
    DirtyAvxAndScrub(probe, &r);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(r.gpr[i], 0u) << "gpr " << i;
    EXPECT_EQ(r.r10, 0u);
    for (int v : {0, 5, 15}) {
      for (int b = 0; b < 32; ++b) ASSERT_EQ(r.ymm[v][b], 0) << "ymm" << v;
    }
  }
}

struct Wide {
  unsigned char zmm[16][64];
  uint16_t k[8];
};

__attribute__((target("avx512f"))) void DirtyAvx512AndScrub(Wide* out) {
  asm volatile(
      "vpternlogd $0xff, %%zmm16, %%zmm16, %%zmm16\n\t"
      "vpternlogd $0xff, %%zmm23, %%zmm23, %%zmm23\n\t"
      "vpternlogd $0xff, %%zmm31, %%zmm31, %%zmm31\n\t"
      "kxnorw %%k0, %%k0, %%k1\n\tkxnorw %%k0, %%k0, %%k4\n\tkxnorw %%k0, %%k0, %%k7\n\t"
      "call cordon_internal_scrub_probe_avx512\n\t"
      "vmovdqu64 %%zmm16, 0(%%rbx)\n\tvmovdqu64 %%zmm23, 64(%%rbx)\n\tvmovdqu64 %%zmm31, 128(%%rbx)\n\t"
      "kmovw %%k1, 1024(%%rbx)\n\tkmovw %%k4, 1026(%%rbx)\n\tkmovw %%k7, 1028(%%rbx)\n\t"
      :
      : "b"(out)
      : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory", "xmm16", "xmm23", "xmm31",
        "k1", "k4", "k7");
}

TEST(GateCode, WideScrubClearsUpperZmmAndMaskRegisters) {
  if (!cordon::hw::CpuHasAvx512()) {
    // Without AVX-512 the runtime never selects the wide gates, and there
    // are no zmm16-31 or k registers to leak.
    EXPECT_FALSE(cordon::hw::CpuHasAvx512());
    return;
  }
  Wide w;
  memset(&w, 0x5a, sizeof w);
  DirtyAvx512AndScrub(&w);
  for (int v = 0; v < 3; ++v) {
    for (int b = 0; b < 64; ++b) ASSERT_EQ(w.zmm[v][b], 0) << "zmm slot " << v;
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(w.k[i], 0) << "k register slot " << i;
}

}  // namespace
