// The thread's fs base, for tests of trusted code's own TCB (docs/gates.md,
// "Thread-local storage"): RDFSBASE/WRFSBASE where the kernel allows them
// (as cordon_init() requires, and as an attacker would use them), else
// arch_prctl, so that host tests of the TCB builder run on any machine.
#ifndef CORDON_TESTS_SUPPORT_FS_BASE_H_
#define CORDON_TESTS_SUPPORT_FS_BASE_H_

#include <asm/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#include "runtime/hardware/cpu.h"

namespace cordon::testing {

inline uint64_t FsBase() {
  uint64_t v = 0;
  if (hw::CpuHasFsgsbase()) {
    __asm__ volatile("rdfsbase %0" : "=r"(v));
  } else {
    syscall(SYS_arch_prctl, ARCH_GET_FS, &v);
  }
  return v;
}

inline void SetFsBase(uint64_t v) {
  if (hw::CpuHasFsgsbase()) {
    __asm__ volatile("wrfsbase %0" : : "r"(v) : "memory");
  } else {
    syscall(SYS_arch_prctl, ARCH_SET_FS, v);
  }
}

}  // namespace cordon::testing

#endif
