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
 *  - Nothing is read or written through a pointer untrusted code chose (fs,
 *    the caller's stack) while a domain's rights are loaded. The thread's
 *    record index is read from TLS before the entry WRPKRU, with untrusted
 *    rights (an fs base aimed at trusted memory faults there), kept in xmm15,
 *    and is untrusted input afterwards: bounds-checked, and the record is
 *    claimed with a compare-and-exchange that writes only to a free record:
 *    two threads can never run on one trusted stack, a nested entry stops,
 *    and a failed claim changes nothing.
 *  - The call target comes from the domain's entry table (trusted memory).
 *    Unused slots hold a function that stops the process.
 *  - Trusted code runs on its record's own TCB (REC_TCB,
 *    domains/trusted_tls.h): the entry keeps the caller's fs base in the
 *    record and loads the TCB once on the trusted stack; the exit and the
 *    callout load the caller's back while still there. So fs holds a TCB
 *    only while rsp is on that record's stack, and libc never follows a
 *    TCB or TLS block that untrusted code can write (docs/gates.md,
 *    "Thread-local storage"). */
#include "gate_abi.h"

        .intel_syntax noprefix

/* CHECKED_WRPKRU, the record, TLS-row, claim, TCB and scrub sequences,
 * and DCFG, UNTRUSTED_PKRU, TLS_BASE and TLS: one source with the gates
 * that the pass plugin generates (compiler-pass/GateAsm.cpp). */
#include "gate_sequences.inc"

/* The config page: exactly one page, page-aligned, so it can be mprotected. */
        .section .data.cordon_gate_config, "aw", @progbits
        .balign 4096
        .globl cordon_gate_config
        .type cordon_gate_config, @object
cordon_gate_config:
        /* All zero but the "every signal" set, which is valid from the
         * start: the fatal path blocks signals with it before cordon_init()
         * too, and the 6.12 filter lets only this address block them all. */
        .zero CFG_SIGNAL_BLOCK_ALL
        .quad -1
        .zero CFG_SIZE - CFG_SIGNAL_BLOCK_ALL - 8
        .size cordon_gate_config, CFG_SIZE

#ifndef CORDON_SHARED
/* Every module with generated gates refers to this symbol
 * (compiler-pass/GateAsm.cpp). Generated gates reach the config page and
 * the TLS row at addresses the linker fixes in the main executable, so
 * they need the static library; libcordon.so lacks the symbol, and a link
 * against it fails with "undefined reference to
 * cordon_trusted_code_needs_the_static_libcordon". */
        .section .rodata.cordon_static_runtime, "a", @progbits
        .globl cordon_trusted_code_needs_the_static_libcordon
        .hidden cordon_trusted_code_needs_the_static_libcordon
cordon_trusted_code_needs_the_static_libcordon:
        .byte 0
#endif

/* A layout knob like the .skip before cordon_signal_entry, for data: its
 * size moves .bss, and with it the displacements of rip-relative loads of
 * .bss variables. A chance XRSTOR or WRPKRU in such a displacement (the
 * pass_scan and programs_clean tests say when) is mended by changing it. */
        .section .data.cordon_layout, "aw", @progbits
        .zero 64

        .section .rodata.cordon_gate_messages, "a", @progbits
.Lmsg_pkru:
        .ascii "cordon: gate violation: a WRPKRU in a call gate loaded a PKRU value other than the one that gate site allows (a jump into the middle of a gate?); process stopped\n"
.Lmsg_pkru_end:
.Lmsg_nested:
        .ascii "cordon: gate violation: this thread's trusted stack is already in use (nested gate entry from trusted code or from one of its callbacks, or a forged thread record); process stopped\n"
.Lmsg_nested_end:
.Lmsg_callback:
        .ascii "cordon: gate violation: return into a domain from a callback that this thread's record does not have in progress, or from a thread that does not own the record; process stopped\n"
.Lmsg_callback_end:
.Lmsg_record:
        .ascii "cordon: gate violation: invalid per-thread record index in thread-local storage, or thread-local storage inside trusted memory; process stopped\n"
.Lmsg_record_end:
.Lmsg_slots:
        .ascii "cordon: no free trusted thread slot: more threads entered the domain than cordon_options.max_threads allows; raise max_threads; process stopped\n"
.Lmsg_slots_end:
.Lmsg_signal:
        .ascii "cordon: signal violation: the signal handler entry was reached with a stack pointer in trusted memory while this thread was not running that domain's code (a forged signal frame?); process stopped\n"
.Lmsg_signal_end:
.Lmsg_signal_return:
        .ascii "cordon: signal violation: return from a signal handler that this thread does not have in progress; process stopped\n"
.Lmsg_signal_return_end:
.Lmsg_sigreturn:
        .ascii "cordon: rt_sigreturn failed on a frame the runtime checked; process stopped\n"
.Lmsg_sigreturn_end:
.Lmsg_domain:
        .ascii "cordon: gate called for a domain that does not exist or before cordon_init(); process stopped\n"
.Lmsg_domain_end:

/* What cordon_gate_die needs in memory: read-only key-0 data, readable
 * with every PKRU that leaves key 0 readable (every value the runtime ever
 * loads). */
        .balign 8
.Ldie_fd2_path:
        .asciz "/proc/self/fd/2"

        .text
/* Stops the process (docs/gates.md, "Fatal paths"): rsi = the message,
 * edx = its length, both readable with the untrusted PKRU. PKRU may be
 * anything here (a failed check leaves what was loaded: 0, or a domain's
 * value), so the order matters and no stack is used:
 *  1. block every signal, so that none is delivered with those rights;
 *  2. leave every domain: the untrusted PKRU through CHECKED_WRPKRU, before
 *     any other system call, so that the kernel never acts (or blocks, or
 *     writes a thread's exit-time words) with a domain's rights;
 *  3. write the message in a way that never blocks: a write to fd 2 could
 *     wait forever (a full pipe, a stopped terminal) while the other
 *     threads keep running, and a deadline kept by another process or
 *     thread of this uid could be killed by untrusted code. What would
 *     block drops the message;
 *  4. with an audit stream, record the death: untrusted, a jump into the
 *     trusted domain's gate to the operation that records a death and
 *     ends the process (never a return through untrusted memory);
 *  5. exit_group.
 * The mask is the config page's "every signal" word, the one set the 6.12
 * filter lets through. If it cannot be read (key 0 not readable), the
 * process ends at once, without a message. */
        .p2align 4
        .globl cordon_gate_die
        .hidden cordon_gate_die
        .type cordon_gate_die, @function
