// The runtime's one checking helper: CORDON_CHECK(cond, message) stops the
// process with a plain message when an internal invariant does not hold. It
// uses raw syscalls only, so it is safe with any PKRU and on any stack.
#ifndef CORDON_RUNTIME_CORE_CHECK_H_
#define CORDON_RUNTIME_CORE_CHECK_H_

namespace cordon::internal {

// Writes "cordon: <message>\n" to stderr and ends the process with
// CORDON_VIOLATION_EXIT. Async-signal-safe.
[[noreturn]] void Die(const char* message);
// Same, with numbers: "<a><n1><b><n2>" (no formatting library needed).
[[noreturn]] void DieWithNumbers(const char* a, unsigned long long n1, const char* b = nullptr,
                                 unsigned long long n2 = 0);

}  // namespace cordon::internal

#define CORDON_CHECK(cond, message)                    \
  do {                                                 \
    if (__builtin_expect(!(cond), 0)) {                \
      ::cordon::internal::Die(message " (" #cond ")"); \
    }                                                  \
  } while (0)

#endif
