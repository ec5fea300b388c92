// 32-bit compatibility mode against the gates, in a program linked as a
// non-PIE executable (this test's own binary: -fno-pie -no-pie), so that
// its gate code lies below 4 GiB.
//
// A far jump to the 32-bit user code segment (0x23, in every x86-64 Linux
// GDT, no system call needed) runs code below 4 GiB in compatibility mode.
// There a gate's check `cmp eax, [rip + disp32]` after its WRPKRU decodes
// as `cmp eax, [disp32]`, an absolute address untrusted code can map and
// fill: the WRPKRU then loads any PKRU (red-team compat_mode_exit read the
// secret with PKRU 0). cordon_init() refuses such a program, so the attack
// below runs only if that refusal is gone, and the judge then finds the
// secret.
#include <sys/shm.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "cordon/cordon.h"
#include "gtest/gtest.h"
#include "runtime/inspector/process.h"
#include "tests/support/judge.h"

using cordon::testing::Evidence;
using cordon::testing::ExposeToJudge;
using cordon::testing::JudgeAttack;
using cordon::testing::LoadJudgeSecret;
using cordon::testing::LockDownForAttack;
using cordon::testing::Verdict;

struct __attribute__((packed)) FarPointer {
  uint32_t offset;
  uint16_t selector;
};

extern "C" {
// Below 4 GiB in this non-PIE program (.bss), so 32-bit code can use them.
uint64_t cordon_test_compat_saved_rsp;
FarPointer cordon_test_compat_back;
alignas(16) uint8_t cordon_test_compat_stack[0x4000];
const uint8_t* cordon_test_compat_secret;
uint32_t cordon_test_compat_pkru;  // the PKRU the gate's WRPKRU is given
void cordon_test_compat_landing32();
void cordon_test_compat_landing64();

// Back in 64-bit mode after the gate's WRPKRU, with whatever PKRU it loaded.
__attribute__((noreturn, used)) void cordon_test_compat_landed() {
  uint32_t pkru, edx;
  __asm__ volatile(".byte 0x0f, 0x01, 0xee" : "=a"(pkru), "=d"(edx) : "c"(0));
  uint8_t copy[cordon::testing::kJudgeSecretSize];
  memcpy(copy, cordon_test_compat_secret, sizeof copy);  // faults unless the domain's key is open
  Evidence(copy, sizeof copy);
  printf("untrusted code ran with PKRU %#x and read the secret\n", pkru);
  fflush(stdout);
  ExposeToJudge();
  _exit(0);
}
}

// The exit site continues with bytes that compatibility mode reads as
// `dec esp; mov eax, ebx; ret`: the ret lands on landing32, which jumps back
// to 64-bit mode through the far pointer in ebx.
__asm__(
    ".text\n"
    ".code32\n"
    ".globl cordon_test_compat_landing32\n"
    "cordon_test_compat_landing32:\n"
    "  .byte 0xff, 0x2b\n"  // jmp far [ebx]
    ".code64\n"
    ".globl cordon_test_compat_landing64\n"
    "cordon_test_compat_landing64:\n"
    "  mov cordon_test_compat_saved_rsp(%rip), %rsp\n"
    "  and $-16, %rsp\n"
    "  call cordon_test_compat_landed\n"
    "  ud2\n");

