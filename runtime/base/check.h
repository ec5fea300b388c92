// The runtime's one checking helper: CORDON_CHECK(cond, message) stops the
// process with a plain message when an internal invariant does not hold. It
// uses raw syscalls only, so it is safe with any PKRU and on any stack.
// Declared here, below every layer that checks; defined at the top, in
// core/fatal.cc, because ending the process leaves every domain through the
// gates' fatal exit (cordon_gate_die in gate.S).
#ifndef CORDON_RUNTIME_BASE_CHECK_H_
#define CORDON_RUNTIME_BASE_CHECK_H_

#include <cstddef>
#include <cstdint>

namespace cordon::internal {

// Writes "cordon: <message>\n" to stderr and ends the process with
// CORDON_VIOLATION_EXIT, through the gates' fatal path (cordon_gate_die in
// gate.S): every signal blocked first, every domain left, the process ended
// even if the write blocks. Async-signal-safe; touches no TLS.
[[noreturn]] void Die(const char* message);
// Same, with numbers: "<a><n1><b><n2>" (no formatting library needed).
[[noreturn]] void DieWithNumbers(const char* a, unsigned long long n1, const char* b = nullptr,
                                 unsigned long long n2 = 0);

// A fatal message built piece by piece, without a formatting library or
// TLS (snprintf reads the locale through fs, which untrusted code sets).
// Die() adds the "cordon: " prefix and the newline.
class FatalMessage {
 public:
  FatalMessage();  // blocks every signal
  FatalMessage& Add(const char* s);
  FatalMessage& Number(unsigned long long n);
  FatalMessage& Signed(long long n);
  FatalMessage& Hex(unsigned long long n);
  [[noreturn]] void Die();

 private:
  char text_[480];
  size_t length_ = 0;
};

}  // namespace cordon::internal

#define CORDON_CHECK(cond, message)                    \
  do {                                                 \
    if (__builtin_expect(!(cond), 0)) {                \
      ::cordon::internal::Die(message " (" #cond ")"); \
    }                                                  \
  } while (0)

#endif
