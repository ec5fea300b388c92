// The thread's fs base, read and written with RDFSBASE/WRFSBASE (the CPU
// and kernel must allow FSGSBASE, as cordon_init() requires), for tests of
// trusted code's own TCB (docs/gates.md, "Thread-local storage").
#ifndef CORDON_TESTS_SUPPORT_FS_BASE_H_
#define CORDON_TESTS_SUPPORT_FS_BASE_H_

#include <cstdint>

namespace cordon::testing {

inline uint64_t FsBase() {
  uint64_t v;
  __asm__ volatile("rdfsbase %0" : "=r"(v));
  return v;
}

inline void SetFsBase(uint64_t v) {
  __asm__ volatile("wrfsbase %0" : : "r"(v) : "memory");
}

}  // namespace cordon::testing

#endif