namespace {

// Makes the four bytes at the absolute address `disp` a PKRU that leaves
// `key` open, as untrusted code can: zero them where they are writable or
// unmapped (a System V segment fills the hole), or take them as they are
// where they are read-only but happen to leave the key (and key 0) open. The PKRU to
// load goes to cordon_test_compat_pkru.
bool OpenKeyAt(uint32_t disp, int key) {
  auto* word = reinterpret_cast<uint8_t*>(uintptr_t{disp});
  auto maps = cordon::inspector::AllMappings("self");
  if (!maps.ok()) return false;
  for (const cordon::inspector::Mapping& m : *maps) {
    if (disp < m.start || disp + 4 > m.end) continue;
    if (m.perms[1] == 'w') {
      memset(word, 0, 4);
      cordon_test_compat_pkru = 0;
      return true;
    }
    uint32_t value;
    if (m.perms[0] != 'r') return false;
    memcpy(&value, word, 4);
    cordon_test_compat_pkru = value;
    // Key 0 too: the attacker's own code goes on writing its memory.
    return (value & 3) == 0 && ((value >> (2 * key)) & 3) == 0;
  }
  const int shm = shmget(IPC_PRIVATE, 0x2000, IPC_CREAT | 0600);
  if (shm < 0) return false;
  void* page = reinterpret_cast<void*>(disp & ~uintptr_t{0xfff});
  const bool placed = shmat(shm, page, 0) == page;
  shmctl(shm, IPC_RMID, nullptr);  // gone with its last detach
  if (!placed) return false;
  memset(word, 0, 4);
  cordon_test_compat_pkru = 0;
  return true;
}

[[noreturn]] void CompatModeAttack(const uint8_t* secret) {
  cordon_test_compat_secret = secret;
  // An exit site below 4 GiB whose compatibility-mode operand (the
  // absolute address disp32) can be made to open the trusted key.
  const int trusted_key = cordon_domain_pkey(cordon_trusted_domain());
  uintptr_t site = 0;
  for (size_t i = 0; i < cordon_gate_site_count() && site == 0; ++i) {
    cordon_gate_site s;
    if (cordon_gate_site_get(i, &s) != CORDON_OK || s.kind != 2 /* exit */) continue;
    const auto* b = reinterpret_cast<const uint8_t*>(s.address);
    if (s.address >= 0xfffff000u || b[3] != 0x3b || b[4] != 0x05) continue;
    uint32_t disp;
    memcpy(&disp, b + 5, 4);
    if (OpenKeyAt(disp, trusted_key)) site = s.address;
  }
  if (site == 0) {
    printf("no exit site below 4 GiB whose compatibility-mode operand can be set\n");
    fflush(stdout);
    _exit(4);
  }
  uint8_t* top = cordon_test_compat_stack + sizeof cordon_test_compat_stack - 64;
  const auto land = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&cordon_test_compat_landing32));
  memcpy(top - 1, &land, 4);  // `dec esp; ...; ret` pops it from here
  static FarPointer to_site;
  to_site = {static_cast<uint32_t>(site), 0x23};
  cordon_test_compat_back = {
      static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&cordon_test_compat_landing64)), 0x33};
  const auto back = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&cordon_test_compat_back));
  __asm__ volatile(
      "mov %%rsp, cordon_test_compat_saved_rsp(%%rip)\n\t"
      "mov $0x2b, %%eax\n\t"
      "mov %%eax, %%ds\n\t"
      "mov %%eax, %%es\n\t"
      "mov %0, %%rsp\n\t"
      "mov %3, %%eax\n\t"
      "xor %%ecx, %%ecx\n\t"
      "xor %%edx, %%edx\n\t"
      ".byte 0xff, 0x2e\n\t"  // jmp far [rsi]: to 0x23:site
      :
      : "r"(top), "S"(&to_site), "b"(back), "m"(cordon_test_compat_pkru)
      : "memory", "rax", "rcx", "rdx");
  __builtin_unreachable();
}

TEST(CompatMode, AProgramWithGatesBelow4GiBIsRefusedAtInit) {
  ASSERT_LT(reinterpret_cast<uintptr_t>(&cordon_test_compat_stack), uintptr_t{1} << 32)
      << "this test's program must be linked as a non-PIE executable";
  const Verdict v = JudgeAttack([] {
    const int s = cordon_init(nullptr);
    if (s != CORDON_OK) {
      printf("cordon_init refused: %s\n", cordon_strerror(s));
      fflush(stdout);
      _exit(3);
    }
    const uint8_t* secret = LoadJudgeSecret();
    LockDownForAttack(CORDON_VIOLATION_KILL);
    CompatModeAttack(secret);
  });
  EXPECT_FALSE(v.leaked) << v.leak_where;
  ASSERT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 3) << v.out << "\n" << v.outcome.err;
  EXPECT_NE(v.outcome.err.find("lies below 4 GiB"), std::string::npos) << v.outcome.err;
  EXPECT_NE(v.out.find("refused: "), std::string::npos) << v.out;
}

}  // namespace
