// Protection-key capability checks and raw pkey system calls.
#include "runtime/hardware/pkey.h"

#include <cpuid.h>
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace cordon::hw {
namespace {

int ResultOrErrno(long r) {
  return r < 0 ? -errno : static_cast<int>(r);
}

}  // namespace

bool CpuHasPku() {
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  const bool pku = (ecx >> 3) & 1;
  const bool ospke = (ecx >> 4) & 1;
  return pku && ospke;
}

bool KernelHasPkeys() {
  const int key = SysPkeyAlloc(0, static_cast<unsigned>(Permission::kNoAccess));
  if (key < 0) return false;
  (void)SysPkeyFree(key);
  return true;
}

bool PkeysUsable() {
  return CpuHasPku() && KernelHasPkeys();
}

int SysPkeyAlloc(unsigned flags, unsigned access_rights) {
  return ResultOrErrno(syscall(SYS_pkey_alloc, flags, access_rights));
}

int SysPkeyFree(int key) {
  return ResultOrErrno(syscall(SYS_pkey_free, key));
}

int SysPkeyMprotect(void* addr, size_t len, int prot, int key) {
  return ResultOrErrno(syscall(SYS_pkey_mprotect, addr, len, prot, key));
}

}  // namespace cordon::hw
