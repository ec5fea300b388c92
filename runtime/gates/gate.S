/* Audited call gates: the only WRPKRU instructions in Cordon.
 *
 * One gate per domain (1..15) and per scrub variant: "avx" clears
 * ymm0-15 with VZEROALL, "avx512" also clears zmm16-31 and k0-7, which
 * glibc's EVEX string functions use on AVX-512 machines. The runtime picks
 * the variant from CPUID at initialisation.
 *
 *   cordon_gate_<variant>_<d>(a0, a1, a2, a3, a4, id)   System V ABI
 *
 * The id travels in r9 (the sixth argument) so that a0..a4 already sit where
 * the entry function expects them. Only rdx/rcx move, because WRPKRU needs
 * ecx = edx = 0. The instruction sequence and its invariants are described
 * in docs/gates.md; keep the two in step.
 *
 * Invariants (each is what makes a jump into the middle harmless):
 *  - Each WRPKRU is followed by a compare of EAX with the value that site
 *    must load, read from the read-only config page. A mismatch stops the
 *    process through raw syscalls, without touching the stack.
 *  - Everything after the entry WRPKRU uses only state that untrusted code
 *    cannot forge: the config page, and the domain's own memory. The thread's
 *    record index comes from TLS, which untrusted code can write, so it is
 *    bounds-checked, and the record is claimed with an atomic bit test-and-set:
 *    two threads can never run on one trusted stack, and a nested entry stops.
 *  - The call target comes from the domain's entry table (trusted memory).
 *    Unused slots hold a function that stops the process. */
#include "gate_abi.h"

        .intel_syntax noprefix

#define DCFG(d, field) (cordon_gate_config + CFG_DOMAINS + (d) * CFG_DOMAIN_STRIDE + (field))
#define UNTRUSTED_PKRU (cordon_gate_config + CFG_UNTRUSTED_PKRU)

/* The config page: exactly one page, page-aligned, so it can be mprotected. */
        .section .data.cordon_gate_config, "aw", @progbits
        .balign 4096
        .globl cordon_gate_config
        .type cordon_gate_config, @object
cordon_gate_config:
        .zero CFG_SIZE
        .size cordon_gate_config, CFG_SIZE

        .section .rodata.cordon_gate_messages, "a", @progbits
.Lmsg_pkru:
        .ascii "cordon: gate violation: a WRPKRU in a call gate loaded a PKRU value other than the one that gate site allows (a jump into the middle of a gate?); process stopped\n"
.Lmsg_pkru_end:
.Lmsg_nested:
        .ascii "cordon: gate violation: this thread's trusted stack is already in use (nested gate entry from trusted code or from one of its callbacks, or a forged thread record); process stopped\n"
.Lmsg_nested_end:
.Lmsg_callback:
        .ascii "cordon: gate violation: return into a domain from a callback that this thread's record does not have in progress; process stopped\n"
.Lmsg_callback_end:
.Lmsg_record:
        .ascii "cordon: gate violation: invalid per-thread record index in thread-local storage, or thread-local storage inside trusted memory; process stopped\n"
.Lmsg_record_end:
.Lmsg_slots:
        .ascii "cordon: no free trusted thread slot: more threads entered the domain than cordon_options.max_threads allows; raise max_threads; process stopped\n"
.Lmsg_slots_end:
.Lmsg_domain:
        .ascii "cordon: gate called for a domain that does not exist or before cordon_init(); process stopped\n"
.Lmsg_domain_end:

        .text
/* Stops the process: write(2, rsi, rdx), then exit_group. No stack use, no
 * library code and no signal handler runs: PKRU may be anything here. */
        .p2align 4
        .type cordon_gate_die, @function
cordon_gate_die:
        mov edi, 2
        mov eax, 1 /* SYS_write */
        syscall
        mov edi, CORDON_VIOLATION_EXIT_CODE
        mov eax, 231 /* SYS_exit_group */
        syscall
        ud2
        .size cordon_gate_die, . - cordon_gate_die

/* Global (but hidden) because the gates that the pass plugin generates
 * (compiler-pass/GateAsm.cpp) stop through them too. */
.macro DIE_WITH name
        .p2align 4
        .globl cordon_gate_fatal_\name
        .hidden cordon_gate_fatal_\name
cordon_gate_fatal_\name:
        lea rsi, [rip + .Lmsg_\name]
        mov edx, .Lmsg_\name\()_end - .Lmsg_\name
        jmp cordon_gate_die
.endm
        DIE_WITH pkru
        DIE_WITH nested
        DIE_WITH record
        DIE_WITH slots
        DIE_WITH domain
        DIE_WITH callback

