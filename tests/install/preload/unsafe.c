/* A library with a WRPKRU (0F 01 EF) in its code: the preloaded runtime's
 * dlopen must refuse it after cordon_init(). */
void unsafe_write_pkru(void) {
  __asm__ volatile(".byte 0x0f, 0x01, 0xef" ::: "memory");
}
