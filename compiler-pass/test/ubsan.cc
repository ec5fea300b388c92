// UBSan's function sanitizer puts the function's own address into its
// prologue data; after the rewrite that must still be the body's, or the
// assembler cannot encode it ("difference across sections").
// RUN: %clangxx -O2 -fsanitize=function -fpass-plugin=%plugin -c -o %t.o %s
// RUN: %clangxx -O2 -fsanitize=function -fpass-plugin=%plugin -S -emit-llvm -o - %s | FileCheck %s
#include <cordon/cordon.h>

namespace {
CORDON_TRUSTED long Triple(long x) noexcept { return x * 3; }
}  // namespace
long (*pointer)(long) = Triple;

// CHECK: define internal {{.*}}@_ZN12_GLOBAL__N_16TripleEl.cordon_trusted({{.*}}prologue {{.*}}@_ZN12_GLOBAL__N_16TripleEl.cordon_trusted
