// C++: mangled names, member functions, and the warning for a function that
// may throw (an exception cannot cross a gate).
// RUN: %clangxx -O0 -fpass-plugin=%plugin -S -emit-llvm -o - %s 2>%t.err | FileCheck %s
// RUN: FileCheck %s --check-prefix=WARN < %t.err
#include <cordon/cordon.h>

#include <cstddef>

namespace bank {
struct Account {
  long balance;
  CORDON_TRUSTED long Withdraw(long amount) noexcept;
};
long Account::Withdraw(long amount) noexcept {
  balance -= amount;
  return balance;
}
CORDON_TRUSTED long Audit(Account* a) noexcept { return a->Withdraw(0); }
int Lookup(int x);  // not noexcept
CORDON_TRUSTED int MayThrow(int x);
int MayThrow(int x) { return Lookup(x); }
// A pair of integers comes back in rax:rdx.
struct Span {
  const char* data;
  size_t size;
};
CORDON_TRUSTED Span Name() noexcept { return {"bank", 4}; }
}  // namespace bank

long (bank::Account::*member)(long) = &bank::Account::Withdraw;

// CHECK: module asm "\09.globl \22_ZN4bank7Account8WithdrawEl\22"
// CHECK: module asm "\09.asciz \22bank::Account::Withdraw(long)\22"
// CHECK: module asm "\09movq %rdx, %r9"
// CHECK: @member = {{.*}} @_ZN4bank7Account8WithdrawEl
// CHECK: define hidden {{.*}}i64 @_ZN4bank7Account8WithdrawEl.cordon_trusted(
// CHECK: define hidden {{.*}}i64 @_ZN4bank5AuditEPNS_7AccountE.cordon_trusted(
// Trusted code calls the other trusted function's body.
// CHECK: call {{.*}}i64 @_ZN4bank7Account8WithdrawEl.cordon_trusted(
// CHECK: define hidden {{.*}}{ i8*, i64 } @_ZN4bank4NameEv.cordon_trusted(

// WARN: cxx.cc:21: cordon: 'bank::MayThrow(int)' may throw: an exception cannot cross a gate and would end the process in std::terminate; declare it noexcept
// WARN-NOT: Withdraw