.macro SCRUB_AVX512
        vpxord xmm16, xmm16, xmm16
        vpxord xmm17, xmm17, xmm17
        vpxord xmm18, xmm18, xmm18
        vpxord xmm19, xmm19, xmm19
        vpxord xmm20, xmm20, xmm20
        vpxord xmm21, xmm21, xmm21
        vpxord xmm22, xmm22, xmm22
        vpxord xmm23, xmm23, xmm23
        vpxord xmm24, xmm24, xmm24
        vpxord xmm25, xmm25, xmm25
        vpxord xmm26, xmm26, xmm26
        vpxord xmm27, xmm27, xmm27
        vpxord xmm28, xmm28, xmm28
        vpxord xmm29, xmm29, xmm29
        vpxord xmm30, xmm30, xmm30
        vpxord xmm31, xmm31, xmm31
        kxorw k0, k0, k0
        kxorw k1, k1, k1
        kxorw k2, k2, k2
        kxorw k3, k3, k3
        kxorw k4, k4, k4
        kxorw k5, k5, k5
        kxorw k6, k6, k6
        kxorw k7, k7, k7
.endm

/* Clears every caller-saved register except r11 (which holds the result)
 * and rax (which the caller loads next). */
.macro SCRUB wide
        xor edi, edi
        xor esi, esi
        xor r8d, r8d
        xor r9d, r9d
        xor r10d, r10d
        vzeroall
        .if \wide
        SCRUB_AVX512
        .endif
        xor ecx, ecx
        xor edx, edx
.endm

/* The scrub on its own, without a WRPKRU, so that tests can check it on any
 * CPU (the AVX-512 variant cannot run under QEMU's TCG). */
        .globl cordon_internal_scrub_probe_avx
        .type cordon_internal_scrub_probe_avx, @function
cordon_internal_scrub_probe_avx:
        SCRUB 0
        ret
        .size cordon_internal_scrub_probe_avx, . - cordon_internal_scrub_probe_avx
        .globl cordon_internal_scrub_probe_avx512
        .type cordon_internal_scrub_probe_avx512, @function
cordon_internal_scrub_probe_avx512:
        SCRUB 1
        ret
        .size cordon_internal_scrub_probe_avx512, . - cordon_internal_scrub_probe_avx512

/* The only way Cordon writes PKRU: load the value from the config page,
 * WRPKRU (at label site, listed in the gate-site table), then compare what
 * was loaded with the same config value. Code that jumps straight to the
 * WRPKRU with another EAX stops in cordon_gate_fatal_pkru. ECX and EDX must
 * be zero already. */
.macro CHECKED_WRPKRU value, site
        mov eax, dword ptr [rip + \value]
\site:
        wrpkru
        cmp eax, dword ptr [rip + \value]
        jne cordon_gate_fatal_pkru
.endm

/* rax = the address of record eax of domain d; jumps to on_bad if eax is
 * out of range (the index comes from TLS, which untrusted code can write). */
.macro RECORD_AT_INDEX d, on_bad
        cmp eax, dword ptr [rip + DCFG(\d, DCFG_NRECORDS)]
        jae \on_bad
        imul rax, qword ptr [rip + DCFG(\d, DCFG_STRIDE)]
        add rax, qword ptr [rip + DCFG(\d, DCFG_RECORDS)]
.endm

/* The outbound gate: cordon_callout_<v>_<d>(a0, a1, a2, a3, a4, target),
 * called by trusted code of domain d on its trusted stack (through
 * cordon_call_untrusted). It runs target->fn(a0..a4) as untrusted code, on
 * the untrusted stack below the one the domain was entered from, and
 * returns its result. Trusted callee-saved registers are kept on the
 * trusted stack and cleared for the callback; the record's state makes the
 * way back in valid only while this thread's callback is in progress. */
.macro CALLOUT d, v, wide
        .globl cordon_callout_\v\()_\d
        .type cordon_callout_\v\()_\d, @function
        .p2align 5
