/* Test probes for register scrubbing and for jumps into gates.
 *
 * probe_dirty_entry: a trusted entry that fills every caller-saved register
 * (and the vector registers) with a pattern, as leaked secrets would be,
 * then returns 0x5ec7e7.
 *
 * probe_call_and_capture(gate, id, out): calls gate(…, id) and stores the
 * registers exactly as the gate left them into out[]: rax, rcx, rdx, rsi,
 * rdi, r8, r9, r10, r11, then ymm0..ymm15 (32 bytes each).
 *
 * probe_jump_to_site(site, eax, r9): loads eax (the forged PKRU value),
 * clears ecx/edx as WRPKRU needs, puts r9 (an entry id), and *calls* site,
 * so a gate path that completes returns here. */
        .intel_syntax noprefix
        .text
        .globl probe_dirty_entry
        .type probe_dirty_entry, @function
probe_dirty_entry:
        mov rcx, 0x1111111111111111
        mov rdx, 0x2222222222222222
        mov rsi, 0x3333333333333333
        mov rdi, 0x4444444444444444
        mov r8, 0x5555555555555555
        mov r9, 0x6666666666666666
        mov r10, 0x7777777777777777
        mov r11, 0x8888888888888888
        vpcmpeqb ymm0, ymm0, ymm0
        vpcmpeqb ymm1, ymm1, ymm1
        vpcmpeqb ymm7, ymm7, ymm7
        vpcmpeqb ymm8, ymm8, ymm8
        vpcmpeqb ymm15, ymm15, ymm15
        mov eax, 0x5ec7e7
        ret
        .size probe_dirty_entry, . - probe_dirty_entry

        .globl probe_call_and_capture
        .type probe_call_and_capture, @function
probe_call_and_capture:
        push rbx
        mov rbx, rdx           /* out */
        mov rax, rdi           /* gate */
        mov r9, rsi            /* id in the sixth argument */
        mov rdi, 0x0a
        mov rsi, 0x0b
        mov rdx, 0x0c
        mov rcx, 0x0d
        mov r8, 0x0e
        call rax
        mov [rbx + 0], rax
        mov [rbx + 8], rcx
        mov [rbx + 16], rdx
        mov [rbx + 24], rsi
        mov [rbx + 32], rdi
        mov [rbx + 40], r8
        mov [rbx + 48], r9
        mov [rbx + 56], r10
        mov [rbx + 64], r11
        vmovdqu [rbx + 72 + 0 * 32], ymm0
        vmovdqu [rbx + 72 + 1 * 32], ymm1
        vmovdqu [rbx + 72 + 2 * 32], ymm2
        vmovdqu [rbx + 72 + 3 * 32], ymm3
        vmovdqu [rbx + 72 + 4 * 32], ymm4
        vmovdqu [rbx + 72 + 5 * 32], ymm5
        vmovdqu [rbx + 72 + 6 * 32], ymm6
        vmovdqu [rbx + 72 + 7 * 32], ymm7
        vmovdqu [rbx + 72 + 8 * 32], ymm8
        vmovdqu [rbx + 72 + 9 * 32], ymm9
        vmovdqu [rbx + 72 + 10 * 32], ymm10
        vmovdqu [rbx + 72 + 11 * 32], ymm11
        vmovdqu [rbx + 72 + 12 * 32], ymm12
        vmovdqu [rbx + 72 + 13 * 32], ymm13
        vmovdqu [rbx + 72 + 14 * 32], ymm14
        vmovdqu [rbx + 72 + 15 * 32], ymm15
        pop rbx
        ret
        .size probe_call_and_capture, . - probe_call_and_capture

        .globl probe_jump_to_site
        .type probe_jump_to_site, @function
probe_jump_to_site:
        mov rax, rdi           /* site */
        mov r9, rdx            /* entry id */
        mov r11, rax
        mov eax, esi           /* forged PKRU value */
        xor ecx, ecx
        xor edx, edx
        xor edi, edi
        xor esi, esi
        call r11
        ret
        .size probe_jump_to_site, . - probe_jump_to_site

        .section .note.GNU-stack, "", @progbits