cordon_gate_die:
        mov r12, rsi
        mov r13, rdx
        mov rbx, rsi /* the whole message again, for its record */
        mov rbp, rdx
        /* r14: 1 when this death came from the record step's own entry
         * (the marker in r8, which the gates pass through untouched). */
        xor r14d, r14d
        mov rax, DIE_RECORDING_MARKER
        cmp r8, rax
        sete r14b
        xor edi, edi /* SIG_BLOCK */
        lea rsi, [rip + cordon_gate_config + CFG_SIGNAL_BLOCK_ALL]
        xor edx, edx
        mov r10d, 8
        mov eax, 14 /* SYS_rt_sigprocmask */
        syscall
        test rax, rax
        jnz .Ldie_exit
        /* Before cordon_init() no domain exists (and the CPU may have no
         * PKU): nothing to leave. The page is read-only after that. */
        mov r15d, -1 /* the PKRU the death found, for its record */
        cmp dword ptr [rip + UNTRUSTED_PKRU], 0
        je 1f
        xor ecx, ecx
        rdpkru
        mov r15d, eax
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU UNTRUSTED_PKRU, .Ldie_leave_site
1:      test r13, r13
        jz .Ldie_record
        /* Write the message without ever blocking, through a new open file
         * description of fd 2 with O_NONBLOCK (the original's flags stay as
         * they were) and O_APPEND (a log file keeps what it had); a socket,
         * which cannot be reopened that way, gets send(MSG_DONTWAIT). What
         * would block (a full pipe, a stopped terminal) drops the message.
         * Nothing here reads memory that untrusted code could change under
         * it to make the write block. */
        mov edi, -100 /* AT_FDCWD */
        lea rsi, [rip + .Ldie_fd2_path]
        mov edx, 0x80d01 /* O_WRONLY | O_NOCTTY | O_APPEND | O_NONBLOCK | O_CLOEXEC */
        xor r10d, r10d
        mov eax, 257 /* SYS_openat */
        syscall
        test rax, rax
        js .Ldie_send
        mov rdi, rax /* kept by the system calls below */
2:      mov rsi, r12
        mov rdx, r13
        mov eax, 1 /* SYS_write */
        syscall
        test rax, rax
        jle .Ldie_record
        add r12, rax
        sub r13, rax
        ja 2b
.Ldie_record:
        /* With an audit stream, the record, after the message (a death
         * while recording, the record step's own gate entry refused, say,
         * must not have cost the first message). Untrusted here: through
         * the trusted domain's gate like any caller, to the operation that
         * records a death and ends the process itself. Nothing here
         * returns: the gate is entered with a jump, on a stack of the
         * runtime's own (the caller's rsp may be forged), whose only word
         * is the exit below as a return address, which no path uses (the
         * operation never returns, and a refused entry dies here again,
         * with the marker, and goes straight to the exit). Skipped: a
         * death of the record step itself; a thread that has no record of
         * the trusted domain yet (TLS holds -1: its first entry would
         * attach it, which blocks signals in a way the 6.12 filter traps,
         * and with every signal blocked a trap is a death by SIGSYS). A
         * forged fs base faults in the TLS read below, with every signal
         * blocked: a death by SIGSEGV, by the kernel's hand. */
        test r14d, r14d
        jnz .Ldie_exit
        cmp qword ptr [rip + cordon_gate_config + CFG_AUDIT_STATE], 0
        je .Ldie_exit
        /* A death in a domain's code (fs is then that record's TCB, in the
         * domain's memory, which the TLS read below would fault on): the
         * trusted domain's own deaths are recorded before they come here,
         * other domains' cannot be. */
        rdfsbase rax
        lea rsi, [rip + cordon_gate_config + CFG_DOMAINS]
        mov ecx, 1
4:      cmp ecx, dword ptr [rip + cordon_gate_config + CFG_DOMAIN_COUNT]
        ja 5f
        cmp ecx, CORDON_MAX_DOMAINS
        jae 5f
        imul edx, ecx, CFG_DOMAIN_STRIDE
        cmp rax, qword ptr [rsi + rdx + DCFG_REGION_START]
        jb 6f
        cmp rax, qword ptr [rsi + rdx + DCFG_REGION_END]
        jb .Ldie_exit
6:      inc ecx
        jmp 4b
5:      TLS_BASE rax
        cmp dword ptr TLS(rax, 4 * CORDON_TRUSTED_DOMAIN), -1
        je .Ldie_exit
        lea rsp, [rip + .Ldie_stack_end]
        lea rax, [rip + .Ldie_exit]
        push rax
        mov edi, DIE_AUDIT_OP
        mov rsi, rbx
        mov rdx, rbp
        mov ecx, r15d /* the PKRU the death found */
        mov r8, DIE_RECORDING_MARKER
        mov r9d, DIE_BUILTIN_CODE
        cmp dword ptr [rip + cordon_gate_config + CFG_WIDE_SCRUB], 0
        jne 3f
        jmp cordon_gate_avx_1
3:      jmp cordon_gate_avx512_1
.Ldie_exit:
        mov edi, CORDON_VIOLATION_EXIT_CODE
        mov eax, 231 /* SYS_exit_group */
        syscall
        ud2
.Ldie_send:
        mov edi, 2
        mov rsi, r12
        mov rdx, r13
        mov r10d, 0x4040 /* MSG_DONTWAIT | MSG_NOSIGNAL */
        xor r8d, r8d
        xor r9d, r9d
        mov eax, 44 /* SYS_sendto */
        syscall
        jmp .Ldie_record
        .size cordon_gate_die, . - cordon_gate_die

        /* The record step's stack (untrusted memory): the gate's entry pushes
         * nothing before it switches to the trusted stack; 256 bytes spare. */
        .section .bss.cordon_die_stack, "aw", @nobits
        .balign 64
.Ldie_stack:
        .zero 256
.Ldie_stack_end:
        .text

        .section cordon_gate_sites, "a", @progbits
        .balign 8
        .long .Ldie_leave_site - .
        .long SITE_DIE_LEAVE
        .text

/* cordon_internal_die(message, length): the same from C++
 * (runtime/core/fatal.cc). */
        .globl cordon_internal_die
        .hidden cordon_internal_die
        .type cordon_internal_die, @function