cordon_callout_\v\()_\d:
        push rbx
        push rbp
        push r12
        push r13
        push r14
        push r15
        mov r10, qword ptr [r9 + CALLOUT_FN]
        mov r11, qword ptr [r9 + CALLOUT_RECORD]
        mov qword ptr [r11 + REC_CALLOUT_RSP], rsp
        mov dword ptr [r11 + REC_STATE], REC_STATE_CALLOUT
        mov rsp, qword ptr [r11 + REC_SAVED_RSP]
        sub rsp, 256 /* clear of the red zone below the suspended caller */
        and rsp, -16
        xor ebx, ebx
        xor ebp, ebp
        xor r12d, r12d
        xor r13d, r13d
        xor r14d, r14d
        xor r15d, r15d
        vzeroall
        .if \wide
        SCRUB_AVX512
        .endif
        mov r9, rdx
        mov r11, rcx
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU UNTRUSTED_PKRU, .Lcallout_site_\v\()_\d
        mov rdx, r9
        mov rcx, r11
        xor r9d, r9d
        xor r11d, r11d
        call r10
        /* Back from the callback, still untrusted: rax is its result. */
        mov r11, rax
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU DCFG(\d, DCFG_PKRU), .Lcallback_return_site_\v\()_\d
        cld
        mov eax, dword ptr fs:cordon_tls_records@tpoff + 4 * \d
        RECORD_AT_INDEX \d, cordon_gate_fatal_record
        mov rdx, rax
        mov eax, REC_STATE_CALLOUT
        xor ecx, ecx /* REC_STATE_INSIDE */
        lock cmpxchg dword ptr [rdx + REC_STATE], ecx
        jne cordon_gate_fatal_callback
        mov rsp, qword ptr [rdx + REC_CALLOUT_RSP]
        mov rax, r11
        pop r15
        pop r14
        pop r13
        pop r12
        pop rbp
        pop rbx
        ret
        .size cordon_callout_\v\()_\d, . - cordon_callout_\v\()_\d
.endm

.macro GATE d, v, wide
        .globl cordon_gate_\v\()_\d
        .type cordon_gate_\v\()_\d, @function
        .p2align 5
cordon_gate_\v\()_\d:
        /* Enter: load the domain's PKRU, then check what was loaded. The
         * caller may have set the direction flag; trusted code (memcpy's
         * rep movsb) relies on the ABI's DF = 0. */
        cld
        mov r10, rdx
        mov r11, rcx
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU DCFG(\d, DCFG_PKRU), .Lentry_site_\v\()_\d
        /* Claim this thread's record; it is also the trusted stack top. */
        mov eax, dword ptr fs:cordon_tls_records@tpoff + 4 * \d
.Lhave_index_\v\()_\d:
        RECORD_AT_INDEX \d, .Lslow_\v\()_\d
        lock bts dword ptr [rax + REC_BUSY], 0
        jc cordon_gate_fatal_nested
        mov qword ptr [rax + REC_SAVED_RSP], rsp
        mov rsp, rax
        /* Dispatch through the domain's table. */
        and r9d, CORDON_TABLE_MASK
        mov rax, qword ptr [rip + DCFG(\d, DCFG_TABLE)]
        mov rdx, r10
        mov rcx, r11
        call qword ptr [rax + r9 * 8]
.Lexit_\v\()_\d:
        /* Leave: release the record, back to the caller's stack (rsp is
         * the record, whose first word is the saved stack pointer), clear
         * every caller-saved register but the result, load untrusted PKRU.
         * Should another thread claim the released record before the pop
         * (it would need a forged TLS index), this thread only returns on
         * that thread's untrusted stack: nothing trusted is exposed. */
        mov dword ptr [rsp + REC_BUSY], 0
        pop rsp
        mov r11, rax
        SCRUB \wide
        CHECKED_WRPKRU UNTRUSTED_PKRU, .Lexit_site_\v\()_\d
        mov rax, r11
        ret

.Lslow_\v\()_\d:
        /* Inside the domain, but this thread has no record yet (TLS holds
         * the initial 0xffffffff), or TLS was corrupted. Nothing here may
         * write to the caller's stack: rsp is the caller's choice, and this
         * code holds the domain's rights. */
        cmp eax, -1
        jne cordon_gate_fatal_record
        mov rax, qword ptr [rip + DCFG(\d, DCFG_BOOT)]
        test rax, rax
        jz cordon_gate_fatal_domain
1:      lock bts dword ptr [rax + REC_BUSY], 0 /* the bootstrap record is a lock */
        jnc 2f
        pause
        jmp 1b
