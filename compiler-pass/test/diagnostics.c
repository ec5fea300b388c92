// Every function that cannot cross a gate is an error that names it and
// says what to do; so is WRPKRU or XRSTOR in inline assembly, by mnemonic or
// by bytes, in any function.
// RUN: not %clang -O0 -fpass-plugin=%plugin -c -o /dev/null %s 2>&1 | FileCheck %s
#include <cordon/cordon.h>

struct Big {
  long a, b, c;
};
struct TwoDoubles {
  double x, y;
};

CORDON_TRUSTED int log_all(const char* format, ...) { return format != 0; }
// CHECK-DAG: diagnostics.c:[[@LINE-1]]: cordon: 'log_all' is variadic: a gate cannot know how many arguments to carry across; give it a fixed parameter list

CORDON_TRUSTED long sum(struct Big big) { return big.a + big.b + big.c; }
// CHECK-DAG: diagnostics.c:[[@LINE-1]]: cordon: 'sum': parameter 1 is an aggregate passed by value on the stack, and the body runs on the trusted stack where it is not; pass a pointer to it instead

CORDON_TRUSTED struct Big make(void) { struct Big b = {1, 2, 3}; return b; }
// CHECK-DAG: diagnostics.c:[[@LINE-1]]: cordon: 'make' returns an aggregate too large for registers, which the gate would have trusted code write through a hidden pointer; return it through an explicit out-parameter

CORDON_TRUSTED long double precise(long double x) { return x; }
// CHECK-DAG: diagnostics.c:[[@LINE-1]]: cordon: 'precise': parameter 1 has type x86_fp80, which is passed in memory
// CHECK-DAG: diagnostics.c:[[@LINE-2]]: cordon: 'precise' returns x86_fp80, which a gate cannot carry back

CORDON_TRUSTED long seven(long a, long b, long c, long d, long e, long f, long g) { return a + b + c + d + e + f + g; }
// CHECK-DAG: diagnostics.c:[[@LINE-1]]: cordon: 'seven' takes 7 integer/pointer and 0 floating-point arguments; a gate carries at most 6 and 8

CORDON_TRUSTED struct TwoDoubles both(void) { struct TwoDoubles t = {1, 2}; return t; }
// CHECK-DAG: diagnostics.c:[[@LINE-1]]: cordon: 'both' returns { double, double }, which a gate cannot carry back

void set_pkru(unsigned v) { __asm__ volatile("wrpkru" ::"a"(v), "c"(0), "d"(0)); }
// CHECK-DAG: cordon: inline assembly in 'set_pkru' contains WRPKRU: only Cordon's gates may change PKRU

void hidden_bytes(void) { __asm__ volatile(".byte 0x0f, 0x01\n\t.byte 0xef"); }
// CHECK-DAG: cordon: inline assembly in 'hidden_bytes' contains WRPKRU

void restore(void* area) { __asm__ volatile("xrstor64 (%0)" ::"r"(area), "a"(-1), "d"(-1)); }
// CHECK-DAG: cordon: inline assembly in 'restore' contains XRSTOR

void restore_bytes(void) { __asm__ volatile(".byte 0x48, 0x0f, 0xae, 0x2f"); }
// CHECK-DAG: cordon: inline assembly in 'restore_bytes' contains XRSTOR

// LFENCE (0f ae e8) and RDPKRU are fine.
void fence(void) { __asm__ volatile(".byte 0x0f, 0xae, 0xe8\n\trdpkru" ::: "eax", "ecx", "edx"); }
// CHECK-NOT: 'fence'