cordon_internal_die:
        mov rdx, rsi
        mov rsi, rdi
        jmp cordon_gate_die
        .size cordon_internal_die, . - cordon_internal_die

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
        DIE_WITH signal
        DIE_WITH signal_return
        DIE_WITH sigreturn

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

/* Takes the bootstrap record at rax as a spin lock: its busy word holds
 * the holder's thread id. Inside the domain, signals blocked, no stack
 * use (rsp may be the caller's). Why the holder check: a thread that held
 * it when another one forked does not exist in the child, and would hold
 * it there forever; a holder that is not a thread of this process (tgkill
 * says ESRCH), or that is this thread (a stale id reused by the child's
 * kernel), is gone, and the lock is taken from it with a CMPXCHG that only
 * succeeds if it still holds it. In a running process the holder is
 * always alive: it cannot leave the attach path with signals blocked.
 * Out: rax = the record, held. Clobbers rcx, rdx, rsi, rdi, r8-r11. */
.macro BOOT_LOCK
        mov r8, rax
        mov eax, 186 /* SYS_gettid */
        syscall
        mov r9d, eax
        xor r10d, r10d
1:      xor eax, eax
        lock cmpxchg dword ptr [r8 + REC_BUSY], r9d
        jz 3f
        pause
        add r10d, 1
        test r10d, 0xffff
        jnz 1b
        mov esi, eax /* the holder */
        cmp esi, r9d
        je 2f
        mov eax, 39 /* SYS_getpid */
        syscall
        mov edi, eax
        xor edx, edx
        mov eax, 234 /* SYS_tgkill(pid, holder, 0) */
        syscall
        cmp rax, -3 /* -ESRCH */
        jne 1b
2:      mov eax, esi
        lock cmpxchg dword ptr [r8 + REC_BUSY], r9d
        jnz 1b
3:      mov rax, r8
.endm

/* rt_sigprocmask(SIG_SETMASK, [rsi], NULL, 8); clobbers rax, rcx, rdx,
 * rdi, r10, r11. */
.macro SET_SIGNAL_MASK
        mov edi, 2
        xor edx, edx
        mov r10d, 8
        mov eax, 14
        syscall
.endm

/* The outbound gate: cordon_callout_<v>_<d>(a0, a1, a2, a3, a4, target),
 * called by trusted code of domain d on its trusted stack (through
 * cordon_call_untrusted). It runs target->fn(a0..a4) as untrusted code, on
 * the untrusted stack below the one the domain was entered from, and
 * returns its result. Trusted callee-saved registers are kept on the
 * trusted stack and cleared for the callback; REC_CALLOUT_RSP holding a
 * trusted stack pointer makes the way back in valid only while this
 * thread's callback is in progress. */
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
        /* Clear before the stack switch: a signal that arrives after it
         * finds the frame on the untrusted stack (docs/signals.md). */
        xor ebx, ebx
        xor ebp, ebp
        xor r12d, r12d
        xor r13d, r13d
        xor r14d, r14d
        xor r15d, r15d
        SCRUB_VECTORS \wide
        /* The callback runs on the caller's fs base, loaded while still on
         * the trusted stack (see the top). */
        mov rax, qword ptr [r11 + REC_CALLER_FS]
        wrfsbase rax
        /* The callback runs below the suspended untrusted caller, clear of
         * its red zone. One XCHG switches stacks and stores the trusted
         * stack pointer, which marks the callback as in progress. */
        mov rax, qword ptr [r11 + REC_SAVED_RSP]
        sub rax, 256
        and rax, -16
        mov qword ptr [r11 + REC_CALLOUT_RSP], rax
        xchg rsp, qword ptr [r11 + REC_CALLOUT_RSP]
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
        /* Back from the callback, still untrusted: rax is its result (kept
         * in r9, which the syscall below leaves alone). The record index is
         * read now, before the WRPKRU, and is untrusted input. */
        mov r9, rax
        TLS_ROW_FROM_CALLER \d
        xor ecx, ecx
        xor edx, edx
.Lcallback_return_load_\v\()_\d:
        CHECKED_WRPKRU DCFG(\d, DCFG_PKRU), .Lcallback_return_site_\v\()_\d
        cld
        vmovd eax, xmm15
        RECORD_AT_INDEX \d, cordon_gate_fatal_record
        mov rdx, rax
        /* Only the thread that owns the record may resume its suspended
         * frame: any thread can aim its TLS index at another's record. */
        mov eax, 186 /* SYS_gettid */
        syscall
        cmp eax, dword ptr [rdx + REC_OWNER]
        jne cordon_gate_fatal_callback
        /* The callback's stack pointer may not lie in the record's stack:
         * REC_CALLOUT_RSP must hold a trusted value only while a callback
         * is in progress. */
        mov rax, rdx
        sub rax, rsp
        cmp rax, qword ptr [rip + DCFG(\d, DCFG_STRIDE)]
        jb cordon_gate_fatal_callback
        /* A callback must be in progress (REC_CALLOUT_RSP in this record's
         * stack), checked before the XCHG so that a refused return writes
         * nothing; only this thread changes that word. */
        mov rax, rdx
        sub rax, qword ptr [rdx + REC_CALLOUT_RSP]
        cmp rax, qword ptr [rip + DCFG(\d, DCFG_STRIDE)]
        jae cordon_gate_fatal_callback
.Lcallback_return_switch_\v\()_\d:
        xchg rsp, qword ptr [rdx + REC_CALLOUT_RSP]
        /* On the trusted stack again: the record's TCB. */
        mov rcx, qword ptr [rdx + REC_TCB]
        wrfsbase rcx
        TLS_ROW_TO_TCB
        mov rax, r9
        pop r15
        pop r14
        pop r13
        pop r12
        pop rbp
        pop rbx
        ret
        .size cordon_callout_\v\()_\d, . - cordon_callout_\v\()_\d

        .section cordon_signal_rewinds, "a", @progbits
        .balign 4
        .long .Lcallback_return_site_\v\()_\d + 3 - .
        .long .Lcallback_return_switch_\v\()_\d - .
        .long .Lcallback_return_load_\v\()_\d - .
        .text
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
        /* The record index, read while still untrusted (see the top), with
         * the whole index row for the record's TCB. */
        TLS_ROW_FROM_CALLER \d
        mov r10, rdx
        mov r11, rcx
        xor ecx, ecx
        xor edx, edx
