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

int ProbePkeyAlloc() {
  const int key = SysPkeyAlloc(0, static_cast<unsigned>(Permission::kNoAccess));
  // Never free key 0 (or a number that is no key): the kernel would mark
  // the default key free. A faked pkey_alloc can return anything.
  if (key > kDefaultKey && key < kMaxKeys) (void)SysPkeyFree(key);
  return key;
}

bool KernelHasPkeys() {
  const int key = ProbePkeyAlloc();
  return key > kDefaultKey && key < kMaxKeys;
}

bool PkeysUsable() {
  return CpuHasPku() && KernelHasPkeys();
}

long RawSyscall3(long nr, long a0, long a1, long a2) {
  long rax = nr;
  asm volatile("syscall" : "+a"(rax) : "D"(a0), "S"(a1), "d"(a2) : "rcx", "r11", "memory");
  return rax;
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

long SysWithToken(long nr, long a0, long a1, long a2, long a3, const uint64_t token[2]) {
  register long r10 asm("r10") = a3;
  register uint64_t r8 asm("r8") = token[0];
  register uint64_t r9 asm("r9") = token[1];
  long ret;
  asm volatile("syscall"
               : "=a"(ret)
               : "0"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
}

int SysPkeyMprotectWithToken(void* addr, size_t len, int prot, int key, const uint64_t token[2]) {
  return static_cast<int>(SysWithToken(SYS_pkey_mprotect, reinterpret_cast<long>(addr),
                                       static_cast<long>(len), prot, key, token));
}

}  // namespace cordon::hw
