/* A library with no WRPKRU or XRSTOR: dlopen must load it. */
int clean_answer(void) {
  return 7;
}