.Lentry_load_\v\()_\d:
        CHECKED_WRPKRU DCFG(\d, DCFG_PKRU), .Lentry_site_\v\()_\d
        vmovd eax, xmm15
        RECORD_AT_INDEX \d, .Lslow_\v\()_\d
        CLAIM_RECORD .Lheld_\v\()_\d
.Lentry_switch_\v\()_\d:
        SWITCH_TO_RECORD
        /* Dispatch through the domain's table, and count the call in the
         * record (docs/gates.md, "Call counts"): after the stack switch,
         * so outside every rewind window (a call is counted once), and
         * with a plain ADD, because only this thread writes the record.
         * The ADD comes after the table's load, which the call waits on:
         * before it, the round trip measured 0.08 WRPKRU pairs (2 ns)
         * slower on Zen 3; after it, no slower than without the ADD
         * (bench/README.md, "Call counting"). */
        and r9d, CORDON_TABLE_MASK
        mov rax, qword ptr [rip + DCFG(\d, DCFG_TABLE)]
        add qword ptr [rsp + REC_COUNTS + r9 * 8], 1
        mov rdx, r10
        mov rcx, r11
        call qword ptr [rax + r9 * 8]
        /* Leave: clear every caller-saved register but the result while
         * still on the trusted stack, then release the record and return
         * to the caller's stack in one XCHG (rsp is the record, whose
         * first word is the saved stack pointer), then load the untrusted
         * PKRU. */
        mov r11, rax
        RESTORE_CALLER_FS
        SCRUB \wide
        RELEASE_RECORD .Lexit_site_\v\()_\d
        mov rax, r11
        ret

        HELD_CLAIM \d, .Lheld_\v\()_\d, .Lentry_switch_\v\()_\d, .Lentry_load_\v\()_\d

.Lslow_\v\()_\d:
        /* This thread has no record yet (TLS holds the initial 0xffffffff),
         * or TLS was corrupted. Leave the domain again (ecx and edx are
         * still zero), attach from untrusted code with every signal
         * blocked, and start over. */
        cmp eax, -1
        jne cordon_gate_fatal_record
        CHECKED_WRPKRU UNTRUSTED_PKRU, .Lslow_exit_site_\v\()_\d
        push r10 /* the caller's rdx and rcx */
        push r11
        push rdi
        push rsi
        push r8
        push r9
        sub rsp, 24
        mov qword ptr [rsp], -1
        xor edi, edi /* SIG_BLOCK */
        mov rsi, rsp
        lea rdx, [rsp + 8]
        mov r10d, 8
        mov eax, 14 /* SYS_rt_sigprocmask */
        syscall
        call .Lattach_\v\()_\d
        /* Untrusted again: the index goes into TLS only now. */
        TLS_BASE rax
        mov dword ptr TLS(rax, 4 * \d), r11d
        lea rsi, [rsp + 8]
        SET_SIGNAL_MASK
        add rsp, 24
        pop r9
        pop r8
        pop rsi
        pop rdi
        pop rcx
        pop rdx
        jmp cordon_gate_\v\()_\d

.Lattach_\v\()_\d:
        /* Untrusted, signals blocked: enter, take the domain's bootstrap
         * record as a spin lock and its stack, claim a record for this
         * thread, leave. Nothing here writes through the caller's stack
         * pointer while it holds the domain's rights: the caller chose it. */
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU DCFG(\d, DCFG_PKRU), .Lattach_site_\v\()_\d
        mov rax, qword ptr [rip + DCFG(\d, DCFG_BOOT)]
        test rax, rax
        jz cordon_gate_fatal_domain
        BOOT_LOCK
        mov qword ptr [rax + REC_SAVED_RSP], rsp
        mov rsp, rax
        mov edi, \d
        /* Claims a record for this thread. Returns its index, or -1 when
         * none is free. It touches no TLS: the slow path stores the index
         * after it has left the domain. */
        call cordon_internal_attach_thread
        mov rcx, rsp
        mov rsp, qword ptr [rcx + REC_SAVED_RSP]
        mov dword ptr [rcx + REC_BUSY], 0
        cmp eax, -1
        je cordon_gate_fatal_slots
        SCRUB \wide
        mov r11d, eax /* the index, for the slow path */
        xor eax, eax
        CHECKED_WRPKRU UNTRUSTED_PKRU, .Lattach_exit_site_\v\()_\d
        ret
        .size cordon_gate_\v\()_\d, . - cordon_gate_\v\()_\d

        /* A signal between the entry WRPKRU and the stack switch, on the
         * way out of the slow path, or while .Lheld checks a claim, resumes
         * at the entry's load with untrusted PKRU (docs/signals.md). */
        .section cordon_signal_rewinds, "a", @progbits
        .balign 4
        .long .Lentry_site_\v\()_\d + 3 - .
        .long .Lentry_switch_\v\()_\d - .
        .long .Lentry_load_\v\()_\d - .
        .long .Lslow_\v\()_\d - .
        .long .Lslow_exit_site_\v\()_\d - .
        .long .Lentry_load_\v\()_\d - .
        .long .Lheld_\v\()_\d - .
        .long .Lheld_\v\()_\d\()_save - .
        .long .Lentry_load_\v\()_\d - .
        .long .Lheld_\v\()_\d\()_saved - .
        .long .Lheld_\v\()_\d\()_end - .
        .long .Lheld_\v\()_\d\()_restore - .
        .text

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
        .long .Lslow_exit_site_\v\()_\d - .
        .long SITE_ATTACH_LEAVE | (\d << 8) | (\wide << 16)
        .long .Lattach_site_\v\()_\d - .
        .long SITE_ATTACH | (\d << 8) | (\wide << 16)
        .long .Lattach_exit_site_\v\()_\d - .
        .long SITE_ATTACH_LEAVE | (\d << 8) | (\wide << 16)
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

