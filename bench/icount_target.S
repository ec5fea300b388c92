/* Targets for the instruction counter: an entry point that does nothing,
 * bracketed by labels so that its own instructions can be told apart. */
        .intel_syntax noprefix
        .text
        .globl icount_target
        .type icount_target, @function
        .p2align 4
icount_target:
        xor eax, eax
        ret
        .globl icount_target_end
icount_target_end:
        .size icount_target, . - icount_target
        .section .note.GNU-stack, "", @progbits

/* Scenario markers for the counter: each is a lone ret. */
        .text
        .globl icount_begin
        .type icount_begin, @function
icount_begin:
        ret
        .size icount_begin, . - icount_begin
        .globl icount_end
        .type icount_end, @function
icount_end:
        ret
        .size icount_end, . - icount_end
        .section .note.GNU-stack, "", @progbits