/* probe_jump_with_stack(site, eax, id, rsp): like probe_jump_to_site, but
 * with a forged stack pointer, and without a return address: a completed
 * gate path returns through whatever rsp points at. The record index that
 * the gate reads from TLS before its WRPKRU (into xmm15) is -1: no record
 * yet, the attach path. */
        .text
        .globl probe_jump_with_stack
        .type probe_jump_with_stack, @function
probe_jump_with_stack:
        pcmpeqd xmm15, xmm15   /* index -1 */
        mov r11, rdi           /* site */
        mov r9, rdx            /* entry id */
        mov eax, esi           /* PKRU value */
        mov rsp, rcx           /* forged stack pointer */
        xor ecx, ecx
        xor edx, edx
        xor edi, edi
        xor esi, esi
        jmp r11
        .size probe_jump_with_stack, . - probe_jump_with_stack
        .section .note.GNU-stack, "", @progbits

/* probe_df_entry: an entry that returns the direction flag it sees (0x400
 * when set). probe_call_with_df_set(gate, id): calls the gate with DF = 1,
 * as an attacker could, and clears it again afterwards. */
        .text
        .globl probe_df_entry
        .type probe_df_entry, @function
probe_df_entry:
        pushfq
        pop rax
        and eax, 0x400
        ret
        .size probe_df_entry, . - probe_df_entry

        .globl probe_call_with_df_set
        .type probe_call_with_df_set, @function
probe_call_with_df_set:
        mov rax, rdi
        mov r9, rsi
        std
        call rax
        cld
        ret
        .size probe_call_with_df_set, . - probe_call_with_df_set
        .section .note.GNU-stack, "", @progbits

/* probe_callout_entry(cb): a trusted entry that loads patterns into every
 * callee-saved register, calls cb through cordon_call_untrusted, and
 * returns 1 if all six patterns survived (0 otherwise).
 * probe_clobber_callback: an untrusted callback that records the callee-
 * saved registers it was given into probe_seen[0..5], then clobbers them
 * (against the ABI, as an attacker would) and returns 7. */
        .text
        .globl probe_callout_entry
        .type probe_callout_entry, @function
probe_callout_entry:
        push rbx
        push rbp
        push r12
        push r13
        push r14
        push r15
        sub rsp, 8
        mov rbx, 0x1010101010101010
        mov rbp, 0x2020202020202020
        mov r12, 0x3030303030303030
        mov r13, 0x4040404040404040
        mov r14, 0x5050505050505050
        mov r15, 0x6060606060606060
        xor esi, esi
        xor edx, edx
        xor ecx, ecx
        xor r8d, r8d
        xor r9d, r9d
        call cordon_call_untrusted
        xor eax, eax
        mov rcx, 0x1010101010101010
        cmp rbx, rcx
        jne 1f
        mov rcx, 0x2020202020202020
        cmp rbp, rcx
        jne 1f
        mov rcx, 0x3030303030303030
        cmp r12, rcx
        jne 1f
        mov rcx, 0x4040404040404040
        cmp r13, rcx
        jne 1f
        mov rcx, 0x5050505050505050
        cmp r14, rcx
        jne 1f
        mov rcx, 0x6060606060606060
        cmp r15, rcx
        jne 1f
        mov eax, 1
1:      add rsp, 8
        pop r15
        pop r14
        pop r13
        pop r12
        pop rbp
        pop rbx
        ret
        .size probe_callout_entry, . - probe_callout_entry

        .globl probe_clobber_callback
        .type probe_clobber_callback, @function
probe_clobber_callback:
        mov [rip + probe_seen + 0], rbx
        mov [rip + probe_seen + 8], rbp
        mov [rip + probe_seen + 16], r12
        mov [rip + probe_seen + 24], r13
        mov [rip + probe_seen + 32], r14
        mov [rip + probe_seen + 40], r15
        mov rbx, -1
        mov rbp, -1
        mov r12, -1
        mov r13, -1
        mov r14, -1
        mov r15, -1
        mov eax, 7
        ret
        .size probe_clobber_callback, . - probe_clobber_callback

        .bss
        .globl probe_seen
        .balign 8
probe_seen:
        .zero 48
        .section .note.GNU-stack, "", @progbits