/* ---- Signals (docs/signals.md) ----
 *
 * After cordon_lockdown() every handled signal enters through
 * cordon_signal_entry, with the kernel's default PKRU (key 0 only) and the
 * stack pointer at the kernel's frame. On kernels that write frames under
 * the interrupted PKRU (6.1), no handler has SA_ONSTACK and the kernel
 * writes the frame on the stack in use, so where the frame lies says what
 * was interrupted:
 *  - In a domain's memory: that domain's code was running. The frame holds
 *    trusted registers and stays where it is; the program's handler runs as
 *    untrusted code on the untrusted stack with a frame that holds none, and
 *    the domain code resumes when it returns.
 *  - Elsewhere: untrusted code (or a gate between its WRPKRU and its stack
 *    switch) was running. The program's handler runs on that frame; the
 *    return goes through cordon_signal_restorer, which copies the frame into
 *    trusted memory, forces the untrusted PKRU into it, and only then
 *    issues rt_sigreturn.
 * On kernels that write frames anywhere with PKRU 0 (6.12 and later,
 * CFG_SIGNAL_ALTSTACK), every handler has SA_ONSTACK and the frame lands on
 * the thread's alternate stack in its domain-1 slot; the frame itself says
 * what was interrupted (.Lsignal_landed, SIGNAL_LANDED).
 * rt_sigreturn, rt_sigaction and sigaltstack need a token in r8 (and r9)
 * that only trusted memory holds, so untrusted code can do none of them. */

/* xmm15 = the index of domain d's record slot that holds address reg
 * (slot i: [records + i * stride - stride + REC_SIZE, + stride)), from the
 * read-only config page only. An address outside every slot gives an index
 * that RECORD_AT_INDEX or the checks after it refuse. Clobbers rax, rdx. */
.macro SLOT_INDEX_OF reg, d
        mov rax, \reg
        sub rax, qword ptr [rip + DCFG(\d, DCFG_RECORDS)]
        add rax, qword ptr [rip + DCFG(\d, DCFG_STRIDE)]
        sub rax, REC_SIZE
        xor edx, edx
        div qword ptr [rip + DCFG(\d, DCFG_STRIDE)]
        vmovd xmm15, eax
.endm

/* The last steps from a signal path to untrusted code, whose stack
 * pointer is in r13: clear the vector registers (zmm16-31 and k0-7 too
 * where the config page says AVX-512 is in use), switch to that stack and
 * leave the domain through the checked WRPKRU at site. The general
 * registers are the caller's to clear first (each path keeps different
 * ones for what runs next). */
.macro LEAVE_FOR_UNTRUSTED_STACK site
        SCRUB_VECTORS 2
        mov rsp, r13
        xor r13d, r13d
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU UNTRUSTED_PKRU, \site
.endm

/* rt_sigreturn with domain d's copy of the token; rsp is the frame + 8. */
.macro TOKEN_SIGRETURN d
        mov rax, qword ptr [rip + DCFG(\d, DCFG_STATE)]
        mov r8, qword ptr [rax + DSTATE_SIGNAL_TOKEN]
        mov r9, qword ptr [rax + DSTATE_SIGNAL_TOKEN + 8]
        mov eax, 15 /* SYS_rt_sigreturn */
        syscall
        jmp cordon_gate_fatal_sigreturn
.endm

/* rbx = this thread's record of domain d, checked to be owned by this
 * thread (the TLS index is untrusted, so another thread's record is
 * possible). The index was read into xmm15 by READ_TLS_INDEX before the
 * WRPKRU. Clobbers rax, rcx, r11. */
.macro READ_TLS_INDEX d
        TLS_BASE rax
        vmovd xmm15, dword ptr TLS(rax, 4 * \d)
.endm
/* rbx = this thread's record of domain d (OWN_RECORD): it must be in use
 * (the saved stack pointer is not the record itself), with no callback in
 * progress (REC_CALLOUT_RSP outside its stack) and no handler of an earlier
 * signal outstanding; else the process stops. Only then was the thread
 * running the domain's own code. Clobbers rax. */
.macro RECORD_RUNNING_DOMAIN_CODE d
        cmp qword ptr [rbx + REC_SAVED_RSP], rbx
        je cordon_gate_fatal_signal
        mov rax, rbx
        sub rax, qword ptr [rbx + REC_CALLOUT_RSP]
        cmp rax, qword ptr [rip + DCFG(\d, DCFG_STRIDE)]
        jb cordon_gate_fatal_signal
        cmp qword ptr [rbx + REC_SIGNAL_FRAME], 0
        jne cordon_gate_fatal_signal
.endm

.macro OWN_RECORD d, on_bad
        vmovd eax, xmm15
        RECORD_AT_INDEX \d, \on_bad
        mov rbx, rax
        mov eax, 186 /* SYS_gettid */
        syscall
        cmp eax, dword ptr [rbx + REC_OWNER]
        jne \on_bad
.endm

/* rbx = a record whose thread was interrupted with the fs base kept in
 * REC_SIGNAL_FS: load the fs base the program's handler runs with. That is
 * the interrupted one, unless it is the record's TCB (trusted code was
 * running on it); then it is the gate caller's. Clobbers rax. */
.macro SIGNAL_FS_FOR_HANDLER
        mov rax, qword ptr [rbx + REC_SIGNAL_FS]
        cmp rax, qword ptr [rbx + REC_TCB]
        jne 1f
        mov rax, qword ptr [rbx + REC_CALLER_FS]
1:      wrfsbase rax
        xor eax, eax
.endm

.macro SIGNAL_DOMAIN d
/* The kernel's frame is in domain d's memory. Nothing is written before
 * the checks establish that it is this thread's record's stack and that
 * the thread was running domain code on it: the record is in use, no
 * callback and no handler is in progress. Untrusted code cannot be running
 * on a thread in that state, so the frame is the kernel's. */
.Lsignal_in_\d:
        /* The record from where the frame is, not from TLS: fs may hold a
         * TCB in trusted memory, which this PKRU cannot read. */
        SLOT_INDEX_OF rsp, \d
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU DCFG(\d, DCFG_PKRU), .Lsignal_enter_site_\d
        OWN_RECORD \d, cordon_gate_fatal_signal
        mov rax, rbx
        sub rax, rsp
        jbe cordon_gate_fatal_signal
        cmp rax, qword ptr [rip + DCFG(\d, DCFG_STRIDE)]
        jae cordon_gate_fatal_signal
        RECORD_RUNNING_DOMAIN_CODE \d
        /* The fs base the domain code was interrupted with, for the
         * resume: the kernel does not keep it in the frame. */
        rdfsbase rax
        mov qword ptr [rbx + REC_SIGNAL_FS], rax
        /* Decide on this stack, below the frame. Returns the handler's
         * frame on the untrusted stack, or 0 to resume at once. */
        mov r12, rsp
        and rsp, -16
        mov edi, \d
        mov rsi, rbx
        mov rdx, r12
        call cordon_internal_signal_in_domain
        test rax, rax
        jz .Lsignal_resume_now_\d
        mov r13, rax
        SIGNAL_FS_FOR_HANDLER
        xor ebx, ebx
        xor ebp, ebp
        xor r12d, r12d
        xor r14d, r14d
        xor r15d, r15d
        xor esi, esi
        xor r8d, r8d
        xor r9d, r9d
        LEAVE_FOR_UNTRUSTED_STACK .Lsignal_leave_site_\d
        jmp cordon_signal_run_handler
