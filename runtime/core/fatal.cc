// Process-stopping error paths shared by the runtime (see check.h). Raw
// syscalls only: these run with any PKRU, on any stack, in signal handlers.
#include <sys/syscall.h>

#include <cstddef>

#include "runtime/core/check.h"
#include "runtime/gates/gate_abi.h"

namespace cordon::internal {
namespace {

long RawSyscall3(long nr, long a, long b, long c) {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}

void WriteAll(const char* s, size_t n) {
  while (n > 0) {
    long w = RawSyscall3(SYS_write, 2, reinterpret_cast<long>(s), static_cast<long>(n));
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

void WriteString(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  WriteAll(s, n);
}

void WriteNumber(unsigned long long number) {
  char digits[24];
  size_t pos = sizeof digits;
  do {
    digits[--pos] = static_cast<char>('0' + number % 10);
    number /= 10;
  } while (number != 0);
  WriteAll(digits + pos, sizeof digits - pos);
}

[[noreturn]] void Exit() {
  RawSyscall3(SYS_exit_group, CORDON_VIOLATION_EXIT_CODE, 0, 0);
  __builtin_trap();
}

}  // namespace

void Die(const char* message) {
  WriteString("cordon: ");
  WriteString(message);
  WriteAll("\n", 1);
  Exit();
}

void DieWithNumbers(const char* a, unsigned long long n1, const char* b, unsigned long long n2) {
  WriteString("cordon: ");
  WriteString(a);
  WriteNumber(n1);
  if (b != nullptr) {
    WriteString(b);
    WriteNumber(n2);
  }
  WriteAll("\n", 1);
  Exit();
}

}  // namespace cordon::internal
