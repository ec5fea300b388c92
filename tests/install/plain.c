/* A plain C program built against the installed package (by gcc through
 * pkg-config, static and shared, and by CMake with cordon::cordon_shared):
 * no plugin, entry points registered by hand. argv[1] names the build. */
#include <cordon/cordon.h>
#include <stdio.h>
#include <string.h>

static uint64_t twice(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)b, (void)c, (void)d, (void)e;
  return 2 * a;
}

int main(int argc, char** argv) {
  if (strcmp(cordon_version(), CORDON_VERSION_STRING) != 0) return 5;
  const int s = cordon_init(NULL);
  if (s != CORDON_OK) {
    fprintf(stderr, "cordon_init: %s\n", cordon_strerror(s));
    return 2;
  }
  cordon_entry e;
  if (cordon_register(cordon_trusted_domain(), twice, "twice", &e) != CORDON_OK) return 3;
  const uint64_t r = cordon_call(e, 21, 0, 0, 0, 0);
  printf("plain app (%s): twice(21) = %llu\n", argc > 1 ? argv[1] : "?", (unsigned long long)r);
  return r == 42 ? 0 : 1;
}