.Lsignal_resume_now_\d:
        lea rsp, [r12 + 8]
        TOKEN_SIGRETURN \d

/* The handler's return address: resume the domain code it interrupted. */
        .globl cordon_signal_resume_\d
        .hidden cordon_signal_resume_\d
        .type cordon_signal_resume_\d, @function
cordon_signal_resume_\d:
        lea rsi, [rip + cordon_gate_config + CFG_SIGNAL_BLOCK_ALL]
        SET_SIGNAL_MASK
        READ_TLS_INDEX \d
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU DCFG(\d, DCFG_PKRU), .Lsignal_resume_site_\d
        OWN_RECORD \d, cordon_gate_fatal_signal_return
        xor eax, eax
        xchg rax, qword ptr [rbx + REC_SIGNAL_FRAME]
        test rax, rax
        jz cordon_gate_fatal_signal_return
        /* The fs base the domain code was interrupted with. */
        mov rcx, qword ptr [rbx + REC_SIGNAL_FS]
        wrfsbase rcx
        cmp dword ptr [rip + cordon_gate_config + CFG_SIGNAL_ALTSTACK], 0
        jne .Lsignal_resume_parked_\d
        lea rsp, [rax + 8]
        TOKEN_SIGRETURN \d
/* The frame is parked on this thread's alternate stack in domain 1's
 * memory (SIGNAL_LANDED); its uc_stack gives the thread its full
 * alternate stack back. */
.Lsignal_resume_parked_\d:
        mov r12, rax
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU DCFG(1, DCFG_PKRU), .Lsignal_resume_parked_site_\d
        /* Only the innermost parked frame: the one the alternate stack was
         * shrunk below last (cordon_internal_signal_landed_in_domain: its
         * top is the frame - 256). Resuming an outer one first would give
         * the thread its full alternate stack back while inner records
         * still name frames there, which new frames could then replace
         * (red-team resume_out_of_order.c). The query lands between that
         * top and the frame, in domain 1's memory, with every signal
         * blocked. */
        xor edi, edi
        lea rsi, [r12 - 64]
        mov eax, 131 /* SYS_sigaltstack(NULL, &old) */
        syscall
        test rax, rax
        jnz cordon_gate_fatal_signal_return
        mov rax, qword ptr [r12 - 64] /* ss_sp */
        add rax, qword ptr [r12 - 48] /* + ss_size */
        lea rcx, [r12 - 256]
        cmp rax, rcx
        jne cordon_gate_fatal_signal_return
        lea rsp, [r12 + 8]
        TOKEN_SIGRETURN 1
        .size cordon_signal_resume_\d, . - cordon_signal_resume_\d

        .section cordon_gate_sites, "a", @progbits
        .balign 8
        .long .Lsignal_enter_site_\d - .
        .long SITE_SIGNAL_ENTER | (\d << 8)
        .long .Lsignal_leave_site_\d - .
        .long SITE_SIGNAL_LEAVE | (\d << 8)
        .long .Lsignal_resume_site_\d - .
        .long SITE_SIGNAL_RESUME | (\d << 8)
        .long .Lsignal_resume_parked_site_\d - .
        .long SITE_SIGNAL_RESUME | (1 << 8)
        .text
.endm

.macro SIGNAL_LANDED d
/* Kernels that write frames anywhere: the frame at r12, on this thread's
 * alternate stack, says that domain d's code was interrupted with its stack
 * pointer at rdx (cordon_internal_signal_landed checked the saved PKRU is
 * d's). r15 = this thread's record of domain 1. As in SIGNAL_DOMAIN,
 * nothing is written before this thread's record of d is shown to be
 * running d's code on that stack. */
.Lsignal_landed_in_\d:
        mov r13, rdx
        /* The record of d whose slot holds the interrupted stack pointer;
         * OWN_RECORD and the checks below decide whether it is this
         * thread's, running d's code on that stack. */
        SLOT_INDEX_OF r13, \d
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU DCFG(\d, DCFG_PKRU), .Lsignal_landed_enter_site_\d
        OWN_RECORD \d, cordon_gate_fatal_signal
        /* The interrupted stack pointer may be the record itself (right
         * after the entry's XCHG, right before the exit's). */
        mov rax, rbx
        sub rax, r13
        jb cordon_gate_fatal_signal
        cmp rax, qword ptr [rip + DCFG(\d, DCFG_STRIDE)]
        jae cordon_gate_fatal_signal
        RECORD_RUNNING_DOMAIN_CODE \d
        mov r14, qword ptr [rbx + REC_SAVED_RSP]
        /* Back to domain 1 (the frame's memory) to decide. */
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU DCFG(1, DCFG_PKRU), .Lsignal_landed_decide_site_\d
        mov edi, \d
        mov rsi, r14
        mov rdx, r12
        mov rcx, r15
        call cordon_internal_signal_landed_in_domain
        test rax, rax
        jz .Lsignal_landed_resume
        /* The frame stays parked; the record names it for the resume. */
        mov r13, rax
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU DCFG(\d, DCFG_PKRU), .Lsignal_landed_park_site_\d
        mov qword ptr [rbx + REC_SIGNAL_FRAME], r12
        mov qword ptr [rbx + REC_SIGNAL_FS], rbp
        SIGNAL_FS_FOR_HANDLER
        xor ebx, ebx
        xor ebp, ebp
        xor r12d, r12d
        xor r14d, r14d
        xor r15d, r15d
        xor esi, esi
        xor edi, edi
        xor r8d, r8d
        xor r9d, r9d
        xor r10d, r10d
        xor r11d, r11d
        LEAVE_FOR_UNTRUSTED_STACK .Lsignal_landed_leave_site_\d
        jmp cordon_signal_run_handler

        .section cordon_gate_sites, "a", @progbits
        .balign 8
        .long .Lsignal_landed_enter_site_\d - .
        .long SITE_SIGNAL_ENTER | (\d << 8)
        .long .Lsignal_landed_decide_site_\d - .
        .long SITE_SIGNAL_ENTER | (1 << 8)
        .long .Lsignal_landed_park_site_\d - .
        .long SITE_SIGNAL_ENTER | (\d << 8)
        .long .Lsignal_landed_leave_site_\d - .
        .long SITE_SIGNAL_LEAVE | (\d << 8)
        .text
