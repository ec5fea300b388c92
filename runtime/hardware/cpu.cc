// CPUID and XGETBV feature checks.
#include "runtime/hardware/cpu.h"

#include <cpuid.h>
#include <sys/auxv.h>

#include <cstdint>

namespace cordon::hw {
namespace {

bool OsXsave() {
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ecx >> 27) & 1;
}

uint64_t Xcr0() {
  uint32_t eax, edx;
  asm volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

}  // namespace

bool CpuHasAvx() {
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  if (!((ecx >> 28) & 1) || !OsXsave()) return false;
  return (Xcr0() & 0x6) == 0x6;
}

bool CpuHasAvx512() {
  if (!CpuHasAvx()) return false;
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  if (!((ebx >> 16) & 1)) return false;  // AVX512F
  return (Xcr0() & 0xe0) == 0xe0;
}

bool CpuHasFsgsbase() {
  constexpr unsigned long kHwcap2Fsgsbase = 1ul << 1;
  return (getauxval(AT_HWCAP2) & kHwcap2Fsgsbase) != 0;
}

unsigned XsaveMaxSize() {
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid_count(0xd, 0, &eax, &ebx, &ecx, &edx) == 0) return 0;
  return ecx;
}

unsigned XsavePkruOffset() {
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid_count(0xd, 9, &eax, &ebx, &ecx, &edx) == 0) return 0;
  return eax == 0 ? 0 : ebx;  // eax: the component's size (8)
}

}  // namespace cordon::hw
