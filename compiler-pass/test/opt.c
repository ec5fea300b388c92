// The pass through opt: -load-pass-plugin with -passes=cordon-gates, on IR
// that clang produced without the plugin. Running it twice changes nothing
// more: still one gate per function.
// RUN: %clang -O0 -Xclang -disable-O0-optnone -S -emit-llvm -o %t.ll %s
// RUN: %opt -load-pass-plugin %plugin -passes=cordon-gates -S %t.ll | FileCheck %s
// RUN: %opt -load-pass-plugin %plugin -passes=cordon-gates,cordon-gates -S %t.ll | FileCheck %s
#include <cordon/cordon.h>

CORDON_TRUSTED double scale(double x, long factor) { return x * (double)factor; }
static CORDON_TRUSTED void forget(char* p) { *p = 0; }
void (*forget_pointer)(char*) = forget;

// scale returns a double: the exit keeps the low half of xmm0.
// CHECK: module asm "\09.globl \22scale\22"
// CHECK: module asm "\09vmovq %xmm0, %r11"
// CHECK: module asm "\09vmovq %r11, %xmm0"
// forget is static: its gate is a local symbol, and returns nothing (the
// scrub clears r11 too).
// CHECK-NOT: module asm "\09.globl \22forget\22"
// CHECK: module asm "\22forget\22:"
// CHECK: module asm "\09SCRUB 2, 1, 1"
// CHECK-NOT: module asm "\22scale\22:"
// CHECK-NOT: module asm "\22forget\22:"
// CHECK: @forget_pointer = {{.*}} @forget,
// CHECK: define hidden double @scale.cordon_trusted(
// CHECK: define internal void @forget.cordon_trusted(