.endm

/* The sa_sigaction of every handled signal. The alignment also sets the
 * layout of everything linked after the gates: a chance WRPKRU or XRSTOR
 * in some long jump's displacement is mended by changing it (the
 * programs_clean test says when). */
        .p2align 8
        .skip 64, 0xcc /* moves what follows (see above) */
        .globl cordon_signal_entry
        .hidden cordon_signal_entry
        .type cordon_signal_entry, @function
cordon_signal_entry:
        cmp dword ptr [rip + cordon_gate_config + CFG_SIGNAL_ALTSTACK], 0
        je 2f
        cmp rsp, qword ptr [rip + DCFG(1, DCFG_REGION_START)]
        jb 2f
        cmp rsp, qword ptr [rip + DCFG(1, DCFG_REGION_END)]
        jb .Lsignal_landed
2:
        .irp d, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
        cmp rsp, qword ptr [rip + DCFG(\d, DCFG_REGION_START)]
        jb 1f
        cmp rsp, qword ptr [rip + DCFG(\d, DCFG_REGION_END)]
        jb .Lsignal_in_\d
1:
        .endr
        /* Untrusted code was interrupted: C++, returns to the restorer. */
        jmp cordon_internal_signal_untrusted
        .size cordon_signal_entry, . - cordon_signal_entry

        .irp d, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
        SIGNAL_DOMAIN \d
        .endr

/* Kernels that write frames anywhere (docs/signals.md, "Frames the kernel
 * writes anywhere"): every runtime handler has SA_ONSTACK and a thread
 * given an alternate stack has it in its own domain-1 record slot, so the
 * frame is there, written with PKRU 0, whatever the stack pointer was.
 * Nothing is written before the checks: this thread owns the record
 * (gettid) and rsp lies in that record's alternate stack. Otherwise the
 * thread has no alternate stack yet and the frame is where the stack
 * pointer was: the checks of SIGNAL_DOMAIN 1 decide. */
.Lsignal_landed:
        /* The record index comes from where the frame is, not from TLS (a
         * thread whose fs untrusted code aimed elsewhere still takes its
         * signals): the domain-1 record slot that holds rsp. OWN_RECORD
         * then checks the owner, and the range check below the alternate
         * stack. */
        SLOT_INDEX_OF rsp, 1
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU DCFG(1, DCFG_PKRU), .Lsignal_landed_site
        /* rbp: the interrupted fs base, loaded again on every way out. */
        rdfsbase rbp
        OWN_RECORD 1, .Lsignal_landed_adopt
.Lsignal_landed_owned:
        mov eax, dword ptr [rip + cordon_gate_config + CFG_SIGBUF_PAGES]
        add eax, SLOT_READONLY_PAGES
        shl rax, 12
        add rax, rbx
        add rax, REC_SIZE
        sub rax, qword ptr [rip + DCFG(1, DCFG_STRIDE)]
        cmp rsp, rax
        jb .Lsignal_landed_adopt
        mov ecx, dword ptr [rip + cordon_gate_config + CFG_ALTSTACK_PAGES]
        shl rcx, 12
        add rax, rcx
        cmp rsp, rax
        jae .Lsignal_landed_adopt
        mov r12, rsp
        mov r15, rbx
        /* The runtime's code runs on this record's TCB: the interrupted fs
         * base may be another domain's TCB, which domain 1 cannot read. */
        mov rax, qword ptr [rbx + REC_TCB]
        wrfsbase rax
        and rsp, -16
        mov rdi, r12
        mov rsi, rbx
        call cordon_internal_signal_landed
        test rax, rax
        jz .Lsignal_landed_resume
        cmp rax, 1
        je .Lsignal_landed_untrusted
        .irp d, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
        cmp eax, \d + 1
        je .Lsignal_landed_in_\d
        .endr
        jmp cordon_gate_fatal_signal
.Lsignal_landed_resume:
        wrfsbase rbp
        lea rsp, [r12 + 8]
        TOKEN_SIGRETURN 1
/* This thread does not own the record its TLS names, or rsp is not on
 * that record's alternate stack: a fork() child, whose trapped calls come
 * before and while its fork handlers re-attach it, on the alternate stack
 * it inherited. The record whose alternate stack holds rsp is adopted only
 * if it is this thread's or its owner is gone; else the checks of
 * SIGNAL_DOMAIN 1 decide (and stop the process). */
.Lsignal_landed_adopt:
        mov r12, rsp
        and rsp, -16
        mov rdi, r12
        call cordon_internal_signal_adopt
        mov rsp, r12
        test rax, rax
        jz .Lsignal_in_1
        mov rbx, rax
        jmp .Lsignal_landed_owned
/* Untrusted code was interrupted: its frame was copied to its own stack
 * (rdx), which holds nothing trusted; run the untrusted path there as if
 * the kernel had written it. */
.Lsignal_landed_untrusted:
        wrfsbase rbp
        xor ebp, ebp
        mov r13, rdx
        xor ebx, ebx
        xor r12d, r12d
        xor r15d, r15d
        xor r8d, r8d
        xor r9d, r9d
        xor r10d, r10d
        xor r11d, r11d
        LEAVE_FOR_UNTRUSTED_STACK .Lsignal_landed_untrusted_site
        mov edi, dword ptr [rsp + 8 + 304]
        lea rsi, [rsp + 8 + 304]
        lea rdx, [rsp + 8]
        jmp cordon_internal_signal_untrusted

        .irp d, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
        SIGNAL_LANDED \d
        .endr

        .section cordon_gate_sites, "a", @progbits
        .balign 8
        .long .Lsignal_landed_site - .
        .long SITE_SIGNAL_ENTER | (1 << 8)
        .long .Lsignal_landed_untrusted_site - .
        .long SITE_SIGNAL_LEAVE | (1 << 8)
        .text

/* clone(2) for a trapped thread creation (signals.cc, CloneForUntrusted):
 * inside domain 1 with every signal blocked; rdi..r8 = flags, the child's
 * frame (its first stack pointer, on its untrusted stack), parent tid,
 * child tid, tls. The parent returns the result. The child inherits domain
 * 1's PKRU and the blocked mask but no alternate stack: it attaches on the
 * bootstrap stack (held as the gates hold it), gets its alternate stack,
 * leaves the domain and starts the program's code from the frame through
 * the checked sigreturn path. */
        .globl cordon_signal_clone
        .hidden cordon_signal_clone
        .type cordon_signal_clone, @function