2:      mov qword ptr [rax + REC_SAVED_RSP], rsp
        mov rsp, rax
        push rdi
        push rsi
        push r8
        push r9
        push r10
        push r11
        mov edi, \d
        /* Claims a record and stores its index in this thread's TLS slot
         * (after checking the slot is untrusted memory). Returns the index,
         * or -1 when none is free. */
        call cordon_internal_attach_thread
        pop r11
        pop r10
        pop r9
        pop r8
        pop rsi
        pop rdi
        mov rcx, rsp
        mov rsp, qword ptr [rcx + REC_SAVED_RSP]
        mov dword ptr [rcx + REC_BUSY], 0
        cmp eax, -1
        je cordon_gate_fatal_slots
        jmp .Lhave_index_\v\()_\d
        .size cordon_gate_\v\()_\d, . - cordon_gate_\v\()_\d

        CALLOUT \d, \v, \wide

        .section cordon_gate_sites, "a", @progbits
        .balign 8
        .long .Lentry_site_\v\()_\d - .
        .long SITE_ENTRY | (\d << 8) | (\wide << 16)
        .long .Lexit_site_\v\()_\d - .
        .long SITE_EXIT | (\d << 8) | (\wide << 16)
        .long .Lcallout_site_\v\()_\d - .
        .long SITE_CALLOUT | (\d << 8) | (\wide << 16)
        .long .Lcallback_return_site_\v\()_\d - .
        .long SITE_CALLBACK_RETURN | (\d << 8) | (\wide << 16)
        .text
.endm

.macro GATES v, wide
        GATE 1, \v, \wide
        GATE 2, \v, \wide
        GATE 3, \v, \wide
        GATE 4, \v, \wide
        GATE 5, \v, \wide
        GATE 6, \v, \wide
        GATE 7, \v, \wide
        GATE 8, \v, \wide
        GATE 9, \v, \wide
        GATE 10, \v, \wide
        GATE 11, \v, \wide
        GATE 12, \v, \wide
        GATE 13, \v, \wide
        GATE 14, \v, \wide
        GATE 15, \v, \wide
.endm

/* cordon_gate_attach_1: called by the gates that the pass plugin generates
 * (compiler-pass/GateAsm.cpp) on a thread's first call into the trusted
 * domain, before their WRPKRU. It attaches the thread through the runtime
 * gate (builtin entry 0 does nothing; the gate's slow path claims a record
 * and writes the TLS index) and keeps every register that carries the
 * generated gate's arguments: rdi, rsi, r8, r9, r10, r11 (holding rdx and
 * rcx) and xmm0-7. Before cordon_init() the config page is all zero, and it
 * stops the process with a message rather than run a gate. */
        .globl cordon_gate_attach_1
        .hidden cordon_gate_attach_1
        .type cordon_gate_attach_1, @function
        .p2align 4
cordon_gate_attach_1:
        mov eax, dword ptr [rip + DCFG(1, DCFG_PKRU)]
        test eax, eax
        jz cordon_gate_fatal_domain
        push rbp
        mov rbp, rsp
        and rsp, -16
        push rdi
        push rsi
        push r8
        push r9
        push r10
        push r11
        sub rsp, 128
        movdqu xmmword ptr [rsp + 0], xmm0
        movdqu xmmword ptr [rsp + 16], xmm1
        movdqu xmmword ptr [rsp + 32], xmm2
        movdqu xmmword ptr [rsp + 48], xmm3
        movdqu xmmword ptr [rsp + 64], xmm4
        movdqu xmmword ptr [rsp + 80], xmm5
        movdqu xmmword ptr [rsp + 96], xmm6
        movdqu xmmword ptr [rsp + 112], xmm7
        xor edi, edi
        xor esi, esi
        xor edx, edx
        xor ecx, ecx
        xor r8d, r8d
        xor r9d, r9d /* builtin entry 0 */
        cmp dword ptr [rip + cordon_gate_config + CFG_WIDE_SCRUB], 0
        jne 1f
        call cordon_gate_avx_1
        jmp 2f
1:      call cordon_gate_avx512_1
2:      movdqu xmm0, xmmword ptr [rsp + 0]
        movdqu xmm1, xmmword ptr [rsp + 16]
        movdqu xmm2, xmmword ptr [rsp + 32]
        movdqu xmm3, xmmword ptr [rsp + 48]
        movdqu xmm4, xmmword ptr [rsp + 64]
        movdqu xmm5, xmmword ptr [rsp + 80]
        movdqu xmm6, xmmword ptr [rsp + 96]
        movdqu xmm7, xmmword ptr [rsp + 112]
        add rsp, 128
        pop r11
        pop r10
        pop r9
        pop r8
        pop rsi
        pop rdi
        mov rsp, rbp
        pop rbp
        ret
        .size cordon_gate_attach_1, . - cordon_gate_attach_1

/* cordon_gates_begin/end bracket the gate code, so that tools (the
 * instruction counter in bench/) can tell gate instructions from others. */
        .p2align 5
        .globl cordon_gates_begin
cordon_gates_begin:
        GATES avx, 0
        GATES avx512, 1
        .globl cordon_gates_end
cordon_gates_end:

        .section .note.GNU-stack, "", @progbits
