/* Constants in .text, as hand-written assembly keeps them (OpenSSL's
 * perlasm puts its AES, SHA and GHASH tables in .text, next to the code
 * that reads them with `lea reg, [rip + table]`). One constant happens to
 * hold XRSTOR bytes (0f ae 29 = xrstor [rcx]), and a linear sweep through
 * the table decodes it as `lea rax, [rip + 0x29ae0f]`: a "relocatable"
 * RIP-relative instruction to the inspector, though it is data.
 *   reloc_table_sum   sum of the 33 quads of the table
 *   reloc_table_word  the constant that holds the bytes (at .Ltable + 40)
 * A linear sweep from any of the sixteen starts the inspector tries agrees
 * on that `lea` (the squares decode as short `add`s), which makes it
 * "certain". */
        .intel_syntax noprefix
        .section .text.cordon_reloc_data, "ax", @progbits
        .p2align 12
        .globl reloc_table_sum
        .type reloc_table_sum, @function
reloc_table_sum:
        lea rdx, [rip + .Ltable]
        xor eax, eax
        xor ecx, ecx
1:      add rax, qword ptr [rdx + 8 * rcx]
        inc ecx
        cmp ecx, 33
        jne 1b
        ret
        .size reloc_table_sum, . - reloc_table_sum
        .globl reloc_table_word
        .type reloc_table_word, @function
reloc_table_word:
        mov rax, qword ptr [rip + .Ltable + 40]
        ret
        .size reloc_table_word, . - reloc_table_word
        .p2align 6
.Ltable:
        /* squares 0..9, a 64-bit constant, squares 10..63 */
        .long 0
        .long 1
        .long 4
        .long 9
        .long 16
        .long 25
        .long 36
        .long 49
        .long 64
        .long 81
        .quad 0x000029ae0f058d48   /* bytes 48 8d 05 0f ae 29 00 00 */
        .long 100
        .long 121
        .long 144
        .long 169
        .long 196
        .long 225
        .long 256
        .long 289
        .long 324
        .long 361
        .long 400
        .long 441
        .long 484
        .long 529
        .long 576
        .long 625
        .long 676
        .long 729
        .long 784
        .long 841
        .long 900
        .long 961
        .long 1024
        .long 1089
        .long 1156
        .long 1225
        .long 1296
        .long 1369
        .long 1444
        .long 1521
        .long 1600
        .long 1681
        .long 1764
        .long 1849
        .long 1936
        .long 2025
        .long 2116
        .long 2209
        .long 2304
        .long 2401
        .long 2500
        .long 2601
        .long 2704
        .long 2809
        .long 2916
        .long 3025
        .long 3136
        .long 3249
        .long 3364
        .long 3481
        .long 3600
        .long 3721
        .long 3844
        .long 3969
        .section .note.GNU-stack, "", @progbits