cordon_signal_clone:
        mov r10, rcx
        mov rax, qword ptr [rip + DCFG(1, DCFG_STATE)]
        mov r9, qword ptr [rax + DSTATE_SIGNAL_TOKEN]
        mov eax, 56 /* SYS_clone */
        syscall
        xor r9d, r9d
        test rax, rax
        jz .Lsignal_clone_child
        ret
.Lsignal_clone_child:
        mov r12, rsp
        mov rax, qword ptr [rip + DCFG(1, DCFG_BOOT)]
        BOOT_LOCK
        mov rsp, rax
        call cordon_internal_signal_thread_start
        mov r13d, eax /* the record index, stored in TLS once untrusted */
        mov rax, qword ptr [rip + DCFG(1, DCFG_BOOT)]
        mov dword ptr [rax + REC_BUSY], 0
        mov rsp, r12
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU UNTRUSTED_PKRU, .Lsignal_clone_child_site
        TLS_BASE rax
        mov dword ptr TLS(rax, 4), r13d
        xor r13d, r13d
        lea rsp, [r12 + 8]
        jmp cordon_signal_restorer
        .size cordon_signal_clone, . - cordon_signal_clone

        .section cordon_gate_sites, "a", @progbits
        .balign 8
        .long .Lsignal_clone_child_site - .
        .long SITE_SIGNAL_LEAVE | (1 << 8)
        .text

/* sigaltstack(rdi, NULL) with the token's first word (rsi), inside domain
 * 1, every signal blocked. The kernel refuses to change the alternate
 * stack of a thread whose stack pointer lies on it, and the runtime calls
 * this from there (below a parked frame): the stack pointer is 0 for the
 * system call, which uses no stack. Returns 0 or -errno. */
        .globl cordon_signal_sigaltstack
        .hidden cordon_signal_sigaltstack
        .type cordon_signal_sigaltstack, @function
cordon_signal_sigaltstack:
        mov r8, rsi
        mov rdx, rsp
        xor esi, esi
        xor esp, esp
        mov eax, 131 /* SYS_sigaltstack */
        syscall
        mov rsp, rdx
        xor r8d, r8d
        ret
        .size cordon_signal_sigaltstack, . - cordon_signal_sigaltstack

/* The frame probe at cordon_init() (signals.cc, ProbeFramesAnywhere), in a
 * child process: tgkill(rsi, rdx, SIGURG) with the stack pointer at rdi, a
 * page the child cannot access; the handler exits 42 without using the
 * stack. Neither returns. */
        .globl cordon_signal_probe_raise
        .hidden cordon_signal_probe_raise
        .type cordon_signal_probe_raise, @function
cordon_signal_probe_raise:
        mov rsp, rdi
        mov rdi, rsi
        mov rsi, rdx
        mov edx, 23 /* SIGURG */
        mov eax, 234 /* SYS_tgkill */
        syscall
        mov edi, 3
        mov eax, 231 /* SYS_exit_group */
        syscall
        ud2
        .size cordon_signal_probe_raise, . - cordon_signal_probe_raise
        .globl cordon_signal_probe_handler
        .hidden cordon_signal_probe_handler
        .type cordon_signal_probe_handler, @function
cordon_signal_probe_handler:
        mov edi, 42
        mov eax, 231 /* SYS_exit_group */
        syscall
        ud2
        .size cordon_signal_probe_handler, . - cordon_signal_probe_handler

/* Untrusted: rsp is the handler frame cordon_internal_signal_in_domain
 * built (runtime/signals/signals.cc, HandlerFrame): the return address,
 * then the handler, its signal mask, the siginfo and the ucontext. */
        .type cordon_signal_run_handler, @function
cordon_signal_run_handler:
        /* The handler's mask, from the entry's (every signal blocked), by
         * unblocking the rest: SIG_UNBLOCK is never trapped by the filter
         * (signals.cc, SetMask). */
        mov rax, qword ptr [rsp + 16]
        not rax
        mov qword ptr [rsp + 24], rax
        lea rsi, [rsp + 24]
        mov edi, 1 /* SIG_UNBLOCK */
        xor edx, edx
        mov r10d, 8
        mov eax, 14 /* SYS_rt_sigprocmask */
        syscall
        mov edi, dword ptr [rsp + 32]
        lea rsi, [rsp + 32]
        lea rdx, [rsp + 160]
        jmp qword ptr [rsp + 8]
        .size cordon_signal_run_handler, . - cordon_signal_run_handler

/* The sa_restorer of every handled signal: the handler of a signal that
 * interrupted untrusted code returned here, rsp at the frame's ucontext. */
        .globl cordon_signal_restorer
        .hidden cordon_signal_restorer
        .type cordon_signal_restorer, @function
cordon_signal_restorer:
        mov r12, rsp
        and rsp, -16
        lea rsi, [rip + cordon_gate_config + CFG_SIGNAL_BLOCK_ALL]
        SET_SIGNAL_MASK
        TLS_BASE rax
        cmp dword ptr TLS(rax, 4), -1
        jne 1f
        call cordon_gate_attach_1
1:      READ_TLS_INDEX 1
        xor ecx, ecx
        xor edx, edx
        CHECKED_WRPKRU DCFG(1, DCFG_PKRU), .Lsignal_return_site
        OWN_RECORD 1, cordon_gate_fatal_signal_return
        /* This record's signal-return buffer: only this thread's restorer
         * uses it, with every signal blocked. Its top is the stack for the
         * copy. */
        mov eax, dword ptr [rip + cordon_gate_config + CFG_SIGBUF_PAGES]
        add eax, SLOT_READONLY_PAGES
        shl rax, 12
        add rax, rbx
        add rax, REC_SIZE
        sub rax, qword ptr [rip + DCFG(1, DCFG_STRIDE)]
        mov rsp, rax
        mov rdi, r12
        mov rsi, rbx
        call cordon_internal_signal_return_frame
        mov rsp, rax
        TOKEN_SIGRETURN 1
        .size cordon_signal_restorer, . - cordon_signal_restorer

        .section cordon_gate_sites, "a", @progbits
        .balign 8
        .long .Lsignal_return_site - .
        .long SITE_SIGNAL_RETURN | (1 << 8)
        .text

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
