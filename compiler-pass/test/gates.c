// The rewrite, seen in the IR clang produces with the plugin at -O0: the
// body keeps its code under get.cordon_trusted, the original name becomes a
// gated entry (module assembly) that every untrusted use refers to, and
// trusted code calls the body directly.
// RUN: %clang -O0 -fpass-plugin=%plugin -S -emit-llvm -o - %s | FileCheck %s
#include <cordon/cordon.h>

CORDON_TRUSTED int get(int x) { return x + 1; }
CORDON_TRUSTED int twice(int x) { return get(x) + get(x); }
int untrusted(int x) { return get(x); }
int (*pointer)(int) = get;

// The gate's instruction sequences (runtime/gates/gate_sequences.inc), once
// per module: the checked WRPKRU is the one macro with a WRPKRU.
// CHECK: module asm ".ifndef .Lcordon_gate_sequences"
// CHECK-NEXT: module asm ".set .Lcordon_gate_sequences, 1"
// CHECK-NEXT: module asm ".intel_syntax noprefix"
// CHECK: module asm ".macro CHECKED_WRPKRU value, site"
// CHECK-NEXT: module asm ".Lseq_begin\\@:"
// CHECK-NEXT: module asm "        mov eax, dword ptr [rip + \\value]"
// CHECK-NEXT: module asm "\\site:"
// CHECK-NEXT: module asm "        wrpkru"
// CHECK-NEXT: module asm "        cmp eax, dword ptr [rip + \\value]"
// CHECK-NEXT: module asm "        {disp32} jne cordon_gate_fatal_pkru"
// CHECK-NOT: wrpkru
// CHECK: module asm ".att_syntax prefix"
// The reference that makes a link against libcordon.so fail by name.
// CHECK-NEXT: module asm "\09.section .rodata.cordon_static_runtime,\22a\22,@progbits"
// CHECK-NEXT: module asm "\09.p2align 2"
// CHECK-NEXT: module asm "\09.long cordon_trusted_code_needs_the_static_libcordon-."
// CHECK-NEXT: module asm "\09.text"
// CHECK-NEXT: module asm ".endif"
// CHECK-NOT: module asm ".macro
// The gate: the entry WRPKRU, the direct call of the body, the exit WRPKRU,
// and one record for each site plus the entry record.
// CHECK: module asm "\09.globl \22get\22"
// CHECK: module asm "\22get\22:"
// CHECK: module asm ".Lcordon_[[TAG:[0-9]+_[0-9]+]]_entry_load:"
// CHECK-NEXT: module asm "\09CHECKED_WRPKRU cordon_gate_config+128, .Lcordon_[[TAG]]_entry_site"
// CHECK: module asm "\09call \22get.cordon_trusted\22"
// CHECK: module asm "\09RELEASE_RECORD .Lcordon_[[TAG]]_exit_site"
// CHECK: module asm "\09.section cordon_gate_sites,\22a\22,@progbits"
// CHECK-NEXT: module asm "\09.p2align 3"
// CHECK-NEXT: module asm "\09.long .Lcordon_[[TAG]]_entry_site-."
// CHECK-NEXT: module asm "\09.long 16777473"
// CHECK-NEXT: module asm "\09.long .Lcordon_[[TAG]]_exit_site-."
// CHECK-NEXT: module asm "\09.long 16777474"
// CHECK-NEXT: module asm "\09.section cordon_signal_rewinds,\22a\22,@progbits"
// CHECK-NEXT: module asm "\09.p2align 2"
// CHECK-NEXT: module asm "\09.long .Lcordon_[[TAG]]_entry_site+3-."
// CHECK-NEXT: module asm "\09.long .Lcordon_[[TAG]]_entry_switch-."
// CHECK-NEXT: module asm "\09.long .Lcordon_[[TAG]]_entry_load-."
// CHECK-NEXT: module asm "\09.long .Lcordon_[[TAG]]_held-."
// CHECK-NEXT: module asm "\09.long .Lcordon_[[TAG]]_held_save-."
// CHECK-NEXT: module asm "\09.long .Lcordon_[[TAG]]_entry_load-."
// CHECK-NEXT: module asm "\09.long .Lcordon_[[TAG]]_held_saved-."
// CHECK-NEXT: module asm "\09.long .Lcordon_[[TAG]]_held_end-."
// CHECK-NEXT: module asm "\09.long .Lcordon_[[TAG]]_held_restore-."
// CHECK-NEXT: module asm "\09.section cordon_entries,\22a\22,@progbits"
// CHECK: module asm "\09.asciz \22get\22"

// Untrusted uses, direct and through a pointer, name the gate.
// CHECK: @pointer = {{.*}}global i32 (i32)* @get,
// The markers that catch a definition without the annotation elsewhere.
// CHECK: @"CORDON_TRUSTED is missing on the definition of get (declared CORDON_TRUSTED elsewhere): add CORDON_TRUSTED to that definition" = hidden constant i8 0
// CHECK: @llvm.used = appending global {{.*}}@get.cordon_trusted{{.*}}@twice.cordon_trusted

// CHECK-LABEL: define hidden i32 @get.cordon_trusted(i32 noundef %{{.*}})
// CHECK-SAME: section ".text.cordon_trusted"
// CHECK-LABEL: define hidden i32 @twice.cordon_trusted(
// CHECK: call i32 @get.cordon_trusted(
// CHECK: call i32 @get.cordon_trusted(
// CHECK-LABEL: define dso_local i32 @untrusted(
// CHECK: call i32 @get(
// CHECK: declare dso_local i32 @get(i32 noundef)
// CHECK: declare dso_local i32 @twice(i32 noundef)
