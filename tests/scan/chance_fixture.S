/* Chance occurrences, made on purpose: instructions whose displacements
 * hold WRPKRU bytes (0f 01 ef), as a link can choose by chance
 * (docs/inspector.md, "Chance occurrences"). In one section of its own,
 * with local labels, so that the assembler fixes every displacement and no
 * link can change them:
 *   chance_call   call rel32 = 0xffef010f (to chance_answer, 42)
 *   chance_load   mov rax, [rip - 0x10fef1] (chance_word)
 *   chance_branch jz rel32 = 0xffef010f (taken: returns 7)
 * The 1 MiB between is INT3, as padding between functions is. Each
 * function has its unwind entry (.cfi_startproc), as compiled code has:
 * the runtime relocates only inside functions the unwind tables know. */
        .intel_syntax noprefix
        .section .text.cordon_chance, "ax", @progbits
        .p2align 12
.Lbase:
.Lanswer:
        mov eax, 42
        ret
        .org .Lbase + 0x08, 0xcc
.Lword:
        .quad 0x5eed5eed5eed5eed
        .org .Lbase + 0x20, 0xcc
.Lseven:
        mov eax, 7
        ret

        /* call rel32: ends 0x10fef1 after .Lanswer */
        .org .Lbase + 0x10fef1 - 5, 0xcc
        .globl chance_call
        .type chance_call, @function
chance_call:
        .cfi_startproc
        call .Lanswer
        ret
        .cfi_endproc
        .size chance_call, . - chance_call
        /* mov rax, [rip + disp32]: 7 bytes ending 0x10fef1 after .Lword */
        .org .Lbase + 0x08 + 0x10fef1 - 7, 0xcc
        .globl chance_load
        .type chance_load, @function
chance_load:
        .cfi_startproc
        mov rax, qword ptr [rip + .Lword]
        ret
        .cfi_endproc
        .size chance_load, . - chance_load
        /* jz rel32: 6 bytes ending 0x10fef1 after .Lseven, after xor eax, eax */
        .org .Lbase + 0x20 + 0x10fef1 - 6 - 2, 0xcc
        .globl chance_branch
        .type chance_branch, @function
chance_branch:
        .cfi_startproc
        xor eax, eax
        .byte 0x0f, 0x84 /* jz rel32 (spelled out: the assembler would pick rel8 for a known target) */
        .long .Lseven - (. + 4)
        mov eax, 1
        ret
        .cfi_endproc
        .size chance_branch, . - chance_branch
        .globl chance_end
chance_end:
        .section .note.GNU-stack, "", @progbits
