// clang -fpass-plugin generates the gate at every optimisation level: the
// pass runs at the start of the pipeline and is required, so -O0 runs it too.
// Each gate has exactly two WRPKRU: in and out.
// RUN: %clang -O0 -fpass-plugin=%plugin -S -o - %s | FileCheck %s
// RUN: %clang -O1 -fpass-plugin=%plugin -S -o - %s | FileCheck %s
// RUN: %clang -O2 -fpass-plugin=%plugin -S -o - %s | FileCheck %s
// RUN: %clang -O3 -fpass-plugin=%plugin -S -o - %s | FileCheck %s
// RUN: %clang -Os -fpass-plugin=%plugin -S -o - %s | FileCheck %s
// RUN: %clang -Oz -fpass-plugin=%plugin -S -o - %s | FileCheck %s
// Without the plugin nothing is generated, and the function stays in the
// section that makes cordon_init() refuse the program.
// RUN: %clang -O2 -S -o - %s | FileCheck %s --check-prefix=NOPLUGIN
#include <cordon/cordon.h>

CORDON_TRUSTED long read_secret(const long* p) { return *p; }

// CHECK: read_secret:
// CHECK: wrpkru
// CHECK: call{{q?}} read_secret.cordon_trusted
// CHECK: wrpkru
// CHECK-NOT: wrpkru
// CHECK: .section .text.cordon_trusted
// CHECK: read_secret.cordon_trusted:

// NOPLUGIN-NOT: wrpkru
// NOPLUGIN: .section cordon_trusted_unprocessed
// NOPLUGIN: read_secret:
