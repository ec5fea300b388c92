/* Objects with what the inspector must find: a real WRPKRU outside any gate
 * (stray_wrpkru), and WRPKRU bytes hidden in an immediate (hidden_wrpkru).
 * Built three ways: both (unsafe_fixture), -DONLY_REAL (planted_real),
 * -DONLY_HIDDEN (planted_hidden). */
        .intel_syntax noprefix
        .text
#ifndef ONLY_HIDDEN
        .globl stray_wrpkru
        .type stray_wrpkru, @function
stray_wrpkru:
        xor ecx, ecx
        xor edx, edx
        mov eax, 0x55555554
        .byte 0x0f, 0x01, 0xef /* wrpkru */
        ret
        .size stray_wrpkru, . - stray_wrpkru
#endif
#ifndef ONLY_REAL
        .globl hidden_wrpkru
        .type hidden_wrpkru, @function
hidden_wrpkru:
        mov eax, 0xef010f90
        ret
        .size hidden_wrpkru, . - hidden_wrpkru
#endif
        .globl fixture_answer
        .type fixture_answer, @function
fixture_answer:
        mov eax, 42
        ret
        .size fixture_answer, . - fixture_answer
        .section .note.GNU-stack, "", @progbits
