/* An object with what cordon-scan must flag: a real WRPKRU outside any gate,
 * and WRPKRU bytes hidden in an immediate. */
        .intel_syntax noprefix
        .text
        .globl stray_wrpkru
        .type stray_wrpkru, @function
stray_wrpkru:
        xor ecx, ecx
        xor edx, edx
        mov eax, 0x55555554
        .byte 0x0f, 0x01, 0xef /* wrpkru */
        ret
        .size stray_wrpkru, . - stray_wrpkru
        .globl hidden_wrpkru
        .type hidden_wrpkru, @function
hidden_wrpkru:
        mov eax, 0xef010f90
        ret
        .size hidden_wrpkru, . - hidden_wrpkru
        .section .note.GNU-stack, "", @progbits
