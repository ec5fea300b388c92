/* reloc_data_main: the relocation patches data (attack on beb0d13,
 * "Relocate chance occurrences"; fixture tests/scan/reloc_data_fixture.S).
 *
 * RelocatableAt() trusts a linear sweep: sixteen starts that agree on an
 * instruction holding the hit in a disp32 make it "certain". Constants in
 * an executable section decode as instructions just as consistently, so a
 * table in .text whose bytes read as `lea rax, [rip + 0x29ae0f]` is
 * "relocated": cordon_init() overwrites 7 bytes of the table with
 * `jmp thunk; int3; int3` and starts, and the program reads wrong
 * constants from then on, silently (before the change it was refused).
 * Expected (the fix): cordon_init() refuses, or leaves the table as it is.
 * Exit 0 if so; a failing check prints what and exits with its number. */
#include <cordon/cordon.h>
#include <stdint.h>
#include <stdio.h>

uint64_t reloc_table_sum(void);
uint64_t reloc_table_word(void);

int main(void) {
  const uint64_t sum = reloc_table_sum(), word = reloc_table_word();
  const int s = cordon_init(NULL);
  const uint64_t sum_after = reloc_table_sum(), word_after = reloc_table_word();
  printf("cordon_init: %s; the constant %#llx -> %#llx, sum %#llx -> %#llx\n", cordon_strerror(s),
         (unsigned long long)word, (unsigned long long)word_after, (unsigned long long)sum,
         (unsigned long long)sum_after);
  if (s == CORDON_OK && (word_after != word || sum_after != sum)) {
    fprintf(stderr, "FAIL 1: cordon_init started the program after rewriting constants in its code\n");
    return 1;
  }
  printf("ok 1: the table is intact, or the program was refused\n");
  return 0;
}
