// A function declared CORDON_TRUSTED here but defined without the
// annotation in another file: no compiler sees both, so the link fails,
// naming the function and what to do.
// RUN: %clang -O0 -fpass-plugin=%plugin -c -o %t.user.o %s
// RUN: %clang -O0 -fpass-plugin=%plugin -c -o %t.def.o %inputs/defined_without_annotation.c
// RUN: not %clang -o %t %t.user.o %t.def.o 2>&1 | FileCheck %s
#include <cordon/cordon.h>

CORDON_TRUSTED int helper(int x);
int main(void) { return helper(1); }

// CHECK: undefined reference to `CORDON_TRUSTED is missing on the definition of helper (declared CORDON_TRUSTED elsewhere): add CORDON_TRUSTED to that definition'
